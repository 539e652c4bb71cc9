"""salesd benchmark harness (run by tests/bench/run, i.e. `make bench`).

In one run, on this machine, in a temporary directory:
  1. salesd (BUILD/salesd, modules orders + analytics, SQLite with
     synchronous=FULL) and nginx (one worker, `return 201` / `return 200`)
     on free loopback ports;
  2. wrk, BENCH_CONNECTIONS connections for BENCH_SECONDS each:
     POST /orders and GET /analytics against both;
  3. POST /orders again (BENCH_WS_CONNECTIONS connections) with
     BENCH_WS_CLIENTS WebSocket clients counting the newOrder fan-out;
  4. BENCH_FILL orders inserted straight into SQLite, salesd restarted
     (start-up time measured), GET /analytics again;
then prints a table and removes everything it started.  Every step is
bounded in time.  Not part of `make test`.
"""
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
WS_CLIENTS = int(os.environ.get("BENCH_WS_CLIENTS", "50"))
FILL = int(os.environ.get("BENCH_FILL", "1000000"))
# Fewer POST connections while the WebSocket clients run: on a small
# machine the Python clients need CPU too, or they measure themselves.
WS_CONNS = int(os.environ.get("BENCH_WS_CONNECTIONS", "8"))

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location = /orders {{ return 201 '{order}'; }}
        location = /analytics {{ return 200 '{analytics}'; }}
    }}
}}
"""
# Bodies of the size salesd answers, so the comparison is fair on bytes.
ORDER = ('{"id":1,"product_id":"sku01","quantity":2,"price":2.01,'
         '"date":"2026-01-01T00:00:00.000Z",'
         '"received_at":"2026-01-01T00:00:00.000Z"}')


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("server did not listen on %d" % port)


def stop(proc, timeout=30):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def get_json(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=10) as r:
        return json.loads(r.read())


def wrk(port, path, post, conns=None, threads=None):
    env = dict(os.environ, BENCH_POST="1" if post else "0")
    cmd = ["wrk", "-t%d" % (threads or THREADS), "-c%d" % (conns or CONNS),
           "-d%ds" % SECONDS,
           "--latency", "-s", os.path.join(HERE, "wrk.lua"),
           "http://127.0.0.1:%d%s" % (port, path)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True,
                       timeout=SECONDS + 60)
    m = re.search(r"^RESULT (\{.*\})$", p.stdout, re.M)
    if not m:
        raise RuntimeError("wrk failed:\n" + p.stdout + p.stderr)
    return json.loads(m.group(1))


class Salesd:
    def __init__(self, build, tmp):
        self.build, self.tmp = build, tmp
        self.port = free_port()
        self.db = os.path.join(tmp, "sales.db")
        self.conf = os.path.join(tmp, "sales.ini")
        with open(self.conf, "w") as f:
            f.write("[server]\nhost = 127.0.0.1\nport = %d\nlog_level = warn\n"
                    "[modules]\ndir = %s\nload = orders analytics\n"
                    "[storage]\ndriver = sqlite\npath = %s\nmigrations = %s\n"
                    "[analytics]\nbroadcast_interval_ms = 100\n"
                    % (self.port, os.path.join(build, "modules"), self.db,
                       os.path.join(ROOT, "sql")))
        self.proc = None

    def start(self):
        t = time.time()
        self.log = open(os.path.join(self.tmp, "salesd.log"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(self.build, "salesd"), "-c", self.conf],
            stdout=self.log, stderr=self.log, cwd=self.tmp)
        wait_port(self.port, self.proc)
        return time.time() - t

    def stop(self):
        stop(self.proc)
        self.log.close()


def fill(db, n):
    """n more orders, straight into SQLite, all received two days ago."""
    con = sqlite3.connect(db)
    first = (con.execute("SELECT MAX(id) FROM orders").fetchone()[0] or 0) + 1
    old = int(time.time() * 1000) - 2 * 86400 * 1000
    t = time.time()
    with con:
        con.execute("""
            WITH RECURSIVE c(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM c
                                    WHERE i < ?1 + ?2 - 1)
            INSERT INTO orders(id, product_id, quantity, price, date,
                               price_micros, received_at)
            SELECT i, printf('sku%02d', i % 100), 1 + i % 5,
                   (10000 * (1 + i % 5000)) / 1e6, '2026-01-01T00:00:00Z',
                   10000 * (1 + i % 5000), ?3 + i % 86400000
            FROM c""", (first, n, old))
    con.close()
    return time.time() - t


def row(name, s, n):
    ratio = s["rps"] / n["rps"] if n and n["rps"] else 0.0
    line = "%-34s %10.0f %8.2f %8.2f" % (name, s["rps"], s["p50_ms"],
                                        s["p99_ms"])
    if n:
        line += " %10.0f %8.2f %8.2f %7.2f" % (n["rps"], n["p50_ms"],
                                               n["p99_ms"], ratio)
    if s["non2xx"] or s["errors"]:
        line += "  (salesd: %d non-2xx, %d socket errors)" % (
            s["non2xx"], s["errors"])
    return line


def main():
    args = [a for a in sys.argv[1:] if a != "--ws-only"]
    build = os.path.abspath(args[0] if args else "build")
    if "--ws-only" in sys.argv:
        # The WebSocket fan-out runs alone (no wrk, no nginx).
        print("bench: %d CPUs, load average %.2f %.2f %.2f" % (
            os.cpu_count(), *os.getloadavg()))
        wsfan(build)
        return
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            sys.exit("bench: \"%s\" not found; run `make bench` (it installs "
                     "wrk and nginx-light)" % tool)
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = tempfile.mkdtemp(prefix="salesd-bench-")
    salesd, nginx = None, None
    try:
        load = os.getloadavg()
        print("bench: %d connections, %d wrk threads, %d s per run, %d CPUs, "
              "load average %.2f %.2f %.2f" % (CONNS, THREADS, SECONDS,
                                               os.cpu_count(), *load))
        salesd = Salesd(build, tmp)
        salesd.start()
        nport = free_port()
        analytics = json.dumps(get_json(salesd.port, "/analytics"))
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(tmp=tmp, port=nport, order=ORDER,
                                      analytics=analytics))
        nginx = subprocess.Popen([nginx_bin, "-p", tmp, "-c",
                                  os.path.join(tmp, "nginx.conf")],
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        wait_port(nport, nginx)

        results = {}
        print("bench: POST /orders (salesd) ...", flush=True)
        results["post"] = wrk(salesd.port, "/orders", True)
        print("bench: POST /orders (nginx) ...", flush=True)
        results["post_nginx"] = wrk(nport, "/orders", True)
        print("bench: GET /analytics (salesd) ...", flush=True)
        results["get"] = wrk(salesd.port, "/analytics", False)
        print("bench: GET /analytics (nginx) ...", flush=True)
        results["get_nginx"] = wrk(nport, "/analytics", False)

        print("bench: POST /orders with %d WebSocket clients ..." % WS_CLIENTS,
              flush=True)
        before = get_json(salesd.port, "/analytics")["totalOrders"]
        ws = subprocess.Popen([sys.executable, os.path.join(HERE, "ws_fanout.py"),
                               "ws://127.0.0.1:%d/" % salesd.port,
                               str(WS_CLIENTS), str(SECONDS + 10)],
                              stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        results["post_ws"] = wrk(salesd.port, "/orders", True, WS_CONNS, 1)
        out, _ = ws.communicate(timeout=SECONDS + 40)
        m = re.search(r"^RESULT (\{.*\})$", out, re.M)
        fan = json.loads(m.group(1)) if m else None
        created = get_json(salesd.port, "/analytics")["totalOrders"] - before

        stored = get_json(salesd.port, "/analytics")["totalOrders"]
        salesd.stop()
        print("bench: inserting %d orders into SQLite ..." % FILL, flush=True)
        fill_s = fill(salesd.db, FILL)
        empty = Salesd(build, tempfile.mkdtemp(dir=tmp))
        empty_start = empty.start()
        empty.stop()
        start_s = salesd.start()
        total = get_json(salesd.port, "/analytics")["totalOrders"]
        print("bench: GET /analytics with %d orders stored ..." % total,
              flush=True)
        results["get_full"] = wrk(salesd.port, "/analytics", False)

        print()
        print("%-34s %10s %8s %8s %10s %8s %8s %7s" % (
            "", "salesd/s", "p50 ms", "p99 ms", "nginx/s", "p50 ms",
            "p99 ms", "ratio"))
        print(row("POST /orders", results["post"], results["post_nginx"]))
        print(row("GET /analytics", results["get"], results["get_nginx"]))
        print(row("GET /analytics, %dk orders stored" % (total // 1000),
                  results["get_full"], results["get_nginx"]))
        print(row("POST /orders, %d conns, %d WS clients" % (
            WS_CONNS, WS_CLIENTS), results["post_ws"], None))
        print()
        if fan:
            expected = created * fan["connected"]
            print("WebSocket fan-out: %d clients connected, %d orders created "
                  "during the run, %d newOrder messages received (%.1f%% of "
                  "%d), %.0f messages/s, %d updateAnalytics, %d clients closed "
                  "by the server %s" % (
                      fan["connected"], created, fan["newOrder"],
                      100.0 * fan["newOrder"] / expected if expected else 0,
                      expected, fan["newOrder"] / SECONDS,
                      fan["updateAnalytics"], fan["closed"],
                      fan["close_codes"] or ""))
        print("Start-up: empty database %.3f s; with %d orders %.3f s "
              "(%d stored by the POST runs, %d inserted in %.1f s)" % (
                  empty_start, total, start_s, stored, FILL, fill_s))
        print("Load average after the run: %.2f %.2f %.2f" % os.getloadavg())
        salesd.stop()
        wsfan(build)
    finally:
        if salesd is not None and salesd.proc is not None:
            stop(salesd.proc)
        stop(nginx)
        shutil.rmtree(tmp, ignore_errors=True)


def wsfan(build):
    """The C load client (BUILD/bench/wsload) against salesd, for each of
    BENCH_WSLOAD_CLIENTS (default "1000 10000"), BENCH_WSLOAD_ORDERS
    orders each (default 20), posted one at a time: back to back, or at
    BENCH_WSLOAD_RATE orders/s (wsload -r); salesd once for each
    [server] io_threads in BENCH_WSLOAD_IO_THREADS (default "0 0s 2";
    an "s" suffix turns [server] io_uring off: writes with send()),
    with the modules in BENCH_WSLOAD_MODULES (default "orders analytics";
    "orders" alone sends only newOrder, as wsceil does)."""
    wsload = os.path.join(build, "bench", "wsload")
    if not os.path.exists(wsload):
        print("bench: %s not built; skipping the fan-out runs" % wsload)
        return
    orders = os.environ.get("BENCH_WSLOAD_ORDERS", "20")
    rate = os.environ.get("BENCH_WSLOAD_RATE", "")
    rflag = ["-r", rate] if rate else []
    iots = os.environ.get("BENCH_WSLOAD_IO_THREADS", "0 0s 2").split()
    print()
    print("%-8s %-9s %9s %9s %9s %9s %9s %9s %9s %11s %9s" % (
        "clients", "server", "frames/s", "dlv p50", "dlv p99", "POST p50", "POST p99",
        "GET p99", "B/client", "us/frame", "slow sl."))
    env = dict(os.environ, SALESD_BUILD=build)
    for n in os.environ.get("BENCH_WSLOAD_CLIENTS", "1000 10000").split():
        for who in ["salesd/%s" % t for t in iots] + ["wsceil"]:
            if who.startswith("salesd"):
                t = who.split("/")[1]
                cmd = [sys.executable, os.path.join(HERE, "ws_load.py"),
                       "--io-threads", t.rstrip("s"), "--io-uring",
                       "off" if t.endswith("s") else "on", "--modules",
                       os.environ.get("BENCH_WSLOAD_MODULES",
                                      "orders analytics")] + (
                           ["--rate", rate] if rate else []) + [
                       wsload, n, orders]
                ceil = None
            else:
                port = free_port()
                ceil = subprocess.Popen([os.path.join(build, "bench",
                                                      "wsceil"), str(port)])
                wait_port(port, ceil)
                cmd = [wsload] + rflag + [str(port), n, orders,
                                          str(ceil.pid)]
            try:
                p = subprocess.run(cmd, env=env, capture_output=True,
                                   text=True, timeout=300)
            finally:
                stop(ceil)
            m = re.search(r"^RESULT (\{.*\})$", p.stdout, re.M)
            if not m:
                print("bench: wsload %s against %s failed:\n%s%s" % (
                    n, who, p.stdout, p.stderr))
                continue
            r = json.loads(m.group(1))
            sl = re.search(r"^SLICES (\{.*\})$", p.stdout, re.M)
            sl = json.loads(sl.group(1)) if sl else None
            print(("%-8d %-9s %9.0f %9.1f %9.1f %9.2f %9.2f %9.2f %9.0f"
                   " %5.2f+%.2f %9s") % (
                r["clients"], who, r["frames_per_s"], r["delivery_p50_ms"],
                r["delivery_p99_ms"], r["post_p50_ms"], r["post_p99_ms"],
                r["get_p99_ms"], r["rss_per_client"],
                r["cpu_user_us_per_frame"], r["cpu_sys_us_per_frame"],
                "%d/%d" % (sl["over_5ms"], sl["over_25ms"]) if sl else "-"))
    print("(latencies in ms; delivery: POST sent, or due with a rate, to "
          "newOrder read; salesd/N: io_threads = N, salesd/Ns: and io_uring "
          "off; us/frame: the "
          "server's user+system CPU per frame delivered; slow sl.: fan-out "
          "slices over 5 ms / over 25 ms, from salesd's /metrics)")


if __name__ == "__main__":
    main()
