"""End-to-end harness: starts the real build/salesd on a free loopback port.

Everything here uses the standard library plus Debian's python3-pytest and
python3-websockets; run with /usr/bin/python3.  The build under test is
$SALESD_BUILD (tests/run sets it).
"""
import http.client
import json
import os
import re
import signal
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SALESD_BUILD", os.path.join(ROOT, "build"))
SALESD = os.path.join(BUILD, "salesd")

# SALESD_TEST_DRIVER=postgres (make test does it for the shipped modules'
# storage tests): every server stores in a fresh database of one
# throwaway PostgreSQL (tests/e2e/pg.py) instead of its SQLite file,
# unless its test names a [storage] driver itself.
TEST_DRIVER = os.environ.get("SALESD_TEST_DRIVER", "sqlite")
_pg = {"cluster": None, "n": 0}


def pg_database_url():
    """A fresh database in the session's PostgreSQL, started on first use."""
    import atexit
    import pg
    if _pg["cluster"] is None:
        _pg["cluster"] = pg.Cluster(log_statements=False)
        atexit.register(_pg["cluster"].destroy)
    _pg["n"] += 1
    name = "d%d_%d" % (os.getpid(), _pg["n"])
    return name, _pg["cluster"].createdb(name)



def project_version():
    """project(salesd VERSION x.y.z) of CMakeLists.txt: the one version
    that salesd -v, /health, /metrics, the .pc files and packages say."""
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"^project\(salesd VERSION (\S+)", f.read(),
                         re.M).group(1)


def sqlite_only(fn):
    """For a test that reads the server's SQLite file itself."""
    return pytest.mark.skipif(TEST_DRIVER != "sqlite",
                              reason="reads the SQLite database file")(fn)


def postgres_only(fn):
    """For a test of what only a PostgreSQL database does (its server
    stopped, sessions killed, made read-only): make test-postgres runs
    it, on the server's database in the session's PostgreSQL."""
    return pytest.mark.skipif(TEST_DRIVER != "postgres",
                              reason="needs SALESD_TEST_DRIVER=postgres")(fn)


def pg_cluster():
    """The session's PostgreSQL (pg.Cluster), once a server started on it."""
    return _pg["cluster"]


