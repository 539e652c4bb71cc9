"""The password of [storage] url never shows (issue 9: secrets never
appear in any log line, response or metric), on a real PostgreSQL that
asks for one (tests/e2e/pg.py, with scram-sha-256 for the role used).

One distinctive password, given in each form libpq takes (the url's
user info, percent-encoded; its query; a key=value string), is looked
for in the server's whole log, every HTTP answer, --check and
migrate-data output: while all is well, with a wrong password, with the
database stopped and back, with an unknown host and with urls that
libpq refuses to parse (its messages for those quote the url).
"""
import os
import signal
import subprocess
import time
import urllib.parse

import pytest

from conftest import SALESD, Server
from pg import DRIVER, Cluster, pg_server, wait_health

SECRET = "Zebra7Quokka#42"
# Any piece of it is a leak, in either spelling.
NEEDLES = ("Zebra7Quokka", "Quokka", "Zebra7")
ROLE = "secrole"


def leaks(text):
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    text = str(text)
    return [n for n in NEEDLES if n in text or
            n in urllib.parse.unquote(text)]


@pytest.fixture(scope="module")
def secure():
    """A cluster where ROLE must give SECRET (the suite's own role
    keeps trust, for psql)."""
    if not os.path.exists(DRIVER):
        pytest.fail("%s is not built (libpq-dev missing?)" % DRIVER)
    c = Cluster(log_statements=False)
    try:
        with open(os.path.join(c.data, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\n"
                    "host all salesd 127.0.0.1/32 trust\n"
                    "host all all 127.0.0.1/32 scram-sha-256\n")
        c.run("pg_ctl", "reload", "-D", c.data)
        c.psql("postgres", "CREATE ROLE %s LOGIN PASSWORD '%s'" % (
            ROLE, SECRET))
        yield c
    finally:
        c.destroy()


_n = [0]


def newdb(c):
    _n[0] += 1
    name = "sec%d_%d" % (os.getpid(), _n[0])
    c.run("createdb", "-h", "127.0.0.1", "-p", str(c.port), "-U",
          "salesd", "-O", ROLE, name)
    return name


def urls(c, db, password=SECRET, host="127.0.0.1"):
    """The same connection, in each form the driver takes."""
    q = urllib.parse.quote(password, safe="")
    return {
        "userinfo": "postgresql://%s:%s@%s:%d/%s" % (ROLE, q, host, c.port,
                                                     db),
        "query": "postgresql://%s@%s:%d/%s?password=%s" % (ROLE, host,
                                                           c.port, db, q),
        "keywords": "host=%s port=%d user=%s dbname=%s password='%s'" % (
            host, c.port, ROLE, db, password.replace("'", "\\'")),
    }


def run(s, *args):
    p = subprocess.run([SALESD, "-c", s.config] + list(args),
                       capture_output=True, timeout=120, cwd=s.tmpdir,
                       env=s.env)
    out = (p.stdout + p.stderr).decode(errors="replace")
    for report in ("ERROR: AddressSanitizer", "runtime error:",
                   "ERROR: LeakSanitizer"):
        assert report not in out, out
    return p.returncode, out


def answers(s):
    """Every kind of answer the server gives, raw."""
    got = []
    for path in ("/health", "/health/ready", "/health/live", "/metrics",
                 "/orders?limit=5", "/analytics", "/nosuch"):
        got.append((path, s.get(path, timeout=60)))
    got.append(("POST", s.post("/orders", {"product_id": "s", "quantity": 1,
                                           "price": 1}, timeout=60)))
    got.append(("bad POST", s.post("/orders", b"{", timeout=60)))
    return got


def assert_clean(what, text):
    assert not leaks(text), "%s shows the password:\n%s" % (what, text)


def set_password(c, pw):
    c.psql("postgres", "ALTER ROLE %s PASSWORD '%s'" % (ROLE, pw))


def kick(c):
    """Ends the role's sessions: the server must log in again."""
    c.psql("postgres", "SELECT count(pg_terminate_backend(pid)) FROM "
           "pg_stat_activity WHERE usename = '%s'" % ROLE)


@pytest.mark.parametrize("form", ["userinfo", "query", "keywords"])
def test_password_never_shown(make_server, secure, form):
    db = newdb(secure)
    url = urls(secure, db)[form]
    s = pg_server(make_server, url)
    seen = answers(s)
    assert seen[0][1][0] == 200, seen
    rc, out = run(s, "--check")
    assert rc == 0, out
    assert_clean("--check", out)

    # A wrong password on reconnecting: the server says so, not what.
    set_password(secure, "other-pw")
    try:
        kick(secure)
        st, health = wait_health(s, 503, 60)
        assert st == 503, health
        s.wait_log(r"password authentication failed", timeout=60)
        seen += answers(s)
        rc, out = run(s, "--check")
        assert rc != 0 and "password authentication failed" in out, out
        assert_clean("--check, wrong password", out)
    finally:
        set_password(secure, SECRET)
    st, health = wait_health(s, 200, 60)
    assert st == 200, health

    # The database stopped, then back.
    secure.stop()
    try:
        st, health = wait_health(s, 503, 60)
        assert st == 503, health
        seen += answers(s)
        rc, out = run(s, "--check")
        assert rc != 0, out
        assert_clean("--check, database stopped", out)
    finally:
        secure.start()
    st, health = wait_health(s, 200, 60)
    assert st == 200, health
    seen += answers(s)
    st, _, b = s.post("/orders", {"product_id": "t", "quantity": 1,
                                  "price": 2})
    assert st == 201, b

    # A reload that changes the url names the key, never its value.
    s.write_config({"storage": {"url": urls(secure, db, password=SECRET +
                                            "-new")[form]}})
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log(r"\[storage\] url: changed; that needs a restart")
    seen += answers(s)
    assert s.stop() == 0
    for what, got in seen:
        assert_clean("%s answer" % what, got)
    assert_clean("the log", s.log())
    assert "connected again" in s.log()


def bad_urls(c, db):
    u = urls(c, db, password="wrong-" + SECRET)
    q = urllib.parse.quote(SECRET, safe="")
    return [
        ("wrong password", u["userinfo"], "password authentication failed"),
        ("wrong password, query", u["query"],
         "password authentication failed"),
        ("wrong password, keywords", u["keywords"],
         "password authentication failed"),
        ("unknown host", urls(c, db, host="no-such-host.invalid")[
            "userinfo"], "no-such-host.invalid"),
        # libpq's messages for these quote the whole url.
        ("unmatched bracket", "postgresql://%s:%s@[::1/%s" % (ROLE, q, db),
         "cannot connect"),
        ("bad percent escape", "postgresql://%s:%s%%zz@127.0.0.1:%d/%s" % (
            ROLE, q, c.port, db), "cannot connect"),
        ("bad query percent escape",
         "postgresql://%s@127.0.0.1:%d/%s?password=%s%%z" % (
             ROLE, c.port, db, q), "cannot connect"),
        ("unknown keyword", "host=127.0.0.1 password=%s nosuch=1" % SECRET,
         "cannot connect"),
        ("keyword without =", "host=127.0.0.1 %s" % SECRET,
         "cannot connect"),
    ]


def unstarted(tmp_path, sub, url):
    """A config on url, for salesd runs of its own."""
    d = tmp_path / sub
    d.mkdir()
    return Server(d, ["orders", "analytics"], {"storage": {
        "driver": "postgres", "url": "${DATABASE_URL}"}},
        {"DATABASE_URL": url})


def test_password_never_shown_when_it_cannot_connect(make_server, secure,
                                                     tmp_path):
    lite = make_server(["orders", "analytics"], subdir="lite",
                       config={"storage": {"driver": "sqlite"}})
    assert lite.stop() == 0
    db = newdb(secure)
    for i, (what, url, says) in enumerate(bad_urls(secure, db)):
        s = unstarted(tmp_path, "b%d" % i, url)
        for args in ((), ("--check",), ("migrate-data", lite.db)):
            rc, out = run(s, *args)
            assert rc != 0 and says in out, (what, args, out)
            assert "listening" not in out, out
            assert_clean("%s, salesd %s" % (what, " ".join(args)), out)


def test_migrate_data_never_shows_the_password(make_server, secure,
                                               tmp_path):
    lite = make_server(["orders", "analytics"], subdir="lite",
                       config={"storage": {"driver": "sqlite"}})
    assert lite.post("/orders", {"product_id": "m", "quantity": 1,
                                 "price": 1})[0] == 201
    assert lite.stop() == 0
    for form in ("userinfo", "query", "keywords"):
        url = urls(secure, newdb(secure))[form]
        s = unstarted(tmp_path, "m" + form, url)
        rc, out = run(s, "migrate-data", lite.db)
        assert rc == 0 and "counts and sums match" in out, out
        assert_clean("migrate-data (%s)" % form, out)
        # Into a database that has rows now: refused, and still quiet.
        rc, out = run(s, "migrate-data", lite.db)
        assert rc == 1 and "is not empty" in out, out
        assert_clean("migrate-data refused (%s)" % form, out)
