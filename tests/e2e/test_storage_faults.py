"""Storage faults as an operator meets them.  SQLite: a full disk (a
real one, a small tmpfs), the database deleted or replaced underneath
the running server, its -shm made immutable, a SIGBUS, a corrupt or
foreign file.  PostgreSQL (make test-postgres): the server restarted
under load, the sessions killed and the database closed to
connections, the database made read-only.  Each is refused rather than
acknowledged and lost (503 with Retry-After), shows in /health with the
reason while reads served from memory go on, and heals by itself.

Mounting a tmpfs and chattr need root and a filesystem that allows them;
those tests skip otherwise.  A full disk under PostgreSQL is not here:
a full pg_wal stops the server (the restart below), and a full
tablespace fails only the statements that extend a table, which no
probe can try without writing a shop's row."""
import errno
import re
import os
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import pg_cluster, postgres_only, sqlite_only


def wait_for(cond, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.02)
    assert cond(), "condition not met in %.1f s" % timeout


def post(s, product):
    return s.post("/orders", {"product_id": product, "quantity": 1,
                              "price": 2.5})


def health(s):
    st, _, body = s.get("/health")
    return st, body


def stored(db):
    c = sqlite3.connect(db)
    try:
        return [r[0] for r in c.execute("SELECT product_id FROM orders "
                                         "ORDER BY id")]
    finally:
        c.close()


def fill(path):
    """Writes to path until its filesystem has no byte left."""
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 16, 4096, 1):
            buf = b"\0" * size
            try:
                while True:
                    f.write(buf)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e


@pytest.fixture
def tmpfs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs",
                        str(mnt)], capture_output=True)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % p.stderr.decode())
    yield str(mnt)
    subprocess.run(["umount", "-l", str(mnt)], check=True)


# SQLite only: fills the filesystem of the SQLite file.
@sqlite_only
def test_disk_full_heals_without_a_write(make_server, tmpfs):
    db = os.path.join(tmpfs, "sales.db")
    s = make_server(["orders"], config={"storage": {"path": db}})
    try:
        assert post(s, "before")[0] == 201
        fill(os.path.join(tmpfs, "fill"))
        for i in range(3):
            st, _, body = post(s, "full%d" % i)
            assert st == 503 and body["error"]["code"] == "storage_error"
        st, h = health(s)
        assert st == 503 and h["status"] == "degraded"
        assert not h["storage"]["writable"]
        assert db in h["storage"]["fault"] and "full" in h["storage"]["fault"]
        commits = h["storage"]["commits"]

        # Space comes back: healthy again with no client write.
        os.unlink(os.path.join(tmpfs, "fill"))
        wait_for(lambda: health(s)[0] == 200)
        st, h = health(s)
        assert h["status"] == "ok" and h["storage"]["fault"] is None
        assert h["storage"]["commits"] == commits
        assert post(s, "after")[0] == 201

        log = s.log()
        assert log.count("storage fault:") == 1, log
        assert "storage recovered" in log
        assert s.stop() == 0
        assert stored(db) == ["before", "after"]
    finally:
        if s.proc is not None:
            s.stop()


# SQLite only: unlinks the SQLite file and its -wal, -shm.
@sqlite_only
def test_deleted_database_refuses_writes(make_server):
    s = make_server(["orders"])
    assert post(s, "kept")[0] == 201
    for suffix in ("", "-wal", "-shm"):
        os.unlink(s.db + suffix)
    # Noticed before anyone writes.
    wait_for(lambda: health(s)[0] == 503)
    st, h = health(s)
    fault = h["storage"]["fault"]
    assert s.db in fault and "deleted" in fault and "restart" in fault
    for i in range(3):
        st, _, body = post(s, "lost%d" % i)
        assert st == 503 and body["error"]["code"] == "storage_error"
    log = s.log()
    assert log.count("storage fault:") == 1, log
    assert "deleted" in log.split("storage fault:")[1].splitlines()[0]
    # The orders module does not repeat it for every request either.
    assert log.count("cannot store") == 1, log


# SQLite only: renames another SQLite file over it.
@sqlite_only
def test_replaced_database_refuses_writes_until_moved_back(make_server):
    s = make_server(["orders"])
    assert post(s, "first")[0] == 201
    other = s.db + ".other"
    c = sqlite3.connect(other)
    c.execute("CREATE TABLE t (x)")
    c.commit()
    c.close()
    os.rename(s.db, s.db + ".orig")
    os.rename(other, s.db)
    st, _, body = post(s, "refused")
    assert st == 503 and body["error"]["code"] == "storage_error"
    st, h = health(s)
    assert st == 503 and "replaced" in h["storage"]["fault"]

    os.rename(s.db + ".orig", s.db)
    wait_for(lambda: health(s)[0] == 200)
    assert post(s, "second")[0] == 201
    assert s.stop() == 0
    assert stored(s.db) == ["first", "second"]


