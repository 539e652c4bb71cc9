"""Storage faults as an operator meets them: a full disk (a real one, a
small tmpfs), the database deleted or replaced underneath the running
server, its -shm made immutable, a SIGBUS, a corrupt or foreign file.
Each is refused rather than acknowledged and lost, shows in /health
with the reason, is logged once, and heals by itself when it can.

Mounting a tmpfs and chattr need root and a filesystem that allows them;
those tests skip otherwise."""
import errno
import os
import signal
import sqlite3
import subprocess
import time

import pytest


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


def test_truncated_database_is_named_as_such(make_server):
    s = filled(make_server, "trunc")
    size = os.path.getsize(s.db)
    assert size > 200000
    os.truncate(s.db, size // 2)
    start_fails(s)


def test_corrupt_pages_are_named_as_such(make_server):
    s = filled(make_server, "corrupt")
    size = os.path.getsize(s.db)
    with open(s.db, "r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(size - size // 2))
    log = start_fails(s)
    assert "the storage error above says why" in log
