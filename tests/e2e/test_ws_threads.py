"""WebSocket fan-out with I/O threads ([server] io_threads = 2): the socket
writes of a slice of pending clients are spread over threads while the
loop thread keeps all client state.  The behaviours that matter are run
again with enough clients that a slice is really split (the pool takes a
share of 16 clients or more): order, filters, partial writes, slow and
stopped clients cut with 1008, shutdown with frames queued, reload.
Under build-tsan (make test-tsan) the log must hold no ThreadSanitizer
report (conftest.py checks every server's log).
"""
import json
import selectors
import signal
import socket
import struct
import threading
import time

from conftest import run_check
from test_ws import KEY, Poster, Raw, frame, subscribe

THREADS = {"server": {"io_threads": 2}}


def config(**server):
    c = {"server": dict(THREADS["server"])}
    c["server"].update({k: str(v) for k, v in server.items()})
    return c


class Client:
    """A WebSocket client on a plain non-blocking socket, read by a Fleet."""

    def __init__(self, port, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall((
            "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n" % KEY).encode())
        self.buf = b""
        self.head = None
        self.messages = []      # text messages, parsed
        self.close_code = None
        self.eof = False

    def feed(self, data):
        self.buf += data
        if self.head is None:
            if b"\r\n\r\n" not in self.buf:
                return
            self.head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            assert self.head.startswith(b"HTTP/1.1 101 "), self.head
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            assert b1 & 0x80 == 0, "server frames are never masked"
            n, at = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, at = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
            if len(self.buf) < at + n:
                return
            payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
            op = b0 & 0x0F
            assert b0 & 0x80, "a whole message in one frame"
            if op == 1:
                self.messages.append(json.loads(payload))
            elif op == 8:
                self.close_code = struct.unpack("!H", payload[:2])[0]
            else:
                assert op in (9, 10), op


class Fleet:
    """Many Clients read by one selector, until a condition holds."""

    def __init__(self, port, n, rcvbuf=None):
        self.clients = [Client(port, rcvbuf) for _ in range(n)]
        self.sel = selectors.DefaultSelector()
        for c in self.clients:
            c.sock.setblocking(False)
            self.sel.register(c.sock, selectors.EVENT_READ, c)
        self.poll(lambda: all(c.head is not None for c in self.clients))

    def poll(self, done, timeout=60, chunk=65536, what="condition"):
        end = time.time() + timeout
        while not done():
            assert time.time() < end, "timed out waiting for " + what
            for key, _ in self.sel.select(0.2):
                c = key.data
                try:
                    data = c.sock.recv(chunk)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionResetError:
                    data = b""
                if not data:
                    c.eof = True
                    self.sel.unregister(c.sock)
                    continue
                c.feed(data)

    def close(self):
        for c in self.clients:
            c.sock.close()
        self.sel.close()


def post_order(srv, i):
    st, _, body = srv.post("/orders", {"product_id": "p%d" % (i % 7),
                                       "quantity": 1, "price": 1.5,
                                       "date": "2025-04-22T10:00:00Z"})
    assert st == 201, body
    return body["id"]


def test_threads_start_and_are_named(make_server):
    srv = make_server(["echo"], config())
    srv.wait_log(r"2 WebSocket I/O threads")


def test_io_threads_is_validated(tmp_path):
    for bad, why in (("65", "out of range (0 to 64)"),
                     ("-1", "out of range (0 to 64)"),
                     ("two", "is not an integer")):
        rc, out = run_check(tmp_path / bad, ["echo"],
                            {"server": {"io_threads": bad}})
        assert rc != 0, out
        assert "[server] io_threads: " in out and why in out, out
    rc, out = run_check(tmp_path / "ok", ["echo"], {"server": {"io_threads": 4}})
    assert rc == 0, out


def test_many_clients_get_new_order_before_update_analytics(make_server):
    srv = make_server(["orders", "analytics"],
                      dict(config(), analytics={"broadcast_interval_ms": 0}))
    fleet = Fleet(srv.port, 120)
    ids = [post_order(srv, i) for i in range(15)]

    def complete(c):
        news = [m for m in c.messages if m["type"] == "newOrder"]
        ups = [m for m in c.messages if m["type"] == "updateAnalytics"]
        return len(news) == len(ids) and ups and \
            ups[-1]["data"]["totalOrders"] == len(ids)

    fleet.poll(lambda: all(complete(c) for c in fleet.clients),
               what="every order and its analytics on every client")
    for c in fleet.clients:
        seen = []
        for m in c.messages:
            if m["type"] == "newOrder":
                seen.append(m["data"]["id"])
            elif m["type"] == "updateAnalytics":
                # An update counts only orders already announced.
                assert m["data"]["totalOrders"] <= len(seen), c.messages
        assert seen == ids
    fleet.close()


def test_filter_with_threads(make_server):
    srv = make_server(["echo"], config())
    fleet = Fleet(srv.port, 80)
    picky = fleet.clients[::2]
    for c in picky:
        c.sock.sendall(frame(1, json.dumps({"type": "subscribe",
                                            "events": ["newOrder"]})))
    fleet.poll(lambda: all(c.messages for c in picky), what="subscribed")
    assert all(c.messages == [{"type": "subscribed", "events": ["newOrder"]}]
               for c in picky)
    post = Poster(srv)
    for i in range(5):
        assert post("updateAnalytics", json.dumps({"n": i})) == 80
        assert post("newOrder", json.dumps({"n": i})) == 80
    post("newOrder", '"end"')

    def ended(c):
        return c.messages and c.messages[-1].get("data") == "end"

    fleet.poll(lambda: all(ended(c) for c in fleet.clients), what="end")
    both = [m for i in range(5) for m in (
        {"type": "updateAnalytics", "data": {"n": i}},
        {"type": "newOrder", "data": {"n": i}})]
    end = {"type": "newOrder", "data": "end"}
    for c in fleet.clients:
        if c in picky:
            assert c.messages[1:] == [m for m in both
                                      if m["type"] == "newOrder"] + [end]
        else:
            assert c.messages == both + [end]
    fleet.close()


def test_partial_writes_keep_frames_whole(make_server):
    # Small receive buffers and small reads: frames of 30 KB go out in
    # pieces, from whichever thread, and arrive whole and in order.
    srv = make_server(["echo"], config())
    fleet = Fleet(srv.port, 40, rcvbuf=4096)
    post = Poster(srv)
    n = 12
    for i in range(n):
        body = json.dumps({"i": i, "pad": chr(97 + i) * 30000})
        assert post("big", body) == 40
    fleet.poll(lambda: all(len(c.messages) == n for c in fleet.clients),
               chunk=1500, what="every big frame")
    for c in fleet.clients:
        for i, m in enumerate(c.messages):
            assert m["data"] == {"i": i, "pad": chr(97 + i) * 30000}
    fleet.close()


def test_slow_and_stopped_clients_are_cut_1008(make_server):
    srv = make_server(["echo"], config(ws_max_buffered=65536))
    slow = Raw(srv.port, rcvbuf=4096)
    stopped = Raw(srv.port, rcvbuf=4096)
    assert subscribe(stopped, {"events": ["newOrder"], "batchMs": 10})[
        "type"] == "subscribed"
    fleet = Fleet(srv.port, 40)
    post = Poster(srv)
    body = json.dumps({"pad": "z" * 20000})
    got = 0
    sent = 0
    reader = threading.Thread(target=fleet.poll, kwargs=dict(
        done=lambda: got and all(len(c.messages) >= got
                                 for c in fleet.clients),
        timeout=120, what="the readers' frames"))
    reader.start()
    for _ in range(400):
        clients = post("newOrder", body)
        sent += 1
        if clients == 40:
            break
    else:
        raise AssertionError("the server kept queueing to non-readers")
    got = sent
    reader.join()
    for c in fleet.clients:
        assert c.close_code is None
        assert len(c.messages) == sent
    for r in (slow, stopped):
        code = None
        end = time.time() + 30
        while code is None and time.time() < end:
            fin, op, data = r.frame()
            if op == 8:
                code = struct.unpack("!H", data[:2])[0]
                assert data[2:] == b"client too slow"
        assert code == 1008
        assert r.eof()
        r.close()
    fleet.close()


def test_shutdown_with_frames_queued(make_server):
    srv = make_server(["echo"], config())
    fleet = Fleet(srv.port, 60)
    batched = Raw(srv.port)
    assert subscribe(batched, {"events": ["newOrder"], "batchMs": 10000})[
        "type"] == "subscribed"
    post = Poster(srv)
    for i in range(5):
        assert post("newOrder", json.dumps({"i": i, "pad": "q" * 2000})) == 61
    assert srv.stop() == 0
    fleet.poll(lambda: all(c.eof for c in fleet.clients), what="EOF")
    for c in fleet.clients:
        assert [m["data"]["i"] for m in c.messages] == list(range(5))
        assert c.close_code == 1001
    # A batch not yet due is dropped (counted), the close still comes.
    batched.expect_close(1001)
    batched.close()
    fleet.close()


def test_reload_keeps_threads_and_says_restart(make_server):
    srv = make_server(["echo"], config())
    fleet = Fleet(srv.port, 40)
    srv.write_config({"server": {"io_threads": 3, "ws_max_buffered": 131072}})
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"\[server\] io_threads: changed; that needs a restart")
    srv.wait_log(r"reloaded .*: 2 changes")
    post = Poster(srv)
    for i in range(3):
        assert post("tick", str(i)) == 40
    fleet.poll(lambda: all(len(c.messages) == 3 for c in fleet.clients),
               what="ticks after the reload")
    assert all([m["data"] for m in c.messages] == [0, 1, 2]
               for c in fleet.clients)
    fleet.close()


