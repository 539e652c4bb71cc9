"""POST /orders against PostgreSQL beside SQLite (run by tests/bench/run,
i.e. `make bench`, after bench.py).

In one run, on this machine, in temporary directories: salesd (orders +
analytics) on SQLite; then a throwaway PostgreSQL (Debian's, fsync and
synchronous_commit on, as tests/e2e/pg.py starts it) with one salesd on
it; then three salesd instances on that one database, one wrk each, run
at the same time.  wrk posts BENCH_CONNECTIONS connections in all for
BENCH_SECONDS per row.  Prints one table, with the CPU time (user +
system, from /proc) that salesd and PostgreSQL's processes spent per
order answered; every 201 is then counted in the database, so an
acknowledged order that went missing would show.
Everything is bounded in time and removed at the end.  Not a test.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import bench  # noqa: E402  (wrk, free_port, wait_port, stop)
import pg  # noqa: E402  (Cluster)

CONNS = bench.CONNS
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(roots):
    """User + system CPU time of roots and their descendants (salesd,
    the postmaster and its backends), from /proc: per order, a figure a
    shared machine moves far less than orders per second."""
    parent, times = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent.setdefault(int(fields[1]), []).append(int(d))
        times[int(d)] = int(fields[11]) + int(fields[12])
    total, todo = 0, list(roots)
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0)
        todo.extend(parent.get(pid, []))
    return total / TICK


class Instance:
    """One salesd on the given [storage] lines."""

    def __init__(self, build, tmp, storage, env=None):
        self.port = bench.free_port()
        self.dir = tempfile.mkdtemp(dir=tmp)
        self.conf = os.path.join(self.dir, "sales.ini")
        with open(self.conf, "w") as f:
            f.write("[server]\nhost = 127.0.0.1\nport = %d\nlog_level = warn\n"
                    "[modules]\ndir = %s\nload = orders analytics\n"
                    "[storage]\n%s\n"
                    "[analytics]\nbroadcast_interval_ms = 100\n"
                    % (self.port, os.path.join(build, "modules"), storage))
        self.log = open(os.path.join(self.dir, "salesd.log"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(build, "salesd"), "-c", self.conf],
            stdout=self.log, stderr=self.log, cwd=self.dir,
            env=dict(os.environ, **(env or {})))
        bench.wait_port(self.port, self.proc)

    def stop(self):
        bench.stop(self.proc)
        self.log.close()


def posts(instances, cluster=None):
    """wrk on every instance at once, CONNS connections in all: the sum,
    and the CPU time salesd and PostgreSQL spent per order answered."""
    out = [None] * len(instances)
    roots = [i.proc.pid for i in instances]
    if cluster is not None:
        roots.append(cluster.proc.pid)
    cpu0 = cpu_seconds(roots)
    conns = max(1, CONNS // len(instances))

    def one(i):
        try:
            out[i] = bench.wrk(instances[i].port, "/orders", True, conns, 1)
        except Exception as e:      # told below, not lost in the thread
            out[i] = e

    threads = [threading.Thread(target=one, args=(i,))
               for i in range(len(instances))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = cpu_seconds(roots) - cpu0
    for r in out:
        if isinstance(r, Exception):
            raise r
    requests = sum(r.get("requests", 0) for r in out)
    return {"rps": sum(r["rps"] for r in out),
            "cpu_us": cpu / max(1, requests) * 1e6,
            "p50_ms": max(r["p50_ms"] for r in out),
            "p99_ms": max(r["p99_ms"] for r in out),
            "non2xx": sum(r["non2xx"] for r in out),
            "errors": sum(r["errors"] for r in out),
            "requests": requests}


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    driver = os.path.join(build, "drivers", "postgres.so")
    if not os.path.exists(driver):
        sys.exit("pg_bench: %s is not built (libpq-dev)" % driver)
    tmp = tempfile.mkdtemp(prefix="salesd-pgbench-")
    cluster, running = None, []
    rows = []
    try:
        print("pg_bench: %d connections, %d s per run, %d CPUs, load "
              "average %.2f %.2f %.2f" % (CONNS, bench.SECONDS,
                                          os.cpu_count(), *os.getloadavg()),
              flush=True)
        s = Instance(build, tmp, "driver = sqlite\npath = %s" %
                     os.path.join(tmp, "sales.db"))
        running.append(s)
        print("pg_bench: POST /orders, SQLite ...", flush=True)
        rows.append(("SQLite, 1 instance", posts([s])))
        s.stop()
        running.remove(s)

        cluster = pg.Cluster(log_statements=False)
        url = cluster.createdb("bench")
        storage = "driver = postgres\nurl = ${DATABASE_URL}"
        env = {"DATABASE_URL": url}
        first = Instance(build, tmp, storage, env)
        running.append(first)
        print("pg_bench: POST /orders, PostgreSQL, 1 instance ...",
              flush=True)
        rows.append(("PostgreSQL, 1 instance", posts([first], cluster)))
        # The schema exists now: the others start on it.
        for _ in range(2):
            running.append(Instance(build, tmp, storage, env))
        print("pg_bench: POST /orders, PostgreSQL, 3 instances ...",
              flush=True)
        rows.append(("PostgreSQL, 3 instances", posts(running, cluster)))
        stored = int(cluster.psql("bench", "SELECT count(*) FROM orders"))
        acked = sum(r["requests"] - r["non2xx"] for _, r in rows[1:])

        print()
        print("%-26s %10s %8s %8s %12s" % ("POST /orders", "orders/s",
                                            "p50 ms", "p99 ms",
                                            "CPU us/order"))
        for name, r in rows:
            line = "%-26s %10.0f %8.2f %8.2f %12.0f" % (
                name, r["rps"], r["p50_ms"], r["p99_ms"], r["cpu_us"])
            if r["non2xx"] or r["errors"]:
                line += "  (%d non-2xx, %d socket errors)" % (
                    r["non2xx"], r["errors"])
            print(line)
        print()
        print("PostgreSQL: %d orders stored, %d answered 201 by wrk's count "
              "(wrk may stop with requests in flight that were stored)"
              % (stored, acked))
        print("Load average after the run: %.2f %.2f %.2f" % os.getloadavg())
    finally:
        for i in running:
            i.stop()
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
