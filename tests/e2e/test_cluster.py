"""Three salesd instances on one PostgreSQL database: a cluster.

Each instance has its own loopback port and directory; all three share
one database of the throwaway PostgreSQL of tests/e2e/pg.py.  What one
instance stores, the others answer for (Idempotency-Key); faults of the
database and of one instance lose no acknowledged order; every
instance learns of every order (WebSocket clients, /analytics), through
the commit feed.
"""
import asyncio
import concurrent.futures
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest
import websockets

from conftest import ROOT
from pg import cluster, free_port, pg_server, pgdb, wait_health  # noqa: F401
from test_install import as_user

def three(make_server, url, n=3, **kw):
    """n instances on url, started one after the other (the first one
    applies the migrations)."""
    return [pg_server(make_server, url, subdir="i%d" % i, **kw)
            for i in range(n)]


def order(pid, price=1.0, quantity=1):
    return {"product_id": pid, "quantity": quantity, "price": price}


def count(cluster, name, sql="SELECT count(*) FROM orders"):
    return int(cluster.psql(name, sql))


def figures(s):
    st, _, a = s.get("/analytics?top=100")
    assert st == 200, a
    return {k: a[k] for k in ("totalRevenue", "totalOrders",
                              "totalQuantity", "topProducts")}


def converged(insts, timeout=30):
    """Every instance's figures, once all are equal (or at the bound)."""
    deadline = time.time() + timeout
    while True:
        got = [figures(s) for s in insts]
        if all(g == got[0] for g in got) or time.time() > deadline:
            return got
        time.sleep(0.1)


def test_idempotency_key_retried_on_another_instance(make_server, cluster,
                                                     pgdb):
    name, url = pgdb
    a, b, c = three(make_server, url)
    key = {"Idempotency-Key": "cluster-1"}
    st, h, first = a.post("/orders", order("idem", 2.5, 2), headers=key)
    assert st == 201, first
    for s in (b, c, a):
        st, h2, again = s.post("/orders", order("idem", 2.5, 2),
                               headers=key)
        assert st == 201 and again == first, (st, again, first)
        assert h2["location"] == h["location"]
        assert h2.get("idempotent-replayed") == "true"
    # Another request under the same key: refused everywhere.
    for s in (a, b, c):
        st, _, e = s.post("/orders", order("other"), headers=key)
        assert st == 422, e
        assert e["error"]["code"] == "idempotency_key_reused"
    assert count(cluster, name) == 1
    assert count(cluster, name, "SELECT count(*) FROM idempotency") == 1
    # The replays stored nothing, so they count nothing: b and c count
    # the one order at most (once the commit feed brings it).
    assert figures(a)["totalOrders"] == 1
    assert figures(b)["totalOrders"] <= 1 and figures(c)["totalOrders"] <= 1
    # README "Running a cluster": at most 3 sessions per instance (psql
    # itself is one more).
    sessions = count(cluster, name, "SELECT count(*) FROM pg_stat_activity "
                     "WHERE datname = '%s'" % name)
    assert sessions <= 3 * 3 + 1, sessions


def test_three_instances_started_at_once_on_a_fresh_database(
        make_server, cluster, pgdb):
    """No instance goes first: all three start together on an empty
    database, each applies what nobody has yet under the migration lock,
    so every migration is recorded once and every instance takes
    orders."""
    name, url = pgdb
    servers = [pg_server(make_server, url, subdir="i%d" % i, start=False)
               for i in range(3)]
    barrier = threading.Barrier(3)

    def start(s):
        barrier.wait(30)
        return s.start()

    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        list(ex.map(start, servers))
    files = sum(len([f for f in os.listdir(os.path.join(
        ROOT, "sql", m, "postgres")) if f.endswith(".sql")])
        for m in ("orders", "analytics")
        if os.path.isdir(os.path.join(ROOT, "sql", m, "postgres")))
    assert count(cluster, name, "SELECT count(*) FROM schema_modules") == \
        files
    assert count(cluster, name, "SELECT count(DISTINCT (module, version)) "
                 "FROM schema_modules") == files
    for i, s in enumerate(servers):
        st, _, body = s.post("/orders", order("fresh%d" % i))
        assert st == 201, body
    assert count(cluster, name) == 3