def test_clients_reset_mid_fanout(make_server):
    # Clients reset their connection while frames are being written to
    # them, in three waves: a write that fails on some thread (logged at
    # debug as "write: Connection reset by peer" when the reset comes
    # before the read event does) makes the loop thread free the client;
    # the others get every frame.
    srv = make_server(["echo"], config(log_level="debug"))
    fleet = Fleet(srv.port, 150)
    waves = [fleet.clients[k::6] for k in (1, 3, 5)]
    stay = [c for k, c in enumerate(fleet.clients) if k % 2 == 0]
    post = Poster(srv)
    body = json.dumps({"pad": "r" * 4000})
    for i in range(40):
        post("big", body)
        if i in (5, 15, 25):
            for c in waves[(i - 5) // 10]:
                fleet.sel.unregister(c.sock)
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  struct.pack("ii", 1, 0))
                c.sock.close()
    post("big", '"end"')
    fleet.clients = stay
    fleet.poll(lambda: all(c.messages and c.messages[-1]["data"] == "end"
                           for c in stay), what="end")
    for c in stay:
        assert len(c.messages) == 41
    st, _, _ = srv.get("/echo")
    assert st == 200
    end = time.time() + 30
    while post("tick", "0") != len(stay):
        assert time.time() < end, "reset clients still counted"
    fleet.close()
