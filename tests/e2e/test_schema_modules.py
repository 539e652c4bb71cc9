"""Schema per module: each module's migrations are applied, and recorded
as (module, version, name), only when it is loaded; a module loaded by
path brings its own; a database made by the layout before (one sql/
folder, recorded in schema_migrations) upgrades in place, nothing lost
and nothing applied twice; --check says what it would apply per module."""
import os
import sqlite3
import subprocess

from conftest import ROOT, SALESD

MODULES = ["orders", "analytics"]
OLD_FILES = ["001_orders.sql", "002_orders_product_scan.sql"]
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
    assert "applied migration" not in log, log
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
                "schema_modules ORDER BY version") == [
        ("orders", 1, OLD_FILES[0], "2026-01-02T03:04:05.000Z"),
        ("orders", 2, OLD_FILES[1], "2026-01-02T03:04:05.000Z")]
    assert len(rows(old.db, "SELECT * FROM schema_migrations")) == 2

    # A second start applies and records nothing more.
    old.start()
    assert old.stop() == 0
    assert len(rows(old.db, "SELECT * FROM schema_modules")) == 2


def test_only_loaded_modules_get_their_tables(make_server):
    srv = make_server(["dashboard"])
    assert srv.stop() == 0
    assert rows(srv.db, "SELECT name FROM sqlite_master WHERE name IN "
                "('orders', 'schema_modules')") == []
    srv.write_config({"modules": {"load": "orders"}})
    srv.start()
    assert srv.stop() == 0
    assert rows(srv.db, "SELECT module, version FROM schema_modules "
                "ORDER BY version") == [("orders", 1), ("orders", 2)]


def write_sql(d, name, text):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "w") as f:
        f.write(text)


def test_module_by_path_brings_its_own_migrations(make_server, tmp_path):
    # A module loaded by path: its migrations are <name>.sql/ beside it,
    # numbered on their own (001 again, beside orders' 001).
    ext = tmp_path / "ext"
    ext.mkdir()
    so = os.path.join(os.path.dirname(SALESD), "test-modules", "echo.so")
    os.symlink(so, str(ext / "echo.so"))
    write_sql(str(ext / "echo.sql"), "001_echo.sql",
              "CREATE TABLE echo_log (id INTEGER PRIMARY KEY, msg TEXT);\n")
    srv = make_server(["orders"], start=False)
    srv.write_config({"modules": {"load": "orders %s" % (ext / "echo.so")}})
    srv.start()
    assert srv.stop() == 0
    assert rows(srv.db, "SELECT module, version, name FROM schema_modules "
                "ORDER BY module, version") == [
        ("echo", 1, "001_echo.sql"), ("orders", 1, OLD_FILES[0]),
        ("orders", 2, OLD_FILES[1])]
    assert rows(srv.db, "SELECT count(*) FROM echo_log") == [(0,)]

    # --check says what it would apply, per module, and changes nothing.
    write_sql(str(ext / "echo.sql"), "002_more.sql",
              "ALTER TABLE echo_log ADD COLUMN at INTEGER;\n")
    before = os.stat(srv.db).st_mtime_ns
    p = subprocess.run([SALESD, "-c", srv.config, "--check"],
                       capture_output=True, timeout=30, cwd=srv.tmpdir)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, out
    assert 'module "orders": schema up to date (2 migration(s)' in out, out
    assert 'module "echo": 1 migration(s) pending, would be applied' in out
    assert os.stat(srv.db).st_mtime_ns == before
    assert len(rows(srv.db, "SELECT * FROM schema_modules")) == 3

    # A broken migration stops the start, naming module and file.
    write_sql(str(ext / "echo.sql"), "003_bad.sql", "CREATE TABLE (;\n")
    try:
        srv.start()
    except RuntimeError:
        pass
    assert srv.stop() != 0
    log = srv.log()
    assert "003_bad.sql" in log and 'module "echo"' in log, log
