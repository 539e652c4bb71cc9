"""[storage] driver = postgres against a real, throwaway PostgreSQL
(tests/e2e/pg.py).
"""
import glob
import os
import re
import subprocess

import pytest

from conftest import BUILD, ROOT, SALESD, Server
# DRIVER and Cluster: test_feed.py imports them from here.
from pg import (DRIVER, Cluster, cluster, pg_server, pgdb,  # noqa: F401
                wait_health)

PG_ORDERS_MIGRATIONS = glob.glob(os.path.join(ROOT, "sql", "orders",
                                              "postgres", "[0-9]*.sql"))


def ids(body):
    return [o["id"] for o in body["orders"]]


def test_orders_analytics_idempotency_restart(make_server, cluster, pgdb):
    name, url = pgdb
    s = pg_server(make_server, url)
    st, h, body = s.get("/health")
    assert st == 200 and body["storage"]["driver"] == "postgres", body

    st, h, one = s.post("/orders", {"product_id": "101", "quantity": 2,
                                    "price": 25.5,
                                    "date": "2025-04-22T10:00:00Z"})
    assert st == 201, one
    assert h["location"] == "/orders/%d" % one["id"]
    assert one["product_id"] == "101" and one["price"] == 25.5
    batch = [{"product_id": "p%d" % (i % 3), "quantity": 1, "price": 0.1}
             for i in range(30)]
    st, _, many = s.post("/orders", batch)
    assert st == 201, many
    assert len(many["orders"]) == 30

    # Idempotency: the retry gets the first answer, nothing new stored.
    key = {"Idempotency-Key": "k-1"}
    st1, h1, b1 = s.post("/orders", {"product_id": "9", "quantity": 1,
                                     "price": 1}, headers=key)
    st2, h2, b2 = s.post("/orders", {"product_id": "9", "quantity": 1,
                                     "price": 1}, headers=key)
    assert st1 == 201 and st2 == 201 and b1 == b2, (b1, b2)
    assert cluster.psql(name, "SELECT count(*) FROM orders") == "32"
    assert cluster.psql(name, "SELECT count(*) FROM idempotency") == "1"

    st, _, page = s.get("/orders?limit=5")
    assert st == 200 and len(page["orders"]) == 5
    assert ids(page) == sorted(ids(page), reverse=True)
    assert page["orders"][0]["id"] == b1["id"]
    st, _, got = s.get("/orders/%d" % one["id"])
    assert st == 200 and got == one
    st, _, p0 = s.get("/orders?product_id=p0&limit=100")
    assert st == 200 and len(p0["orders"]) == 10
    assert s.get("/orders/999999")[0] == 404

    def figures():
        st, _, a = s.get("/analytics?top=10")
        assert st == 200, a
        return a

    a = figures()
    # 51 + 30 x 0.1 + 1, exactly.
    assert a["totalRevenue"] == 55.0 and a["totalOrders"] == 32, a
    assert a["totalQuantity"] == 33
    tops = {p["product_id"]: p for p in a["topProducts"]}
    assert tops["101"]["revenue"] == 51.0 and tops["p0"]["revenue"] == 1.0
    assert cluster.psql(name, "SELECT revenue_units, revenue_micros FROM "
                        "product_totals WHERE product_id = 'p1'") == "1|0"

    # A restart keeps everything and rebuilds the same figures.
    before = s.get("/orders?limit=1000")[2]
    assert s.stop() == 0
    s.start()
    assert s.get("/orders?limit=1000")[2] == before
    b = figures()
    for k in ("totalRevenue", "totalOrders", "totalQuantity", "topProducts"):
        assert b[k] == a[k], (k, a, b)
    st, _, r = s.post("/orders", {"product_id": "9", "quantity": 1,
                                  "price": 1}, headers=key)
    assert r == b1
    st, _, nxt = s.post("/orders", {"product_id": "x", "quantity": 1,
                                    "price": 2})
    assert st == 201 and nxt["id"] > b1["id"]
    # Migrations ran once, recorded like the embedded driver's.
    assert cluster.psql(name, "SELECT string_agg(module || ':' || "
                        "version, ',' ORDER BY version) FROM "
                        "schema_modules") == ",".join(
        "orders:%d" % (i + 1) for i in range(len(PG_ORDERS_MIGRATIONS)))


def test_bad_orders_change_nothing(make_server, cluster, pgdb):
    name, url = pgdb
    s = pg_server(make_server, url)
    for bad in ({"product_id": "", "quantity": 1, "price": 1},
                [{"product_id": "a", "quantity": 1, "price": 1},
                 {"product_id": "b", "quantity": 0, "price": 1}]):
        st, _, body = s.post("/orders", bad)
        assert st == 400, body
    assert cluster.psql(name, "SELECT count(*) FROM orders") == "0"


