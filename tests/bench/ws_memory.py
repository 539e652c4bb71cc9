"""WebSocket output memory: RSS of salesd with non-reading and normal
clients under a stream of order-sized broadcasts (docs/PERFORMANCE.md).

Starts build/salesd (or $SALESD_BUILD) with the echo test module,
connects SLOW clients that never read and NORMAL clients that read
everything, broadcasts MESSAGES messages of about 300 bytes, and prints
one line "RESULT {json}" with VmRSS/VmHWM (KiB) before and after.

    /usr/bin/python3 ws_memory.py SLOW NORMAL MESSAGES [key=value ...]

key=value pairs go to [server], e.g. ws_max_buffered=4194304
max_output_memory=0.
"""
import asyncio
import json
import os
import socket
import sys
import tempfile
import time

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "e2e"))
from conftest import Server  # noqa: E402


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def slow_client(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: "
               "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
               ).encode())
    return s


def post_all(srv, n):
    c = srv.conn(60)
    order = {"id": 0, "product": "Espresso beans 1kg", "quantity": 2,
             "price": 24.5, "total": 49.0, "customer": "c" * 120,
             "created_at": "2026-12-03T07:00:00Z"}
    for i in range(n):
        order["id"] = i
        c.request("POST", "/echo/broadcast?type=newOrder",
                  body=json.dumps(order),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
    c.close()


async def reader(url, n, got):
    async with websockets.connect(url, max_queue=None, ping_interval=None,
                                  open_timeout=60) as ws:
        got["connected"] += 1
        while got["per"].setdefault(id(ws), 0) < n:
            await ws.recv()
            got["per"][id(ws)] += 1
        got["done"] += 1


async def main(slow, normal, messages, extra):
    tmp = tempfile.mkdtemp(prefix="ws_memory.")
    srv = Server(tmp, ["echo"], {"server": extra}).start()
    try:
        base = status(srv.proc.pid)
        socks = [slow_client(srv.port) for _ in range(slow)]
        got = {"connected": 0, "done": 0, "per": {}}
        tasks = [asyncio.create_task(reader(srv.ws_url, messages, got))
                 for _ in range(normal)]
        while got["connected"] < normal:
            await asyncio.sleep(0.05)
        t0 = time.time()
        await asyncio.get_running_loop().run_in_executor(
            None, post_all, srv, messages)
        if tasks:
            await asyncio.wait(tasks, timeout=120)
        secs = time.time() - t0
        after = status(srv.proc.pid)
        st, _, text = srv.get("/metrics")
        cuts = [ln for ln in text.decode().splitlines()
                if ln.startswith("salesd_output_memory_cuts_total ")]
        print("RESULT " + json.dumps({
            "slow": slow, "normal": normal, "messages": messages,
            "config": extra, "before_kib": base, "after_kib": after,
            "normal_complete": got["done"], "seconds": round(secs, 2),
            "budget_cuts": cuts[0].split()[1] if cuts else None,
            "too_slow_closes": srv.log().count("too slow")}), flush=True)
        for s in socks:
            s.close()
    finally:
        srv.stop()


if __name__ == "__main__":
    kv = dict(a.split("=", 1) for a in sys.argv[4:])
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                     kv))
