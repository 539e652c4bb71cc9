"""Storage as a second process sees it: the `sqlite3` shell (Debian's
sqlite3 package), or on PostgreSQL `psql`, opens the live database and
finds the seed's orders table and the committed rows, while the server
keeps running."""
import subprocess

from conftest import pg_cluster, postgres_only, sqlite_only

ORDER = {"product_id": "101", "quantity": 2, "price": 25.50,
         "date": "2025-04-22T10:00:00Z"}


def sqlite_shell(db, sql):
    p = subprocess.run(["sqlite3", "-readonly", db, sql], capture_output=True,
                       timeout=30, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@sqlite_only
def test_sqlite_shell_sees_seed_table(make_server):
    s = make_server(["orders"])
    st, _, order = s.post("/orders", ORDER)
    assert st == 201
    schema = sqlite_shell(s.db, ".schema orders")
    for col in ("id", "product_id", "quantity", "price", "date"):
        assert col in schema
    rows = sqlite_shell(s.db, "select id, product_id, quantity, price, date from orders")
    assert rows == "%d|101|2|25.5|2025-04-22T10:00:00Z" % order["id"]
    assert sqlite_shell(s.db, "pragma journal_mode") == "wal"
    # The server still answers after another process read the file.
    assert s.get("/orders/%d" % order["id"])[0] == 200


@postgres_only
def test_psql_sees_seed_table(make_server):
    s = make_server(["orders"])
    st, _, order = s.post("/orders", ORDER)
    assert st == 201
    pg = pg_cluster()
    cols = pg.psql(s.pg_db, "SELECT column_name FROM information_schema."
                   "columns WHERE table_schema = current_schema() AND "
                   "table_name = 'orders'").split()
    for col in ("id", "product_id", "quantity", "price", "date"):
        assert col in cols
    rows = pg.psql(s.pg_db, "SELECT id, product_id, quantity, price, date "
                   "FROM orders")
    assert rows == "%d|101|2|25.5|2025-04-22T10:00:00Z" % order["id"]
    # The server still answers after another session read the table.
    assert s.get("/orders/%d" % order["id"])[0] == 200