def test_embedded_default_loads_no_client_library(make_server):
    s = make_server(["orders"])
    with open("/proc/%d/maps" % s.proc.pid) as f:
        maps = f.read()
    assert "/libpq.so" not in maps and "/drivers/postgres.so" not in maps


def test_postgres_loads_libpq(make_server, cluster, pgdb):
    s = pg_server(make_server, pgdb[1], modules=("orders",))
    with open("/proc/%d/maps" % s.proc.pid) as f:
        maps = f.read()
    assert "/libpq.so" in maps and "/drivers/postgres.so" in maps


def run_salesd(tmp_path, sub, storage, env=None, args=()):
    """Runs salesd on a config to its end: (exit code, output)."""
    d = tmp_path / sub
    d.mkdir()
    s = Server(d, ["orders", "analytics"], {"storage": storage}, env)
    p = subprocess.run([SALESD, "-c", s.config] + list(args),
                       capture_output=True, timeout=60, cwd=s.tmpdir,
                       env=s.env)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def test_check_changes_nothing(tmp_path, cluster, pgdb):
    name, url = pgdb
    rc, out = run_salesd(tmp_path, "check", {"driver": "postgres",
                                             "url": url}, args=["--check"])
    assert rc == 0, out
    assert "reachable" in out and "%d migration(s) pending" % len(
        PG_ORDERS_MIGRATIONS) in out, out
    assert cluster.psql(name, "SELECT count(*) FROM pg_tables WHERE "
                        "schemaname NOT IN ('pg_catalog', "
                        "'information_schema')") == "0"
    assert cluster.psql(name, "SELECT count(*) FROM pg_namespace WHERE "
                        "nspname LIKE 'salesd_check%'") == "0"


@pytest.mark.parametrize("storage,message", [
    ({"driver": "postgres"}, r"\[storage\] url is not set"),
    ({"driver": "postgres", "url": "${DATABASE_URL}"},
     r"\[storage\] url is not set"),
    ({"driver": "postgres", "url": "postgresql://salesd@127.0.0.1:1/x"},
     r"cannot connect to PostgreSQL \(\[storage\] url\)"),
    ({"driver": "oracle"}, r'storage driver "oracle": cannot load .*'
     r'oracle\.so.*; install the salesd-oracle package \(from source: '
     r'build the driver, with its client library installed\)$'),
    # A driver given by path is no package's: the build hint alone.
    ({"driver": "/nonexistent/oracle.so"}, r'cannot load '
     r'"/nonexistent/oracle\.so": .*; is it built \(and its client '
     r'library installed\)\?$'),
    ({"driver": "Bad-Name"}, r"a name is \[a-z0-9_\]\+"),
    ({"driver": os.path.join(BUILD, "modules", "orders.so")},
     r"is not a storage driver \(no sales_store_driver_init\)"),
])
def test_unusable_configs_stop_startup(tmp_path, storage, message):
    env = {"DATABASE_URL": ""}
    rc, out = run_salesd(tmp_path, "bad", storage, env)
    assert rc == 1 and re.search(message, out), out
    assert "listening" not in out


