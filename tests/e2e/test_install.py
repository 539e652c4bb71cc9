"""Installed salesd, end to end: `cmake --install` into a temporary
prefix gives the standard layout; the installed binary, started as an
unprivileged user from another working directory with a config outside
the tree, finds its modules and schema and puts its database beside the
config; pkg-config serves a module author, whose out-of-tree module
(examples/hello, built by its own Makefile) is loaded by path.  Also
the command line: --check changes nothing and refuses what the server
could not write, -p/--host and SALESD_PORT.  The installed binary with
[storage] driver = postgres and no driver_dir or migrations finds the
installed driver and its dialect's migrations."""
import glob
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import BUILD, ROOT, SALESD
from pg import cluster, pgdb  # noqa: F401 (fixtures)

ORDER = {"product_id": "101", "quantity": 2, "price": 25.50,
         "date": "2025-04-22T10:00:00Z"}
# The orders module's migrations, all pending on a new database.
ORDERS_MIGRATIONS = len(glob.glob(os.path.join(ROOT, "sql", "orders",
                                               "*.sql")))

# The out-of-tree module of docs/MODULES.md, built here with its own
# Makefile against the installed SDK.
HELLO = os.path.join(ROOT, "examples", "hello")


def as_user():
    """Command prefix that drops to `nobody` when we are root."""
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    pw = pwd.getpwnam("nobody")
    return (["setpriv", "--reuid", str(pw.pw_uid), "--regid", str(pw.pw_gid),
             "--clear-groups", "--"], pw.pw_uid, pw.pw_gid)


def public_dir():
    """A temporary directory `nobody` can traverse (pytest's is 0700)."""
    d = tempfile.mkdtemp(prefix="salesd-install-")
    os.chmod(d, 0o755)
    return d


@pytest.fixture(scope="module")
def prefix():
    d = public_dir()
    p = subprocess.run(["cmake", "--install", BUILD, "--prefix", d],
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def home():
    """A config directory outside the tree, owned by the user salesd runs as."""
    d = public_dir()
    _, uid, gid = as_user()
    os.makedirs(os.path.join(d, "etc"))
    os.chown(os.path.join(d, "etc"), uid, gid)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def only(prefix, *parts):
    """The one file under prefix/lib (libdir may be lib/<triplet>)."""
    found = glob.glob(os.path.join(prefix, "lib", "**", *parts), recursive=True)
    assert len(found) == 1, (parts, found)
    return found[0]


def write_config(path, load, port=0, extra=""):
    with open(path, "w") as f:
        f.write("[server]\nhost = 127.0.0.1\nport = %d\n"
                "[modules]\nload = %s\n"
                "[storage]\npath = data/sales.db\n%s" % (port, load, extra))
    os.chmod(path, 0o644)


def start(cmd, log_path, cwd, env=None, timeout=20):
    """Starts salesd; returns (process, port) once it listens."""
    logf = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=logf, cwd=cwd,
                            env=dict(os.environ, **(env or {})))
    logf.close()
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(log_path, "rb") as f:
            m = re.search(rb"listening on http://[^:]+:(\d+)", f.read())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    with open(log_path, "rb") as f:
        raise RuntimeError("salesd did not start:\n" + f.read().decode())


def stop(proc):
    proc.terminate()
    assert proc.wait(30) == 0