def test_one_key_racing_on_two_instances(make_server, cluster, pgdb):
    """The same key posted to two instances at once: one order stored;
    both get its answer (or 409 while it is in flight)."""
    name, url = pgdb
    a, b = three(make_server, url, n=2)
    rounds = 20
    barrier = threading.Barrier(2)

    def post(s, i):
        barrier.wait(30)
        return s.post("/orders", order("race%d" % i, 1.5),
                      headers={"Idempotency-Key": "race-%d" % i},
                      timeout=60)

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        for i in range(rounds):
            fa = ex.submit(post, a, i)
            fb = ex.submit(post, b, i)
            answers = [fa.result(), fb.result()]
            ok = [body for st, _, body in answers if st == 201]
            assert ok, answers
            assert all(st in (201, 409) for st, _, _ in answers), answers
            assert all(body == ok[0] for body in ok), answers
            stored = cluster.psql(name, "SELECT id FROM orders WHERE "
                                  "product_id = 'race%d'" % i)
            assert stored == str(ok[0]["id"]), (stored, answers)
    assert count(cluster, name) == rounds
    assert count(cluster, name,
                 "SELECT count(*) FROM idempotency") == rounds


def test_key_stored_elsewhere_while_our_write_waits(make_server, cluster,
                                                    pgdb):
    """The race, made deterministic: another session (another instance)
    holds the key uncommitted when our unit inserts it, so our unit waits
    on it; once that session commits, our unit fails on the key, is
    rolled back whole, and the answer is the other session's."""
    name, url = pgdb
    (a,) = three(make_server, url, n=1)
    body = order("held", 4.25, 2)
    st, _, first = a.post("/orders", body, headers={"Idempotency-Key": "k1"})
    assert st == 201, first
    # The other instance: the same request under key k2, uncommitted.
    other = cluster.session(name)
    try:
        other.stdin.write(b"BEGIN;\nINSERT INTO idempotency SELECT 'k2', "
                          b"request_hash, status, response, location, "
                          b"created_at FROM idempotency WHERE key = 'k1';\n")
        other.stdin.flush()
        deadline = time.time() + 30
        while count(cluster, name, "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = '%s' AND state = 'idle in "
                    "transaction' AND query LIKE 'INSERT INTO "
                    "idempotency%%'" % name) == 0:
            assert time.time() < deadline and other.poll() is None, \
                other.stderr.read()
            time.sleep(0.05)
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            fut = ex.submit(a.post, "/orders", body,
                            headers={"Idempotency-Key": "k2"}, timeout=60)
            deadline = time.time() + 30
            while count(cluster, name, "SELECT count(*) FROM "
                        "pg_stat_activity WHERE datname = '%s' AND "
                        "wait_event_type = 'Lock'" % name) == 0:
                assert time.time() < deadline, "our write never waited"
                assert not fut.done(), fut.result()
                time.sleep(0.05)
            other.stdin.write(b"COMMIT;\n")
            other.stdin.close()
            assert other.wait(30) == 0, other.stderr.read()
            st, h, got = fut.result()
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
    assert st == 201 and got == first, (st, got)
    assert h.get("idempotent-replayed") == "true"
    assert count(cluster, name) == 1
    assert count(cluster, name, "SELECT count(*) FROM idempotency") == 2


def test_database_stopped_then_back(make_server, cluster, pgdb):
    name, url = pgdb
    insts = three(make_server, url)
    for i, s in enumerate(insts):
        st, _, b = s.post("/orders", order("up%d" % i))
        assert st == 201, b
    stored = count(cluster, name)
    memory = [figures(s) for s in insts]
    cluster.stop()
    try:
        for s in insts:
            st, h, body = s.post("/orders", order("down"), timeout=60)
            assert st == 503, body
            assert "retry-after" in h, h
            st, health = wait_health(s, 503, 30)
            assert st == 503 and health["status"] == "degraded", health
            # Reads served from memory keep working, and nothing moves.
            got = figures(s)
            assert got["totalOrders"] >= memory[insts.index(s)][
                "totalOrders"], (got, memory)
            assert figures(s) == got
    finally:
        cluster.start()
    for s in insts:
        st, health = wait_health(s, 200, 60)
        assert st == 200 and health["status"] == "ok", health
    for i, s in enumerate(insts):
        st, _, b = s.post("/orders", order("back%d" % i))
        assert st == 201, b
    assert count(cluster, name) == stored + 3
    assert count(cluster, name, "SELECT count(*) FROM orders WHERE "
                 "product_id = 'down'") == 0