def test_concurrent_posts_share_commits(make_server, cluster, pgdb):
    """Group commit on PostgreSQL: many clients at once, every 201 stored,
    money exact."""
    import concurrent.futures
    name, url = pgdb
    s = pg_server(make_server, url)

    def post(i):
        return s.post("/orders", {"product_id": "c%d" % (i % 7),
                                  "quantity": 1, "price": 0.1}, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        answers = list(ex.map(post, range(200)))
    assert all(st == 201 for st, _, _ in answers), answers[:3]
    # Prepared once on the writer's connection, executed for each order.
    log = [line for line in cluster.server_log().splitlines()
           if line.startswith("db=%s " % name)]
    insert = r"(parse|execute) (s\d+): INSERT INTO orders\("
    found = [m.groups() for m in map(re.compile(insert).search, log) if m]
    assert [g for g in found if g[0] == "parse"] == [("parse", found[0][1])]
    assert len(found) == 201, found[:3]
    got = {b["id"] for _, _, b in answers}
    assert len(got) == 200
    assert cluster.psql(name, "SELECT count(*) FROM orders") == "200"
    st, _, a = s.get("/analytics")
    assert a["totalOrders"] == 200 and a["totalRevenue"] == 20.0, a
    st, _, m = s.get("/metrics")
    units = re.search(rb"^salesd_storage_units_total (\S+)$", m, re.M)
    commits = re.search(rb"^salesd_storage_commits_total (\S+)$", m, re.M)
    assert float(units.group(1)) >= 200
    assert 1 <= float(commits.group(1)) <= float(units.group(1))


def test_kill9_keeps_every_acknowledged_order(make_server, cluster, pgdb):
    name, url = pgdb
    s = pg_server(make_server, url)
    acked = []
    for i in range(40):
        st, _, b = s.post("/orders", {"product_id": "k", "quantity": 1,
                                      "price": 1.25})
        assert st == 201
        acked.append(b["id"])
    assert s.kill9() == -9
    s.start()
    st, _, page = s.get("/orders?limit=1000")
    assert set(acked) <= set(ids(page))
    st, _, a = s.get("/analytics")
    assert a["totalOrders"] == 40 and a["totalRevenue"] == 50.0, a


def test_database_restart_is_a_fault_that_heals(make_server, cluster, pgdb):
    name, url = pgdb
    s = pg_server(make_server, url)
    assert s.post("/orders", {"product_id": "r", "quantity": 1,
                              "price": 1})[0] == 201
    cluster.stop()
    try:
        st, h, body = s.post("/orders", {"product_id": "r", "quantity": 1,
                                         "price": 1}, timeout=60)
        assert st == 503, body
        st, health = wait_health(s, 503, 30)
        assert st == 503 and health["status"] == "degraded", health
        # Reads served from memory keep working.
        assert s.get("/analytics")[0] == 200
    finally:
        cluster.start()
    st, health = wait_health(s, 200, 60)
    assert st == 200, health
    st, _, b = s.post("/orders", {"product_id": "r", "quantity": 1,
                                  "price": 1})
    assert st == 201, b
    assert cluster.psql(name, "SELECT count(*) FROM orders") == "2"
    s.wait_log(r"connected again")


def test_every_shipped_module_runs_on_postgres(make_server, cluster, pgdb):
    name, url = pgdb
    s = pg_server(make_server, url, modules=(
        "orders", "analytics", "weather", "ai_recommend", "dashboard"),
        env={"WEATHER_API_KEY": "", "OPENAI_API_KEY": ""})
    st, _, b = s.post("/orders", {"product_id": "tea", "quantity": 3,
                                  "price": 2.5})
    assert st == 201, b
    st, _, r = s.get("/recommendations")
    assert st == 200 and r["source"] == "fallback", r
    assert s.get("/promotions")[0] == 200
    st, _, h = s.get("/health")
    assert st == 200 and len(h["modules"]) == 5, h


def test_migrate_data_keeps_history(make_server, cluster, pgdb, tmp_path):
    """salesd migrate-data: an SQLite database into an empty PostgreSQL
    one, verified; the server on PostgreSQL then answers as before."""
    name, url = pgdb
    lite = make_server(["orders", "analytics"], subdir="lite")
    key = {"Idempotency-Key": "m-1"}
    first = lite.post("/orders", {"product_id": "m", "quantity": 3,
                                  "price": 0.1}, headers=key)[2]
    for i in range(25):
        st, _, b = lite.post("/orders", [
            {"product_id": "p%d" % (i % 4), "quantity": i + 1,
             "price": 19.99, "date": "2025-04-22T10:00:00Z"},
            {"product_id": "é%d" % i, "quantity": 1, "price": 1000000000}])
        assert st == 201, b
    orders = lite.get("/orders?limit=1000")[2]
    figures = lite.get("/analytics?top=100")[2]
    assert lite.stop() == 0

    s = pg_server(make_server, url, start=False, subdir="pg")

    def migrate(path):
        p = subprocess.run([SALESD, "-c", s.config, "migrate-data", path],
                           capture_output=True, timeout=120, cwd=s.tmpdir,
                           env=s.env)
        return p.returncode, (p.stdout + p.stderr).decode()

    rc, out = migrate(lite.db)
    assert rc == 0, out
    assert re.search(r'table "orders": 51 rows copied; counts and sums '
                     r'match', out), out
    assert 'table "idempotency": 1 rows' in out
    assert cluster.psql(name, "SELECT count(*) FROM orders") == "51"

    s.start()
    assert s.get("/orders?limit=1000")[2] == orders
    got = s.get("/analytics?top=100")[2]
    for k in ("totalRevenue", "totalOrders", "totalQuantity", "topProducts"):
        assert got[k] == figures[k], (k, got[k], figures[k])
    assert s.post("/orders", {"product_id": "m", "quantity": 3,
                              "price": 0.1}, headers=key)[2] == first
    st, _, nxt = s.post("/orders", {"product_id": "n", "quantity": 1,
                                    "price": 1})
    assert st == 201 and nxt["id"] == orders["orders"][0]["id"] + 1
    assert s.stop() == 0

    # Into a database that has rows: refused, nothing changes.
    rc, out = migrate(lite.db)
    assert rc == 1 and "is not empty" in out, out
    assert cluster.psql(name, "SELECT count(*) FROM orders") == "52"
    rc, out = migrate(str(tmp_path / "nosuch.db"))
    assert rc == 1 and "nosuch.db" in out, out


def test_readme_command_line_is_the_help():
    """README's "The command line" block is what --help prints."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    block = re.search(r"### The command line\n\n```\n(.*?)```", text,
                      re.S).group(1)
    out = subprocess.run([SALESD, "--help"], capture_output=True,
                         timeout=10).stdout.decode()
    for line in block.strip().splitlines():
        assert re.sub(r"^\s*(usage: )?", "", line) in out, (line, out)


def test_idle_server_reconnects_before_the_next_order(make_server, cluster,
                                                       pgdb):
    """A database restart while salesd is idle: the writer's idle look
    finds the lost session and reconnects, so no client sees a 503."""
    name, url = pgdb
    s = pg_server(make_server, url)
    assert s.post("/orders", {"product_id": "i", "quantity": 1,
                              "price": 1})[0] == 201
    cluster.stop()
    cluster.start()
    # The writer's own reconnect: the reader's may come first (a /health
    # look), and an order sent then would meet the writer's dead session.
    s.wait_log(r"store: database .* connected again \(writer\)",
               timeout=60)
    st, _, b = s.post("/orders", {"product_id": "i", "quantity": 1,
                                  "price": 1})
    assert st == 201, b
    assert s.get("/orders?limit=5")[0] == 200
    assert cluster.psql(name, "SELECT count(*) FROM orders") == "2"


def test_failing_unit_in_a_pipelined_group_fails_alone(make_server,
                                                       cluster, pgdb):
    """A group's statements go to PostgreSQL as one pipeline, which an
    error aborts whole: the group is rolled back and run again with a
    savepoint per unit, so the failing unit (an Idempotency-Key another
    session stored meanwhile: a replay) fails alone and the others of
    its group commit, ids in commit order."""
    import concurrent.futures
    import time
    name, url = pgdb
    s = pg_server(make_server, url)
    body = {"product_id": "held", "quantity": 2, "price": 4.25}
    st, _, first = s.post("/orders", body, headers={"Idempotency-Key": "k1"})
    assert st == 201, first
    # Another session: the cluster's commit lock (our writer waits on it)
    # and the same request under key k2, both uncommitted.
    other = cluster.session(name)

    def pending():
        _, _, m = s.get("/metrics")
        return float(re.search(rb"^salesd_storage_pending (\S+)$", m,
                               re.M).group(1))

    try:
        other.stdin.write(b"BEGIN;\nSELECT pg_advisory_xact_lock("
                          b"8314892176479268212);\nINSERT INTO idempotency "
                          b"SELECT 'k2', request_hash, status, response, "
                          b"location, created_at FROM idempotency WHERE "
                          b"key = 'k1';\n")
        other.stdin.flush()
        deadline = time.time() + 30
        while cluster.psql(name, "SELECT count(*) FROM pg_stat_activity "
                           "WHERE datname = '%s' AND state = 'idle in "
                           "transaction'" % name) == "0":
            assert time.time() < deadline and other.poll() is None, \
                other.stderr.read()
            time.sleep(0.05)
        with concurrent.futures.ThreadPoolExecutor(7) as ex:
            # The writer takes o0 and waits for the lock; the rest queue
            # and become the next group, k2 among them.
            futs = [ex.submit(s.post, "/orders",
                              {"product_id": "o0", "quantity": 1,
                               "price": 1.5}, timeout=60)]
            deadline = time.time() + 30
            while pending() < 1:
                assert time.time() < deadline
                time.sleep(0.05)
            futs += [ex.submit(s.post, "/orders",
                               {"product_id": "o%d" % i, "quantity": 1,
                                "price": 1.5}, timeout=60)
                     for i in range(1, 6)]
            futs.append(ex.submit(s.post, "/orders", body,
                                  headers={"Idempotency-Key": "k2"},
                                  timeout=60))
            while pending() != 7:
                assert time.time() < deadline, pending()
                assert not any(f.done() for f in futs)
                time.sleep(0.05)
            other.stdin.write(b"COMMIT;\n")
            other.stdin.close()
            assert other.wait(30) == 0, other.stderr.read()
            answers = [f.result() for f in futs]
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
    st, h, got = answers[-1]
    assert st == 201 and got == first, (st, got)
    assert h.get("idempotent-replayed") == "true"
    assert all(a[0] == 201 for a in answers[:-1]), answers
    o0 = answers[0][2]["id"]
    rest = sorted(a[2]["id"] for a in answers[1:-1])
    assert len(set(rest)) == 5 and min(rest) > o0, (o0, rest)
    assert cluster.psql(name, "SELECT count(*) FROM orders") == "7"
    assert cluster.psql(name, "SELECT count(*) FROM idempotency") == "2"
