"""The orders module's public interface (docs/MODULES.md): the views
orders_v1 and product_totals_v1 have exactly the documented columns and
exact money; and analytics reads orders through them and nothing else.

The second is checked on the real SQL: every string literal of
modules/analytics, after the C preprocessor (so macros are expanded and
adjacent literals joined as the compiler joins them), that is an SQL
statement runs against a database made by orders' migrations under an
SQLite authorizer, which names the view behind every read of a table.
A read of an orders table that no published view is responsible for
fails the test, as does a statement that does not run."""
import glob
import os
import re
import sqlite3
import subprocess

from conftest import ROOT, postgres_only, sqlite_only

DOC = os.path.join(ROOT, "docs", "MODULES.md")
SECTION = "### The orders module's public interface"
SQLITE_READ = 20


def documented_views():
    """{view: [columns]} from the tables of the doc's interface section."""
    with open(DOC) as f:
        text = f.read()
    assert SECTION in text
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    views, cur = {}, None
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            cur = None
        elif cells[0].startswith("`") and cells[1] == "type":
            cur = views.setdefault(cells[0].strip("`"), [])
        elif cur is not None and cells[0].startswith("`"):
            cur.append(cells[0].strip("`"))
    assert set(views) == {"orders_v1", "product_totals_v1"}, views
    return views


def orders_db(path):
    db = sqlite3.connect(path)
    for f in sorted(glob.glob(os.path.join(ROOT, "sql", "orders",
                                           "*.sql"))):
        with open(f) as sql:
            db.executescript(sql.read())
    return db


def c_literals(text):
    """The string literals of preprocessed C, adjacent ones joined."""
    tok = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"((?:[^"\\\n]|\\.)*)"|(\s+)|.""",
                     re.S)
    out, cur = [], None
    for m in tok.finditer(text):
        if m.group(1) is not None:
            s = re.sub(r"\\(.)", lambda e: {"n": "\n", "t": "\t"}.get(
                e.group(1), e.group(1)), m.group(1))
            cur = s if cur is None else cur + s
        elif m.group(2) is None and cur is not None:
            out.append(cur)
            cur = None
    if cur is not None:
        out.append(cur)
    return out


