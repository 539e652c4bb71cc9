"""The order feed: every instance publishes every committed order once,
in id (= commit) order, whichever instance stored it.

One instance on each driver: ids are given by the database and follow
commit order, and each newOrder frame carries the very bytes of the 201
that stored it.  Two instances on one PostgreSQL database: a WebSocket
client of either sees the orders posted to both, in one order, exactly
once; and a PostgreSQL restart, which cuts every instance's listener,
loses none of the orders acknowledged around it.
"""
import base64
import http.client
import json
import os
import signal
import socket
import struct
import threading
import time

from pg import cluster, pg_server, pgdb, wait_health  # noqa: F401


class Feed:
    """A raw WebSocket client that keeps every newOrder payload (bytes)."""

    def __init__(self, srv):
        self.sock = socket.create_connection(("127.0.0.1", srv.port), 10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n" % key).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, "closed during the handshake"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.orders = []
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send(self, opcode, payload):
        mask = os.urandom(4)
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) +
                          mask + data)

    def _read(self):
        self.sock.settimeout(None)
        try:
            while True:
                b0, b1 = self._need(2)
                n = b1 & 0x7f
                if n == 126:
                    n = struct.unpack("!H", self._need(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", self._need(8))[0]
                payload = self._need(n)
                op = b0 & 0x0f
                if op == 0x9:
                    self._send(0xA, payload)
                elif op == 0x8:
                    break
                elif op == 0x1:
                    # {"type":"newOrder","data":<the order's bytes>}
                    prefix = b'{"type":"newOrder","data":'
                    if payload.startswith(prefix):
                        with self.lock:
                            self.orders.append(payload[len(prefix):-1])
        except (EOFError, OSError):
            pass
        self.closed = True

    def ids(self):
        with self.lock:
            return [json.loads(o)["id"] for o in self.orders]

    def wait(self, count, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.orders) >= count:
                    break
            time.sleep(0.02)
        with self.lock:
            return list(self.orders)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def post_raw(srv, body, timeout=30):
    """POST /orders: (status, raw body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    c.request("POST", "/orders", body=json.dumps(body),
              headers={"Content-Type": "application/json",
                       "Host": "localhost"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def split_orders(raw):
    """The bytes of each order of a 201 body, as a client got them."""
    if not raw.startswith(b'{"orders":['):
        return [raw]
    out, depth, start = [], 0, None
    inner = raw[len(b'{"orders":['):-2]
    in_str = esc = False
    for i, ch in enumerate(inner):
        c = chr(ch)
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
            continue
        if c == '"':
            in_str = True
        elif c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                out.append(inner[start:i + 1])
    return out


def order(i, n=1):
    o = {"product_id": "p%d" % (i % 7), "quantity": 1 + i % 3,
         "price": round(0.1 * (1 + i % 5), 2)}
    return o if n == 1 else [dict(o, product_id="b%d-%d" % (i, k))
                             for k in range(n)]


def post_many(servers, count, stored, errors):
    """Posts count bodies round robin over servers (a batch of 3 every
    fifth), appending each acknowledged order's bytes to stored."""
    for i in range(count):
        srv = servers[i % len(servers)]
        st, raw = post_raw(srv, order(i, 3 if i % 5 == 4 else 1))
        if st == 201:
            stored.extend(split_orders(raw))
        else:
            errors.append((st, raw))


def check_feed(feed, stored, timeout=60):
    got = feed.wait(len(stored), timeout)
    # Exactly once, in id order, the 201's very bytes.
    ids = [json.loads(o)["id"] for o in got]
    assert len(got) == len(stored), (len(got), len(stored))
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    assert sorted(got, key=lambda o: json.loads(o)["id"]) == \
        sorted(stored, key=lambda o: json.loads(o)["id"])
    return ids




def concurrent(servers, threads, per_thread):
    stored, errors = [], []
    lock = threading.Lock()

    def run(k):
        mine, errs = [], []
        post_many(servers[k % len(servers):] + servers[:k % len(servers)],
                  per_thread, mine, errs)
        with lock:
            stored.extend(mine)
            errors.extend(errs)

    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors[:3]
    return stored


def test_one_instance_sqlite(make_server):
    s = make_server(["orders"])
    feed = Feed(s)
    try:
        stored = concurrent([s], 4, 25)
        ids = check_feed(feed, stored)
        # Ids from the database: 1, 2, ... with no gap.
        assert ids == list(range(1, len(ids) + 1))
    finally:
        feed.close()


def test_one_instance_postgres(make_server, cluster, pgdb):
    name, url = pgdb
    s = pg_server(make_server, url, modules=("orders",))
    feed = Feed(s)
    try:
        stored = concurrent([s], 4, 25)
        ids = check_feed(feed, stored)
        assert ids == list(range(1, len(ids) + 1))
        assert cluster.psql(name, "SELECT count(*) FROM orders") == \
            str(len(ids))
    finally:
        feed.close()


def test_two_instances_one_feed(make_server, cluster, pgdb):
    name, url = pgdb
    a = pg_server(make_server, url, modules=("orders",))
    b = pg_server(make_server, url, modules=("orders",))
    fa, fb = Feed(a), Feed(b)
    try:
        # Posted to A only: B's client sees them as A's does.
        stored = []
        post_many([a], 20, stored, [])
        assert len(stored) == 28
        assert check_feed(fb, stored) == check_feed(fa, stored)
        # Both at once, from several clients: one order everywhere.
        stored += concurrent([a, b], 4, 20)
        ia, ib = check_feed(fa, stored), check_feed(fb, stored)
        assert ia == ib == list(range(1, len(stored) + 1))
        assert fa.wait(len(stored)) == fb.wait(len(stored))
    finally:
        fa.close()
        fb.close()
    # Each instance's own orders left its fast path; nothing twice.
    assert "cannot read new orders" not in a.log() + b.log()


def test_database_restart_loses_no_order(make_server, cluster, pgdb):
    """A restart cuts every listener.  B is frozen across it, so that A's
    orders after the restart commit before B listens again and no later
    notice tells B of them: only the catch-up after its reconnect does."""
    name, url = pgdb
    a = pg_server(make_server, url, modules=("orders",))
    b = pg_server(make_server, url, modules=("orders",))
    fa, fb = Feed(a), Feed(b)
    try:
        stored = []
        post_many([a, b], 10, stored, [])
        check_feed(fb, stored)
        b.proc.send_signal(signal.SIGSTOP)
        try:
            cluster.stop()
            try:
                st, _ = post_raw(a, order(1))
                assert st == 503
            finally:
                cluster.start()
            # A takes orders again once its writer has reconnected.
            deadline = time.time() + 60
            while time.time() < deadline and len(stored) < 15:
                st, raw = post_raw(a, order(len(stored)))
                if st == 201:
                    stored.extend(split_orders(raw))
                else:
                    time.sleep(0.05)
            assert len(stored) == 15
        finally:
            b.proc.send_signal(signal.SIGCONT)
        # Well before the module's minute timer could write anything.
        ia, ib = check_feed(fa, stored), check_feed(fb, stored, 30)
        assert ia == ib
        b.wait_log(r"listening for the commits of other instances again")
        assert wait_health(b, 200, 60)[0] == 200
        post_many([b, a], 6, stored, [])
        assert check_feed(fa, stored) == check_feed(fb, stored)
    finally:
        fa.close()
        fb.close()
