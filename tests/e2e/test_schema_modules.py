"""Schema per module: each module's migrations are applied, and recorded
as (module, version, name), only when it is loaded; a module loaded by
path brings its own; a database made by the layout before (one sql/
folder, recorded in schema_migrations) upgrades in place, nothing lost
and nothing applied twice, and so does one made by main before orders
published its views; --check says what it would apply per module."""
import os
import shutil
import sqlite3
import subprocess

from conftest import ROOT, SALESD, sqlite_only

MODULES = ["orders", "analytics"]
# What main shipped before orders' public views (003), and what it has now.
OLD_FILES = ["001_orders.sql", "002_orders_product_scan.sql"]
ORDERS_FILES = sorted(f for f in os.listdir(os.path.join(ROOT, "sql",
                                                         "orders"))
                      if f.endswith(".sql"))
NEW_FILES = ORDERS_FILES[len(OLD_FILES):]
ORDERS = [{"product_id": "p1", "quantity": 2, "price": 25.5},
          {"product_id": "p2", "quantity": 1, "price": 0.1},
          {"product_id": "p1", "quantity": 3, "price": 10}]


def old_layout_db(path):
    """Replays today's sql files exactly as the store did before modules
    owned migrations: one folder, each file in its own transaction,
    recorded in schema_migrations(version, name, applied_at)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version "
               "INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT "
               "NOT NULL)")
    for name in OLD_FILES:
        with open(os.path.join(ROOT, "sql", "orders", name)) as f:
            text = f.read()
        db.executescript("BEGIN IMMEDIATE;\n" + text + "\n")
        db.execute("INSERT INTO schema_migrations(version, name, applied_at)"
                   " VALUES (?, ?, '2026-01-02T03:04:05.000Z')",
                   (int(name[:3]), name))
        db.execute("COMMIT")
    return db


def rows(path, sql):
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


# SQLite only: the one-folder layout before modules owned migrations
# never had a PostgreSQL driver.
@sqlite_only
def test_old_database_upgrades_in_place(make_server):
    # What a server writes (orders, totals, an idempotency record), made
    # by a scratch server, then carried into a database of the old layout.
    scratch = make_server(MODULES, subdir="scratch")
    posted = []
    for i, o in enumerate(ORDERS):
        st, _, body = scratch.post("/orders", o,
                                   headers={"Idempotency-Key": "k%d" % i})
        assert st == 201, body
        posted.append(body)
    assert scratch.stop() == 0

    old = make_server(MODULES, start=False, subdir="old")
    db = old_layout_db(old.db)
    db.execute("ATTACH ? AS s", (scratch.db,))
    db.execute("BEGIN")
    for t in ("orders", "idempotency"):
        db.execute("INSERT INTO %s SELECT * FROM s.%s" % (t, t))
    db.execute("COMMIT")
    db.execute("DETACH s")
    db.close()
    totals = rows(old.db, "SELECT * FROM product_totals ORDER BY 1")
    assert totals == rows(scratch.db, "SELECT * FROM product_totals "
                          "ORDER BY 1")

    old.start()
    log = old.log()
    applied = [ln for ln in log.splitlines() if "applied migration" in ln]
    assert len(applied) == len(NEW_FILES), log
    for ln, name in zip(applied, NEW_FILES):
        assert name in ln, log
    for name in OLD_FILES:
        assert 'module "orders": migration "%s" was applied before' \
            % name in log, log
    for i, o in enumerate(ORDERS):
        st, _, again = old.post("/orders", o,
                                headers={"Idempotency-Key": "k%d" % i})
        assert st == 201 and again == posted[i]
        assert old.get("/orders/%d" % posted[i]["id"])[2] == posted[i]
    st, _, a = old.get("/analytics")
    assert st == 200 and a["totalQuantity"] == 6
    assert a["topProducts"][0]["product_id"] == "p1"
    assert old.stop() == 0
    # Nothing stored twice, totals as they were, both bookkeepings kept.
    assert rows(old.db, "SELECT count(*) FROM orders") == [(3,)]
    assert rows(old.db, "SELECT * FROM product_totals ORDER BY 1") == totals
    assert rows(old.db, "SELECT module, version, name, applied_at FROM "
                "schema_modules WHERE version <= 2 ORDER BY version") == [
        ("orders", 1, OLD_FILES[0], "2026-01-02T03:04:05.000Z"),
        ("orders", 2, OLD_FILES[1], "2026-01-02T03:04:05.000Z")]
    assert rows(old.db, "SELECT name FROM schema_modules ORDER BY "
                "version") == [(f,) for f in ORDERS_FILES]
    assert len(rows(old.db, "SELECT * FROM schema_migrations")) == 2

    # A second start applies and records nothing more.
    old.start()
    assert old.stop() == 0
    assert len(rows(old.db, "SELECT * FROM schema_modules")) == \
        len(ORDERS_FILES)


# SQLite only: the PostgreSQL driver came after orders' views.
@sqlite_only
def test_database_of_main_before_views_upgrades(make_server, tmp_path):
    """A database that main made before orders published orders_v1 and
    product_totals_v1 (its migrations were 001 and 002, recorded per
    module) gets the views on the next start, nothing else changes, and
    analytics, which reads only the views, rebuilds the same figures."""
    old_sql = tmp_path / "old-sql" / "orders"
    old_sql.mkdir(parents=True)
    for name in OLD_FILES:
        shutil.copy(os.path.join(ROOT, "sql", "orders", name), str(old_sql))
    old_cfg = {"storage": {"migrations": str(tmp_path / "old-sql")}}
    srv = make_server(["orders"], config=old_cfg)
    posted = []
    for o in ORDERS:
        st, _, body = srv.post("/orders", o)
        assert st == 201, body
        posted.append(body)
    # What a tool of the seed's writes: no price_micros, no received_at.
    db = sqlite3.connect(srv.db)
    db.execute("INSERT INTO orders(product_id, quantity, price) "
               "VALUES ('p3', 4, 0.3)")
    db.commit()
    db.close()
    assert srv.stop() == 0
    assert rows(srv.db, "SELECT name FROM sqlite_master WHERE type = "
                "'view'") == []
    tables = rows(srv.db, "SELECT * FROM orders ORDER BY id")
    totals = rows(srv.db, "SELECT * FROM product_totals ORDER BY 1")

    srv.write_config({"modules": {"load": " ".join(MODULES)},
                      "storage": {"migrations": os.path.join(ROOT, "sql")}})
    before = len(srv.log())
    srv.start()
    log = srv.log()[before:]
    applied = [ln for ln in log.splitlines() if "applied migration" in ln]
    assert [n for n in NEW_FILES if any(n in ln for ln in applied)] == \
        NEW_FILES and len(applied) == len(NEW_FILES), log
    st, _, a = srv.get("/analytics")
    assert st == 200, a
    assert a["totalOrders"] == 4 and a["totalQuantity"] == 10
    assert a["totalRevenue"] == 82.3
    assert [p["product_id"] for p in a["topProducts"]] == ["p1", "p3",
                                                           "p2"]
    for body in posted:
        assert srv.get("/orders/%d" % body["id"])[2] == body
    assert srv.stop() == 0
    assert rows(srv.db, "SELECT * FROM orders ORDER BY id") == tables
    assert rows(srv.db, "SELECT * FROM product_totals ORDER BY 1") == totals
    assert rows(srv.db, "SELECT module, version FROM schema_modules ORDER "
                "BY version") == [("orders", i + 1)
                                  for i in range(len(ORDERS_FILES))]


def test_only_loaded_modules_get_their_tables(make_server):
    srv = make_server(["dashboard"])
    assert srv.stop() == 0
    assert tables(srv, "'orders', 'schema_modules'") == []
    srv.write_config({"modules": {"load": "orders"}})
    srv.start()
    assert srv.stop() == 0
    assert srv.sql("SELECT module, version FROM schema_modules "
                   "ORDER BY version") == [("orders", i + 1)
                                           for i in range(len(ORDERS_FILES))]


def tables(srv, names):
    """Which of names (an SQL list) are tables of srv's database."""
    if srv.pg_db is None:
        return srv.sql("SELECT name FROM sqlite_master WHERE name IN (%s)"
                       % names)
    return srv.sql("SELECT table_name FROM information_schema.tables WHERE "
                   "table_schema = current_schema() AND table_name IN (%s)"
                   % names)