def test_kill9_under_load_loses_no_acknowledged_order(make_server, cluster,
                                                      pgdb):
    """Round-robin load on three instances; one is killed with kill -9
    part-way.  Every 201 is in the database; the others carry on; the
    killed one restarts with the database's figures."""
    name, url = pgdb
    insts = three(make_server, url)
    total, victim = 240, insts[1]
    acked, lock = {}, threading.Lock()
    killed = threading.Event()
    after_kill = []

    def post(i):
        s = insts[i % 3]
        try:
            st, _, b = s.post("/orders", order("k%d" % i, 0.1), timeout=60)
        except OSError:
            return None                 # the victim, gone
        with lock:
            if st == 201:
                acked[i] = b["id"]
                if killed.is_set() and s is not victim:
                    after_kill.append(i)
        return st

    def killer():
        deadline = time.time() + 120
        while len(acked) < total // 4 and time.time() < deadline:
            time.sleep(0.01)
        victim.proc.kill()              # kill -9, under load
        killed.set()

    kt = threading.Thread(target=killer)
    kt.start()
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        answers = list(ex.map(post, range(total)))
    kt.join(150)
    assert killed.is_set()
    victim.proc.wait(30)
    victim.proc = None
    victim.logf.close()
    # The victim's requests in flight were cut; every other one stored.
    assert all(st in (None, 201) for st in answers), answers
    assert after_kill, "the other instances stopped taking orders"

    rows = cluster.psql(name, "SELECT id, product_id FROM orders")
    stored = dict(line.split("|") for line in rows.splitlines())
    for i, oid in acked.items():
        assert stored.get(str(oid)) == "k%d" % i, (i, oid)
    # Nothing beyond the 201s and the answers lost with the victim.
    lost = sum(1 for st in answers if st is None)
    assert len(acked) <= len(stored) <= len(acked) + lost

    victim.start()
    got = figures(victim)
    assert got["totalOrders"] == len(stored), got
    assert got["totalRevenue"] == round(len(stored) * 0.1, 6), got
    # The others converge on the same figures.
    all3 = converged(insts)
    assert all3[0] == all3[1] == all3[2] == got, all3


# -- every instance learns of every order (the commit feed) ----------------

def subscribe_clients(ports, events, n, posts, timeout=60):
    """Connects a client to each port (subscribed to events), then runs
    posts() in a thread; returns each client's newOrder ids once n
    arrived or the time is up."""
    async def client(port, ready, seen):
        async with websockets.connect("ws://127.0.0.1:%d/" % port,
                                      ping_interval=None, open_timeout=10,
                                      close_timeout=5) as ws:
            await ws.send(json.dumps({"type": "subscribe",
                                      "events": events}))
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                if m["type"] == "subscribed":
                    break
            ready.set()
            end = time.time() + timeout
            while len(seen) < n and time.time() < end:
                try:
                    m = json.loads(await asyncio.wait_for(
                        ws.recv(), max(0.1, end - time.time())))
                except asyncio.TimeoutError:
                    break
                if m["type"] == "newOrder":
                    seen.append(m["data"]["id"])
                    # A short extra wait catches duplicates.
                    if len(seen) == n:
                        end = min(end, time.time() + 1)

    async def main():
        seen = [[] for _ in ports]
        ready = [asyncio.Event() for _ in ports]
        tasks = [asyncio.ensure_future(client(p, r, s))
                 for p, r, s in zip(ports, ready, seen)]
        for r in ready:
            await asyncio.wait_for(r.wait(), 30)
        await asyncio.get_running_loop().run_in_executor(None, posts)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout + 30)
        return seen

    return asyncio.run(main())


def test_every_client_sees_every_order_once_in_one_order(make_server,
                                                         cluster, pgdb):
    name, url = pgdb
    insts = three(make_server, url)
    n, acked = 30, []

    def posts():
        i = 0
        deadline = time.time() + 120
        while len(acked) < n and time.time() < deadline:
            st, _, b = insts[i % 3].post("/orders", order("w%d" % i))
            if st == 201:
                acked.append(b["id"])
            i += 1

    seen = subscribe_clients([s.port for s in insts], ["newOrder"], n,
                             posts)
    assert len(acked) == n
    assert [len(got) for got in seen] == [n] * 3, (seen, acked)
    for got in seen:
        assert sorted(got) == sorted(acked), (got, acked)
        assert len(set(got)) == len(got)
    assert seen[0] == seen[1] == seen[2]


def test_analytics_equal_on_every_instance(make_server, cluster, pgdb):
    name, url = pgdb
    insts = three(make_server, url)
    acked = 0
    for i in range(60):
        st, _, b = insts[i % 3].post("/orders", order("a%d" % (i % 7),
                                                      0.1, i % 4 + 1))
        acked += st == 201
    got = converged(insts)
    assert got[0] == got[1] == got[2], got
    assert got[0]["totalOrders"] == acked == count(cluster, name)


# -- the README's load balancer configurations ----------------------------

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

# The main context around the README's block: the one test_proxy uses.
from test_proxy import MAIN as NGINX_MAIN, run_nginx  # noqa: E402


