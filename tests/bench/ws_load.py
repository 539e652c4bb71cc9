"""WebSocket fan-out with the C load client (docs/PERFORMANCE.md).

Starts $SALESD_BUILD/salesd (modules orders + analytics) and runs
BUILD/bench/wsload against it: CLIENTS connections, ORDERS orders posted
one at a time.  Prints wsload's "RESULT {json}" line.

    SALESD_BUILD=build /usr/bin/python3 ws_load.py WSLOAD CLIENTS ORDERS
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "e2e"))
from conftest import Server  # noqa: E402


def main(wsload, clients, orders):
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(tmp, ["orders", "analytics"], {
            "server": {"max_connections": clients + 100,
                       "log_level": "info"},
            "analytics": {"broadcast_interval_ms": 100}})
        srv.start()
        try:
            p = subprocess.run([wsload, str(srv.port), str(clients),
                                str(orders), str(srv.proc.pid)],
                               capture_output=True, text=True, timeout=180)
            sys.stdout.write(p.stdout)
            sys.stderr.write(p.stderr)
        finally:
            srv.stop()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