class Server:
    """One salesd process with its own config, module dir and database."""

    def __init__(self, tmpdir, modules, config=None, env=None):
        self.tmpdir = str(tmpdir)
        self.moddir = os.path.join(self.tmpdir, "modules")
        os.makedirs(self.moddir, exist_ok=True)
        for sub in ("modules", "test-modules"):
            d = os.path.join(BUILD, sub)
            if not os.path.isdir(d):
                continue
            for f in os.listdir(d):
                link = os.path.join(self.moddir, f)
                if f.endswith(".so") and not os.path.exists(link):
                    os.symlink(os.path.join(d, f), link)
        self.db = os.path.join(self.tmpdir, "sales.db")
        self.pg_db = None
        sections = {
            "server": {"host": "127.0.0.1", "port": "0", "log_level": "info"},
            "modules": {"dir": self.moddir, "load": " ".join(modules)},
            "storage": {"driver": "sqlite", "path": self.db,
                        "migrations": os.path.join(ROOT, "sql")},
        }
        # make test-tsan runs the suite with WebSocket I/O threads on.
        if os.environ.get("SALESD_IO_THREADS"):
            sections["server"]["io_threads"] = os.environ["SALESD_IO_THREADS"]
        # make test runs the WebSocket tests again with io_uring off.
        if os.environ.get("SALESD_IO_URING"):
            sections["server"]["io_uring"] = os.environ["SALESD_IO_URING"]
        if TEST_DRIVER == "postgres" and "driver" not in (
                (config or {}).get("storage") or {}):
            self.pg_db, url = pg_database_url()
            sections["storage"] = {"driver": "postgres", "url": url}
        for sec, kv in (config or {}).items():
            sections.setdefault(sec, {}).update({k: str(v) for k, v in kv.items()})
        self.config = os.path.join(self.tmpdir, "sales.ini")
        self.sections = sections
        self.write_config()
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.preexec = None     # run in the child before exec
        self.port = None
        self.log_path = os.path.join(self.tmpdir, "salesd.log")

    def sql(self, query):
        """Rows of query on the server's database, whichever the driver
        (each column with a name of its own: PostgreSQL's rows come back
        as JSON objects)."""
        if self.pg_db is None:
            import sqlite3
            con = sqlite3.connect(self.db)
            try:
                return con.execute(query).fetchall()
            finally:
                con.close()
        # As JSON, so that types come back as they are (text stays text).
        out = _pg["cluster"].psql(self.pg_db, "SELECT COALESCE(json_agg(t), "
                                  "'[]') FROM (%s) t" % query)
        return [tuple(r.values()) for r in json.loads(out)]

    def execute(self, sqlite, postgres):
        """Runs a statement that changes the server's database, in the
        dialect of its driver (sqlite or postgres: the statement's text
        for each), outside the server (stopped, as a rule)."""
        if self.pg_db is None:
            import sqlite3
            con = sqlite3.connect(self.db)
            try:
                with con:
                    con.execute(sqlite)
            finally:
                con.close()
        else:
            _pg["cluster"].psql(self.pg_db, postgres)

    def write_config(self, changes=None, raw=None):
        """Rewrites sales.ini: changes {section: {key: value or None to drop}},
        or raw text instead of the whole file."""
        for sec, kv in (changes or {}).items():
            d = self.sections.setdefault(sec, {})
            for k, v in kv.items():
                if v is None:
                    d.pop(k, None)
                else:
                    d[k] = str(v)
        with open(self.config, "w") as f:
            if raw is not None:
                f.write(raw)
                return
            for sec, kv in self.sections.items():
                f.write("[%s]\n" % sec)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))

    def wait_log(self, pattern, count=1, timeout=10):
        """Waits until pattern (a regex) appears count times in the log."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(re.findall(pattern, self.log())) >= count:
                return
            time.sleep(0.02)
        raise AssertionError("no %r in the log:\n%s" % (pattern, self.log()))

    def start(self, timeout=20):
        self.logf = open(self.log_path, "ab")
        start = self.logf.tell()
        self.proc = subprocess.Popen([SALESD, "-c", self.config],
                                     stdout=self.logf, stderr=self.logf,
                                     env=self.env, cwd=self.tmpdir,
                                     preexec_fn=self.preexec)
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                m = re.search(rb"listening on http://[^:]+:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("salesd exited %d:\n%s" % (self.proc.returncode, self.log()))
            time.sleep(0.02)
        raise RuntimeError("salesd did not start:\n" + self.log())

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the server; returns its exit status (-9 after kill -9)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise RuntimeError("salesd did not stop:\n" + self.log())
        finally:
            self.proc = None
            self.logf.close()
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    # -- HTTP helpers ------------------------------------------------------
    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        """Returns (status, headers dict (lower-case names), parsed JSON or raw bytes)."""
        c = self.conn(timeout)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        hdrs.update(headers or {})
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        h = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        try:
            data = json.loads(data)
        except ValueError:
            pass
        return r.status, h, data

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body=body, **kw)

    @property
    def ws_url(self):
        return "ws://127.0.0.1:%d/" % self.port


def run_check(tmpdir, modules, extra=None):
    """Runs `salesd --check` on a config; returns (exit code, output)."""
    s = Server(tmpdir, modules, extra)
    p = subprocess.run([SALESD, "-c", s.config, "--check"], capture_output=True,
                       timeout=30, cwd=s.tmpdir)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


@pytest.fixture
def make_server(tmp_path):
    """make_server(modules, config={section: {key: value}}, env={}) -> started Server."""
    servers = []

    def factory(modules, config=None, env=None, start=True, subdir=None):
        d = tmp_path / (subdir or "srv%d" % len(servers))
        d.mkdir(exist_ok=True)
        s = Server(d, modules, config, env)
        servers.append(s)
        return s.start() if start else s

    yield factory
    for s in servers:
        if s.proc is not None:
            rc = s.stop()
            assert rc == 0, "salesd exited %r on SIGTERM:\n%s" % (rc, s.log())
        # Sanitizer reports go to the log; any is a failure.
        log = s.log()
        assert "ERROR: AddressSanitizer" not in log, log
        assert "runtime error:" not in log, log
        assert "ERROR: LeakSanitizer" not in log, log
        assert "WARNING: ThreadSanitizer" not in log, log