def analytics_sql():
    stmts = []
    for src in sorted(glob.glob(os.path.join(ROOT, "modules", "analytics",
                                             "*.c"))):
        p = subprocess.run(["cc", "-E", "-P", "-I",
                            os.path.join(ROOT, "include"), src],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        stmts += [s for s in c_literals(p.stdout)
                  if re.match(r"\s*(SELECT|WITH|INSERT|UPDATE|DELETE|"
                              r"REPLACE)\b", s, re.I)]
    return stmts


# SQLite only: runs SQLite's migration files (PostgreSQL's views: the
# test at the end).
@sqlite_only
def test_views_have_the_documented_columns(tmp_path):
    db = orders_db(str(tmp_path / "o.db"))
    for view, cols in documented_views().items():
        got = [r[1] for r in db.execute("PRAGMA table_info(%s)" % view)]
        assert got == cols, (view, got, cols)
        kind = db.execute("SELECT type FROM sqlite_master WHERE name = ?",
                          (view,)).fetchone()
        assert kind == ("view",), view


# SQLite only: runs SQLite's migration files (PostgreSQL's views: the
# test at the end).
@sqlite_only
def test_views_carry_exact_money(tmp_path):
    db = orders_db(str(tmp_path / "o.db"))
    db.execute("INSERT INTO orders(product_id, quantity, price, "
               "price_micros, received_at) VALUES ('a', 3, 0.1, 100000, 7)")
    db.execute("INSERT INTO orders(product_id, quantity, price, "
               "price_micros, received_at) VALUES ('a', 1, 999999999.999999,"
               " 999999999999999, 8)")
    # A row of the seed's columns only: the price is rounded to micros.
    db.execute("INSERT INTO orders(product_id, quantity, price) "
               "VALUES ('b', 2, 25.5)")
    assert db.execute("SELECT product_id, quantity, price_micros, "
                      "typeof(price_micros) FROM orders_v1 ORDER BY id"
                      ).fetchall() == [
        ("a", 3, 100000, "integer"), ("a", 1, 999999999999999, "integer"),
        ("b", 2, 25500000, "integer")]
    assert db.execute("SELECT * FROM product_totals_v1 ORDER BY 1"
                      ).fetchall() == [("a", 2, 4, 1000000000, 299999),
                                       ("b", 1, 2, 51, 0)]
    for view in documented_views():
        for cid, name, decl, *_ in db.execute("PRAGMA table_info(%s)"
                                               % view):
            assert "REAL" not in decl.upper(), (view, name, decl)
        assert db.execute("SELECT count(*) FROM %s" % view).fetchone()[0]


# SQLite only: SQLite's authorizer names the view behind each read
# (analytics' SQL is one text for both drivers).
@sqlite_only
def test_analytics_reads_orders_only_through_the_views(tmp_path):
    published = set(documented_views())
    db = orders_db(str(tmp_path / "o.db"))
    stmts = analytics_sql()
    # Start-up's one read (one snapshot, with both views); none means
    # the extraction missed it.
    assert any("orders_v1" in s and "product_totals_v1" in s
               for s in stmts), stmts
    for sql in stmts:
        bad = []
        viewed = set()

        def auth(action, table, column, dbname, source, bad=bad,
                 viewed=viewed):
            if action != SQLITE_READ:
                return sqlite3.SQLITE_OK
            if source in published:
                viewed.add(table)
            # SQLite also reports the rowid (orders_v1.id) as a read of
            # the table's no column, without the view: not a direct read
            # when the statement reads that table through a view.
            elif (source or table) not in published and not (
                    column == "" and table in viewed):
                bad.append((table, column, source))
            return sqlite3.SQLITE_OK

        db.set_authorizer(auth)
        nparams = len(set(re.findall(r"\?\d+", sql)))
        try:
            db.execute(sql, (0,) * nparams).fetchall()
        except sqlite3.Error as e:
            raise AssertionError("%s: %s" % (e, sql))
        finally:
            db.set_authorizer(None)
        assert not bad, ("reads %s directly, not through %s"
                         % (bad, sorted(published)), sql)


# SQLite only: SQLite's authorizer.
@sqlite_only
def test_check_catches_a_direct_read(tmp_path):
    """The check above fails on the SQL analytics had before the views."""
    published = set(documented_views())
    db = orders_db(str(tmp_path / "o.db"))
    bad = []

    def auth(action, table, column, dbname, source):
        if action == SQLITE_READ and (source or table) not in published:
            bad.append(table)
        return sqlite3.SQLITE_OK

    db.set_authorizer(auth)
    db.execute("SELECT product_id, orders FROM product_totals").fetchall()
    assert bad and set(bad) == {"product_totals"}
    lits = c_literals('f("SELECT a " "FROM t", \'"\', "b\\"c");')
    assert lits == ["SELECT a FROM t", 'b"c'], lits


@postgres_only
def test_postgres_views_are_the_documented_ones(make_server):
    """PostgreSQL's views (sql/orders/postgres): the documented columns,
    none of them floating point, and exact money, on orders a server
    took."""
    srv = make_server(["orders"])
    for pid, qty, price in (("a", 3, 0.1), ("a", 1, 999999999.999999),
                            ("b", 2, 25.5)):
        st, _, body = srv.post("/orders", {"product_id": pid,
                                           "quantity": qty, "price": price})
        assert st == 201, body
    assert srv.stop() == 0
    for view, cols in documented_views().items():
        got = srv.sql("SELECT column_name, data_type FROM "
                      "information_schema.columns WHERE table_schema = "
                      "current_schema() AND table_name = '%s' ORDER BY "
                      "ordinal_position" % view)
        assert [c for c, _ in got] == cols, (view, got, cols)
        for name, kind in got:
            assert kind not in ("real", "double precision"), (view, name)
        assert srv.sql("SELECT table_type FROM information_schema.tables "
                       "WHERE table_schema = current_schema() AND "
                       "table_name = '%s'" % view) == [("VIEW",)]
    assert srv.sql("SELECT product_id, quantity, price_micros FROM orders_v1 "
                   "ORDER BY id") == [("a", 3, 100000),
                                      ("a", 1, 999999999999999),
                                      ("b", 2, 25500000)]
    assert srv.sql("SELECT * FROM product_totals_v1 ORDER BY 1") == [
        ("a", 2, 4, 1000000000, 299999), ("b", 1, 2, 51, 0)]