def readme_example(name):
    """The README's block marked `<!-- example: name -->`."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text[text.index("## Running a cluster\n"):]
    found = re.findall(r"^<!-- example: %s -->\n```\w*\n(.*?)^```$"
                       % re.escape(name), section, re.S | re.M)
    assert len(found) == 1, (name, found)
    return found[0]


def public_tmp():
    d = tempfile.mkdtemp(prefix="salesd-lb-")
    os.chmod(d, 0o755)
    return d


def write_nginx_conf(tmp, block):
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_MAIN.format(tmp=tmp, snippet=block))
    return conf


def need(prog):
    if not os.access(prog, os.X_OK):
        pytest.skip("%s is not installed: make test-tools" % prog)


def test_readme_storage_section_is_what_the_tests_run():
    import configparser
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(readme_example("cluster-ini"))
    assert {k: dict(v) for k, v in ini.items() if k != "DEFAULT"} == {
        "storage": {"driver": "postgres", "url": "${DATABASE_URL}"}}
    # pg_server's settings, given to every instance here.
    srv = pg_server(lambda modules, config, env, **kw: config, "x")
    assert srv == {k: dict(v) for k, v in ini.items() if k != "DEFAULT"}


def test_readme_nginx_config_is_valid():
    need(NGINX)
    tmp = public_tmp()
    try:
        conf = write_nginx_conf(tmp, readme_example("cluster-nginx"))
        p = subprocess.run([NGINX, "-t", "-p", tmp, "-e",
                            os.path.join(tmp, "error.log"), "-c", conf],
                           capture_output=True, timeout=60)
        out = (p.stdout + p.stderr).decode()
        assert p.returncode == 0 and "test is successful" in out, out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_readme_haproxy_config_is_valid():
    need(HAPROXY)
    tmp = public_tmp()
    try:
        conf = os.path.join(tmp, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(readme_example("cluster-haproxy"))
        p = subprocess.run([HAPROXY, "-c", "-f", conf],
                           capture_output=True, timeout=60)
        out = (p.stdout + p.stderr).decode()
        assert p.returncode == 0 and "Configuration file is valid" in out, \
            out
        assert "[WARNING]" not in out, out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def start_nginx(tmp, block):
    """nginx (unprivileged) on block; its port, or None if it was taken."""
    prefix, uid, gid = as_user()
    port = free_port()
    block = re.sub(r"listen 80;", "listen 127.0.0.1:%d;" % port, block)
    conf = write_nginx_conf(tmp, block)
    proc = run_nginx(prefix, uid, gid, tmp, conf, port,
                     ("-e", os.path.join(tmp, "error.log")))
    return (proc, port) if proc is not None else (None, None)


def test_nginx_in_front_of_two_instances(make_server, cluster, pgdb):
    """The README's nginx block, its upstream made two instances on
    loopback: a POST, an Idempotency-Key retry (landing on the other
    instance by round robin) and a WebSocket upgrade pass through."""
    need(NGINX)
    name, url = pgdb
    insts = three(make_server, url, n=2)
    block = readme_example("cluster-nginx")
    servers = re.findall(r"^\s*server 10\.0\.0\.\d+:3000 .*;\n", block, re.M)
    assert len(servers) == 3, block
    block = block.replace(servers[0], "".join(
        "    server 127.0.0.1:%d max_fails=2 fail_timeout=5s;\n" % s.port
        for s in insts))
    for line in servers[1:]:
        block = block.replace(line, "")
    tmp = public_tmp()
    proc = None
    try:
        for _ in range(3):
            proc, port = start_nginx(tmp, block)
            if proc is not None:
                break
        assert proc is not None, "nginx found no free port"

        def post(body, headers=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            h = {"Content-Type": "application/json", "Host": "localhost"}
            h.update(headers or {})
            c.request("POST", "/orders", json.dumps(body), h)
            r = c.getresponse()
            data = json.loads(r.read())
            c.close()
            return r.status, data

        key = {"Idempotency-Key": "through-nginx"}
        st, first = post(order("lb", 3.5), key)
        assert st == 201, first
        for _ in range(2):                      # one of them elsewhere
            st, again = post(order("lb", 3.5), key)
            assert st == 201 and again == first, again
        assert count(cluster, name) == 1

        async def ws():
            async with websockets.connect(
                    "ws://127.0.0.1:%d/" % port, ping_interval=None,
                    open_timeout=10, close_timeout=5) as c:
                await c.send(json.dumps({"type": "getAnalytics"}))
                m = json.loads(await asyncio.wait_for(c.recv(), 10))
                assert m["type"] == "updateAnalytics", m
                return m["data"]
        data = asyncio.run(ws())
        assert "totalOrders" in data, data
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
