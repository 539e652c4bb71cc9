"""WebSocket fan-out with the C load client (docs/PERFORMANCE.md).

Starts $SALESD_BUILD/salesd (modules orders + analytics, or those
--modules names: "orders" alone sends what wsceil sends) and runs
BUILD/bench/wsload against it: CLIENTS connections, ORDERS orders posted
one at a time, back to back or, with --rate, at RATE orders a second
(wsload -r).  --io-threads sets [server] io_threads, --io-uring
[server] io_uring.  Prints wsload's "RESULT {json}" line, then
"SLICES {json}": the server's fan-out slices from /metrics (how many,
their mean, how many took over 5 and over 25 ms), which tells a slow
delivery of the server's from one of the machine's.

    SALESD_BUILD=build /usr/bin/python3 ws_load.py [--rate R]
        [--io-threads N] [--io-uring on|off] [--modules "orders analytics"] WSLOAD CLIENTS ORDERS
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "e2e"))
from conftest import Server  # noqa: E402
from test_ops import scrape  # noqa: E402


def slices(srv):
    """The slice histogram of srv's /metrics, summed up."""
    m = scrape(srv)
    name = "salesd_websocket_write_slice_seconds"
    n, total = int(m[(name + "_count", ())]), m[(name + "_sum", ())]

    def over(le):
        return n - int(m[(name + "_bucket", (("le", le),))])
    return {"slices": n, "mean_ms": round(total * 1e3 / n, 3) if n else 0,
            "over_5ms": over("0.005"), "over_25ms": over("0.025")}


def main(wsload, clients, orders, rate=0, io_threads=0,
         modules=("orders", "analytics"), io_uring="on"):
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(tmp, list(modules), {
            "server": {"max_connections": clients + 100,
                       "io_threads": io_threads,
                       "io_uring": io_uring,
                       "log_level": "info"},
            "analytics": {"broadcast_interval_ms": 100}})
        srv.start()
        try:
            cmd = [wsload]
            if rate:
                cmd += ["-r", str(rate)]
            cmd += [str(srv.port), str(clients), str(orders),
                    str(srv.proc.pid)]
            p = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=180)
            sys.stdout.write(p.stdout)
            sys.stderr.write(p.stderr)
            sys.stdout.write("SLICES %s\n" % json.dumps(slices(srv)))
        finally:
            srv.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=0,
                    help="orders per second (0: back to back)")
    ap.add_argument("--io-threads", type=int, default=0)
    ap.add_argument("--io-uring", choices=("on", "off"), default="on")
    ap.add_argument("--modules", default="orders analytics")
    ap.add_argument("wsload")
    ap.add_argument("clients", type=int)
    ap.add_argument("orders", type=int)
    a = ap.parse_args()
    main(a.wsload, a.clients, a.orders, a.rate, a.io_threads,
         a.modules.split(), a.io_uring)
