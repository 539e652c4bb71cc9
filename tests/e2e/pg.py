"""A throwaway PostgreSQL for the end-to-end tests (test_postgres.py,
test_cluster.py): fixtures and helpers, imported by the tests that use
them.

The cluster is Debian's postgresql: initdb into a temporary directory as
the unprivileged postgres user (PostgreSQL refuses root), on a free
loopback port, fsync on, stopped and removed afterwards.  When the
server binaries are missing they are installed with apt-get (as root);
only when that is impossible are these tests skipped, saying why.
"""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import BUILD

DRIVER = os.path.join(BUILD, "drivers", "postgres.so")


def pg_bindir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                  key=lambda p: int(p.split("/")[4]))
    return os.path.dirname(dirs[-1]) if dirs else None


def ensure_postgres():
    if pg_bindir() is None and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq",
                        "--no-install-recommends", "postgresql"],
                       env=env, capture_output=True, timeout=600)
    if pg_bindir() is None:
        pytest.skip("postgresql cannot be installed here (no "
                    "/usr/lib/postgresql/*/bin/initdb; apt-get install "
                    "postgresql needs root and a reachable archive)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One PostgreSQL server in a temporary directory."""

    def __init__(self, log_statements=True):
        ensure_postgres()
        self.log_statements = log_statements
        self.bindir = pg_bindir()
        self.dir = tempfile.mkdtemp(prefix="salesd-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.proc = None
        self.user = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("postgres")
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.dir, 0o755)
        self.run("initdb", "-D", self.data, "-U", "salesd", "-A", "trust",
                 "-E", "UTF8", "--no-locale")
        self.start()

    def cmd(self, prog, *args):
        c = [os.path.join(self.bindir, prog)] + list(args)
        if self.user is not None:
            c = ["runuser", "-u", "postgres", "--"] + c
        return c

    def run(self, prog, *args):
        p = subprocess.run(self.cmd(prog, *args), capture_output=True,
                           timeout=120, cwd=self.dir)
        assert p.returncode == 0, (p.stdout + p.stderr).decode()
        return p.stdout.decode()

    def as_postgres(self):
        """In the child: become postgres, so that the pid we signal is
        the postmaster's own (runuser would not pass SIGINT on)."""
        if self.user is not None:
            os.setgroups([])
            os.setgid(self.user.pw_gid)
            os.setuid(self.user.pw_uid)

    def start(self, timeout=60):
        self.log = open(os.path.join(self.dir, "postgres.log"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(self.bindir, "postgres"), "-D", self.data,
             "-p", str(self.port), "-k", self.dir,
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on",
             "-c", "synchronous_commit=on",
             # Every parse and execute, by database: what tests count
             # (not the benchmark: logging each would be what it measures).
             "-c", "log_min_duration_statement=%d" % (
                 0 if self.log_statements else -1),
             "-c", "log_line_prefix=db=%d "],
            stdout=self.log, stderr=self.log, cwd=self.dir,
            preexec_fn=self.as_postgres)
        deadline = time.time() + timeout
        while time.time() < deadline:
            p = subprocess.run([os.path.join(self.bindir, "pg_isready"),
                                "-h", "127.0.0.1", "-p", str(self.port)],
                               capture_output=True)
            if p.returncode == 0:
                return
            assert self.proc.poll() is None, self.server_log()
            time.sleep(0.05)
        raise AssertionError("postgres did not start:\n" + self.server_log())

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)    # fast shutdown
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.log.close()

    def server_log(self):
        with open(os.path.join(self.dir, "postgres.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def createdb(self, name):
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port),
                 "-U", "salesd", name)
        return self.url(name)

    def url(self, name):
        return "postgresql://salesd@127.0.0.1:%d/%s" % (self.port, name)

    def psql(self, db, sql):
        return self.run("psql", "-h", "127.0.0.1", "-p", str(self.port),
                        "-U", "salesd", "-d", db, "-At", "-c", sql).strip()

    def session(self, db):
        """A psql session on db fed by the test through its stdin: another
        instance's transaction, held open as long as the test wants."""
        return subprocess.Popen(
            self.cmd("psql", "-h", "127.0.0.1", "-p", str(self.port),
                     "-U", "salesd", "-d", db, "-q", "-v", "ON_ERROR_STOP=1"),
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, cwd=self.dir)

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    if not os.path.exists(DRIVER):
        pytest.fail("%s is not built (libpq-dev missing?)" % DRIVER)
    c = Cluster()
    yield c
    c.destroy()


_dbs = [0]


@pytest.fixture
def pgdb(cluster):
    """A fresh database: (name, url)."""
    _dbs[0] += 1
    name = "t%d_%d" % (os.getpid(), _dbs[0])
    return name, cluster.createdb(name)


def pg_server(make_server, url, modules=("orders", "analytics"), env=None,
              **kw):
    # The url through ${DATABASE_URL}, as a deployer would give it.
    return make_server(list(modules), config={
        "storage": {"driver": "postgres", "url": "${DATABASE_URL}"}},
        env=dict(env or {}, DATABASE_URL=url), **kw)


def wait_health(s, status, timeout):
    """Polls /health until it answers status (bounded): (status, body)."""
    deadline = time.time() + timeout
    while True:
        st, _, health = s.get("/health")
        if st == status or time.time() > deadline:
            return st, health
        time.sleep(0.1)


def bulk_orders(insert):
    """insert (an INSERT INTO orders ... SELECT) made fit for psql on a
    large number of rows: the per-row trigger that keeps product_totals
    is off meanwhile (in one transaction, each of its updates of a
    product's row walks that row's earlier versions: 150,000 orders of
    one product take minutes), and the totals are then made from the
    orders at once, as the trigger would have: revenue in whole units
    plus the micro-unit remainder."""
    return ("SET session_replication_role = replica; %s; "
            "INSERT INTO product_totals (product_id, orders, quantity, "
            "revenue_units, revenue_micros) "
            "SELECT product_id, count(*), sum(quantity), "
            "div(sum(quantity * price_micros), 1000000), "
            "mod(sum(quantity * price_micros), 1000000) "
            "FROM orders GROUP BY product_id" % insert)