def call(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, json.loads(r.read())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_installed_layout(prefix):
    assert os.access(os.path.join(prefix, "bin", "salesd"), os.X_OK)
    for name in ("orders", "analytics", "weather", "ai_recommend", "dashboard"):
        only(prefix, "salesd", "modules", name + ".so")
    assert os.path.isfile(os.path.join(prefix, "share", "salesd", "sql",
                                       "orders", "001_orders.sql"))
    assert os.path.isfile(os.path.join(prefix, "include", "sales", "module.h"))
    # The PostgreSQL driver beside the modules, its migrations in their
    # module's folder (the Debian package salesd-postgres holds these).
    assert os.path.dirname(only(prefix, "salesd", "drivers", "postgres.so")) \
        == os.path.join(os.path.dirname(os.path.dirname(
            only(prefix, "salesd", "modules", "orders.so"))), "drivers")
    assert os.path.isfile(os.path.join(prefix, "share", "salesd", "sql",
                                       "orders", "postgres", "001_orders.sql"))
    with open(os.path.join(prefix, "etc", "salesd", "sales.ini")) as f:
        ini = f.read()
    assert "load = orders analytics weather ai_recommend dashboard" in ini
    assert re.search(r"^path = /.*/lib/salesd/sales\.db$", ini, re.M)
    only(prefix, "pkgconfig", "salesd.pc")


def test_installed_binary_runs_unprivileged_elsewhere(prefix, home):
    drop, uid, _ = as_user()
    cfg = os.path.join(home, "etc", "sales.ini")
    write_config(cfg, "orders analytics dashboard")
    # Started from / with a config path: nothing depends on the cwd.
    proc, port = start(drop + [os.path.join(prefix, "bin", "salesd"), "-c", cfg],
                       os.path.join(home, "salesd.log"), cwd="/")
    try:
        st, body = call(port, "POST", "/orders", ORDER)
        assert st == 201, body
        st, body = call(port, "GET", "/orders/1")
        assert st == 200 and body["product_id"] == "101" and body["quantity"] == 2
        st, body = call(port, "GET", "/analytics")
        assert st == 200 and body["totalRevenue"] == 51
        # The installed dashboard carries its page inside the module.
        with urllib.request.urlopen("http://127.0.0.1:%d/dashboard/app.js"
                                    % port, timeout=10) as r:
            assert r.status == 200 and b"WebSocket" in r.read()
    finally:
        stop(proc)
    db = os.path.join(home, "etc", "data", "sales.db")
    assert os.stat(db).st_uid == uid
    with open(os.path.join(home, "salesd.log")) as f:
        log = f.read()
    # The installed schema, not the source tree's.
    assert os.path.join(prefix, "share", "salesd", "sql") in log


def test_installed_binary_finds_the_installed_driver(prefix, home, cluster,
                                                     pgdb):
    name, url = pgdb
    drop, _, _ = as_user()
    cfg = os.path.join(home, "etc", "sales.ini")
    write_config(cfg, "orders analytics",
                 extra="driver = postgres\nurl = %s\n" % url)
    rc, out = check(cfg, os.path.join(prefix, "bin", "salesd"), drop)
    assert rc == 0, out
    pgsql = os.path.join(prefix, "share", "salesd", "sql", "orders",
                         "postgres")
    assert 'migration(s) pending, would be applied (from "%s")' % pgsql \
        in out, out
    # Started, it runs on the prefix's driver, not on the build's.
    proc, port = start(drop + [os.path.join(prefix, "bin", "salesd"), "-c",
                               cfg], os.path.join(home, "salesd.log"), cwd="/")
    try:
        with open("/proc/%d/maps" % proc.pid) as f:
            maps = f.read()
        driver = os.path.realpath(only(prefix, "salesd", "drivers",
                                       "postgres.so"))
        assert driver in maps and "/libpq.so" in maps
        assert os.path.join(BUILD, "drivers") not in maps
        assert call(port, "POST", "/orders", ORDER)[0] == 201
    finally:
        stop(proc)
    assert cluster.psql(name, "SELECT count(*) FROM orders") == "1"


def test_pkg_config_and_out_of_tree_module(prefix, home):
    pcdir = os.path.dirname(only(prefix, "pkgconfig", "salesd.pc"))
    env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
    p = subprocess.run(["pkg-config", "--cflags", "salesd"], env=env,
                       capture_output=True, timeout=10)
    assert p.returncode == 0, p.stderr
    cflags = p.stdout.decode().split()
    assert any(f.startswith("-I") and os.path.realpath(f[2:]) ==
               os.path.realpath(os.path.join(prefix, "include")) for f in cflags)
    p = subprocess.run(["pkg-config", "--variable=moduledir", "salesd"], env=env,
                       capture_output=True, timeout=10)
    moddir = p.stdout.decode().strip()
    assert os.path.isfile(os.path.join(moddir, "orders.so")), moddir

    # examples/hello, copied out of the tree, built by its Makefile.
    src = os.path.join(home, "src")
    shutil.copytree(HELLO, src, ignore=shutil.ignore_patterns("*.so", "*.o"))
    p = subprocess.run(["make", "-C", src], env=env, capture_output=True,
                       timeout=120)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, out
    assert "-Werror" in out and "-Wl,-z,defs" in out, out
    so = os.path.join(src, "hello.so")
    os.chmod(src, 0o755)
    os.chmod(so, 0o755)
    # By path, relative to the config's directory.
    cfg = os.path.join(home, "etc", "sales.ini")
    write_config(cfg, "orders ../src/hello.so",
                 extra="[hello]\ngreeting = installed sdk\n")
    drop, _, _ = as_user()
    proc, port = start(drop + [os.path.join(prefix, "bin", "salesd"), "-c", cfg],
                       os.path.join(home, "salesd.log"), cwd="/")
    try:
        assert call(port, "GET", "/hello") == (200, {
            "greeting": "installed sdk", "orders": 0, "quantity": 0})
        assert call(port, "POST", "/orders", ORDER)[0] == 201
        want = (200, {"greeting": "installed sdk", "orders": 1,
                      "quantity": 2})
        deadline = time.time() + 10
        while call(port, "GET", "/hello") != want and time.time() < deadline:
            time.sleep(0.05)
        assert call(port, "GET", "/hello") == want
    finally:
        stop(proc)


def check(cfg, binary=SALESD, drop=(), cwd="/"):
    p = subprocess.run(list(drop) + [binary, "-t", "-c", cfg], capture_output=True,
                       timeout=60, cwd=cwd)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def test_check_creates_nothing_and_says_what_it_would_do(home):
    # The build's salesd, a config outside the tree with no [modules]
    # dir and no migrations key: the build's modules and schema are used.
    etc = os.path.join(home, "etc")
    cfg = os.path.join(etc, "sales.ini")
    write_config(cfg, "orders analytics")
    rc, out = check(cfg)
    assert rc == 0, out
    db = os.path.join(etc, "data", "sales.db")
    assert 'database "%s" does not exist yet: would be created' % db in out
    assert 'module "orders": %d migration(s) pending, would be applied' \
        % ORDERS_MIGRATIONS in out, out
    # The build tree's schema, as no migrations key names one.
    assert '(from "%s")' % os.path.join(ROOT, "sql", "orders") in out, out
    assert 'module "analytics": schema up to date (0 migration(s)' in out
    assert "ok (2 modules)" in out
    assert sorted(os.listdir(etc)) == ["sales.ini"]

    # After a run: up to date, and a -t (as root, too) adds no file.
    proc, port = start([SALESD, "-c", cfg], os.path.join(home, "log"), cwd="/")
    stop(proc)
    before = sorted(os.listdir(os.path.join(etc, "data")))
    rc, out = check(cfg)
    assert rc == 0 and \
        'module "orders": schema up to date (%d migration(s)' \
        % ORDERS_MIGRATIONS in out, out
    assert sorted(os.listdir(os.path.join(etc, "data"))) == before


def test_check_refuses_an_unwritable_database_dir(home):
    drop, _, _ = as_user()
    etc = os.path.join(home, "etc")
    locked = os.path.join(home, "locked")
    os.makedirs(locked)
    os.chmod(locked, 0o555)
    cfg = os.path.join(etc, "sales.ini")
    write_config(cfg, "orders", extra="path = ../locked/sales.db\n")
    rc, out = check(cfg, drop=drop)
    assert rc != 0
    assert 'database directory "%s" is not writable' % \
        os.path.join(etc, "..", "locked") in out, out
    assert os.listdir(locked) == []


def test_check_after_a_crash_creates_no_file(home):
    """After kill -9 the database has its -wal and -shm: --check reads the
    log through them.  With the -shm gone too (a copy of the files), it
    does not read the log rather than make a -shm (root's, when root runs
    it), and says so; the server then recovers the log."""
    etc = os.path.join(home, "etc")
    cfg = os.path.join(etc, "sales.ini")
    write_config(cfg, "orders")
    proc, port = start([SALESD, "-c", cfg], os.path.join(home, "log"), cwd="/")
    try:
        assert call(port, "POST", "/orders", ORDER)[0] == 201
    finally:
        proc.kill()
        proc.wait()
    data = os.path.join(etc, "data")
    db = os.path.join(data, "sales.db")
    assert sorted(os.listdir(data)) == ["sales.db", "sales.db-shm",
                                        "sales.db-wal"]
    rc, out = check(cfg)
    assert rc == 0 and 'module "orders": schema up to date' in out, out
    assert sorted(os.listdir(data)) == ["sales.db", "sales.db-shm",
                                        "sales.db-wal"]
    os.unlink(db + "-shm")
    rc, out = check(cfg)
    assert rc == 0, out
    assert 'database "%s": exists and is writable; its -wal has no -shm' \
        % db in out, out
    assert sorted(os.listdir(data)) == ["sales.db", "sales.db-wal"]
    proc, port = start([SALESD, "-c", cfg], os.path.join(home, "log2"),
                       cwd="/")
    try:
        st, body = call(port, "GET", "/orders/1")
        assert st == 200 and body["quantity"] == 2
    finally:
        stop(proc)


def test_check_refuses_a_database_the_user_cannot_write(home):
    """The issue's case: the database made by root (a start as root), then
    checked as the service user, as the unit's ExecStartPre does."""
    drop, uid, gid = as_user()
    if not drop:
        pytest.skip("needs root to make a database another user cannot write")
    etc = os.path.join(home, "etc")
    cfg = os.path.join(etc, "sales.ini")
    write_config(cfg, "orders")
    proc, _ = start([SALESD, "-c", cfg], os.path.join(home, "log"), cwd="/")
    stop(proc)
    data = os.path.join(etc, "data")
    db = os.path.join(data, "sales.db")
    os.chown(data, uid, gid)                # only the file is root's
    assert os.stat(db).st_uid == 0
    before = sorted(os.listdir(data))
    rc, out = check(cfg, drop=drop)
    assert rc != 0, out
    assert 'database "%s" is not writable by uid %d' % (db, uid) in out, out
    assert sorted(os.listdir(data)) == before
    # Root may write it: the same check passes as root.
    rc, out = check(cfg)
    assert rc == 0, out
    # The file given to the user, but a -wal of root's beside it.
    os.chown(db, uid, gid)
    with open(db + "-wal", "wb"):
        pass
    rc, out = check(cfg, drop=drop)
    assert rc != 0 and 'database file "%s-wal" is not writable by uid %d' \
        % (db, uid) in out, out
    os.unlink(db + "-wal")
    rc, out = check(cfg, drop=drop)
    assert rc == 0, out
    assert sorted(os.listdir(data)) == before


def test_relative_paths_and_a_pending_migration(home):
    """[modules] dir, [storage] migrations and driver_dir given relative,
    used from / as the service user; --check names the one migration it
    would apply to an existing database, and applies none."""
    drop, uid, gid = as_user()
    etc = os.path.join(home, "etc")
    os.symlink(os.path.join(BUILD, "modules"), os.path.join(etc, "mods"))
    shutil.copytree(os.path.join(ROOT, "sql"), os.path.join(etc, "schema"))
    cfg = os.path.join(etc, "sales.ini")

    def config(storage):
        with open(cfg, "w") as f:
            f.write("[server]\nhost = 127.0.0.1\nport = 0\n"
                    "[modules]\ndir = mods\nload = orders analytics\n"
                    "[storage]\n" + storage)
    config("path = data/sales.db\nmigrations = schema\n")
    proc, port = start(drop + [SALESD, "-c", cfg], os.path.join(home, "log"),
                       cwd="/")
    try:
        assert call(port, "POST", "/orders", ORDER)[0] == 201
    finally:
        stop(proc)
    db = os.path.join(etc, "data", "sales.db")
    assert os.stat(db).st_uid == uid

    probe = os.path.join(etc, "schema", "orders", "%03d_probe.sql"
                         % (ORDERS_MIGRATIONS + 1))
    with open(probe, "w") as f:
        f.write("CREATE TABLE probe (x INTEGER);\n")
    os.chmod(probe, 0o644)
    with open(db, "rb") as f:
        image = f.read()
    rc, out = check(cfg, drop=drop)
    assert rc == 0, out
    assert 'module "orders": 1 migration(s) pending, would be applied ' \
        '(from "%s")' % os.path.join(etc, "schema", "orders") in out, out
    with open(db, "rb") as f:
        assert f.read() == image
    assert sorted(os.listdir(os.path.join(etc, "data"))) == ["sales.db"]
    # What --check said is what a start does.
    proc, port = start(drop + [SALESD, "-c", cfg], os.path.join(home, "log"),
                       cwd="/")
    stop(proc)
    p = subprocess.run(["sqlite3", db, "SELECT count(*) FROM probe"],
                       capture_output=True, timeout=30)
    assert p.returncode == 0 and p.stdout.strip() == b"0", p.stderr

    config("driver = postgres\ndriver_dir = drv\n")
    rc, out = check(cfg, drop=drop)
    assert rc != 0 and 'cannot load "%s"' % os.path.join(
        etc, "drv", "postgres.so") in out, out


def test_make_install_is_cmake_install():
    p = subprocess.run(["make", "-n", "-C", ROOT, "install", "BUILD=" + BUILD,
                        "PREFIX=/opt/salesd"], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    assert "cmake --install %s --prefix /opt/salesd" % BUILD in \
        p.stdout.decode().splitlines()


def test_port_and_host_precedence(home):
    cfg = os.path.join(home, "etc", "sales.ini")
    write_config(cfg, "orders", port=1)    # never bindable by nobody
    env_port, cli_port = free_port(), free_port()
    proc, port = start([SALESD, "-c", cfg], os.path.join(home, "a.log"), cwd="/",
                       env={"SALESD_PORT": str(env_port), "SALESD_HOST": "127.0.0.1"})
    stop(proc)
    assert port == env_port
    proc, port = start([SALESD, "-c", cfg, "-p", str(cli_port), "--host",
                        "127.0.0.1"], os.path.join(home, "b.log"), cwd="/",
                       env={"SALESD_PORT": str(env_port)})
    stop(proc)
    assert port == cli_port
    p = subprocess.run([SALESD, "-c", cfg, "-t"], capture_output=True, timeout=30,
                       env=dict(os.environ, SALESD_PORT="http"))
    assert p.returncode != 0 and b'SALESD_PORT: "http" is not a port' in p.stderr


def test_short_options():
    for opt in ("-v", "-V", "--version"):
        p = subprocess.run([SALESD, opt], capture_output=True, timeout=10)
        assert p.returncode == 0 and p.stdout.startswith(b"salesd ")
    p = subprocess.run([SALESD, "-h"], capture_output=True, timeout=10)
    assert p.returncode == 0 and b"-t, --check" in p.stdout


def test_repository_config_checks_from_anywhere():
    # make run's sales.ini: its database beside it, whatever the cwd.
    rc, out = check(os.path.join(ROOT, "sales.ini"), cwd="/")
    assert rc == 0, out
    assert 'database "%s' % os.path.join(ROOT, "database", "sales.db") in out