# SQLite only: SQLite's -shm mapping.
@sqlite_only
def test_immutable_shm_is_refused_not_a_crash(make_server):
    s = make_server(["orders"])
    assert post(s, "a")[0] == 201
    shm = s.db + "-shm"
    p = subprocess.run(["chattr", "+i", shm], capture_output=True)
    if p.returncode != 0:
        pytest.skip("chattr +i not possible here: %s" % p.stderr.decode())
    try:
        # Reads write read marks into the -shm: once a SIGBUS.
        assert s.get("/orders?limit=1")[0] == 503
        st, _, body = post(s, "b")
        assert st == 503 and body["error"]["code"] == "storage_error"
        st, h = health(s)
        assert st == 503 and shm in h["storage"]["fault"]
        assert s.proc.poll() is None
    finally:
        subprocess.run(["chattr", "-i", shm], check=True)
    wait_for(lambda: health(s)[0] == 200)
    assert post(s, "c")[0] == 201
    assert s.get("/orders?limit=1")[0] == 200
    assert s.log().count("storage fault:") == 1


# SQLite only: names SQLite's -shm, the one mapped file.
@sqlite_only
def test_sigbus_says_so_and_exits_74(make_server):
    # The handler _exits on purpose with every thread running; TSan would
    # call whichever had just finished a leak, and exit 66 instead.
    tsan = os.environ.get("TSAN_OPTIONS", "")
    s = make_server(["orders"], env={
        "TSAN_OPTIONS": tsan + ":report_thread_leaks=0" if tsan else
        "report_thread_leaks=0"})
    s.proc.send_signal(signal.SIGBUS)
    assert s.stop() == 74
    lines = [l for l in s.log().splitlines() if "SIGBUS" in l]
    assert len(lines) == 1, s.log()
    assert lines[0].startswith("fatal: storage fault (SIGBUS)")
    assert s.db + "-shm" in lines[0] and "restart" in lines[0]


def start_fails(s):
    with pytest.raises(RuntimeError):
        s.start()
    assert s.stop() == 1
    log = s.log()
    assert 'database "%s" is not a valid SQLite database' % s.db in log, log
    assert "migrations" not in log, log
    return log


# SQLite only: writes the SQLite file.
@sqlite_only
def test_garbage_file_is_named_as_such(make_server):
    s = make_server(["orders", "analytics"], start=False)
    with open(s.db, "wb") as f:
        f.write(os.urandom(16384))
    start_fails(s)
    with open(s.db, "wb") as f:
        f.write(b"x" * 50)
    start_fails(s)


def filled(make_server, subdir):
    """A real database of a few hundred KiB, server stopped, no -wal."""
    s = make_server(["orders", "analytics"], subdir=subdir)
    assert s.stop() == 0
    c = sqlite3.connect(s.db)
    c.executemany("INSERT INTO orders (product_id, quantity, price) "
                  "VALUES (?, 1, 2.5)", [("p%d" % i,) for i in range(20000)])
    c.commit()
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    assert not os.path.exists(s.db + "-wal") or \
        os.path.getsize(s.db + "-wal") == 0
    return s