def write_sql(d, name, text):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "w") as f:
        f.write(text)


def test_module_by_path_brings_its_own_migrations(make_server, tmp_path):
    # A module loaded by path: its migrations are <name>.sql/ beside it,
    # numbered on their own (001 again, beside orders' 001); PostgreSQL's
    # in its postgres/ folder, as orders' are.
    ext = tmp_path / "ext"
    ext.mkdir()
    so = os.path.join(os.path.dirname(SALESD), "test-modules", "echo.so")
    os.symlink(so, str(ext / "echo.so"))
    srv = make_server(["orders"], start=False)
    mig = str(ext / "echo.sql")
    if srv.pg_db is not None:
        write_sql(mig, "001_echo.sql", "-- SQLite's; see postgres/\n")
        mig = os.path.join(mig, "postgres")
    write_sql(mig, "001_echo.sql",
              "CREATE TABLE echo_log (id BIGINT PRIMARY KEY, msg TEXT);\n")
    srv.write_config({"modules": {"load": "orders %s" % (ext / "echo.so")}})
    srv.start()
    assert srv.stop() == 0
    assert srv.sql("SELECT module, version, name FROM schema_modules "
                   "ORDER BY module, version") == [
        ("echo", 1, "001_echo.sql")] + [
        ("orders", i + 1, f) for i, f in enumerate(ORDERS_FILES)]
    assert srv.sql("SELECT count(*) AS n FROM echo_log") == [(0,)]

    # --check says what it would apply, per module, and changes nothing.
    write_sql(mig, "002_more.sql",
              "ALTER TABLE echo_log ADD COLUMN at BIGINT;\n")
    if srv.pg_db is None:
        before = os.stat(srv.db).st_mtime_ns
    p = subprocess.run([SALESD, "-c", srv.config, "--check"],
                       capture_output=True, timeout=30, cwd=srv.tmpdir)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, out
    assert 'module "orders": schema up to date (%d migration(s)' \
        % len(ORDERS_FILES) in out, out
    assert 'module "echo": 1 migration(s) pending, would be applied' in out
    if srv.pg_db is None:
        assert os.stat(srv.db).st_mtime_ns == before
    assert len(srv.sql("SELECT * FROM schema_modules")) == \
        1 + len(ORDERS_FILES)

    # A broken migration stops the start, naming module and file.
    write_sql(mig, "003_bad.sql", "CREATE TABLE (;\n")
    try:
        srv.start()
    except RuntimeError:
        pass
    assert srv.stop() != 0
    log = srv.log()
    assert "003_bad.sql" in log and 'module "echo"' in log, log


def test_a_missing_migrations_folder_stops_start_up(tmp_path):
    # Not "no migrations" and a missing table later: the folder is named.
    from conftest import run_check
    rc, out = run_check(str(tmp_path), ["orders"], {
        "storage": {"migrations": "no/such/sql"}})
    assert rc != 0, out
    assert 'migrations "%s": not a folder' % os.path.join(
        str(tmp_path), "no", "such", "sql") in out, out
