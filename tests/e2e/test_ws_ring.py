"""The fan-out's socket writes through io_uring ([server] io_uring, on by
default with io_threads = 0): a slice's sends go to the kernel in one
system call.  The ring is really used (its file descriptor is held and
the start-up says so), every client still gets every frame whole and in
order, also when its sends go in part over many turns, and when the
ring is off, refused by the kernel or left out for I/O threads, the
writes go with send() and nothing else changes.  `make test` also runs
every WebSocket test with io_uring off (SALESD_IO_URING=off).
"""
import os
import signal

import pytest

from conftest import run_check
from test_ops import scrape
from test_ws import Poster
from test_ws_threads import Fleet

DISABLED = "/proc/sys/kernel/io_uring_disabled"
# Said in full: make test-tsan and make test set io_threads and io_uring
# for every server through the environment.
RING = {"server": {"io_uring": "on", "io_threads": 0}}


def ring_fds(srv):
    """The server's io_uring file descriptors."""
    fds = "/proc/%d/fd" % srv.proc.pid
    n = 0
    for fd in os.listdir(fds):
        try:
            n += os.readlink(os.path.join(fds, fd)) == "anon_inode:[io_uring]"
        except FileNotFoundError:
            pass
    return n


def fan_out(srv, clients=60, messages=5, size=0, rcvbuf=None):
    """Broadcasts to a Fleet and checks every client got all, in order."""
    fleet = Fleet(srv.port, clients, rcvbuf)
    post = Poster(srv)
    pad = "x" * size
    for i in range(messages):
        assert post("tick", '{"i":%d,"pad":"%s"}' % (i, pad)) == clients
    fleet.poll(lambda: all(len(c.messages) == messages
                           for c in fleet.clients), what="every frame")
    for c in fleet.clients:
        assert [m["data"]["i"] for m in c.messages] == list(range(messages))
        assert all(len(m["data"]["pad"]) == size for m in c.messages)
    fleet.close()


def test_the_ring_is_used_by_default(make_server, monkeypatch):
    monkeypatch.delenv("SALESD_IO_URING", raising=False)
    monkeypatch.delenv("SALESD_IO_THREADS", raising=False)
    srv = make_server(["echo"])
    srv.wait_log(r"WebSocket writes through io_uring")
    assert ring_fds(srv) == 1
    fan_out(srv)


def slices(srv):
    """(count, sum, count under 1 s) of the slice histogram."""
    m = scrape(srv)
    name = "salesd_websocket_write_slice_seconds"
    return (m[(name + "_count", ())], m[(name + "_sum", ())],
            m[(name + "_bucket", (("le", "1"),))])


@pytest.mark.parametrize("ring", ["on", "off"])
def test_every_slice_is_timed(make_server, ring):
    # 300 clients are more than one slice (256 at most): each broadcast
    # is written over at least two loop turns, and each turn is counted.
    srv = make_server(["echo"], {"server": dict(RING["server"],
                                                io_uring=ring)})
    assert slices(srv)[0] == 0
    fan_out(srv, clients=300, messages=3)
    n, total, under_1s = slices(srv)
    assert n >= 6 and under_1s == n, (n, under_1s)
    assert 0 < total < n, total


def test_sends_that_go_in_part_finish_in_order(make_server):
    # 64 KiB messages to clients with a small receive buffer: most sends
    # through the ring go in part or not at all, and the rest waits for
    # the socket, many loop turns a message.
    srv = make_server(["echo"], {"server": dict(RING["server"],
                                                ws_max_buffered=1 << 22)})
    srv.wait_log(r"WebSocket writes through io_uring")
    fan_out(srv, clients=40, messages=8, size=60000, rcvbuf=4096)


@pytest.mark.parametrize("server", [{"io_uring": "off"}, {"io_threads": 2}])
def test_without_the_ring_writes_go_with_send(make_server, server):
    srv = make_server(["echo"], {"server": server})
    srv.wait_log(r"listening on")
    assert "through io_uring" not in srv.log()
    assert ring_fds(srv) == 0
    fan_out(srv)


def test_a_kernel_that_refuses_io_uring_is_not_an_error(make_server):
    # io_uring_disabled = 2 makes io_uring_setup() fail with EPERM for
    # everyone, as a hardened kernel or a container's policy does.
    try:
        with open(DISABLED) as f:
            was = f.read()
        with open(DISABLED, "w") as f:
            f.write("2")
    except OSError:
        pytest.skip("cannot set " + DISABLED)
    try:
        srv = make_server(["echo"], RING)
        srv.wait_log(r"io_uring: Operation not permitted; WebSocket "
                     r"writes go one send\(\) at a time")
    finally:
        with open(DISABLED, "w") as f:
            f.write(was)
    assert ring_fds(srv) == 0
    fan_out(srv)


def test_io_uring_is_validated_and_read_at_start(make_server, tmp_path):
    rc, out = run_check(tmp_path / "bad", ["echo"],
                        {"server": {"io_uring": "sometimes"}})
    assert rc != 0 and "[server] io_uring: " in out, out
    srv = make_server(["echo"], RING)
    srv.write_config({"server": {"io_uring": "off"}})
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"\[server\] io_uring: changed; that needs a restart")
    assert ring_fds(srv) == 1
    fan_out(srv, clients=20, messages=2)