# SQLite only: truncates the SQLite file.
@sqlite_only
def test_truncated_database_is_named_as_such(make_server):
    s = filled(make_server, "trunc")
    size = os.path.getsize(s.db)
    assert size > 200000
    os.truncate(s.db, size // 2)
    start_fails(s)


# SQLite only: overwrites the SQLite file's pages.
@sqlite_only
def test_corrupt_pages_are_named_as_such(make_server):
    s = filled(make_server, "corrupt")
    size = os.path.getsize(s.db)
    with open(s.db, "r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(size - size // 2))
    log = start_fails(s)
    assert "the storage error above says why" in log


# -- PostgreSQL ------------------------------------------------------------

class Load:
    """Clients posting one order each, in threads, until stopped (at most
    limit orders and seconds): every answer is kept.  pause() waits until
    no post is under way and lets none start until resume()."""

    def __init__(self, s, clients=3, limit=3000, seconds=180):
        self.s = s
        self.acked = []         # ids answered 201
        self.refused = []       # (status, Retry-After, error code) of the rest
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.go = threading.Event()
        self.go.set()
        self.busy = 0
        self.deadline = time.time() + seconds
        self.limit = limit
        self.threads = [threading.Thread(target=self.run, args=(i,))
                        for i in range(clients)]
        for t in self.threads:
            t.start()

    def run(self, i):
        while not self.done.is_set() and time.time() < self.deadline and \
                len(self.acked) + len(self.refused) < self.limit:
            with self.lock:
                go = self.go.is_set()
                self.busy += go
            if not go:
                self.go.wait(0.1)
                continue
            try:
                st, h, body = self.s.post("/orders", {
                    "product_id": "c%d" % i, "quantity": 1, "price": 2.5},
                    timeout=60)
            except OSError as e:
                st, h, body = None, {}, {"error": {"code": repr(e)}}
            with self.lock:
                self.busy -= 1
                if st == 201:
                    self.acked.append(body["id"])
                else:
                    self.refused.append((st, h.get("retry-after"),
                                         body["error"]["code"]))
            if st != 201:
                time.sleep(0.02)        # a client honouring the refusal

    def pause(self):
        with self.lock:
            self.go.clear()
        wait_for(lambda: self.busy == 0, 90)

    def resume(self):
        self.go.set()

    def counts(self):
        with self.lock:
            return len(self.acked), len(self.refused)

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(90)
        assert not any(t.is_alive() for t in self.threads)


def pg_fault_under_load(s, break_it, fix_it, fault):
    """Orders posted by three clients while break_it() takes the database
    away from s and fix_it() gives it back: every 201 is stored, the rest
    are 503 with Retry-After; meanwhile /health says degraded with a
    fault matching fault (a regex) and /analytics answers from memory;
    the store heals with no client's help."""
    load = Load(s)
    try:
        wait_for(lambda: load.counts()[0] >= 20, 60)
        before = s.get("/analytics")[2]["totalOrders"]
        break_it()
        try:
            wait_for(lambda: load.counts()[1] >= 3, 60)
            wait_for(lambda: health(s)[0] == 503, 30)
            st, h = health(s)
            assert h["status"] == "degraded" and not h["storage"]["writable"]
            assert re.search(fault, h["storage"]["fault"]), h
            st, _, a = s.get("/analytics")
            assert st == 200 and a["totalOrders"] >= before, a
            load.pause()
            commits = health(s)[1]["storage"]["commits"]
        finally:
            fix_it()
        # Healthy again with no client's write.
        wait_for(lambda: health(s)[0] == 200, 60)
        st, h = health(s)
        assert h["status"] == "ok" and h["storage"]["fault"] is None, h
        assert h["storage"]["commits"] == commits
        load.resume()
        acked = load.counts()[0]
        wait_for(lambda: load.counts()[0] >= acked + 20, 90)
    finally:
        load.resume()
        load.stop()
    assert health(s)[0] == 200
    assert load.refused, "no order was refused"
    for st, retry, code in load.refused:
        assert st == 503 and retry and code == "storage_error", load.refused
    stored = {r[0] for r in s.sql("SELECT id FROM orders")}
    assert set(load.acked) <= stored
    assert len(load.acked) == len(set(load.acked))
    # Memory agrees with the database again (a refused order may have
    # been committed when its answer was lost: it counts on both sides).
    wait_for(lambda: s.get("/analytics")[2]["totalOrders"] == len(stored),
             30)
    log = s.log()
    assert "storage fault:" in log and "storage recovered" in log, log
    return load


@postgres_only
def test_pg_restart_under_load(make_server):
    """The database server stopped (fast shutdown) and started again while
    three clients post."""
    s = make_server(["orders", "analytics"])
    pg = pg_cluster()
    pg_fault_under_load(s, pg.stop, pg.start, r"unreachable|connection")


@postgres_only
def test_pg_sessions_killed_and_database_closed(make_server):
    """An operator closes the database to connections and terminates its
    sessions (pg_terminate_backend), then opens it again."""
    s = make_server(["orders", "analytics"])
    pg, db = pg_cluster(), s.pg_db

    def close():
        pg.psql("postgres", "ALTER DATABASE %s ALLOW_CONNECTIONS false" % db)
        assert pg.psql("postgres", "SELECT count(pg_terminate_backend(pid)) "
                       "FROM pg_stat_activity WHERE datname = '%s'" % db) \
            != "0"

    pg_fault_under_load(s, close, lambda: pg.psql(
        "postgres", "ALTER DATABASE %s ALLOW_CONNECTIONS true" % db),
        r"not currently accepting connections|unreachable")
    assert "connected again" in s.log()


@postgres_only
def test_pg_read_only_database(make_server):
    """default_transaction_read_only turned on for the server (ALTER
    SYSTEM and a reload, as for a database about to be moved): every
    session, salesd's included, turns read-only at once, and back."""
    s = make_server(["orders", "analytics"])
    pg = pg_cluster()

    def read_only(on):
        pg.psql("postgres", "ALTER SYSTEM %s default_transaction_read_only%s"
                % (("SET", " = on") if on else ("RESET", "")))
        pg.psql("postgres", "SELECT pg_reload_conf()")

    try:
        pg_fault_under_load(s, lambda: read_only(True),
                            lambda: read_only(False), r"read-only")
    finally:
        read_only(False)
    # One line for the episode, however many groups and probes failed.
    assert s.log().count("storage fault:") == 1, s.log()
