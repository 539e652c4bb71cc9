"""WebSocket end to end (docs/PROTOCOL.md): the real salesd with the echo
test module, driven by the websockets library and by a raw-frame client
for what a library will not send (bad masking, bad UTF-8, fragments).
"""
import asyncio
import base64
import concurrent.futures
import json
import os
import socket
import struct
import time

import websockets

# -- raw frames --------------------------------------------------------------

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def frame(opcode, payload=b"", fin=True, mask=True):
    """One client frame; masked unless mask is False."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_frame(code, reason=b""):
    return frame(8, struct.pack("!H", code) + reason)


class Raw:
    """A WebSocket client on a plain socket."""

    def __init__(self, port, path="/", rcvbuf=None, timeout=10):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.sock.sendall((
            "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n" % (path, port, KEY)).encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, "connection closed during the handshake"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.head = head.decode()
        assert self.head.startswith("HTTP/1.1 101 "), self.head
        assert ("sec-websocket-accept: " + ACCEPT.lower()) in self.head.lower()

    def send(self, data):
        self.sock.sendall(data)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        """(fin, opcode, payload) of the next server frame."""
        b0, b1 = self._need(2)
        assert b1 & 0x80 == 0, "server frames are never masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._need(n)

    def message(self):
        """Next text message as JSON, skipping control frames."""
        while True:
            fin, op, data = self.frame()
            if op == 1:
                assert fin
                return json.loads(data)
            assert op in (9, 10), (op, data)

    def expect_close(self, code):
        """The next non-data frame is a close with code; then EOF."""
        while True:
            fin, op, data = self.frame()
            if op == 8:
                break
            assert op in (1, 9, 10), op
        assert len(data) >= 2
        assert struct.unpack("!H", data[:2])[0] == code, data
        data[2:].decode("utf-8")
        assert self.eof()
        return data[2:]

    def eof(self):
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


# -- websockets-library helpers --------------------------------------------

def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def recv_json(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def connect(url):
    return websockets.connect(url, ping_interval=None, close_timeout=5,
                              open_timeout=10)


def post_broadcast(srv, type_, body):
    st, _, data = srv.post("/echo/broadcast?type=" + type_, body)
    assert st == 202, (st, data)
    return data["clients"]


# -- tests -------------------------------------------------------------------

def test_echo_round_trip_on_both_paths(make_server):
    srv = make_server(["echo"])

    async def go():
        for path in ("/", "/ws"):
            async with connect("ws://127.0.0.1:%d%s" % (srv.port, path)) as ws:
                await ws.send(json.dumps({"type": "echo",
                                          "data": {"x": [1, "é", None]}}))
                assert await recv_json(ws) == {"type": "echo",
                                               "data": {"x": [1, "é", None]}}
                await ws.send(json.dumps({"type": "echo", "data": "s\"q"}))
                assert await recv_json(ws) == {"type": "echo", "data": "s\"q"}
                await ws.send(json.dumps({"type": "echo"}))
                assert await recv_json(ws) == {"type": "echo", "data": None}
    run(go())


def test_errors_keep_the_connection_open(make_server):
    srv = make_server(["echo"])

    async def go():
        async with connect(srv.ws_url) as ws:
            await ws.send(json.dumps({"type": "nope", "data": 1}))
            m = await recv_json(ws)
            assert m["type"] == "error"
            assert m["data"]["code"] == "unknown_type"
            assert "nope" in m["data"]["message"]
            await ws.send("{not json")
            m = await recv_json(ws)
            assert m["type"] == "error" and m["data"]["code"] == "bad_json"
            assert isinstance(m["data"]["message"], str)
            for bad in ('[1,2]', '{"data":1}', '{"type":3}', '"x"'):
                await ws.send(bad)
                m = await recv_json(ws)
                assert m["type"] == "error", bad
                assert m["data"]["code"] in ("bad_message", "unknown_type"), m
            await ws.send(json.dumps({"type": "echo", "data": 7}))
            assert await recv_json(ws) == {"type": "echo", "data": 7}
    run(go())


def test_subscribe_filters_broadcasts(make_server):
    srv = make_server(["echo"])

    async def go():
        async with connect(srv.ws_url) as a, connect(srv.ws_url) as b:
            await a.send(json.dumps({"type": "subscribe",
                                     "events": ["newOrder"]}))
            assert await recv_json(a) == {"type": "subscribed",
                                          "events": ["newOrder"]}
            assert post_broadcast(srv, "updateAnalytics", {"n": 1}) == 2
            assert post_broadcast(srv, "newOrder", {"n": 2}) == 2
            # b, unsubscribed, gets everything in order; a only newOrder.
            assert await recv_json(b) == {"type": "updateAnalytics",
                                          "data": {"n": 1}}
            assert await recv_json(b) == {"type": "newOrder", "data": {"n": 2}}
            assert await recv_json(a) == {"type": "newOrder", "data": {"n": 2}}
            # Replies to a's own requests are not filtered.
            await a.send(json.dumps({"type": "echo", "data": 1}))
            assert await recv_json(a) == {"type": "echo", "data": 1}
            await a.send(json.dumps({"type": "nope"}))
            assert (await recv_json(a))["type"] == "error"
            # "*" means everything again.
            await a.send(json.dumps({"type": "subscribe", "events": ["*"]}))
            assert await recv_json(a) == {"type": "subscribed",
                                          "events": ["*"]}
            post_broadcast(srv, "updateAnalytics", {"n": 3})
            assert await recv_json(a) == {"type": "updateAnalytics",
                                          "data": {"n": 3}}
            assert await recv_json(b) == {"type": "updateAnalytics",
                                          "data": {"n": 3}}
            await a.send(json.dumps({"type": "subscribe", "events": "x"}))
            assert (await recv_json(a))["data"]["code"] == "bad_message"
    run(go())


def test_ping_pong(make_server):
    srv = make_server(["echo"])

    async def go():
        async with connect(srv.ws_url) as ws:
            waiter = await ws.ping(b"hello")
            await asyncio.wait_for(waiter, 5)
    run(go())
    r = Raw(srv.port)
    r.send(frame(9, b"abc"))
    assert r.frame() == (True, 10, b"abc")
    r.close()


def test_close_code_is_echoed(make_server):
    srv = make_server(["echo"])

    async def go():
        async with connect(srv.ws_url) as ws:
            await ws.close(4001, "bye")
            assert ws.close_code == 4001
            assert ws.close_reason == "bye"
    run(go())
    r = Raw(srv.port, "/ws")
    r.send(close_frame(1000, "done".encode()))
    assert r.expect_close(1000) == b"done"
    r.close()


def test_fragmented_message_is_reassembled(make_server):
    srv = make_server(["echo"])
    r = Raw(srv.port)
    text = json.dumps({"type": "echo", "data": {"parts": "one-two-three"}})
    a, b = len(text) // 3, 2 * len(text) // 3
    r.send(frame(1, text[:a], fin=False))
    r.send(frame(0, text[a:b], fin=False))
    r.send(frame(9, b"mid"))       # a control frame between fragments
    r.send(frame(0, text[b:], fin=True))
    assert r.frame() == (True, 10, b"mid")
    assert r.message() == {"type": "echo", "data": {"parts": "one-two-three"}}
    r.close()


def test_invalid_utf8_is_1007(make_server):
    srv = make_server(["echo"])
    for bad in (b'{"type":"echo","data":"\xc3\x28"}',
                b'{"type":"echo","data":"\xed\xa0\x80"}',
                b'{"type":"echo","data":"\xc0\xaf"}'):
        r = Raw(srv.port)
        r.send(frame(1, bad))
        r.expect_close(1007)
        r.close()
    # Split inside a character across fragments is still valid.
    r = Raw(srv.port)
    text = '{"type":"echo","data":"€"}'.encode()
    cut = text.index(b"\xe2") + 1
    r.send(frame(1, text[:cut], fin=False))
    r.send(frame(0, text[cut:]))
    assert r.message() == {"type": "echo", "data": "€"}
    r.close()


def test_binary_is_1003_and_unmasked_is_1002(make_server):
    srv = make_server(["echo"])
    r = Raw(srv.port)
    r.send(frame(2, b"\x00\x01\x02"))
    r.expect_close(1003)
    r.close()
    r = Raw(srv.port)
    r.send(frame(1, '{"type":"echo"}', mask=False))
    r.expect_close(1002)
    r.close()


def test_oversize_is_1009(make_server):
    srv = make_server(["echo"], {"server": {"ws_max_message": 1024}})
    r = Raw(srv.port)
    small = json.dumps({"type": "echo", "data": "x" * 900})
    r.send(frame(1, small))
    assert r.message()["data"] == "x" * 900
    r.send(frame(1, json.dumps({"type": "echo", "data": "x" * 2000})))
    r.expect_close(1009)
    r.close()
    # The limit is on the whole message, not each fragment.
    r = Raw(srv.port)
    for _ in range(3):
        r.send(frame(1 if _ == 0 else 0, "y" * 600, fin=False))
    r.expect_close(1009)
    r.close()


def test_slow_client_is_closed_1008(make_server):
    srv = make_server(["echo"], {"server": {"ws_max_buffered": 65536}})
    slow = Raw(srv.port, rcvbuf=4096)
    body = json.dumps({"pad": "z" * 60000})
    gone = False
    for _ in range(300):
        if post_broadcast(srv, "big", body) == 0:
            gone = True
            break
    assert gone, "the server kept queueing to a client that reads nothing"
    frames = 0
    code = None
    deadline = time.time() + 20
    while time.time() < deadline:
        fin, op, data = slow.frame()
        if op == 1:
            frames += 1
            assert json.loads(data)["type"] == "big"
        elif op == 8:
            code = struct.unpack("!H", data[:2])[0]
            assert data[2:] == b"client too slow"
            break
    assert code == 1008
    assert slow.eof()
    slow.close()
    # The server still serves others.
    st, _, _ = srv.get("/echo")
    assert st == 200

    async def go():
        async with connect(srv.ws_url) as ws:
            await ws.send(json.dumps({"type": "echo", "data": 1}))
            assert await recv_json(ws) == {"type": "echo", "data": 1}
    run(go())


def test_idle_ping(make_server):
    srv = make_server(["echo"], {"server": {"ws_ping_interval_ms": 100}})
    r = Raw(srv.port)
    fin, op, _ = r.frame()
    assert op == 9
    # A client that never answers is dropped after a few intervals.
    assert r.eof()
    r.close()


def test_shutdown_sends_1001(make_server):
    srv = make_server(["echo"])
    r = Raw(srv.port)
    r.send(frame(1, '{"type":"echo","data":0}'))
    assert r.message() == {"type": "echo", "data": 0}
    assert srv.stop() == 0
    r.expect_close(1001)
    r.close()


# -- output memory -----------------------------------------------------------

def sanitized():
    """ASan keeps freed memory in quarantine: RSS bounds mean nothing."""
    try:
        with open(os.path.join(os.environ.get("SALESD_BUILD", "build"),
                               "CMakeCache.txt")) as f:
            return "SALES_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


def proc_kib(srv, field):
    with open("/proc/%d/status" % srv.proc.pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


class Poster:
    """POST /echo/broadcast on one keep-alive connection."""

    def __init__(self, srv):
        self.c = srv.conn()

    def __call__(self, type_, body):
        self.c.request("POST", "/echo/broadcast?type=" + type_, body=body,
                       headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        data = json.loads(r.read())
        assert r.status == 202, (r.status, data)
        return data["clients"]


def drain_to_close(r, deadline=30):
    """Reads r's frames up to its close; returns (text frames, code)."""
    frames = 0
    end = time.time() + deadline
    while time.time() < end:
        fin, op, data = r.frame()
        if op == 1:
            frames += 1
        elif op == 8:
            return frames, struct.unpack("!H", data[:2])[0]
    raise AssertionError("no close frame")


def test_slow_clients_cost_their_limit_in_real_bytes(make_server):
    # Small messages: the old output path spent about 1 KiB of evbuffer
    # bookkeeping on each reference, 7 times what ws_max_buffered said.
    limit = 256 * 1024
    n = 20
    srv = make_server(["echo"], {"server": {"ws_max_buffered": limit}})
    post = Poster(srv)
    body = json.dumps({"id": 12345, "product": "p" * 200, "amount": 9.5})
    post("warm", body)
    before = proc_kib(srv, "VmHWM")
    slow = [Raw(srv.port, rcvbuf=4096) for _ in range(n)]
    for _ in range(20000):
        if post("newOrder", body) == 0:
            break
    else:
        raise AssertionError("the server kept queueing to non-readers")
    grew = (proc_kib(srv, "VmHWM") - before) * 1024
    # All at once: each close must flush within the server's 2 s grace,
    # which one after the other would not, on a loaded machine.
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        for frames, code in pool.map(drain_to_close, slow):
            assert code == 1008 and frames > 0
    for r in slow:
        r.close()
    log = srv.log()
    assert log.count("too slow") >= n, log
    if not sanitized():
        assert grew < n * limit * 2, "VmHWM grew %d bytes" % grew


def test_a_cut_client_that_keeps_reading_gets_its_close(make_server):
    # The close grace counts from the last byte written, not from the
    # cut: a client with more in flight than it reads in 2 s still gets
    # the 1008 after the frames already queued to it.
    srv = make_server(["echo"], {"server": {"ws_max_buffered": 256 * 1024}})
    post = Poster(srv)
    body = json.dumps({"pad": "s" * 2000})
    r = Raw(srv.port, rcvbuf=4096)
    for _ in range(5000):
        if post("newOrder", body) == 0:
            break
    else:
        raise AssertionError("the client was never cut")
    start = time.time()
    got = total = 0
    while True:
        try:
            fin, op, data = r.frame()
        except EOFError:
            raise AssertionError("EOF after %d bytes, %.1f s"
                                 % (total, time.time() - start))
        if op == 8:
            break
        total += len(data)
        got += len(data)
        if got >= 16 * 1024 and time.time() - start < 4:
            # Slow for a while (64 KiB/s): our close is still queued
            # behind the frames the kernel could not take when the
            # grace since the cut runs out.  Then it reads at full speed.
            got = 0
            time.sleep(0.25)
    assert struct.unpack("!H", data[:2])[0] == 1008
    r.close()


def metric(srv, name):
    st, _, text = srv.get("/metrics")
    assert st == 200
    if isinstance(text, bytes):
        text = text.decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(name)


def test_output_budget_cuts_the_biggest_first(make_server):
    import re
    srv = make_server(["echo"], {"server": {
        "ws_max_buffered": 8 * 1024 * 1024,
        "max_output_memory": 1024 * 1024}})
    post = Poster(srv)
    body = json.dumps({"pad": "q" * 1000})
    cuts0 = metric(srv, "salesd_output_memory_cuts_total")
    seq = [0]

    async def go():
        async with connect(srv.ws_url) as fast:
            slow = []
            # Each slow client joins later than the one before: it holds
            # less, and is cut later.
            for _ in range(4):
                slow.append(Raw(srv.port, rcvbuf=4096))
                for _ in range(100):
                    seq[0] += 1
                    post("newOrder", json.dumps({"n": seq[0],
                                                 "pad": body}))
                    m = await recv_json(fast)
                    assert m["data"]["n"] == seq[0]
            # A cut client is read from then on, in a thread, as a client
            # that stops being slow would be: the server gives up on a
            # close frame nobody reads for 2 s, and under a sanitizer the
            # posts that cut the others can take longer than that.
            drains = []
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                while True:
                    seq[0] += 1
                    left = post("newOrder", json.dumps({"n": seq[0],
                                                        "pad": body}))
                    m = await recv_json(fast)
                    assert m["data"]["n"] == seq[0]
                    while len(drains) < 5 - left:
                        drains.append(pool.submit(drain_to_close,
                                                  slow[len(drains)]))
                    if left <= 1:
                        break
                    assert seq[0] < 20000, "no cut"
                for d in drains:
                    frames, code = d.result()
                    assert code == 1008
            for r in slow:
                r.close()
    run(go())
    assert metric(srv, "salesd_output_memory_cuts_total") - cuts0 >= 4
    ids = [int(x) for x in re.findall(r"client (\d+) cut by max_output_memory",
                                      srv.log())]
    assert len(ids) >= 4 and ids[:4] == sorted(ids[:4]), srv.log()


# -- protocol errors: close 1002 (RFC 6455 7.4.1) ------------------------------

def raw_frame(b0, b1, rest=b""):
    return bytes([b0, b1]) + rest


def test_protocol_errors_close_with_1002(make_server):
    srv = make_server(["echo"])
    mask = b"\x00\x00\x00\x00"
    shapes = {
        "ping 126 bytes": frame(9, b"x" * 126),
        "fragmented ping": frame(9, b"x", fin=False),
        "close 1 byte": frame(8, b"\x03"),
        "reserved opcode 3": frame(3, b"x"),
        "reserved opcode 11": frame(11, b"x"),
        "rsv1": bytes([0xC1]) + frame(1, b"{}")[1:],
        "rsv3": bytes([0x91]) + frame(1, b"{}")[1:],
        "unmasked": frame(1, b"{}", mask=False),
        "continuation first": frame(0, b"x"),
        "text inside fragments": frame(1, b"[", fin=False) + frame(1, b"1"),
        "close 1005": close_frame(1005),
        "close 1006": close_frame(1006),
        "close 999": close_frame(999),
        "close 5000": close_frame(5000),
        "64-bit high bit": raw_frame(0x81, 0x80 | 127,
                                     b"\x80" + b"\x00" * 7 + mask),
    }
    for name, data in shapes.items():
        r = Raw(srv.port)
        r.send(data)
        try:
            fin, op, payload = r.frame()
        except EOFError:
            raise AssertionError("%s: no close frame" % name)
        assert op == 8, (name, op)
        assert len(payload) >= 2, "%s: close without a code" % name
        code = struct.unpack("!H", payload[:2])[0]
        assert code == 1002, (name, code)
        assert r.eof(), name
        r.close()
    # Bad UTF-8 in a close reason is 1007.
    r = Raw(srv.port)
    r.send(close_frame(1000, b"\xc3\x28"))
    r.expect_close(1007)
    r.close()
    # The server is fine.
    r = Raw(srv.port)
    r.send(frame(1, '{"type":"echo","data":1}'))
    assert r.message() == {"type": "echo", "data": 1}
    r.close()


# -- idle clients ------------------------------------------------------------

def open_idle(port, n, deadline=60):
    """n WebSocket clients on plain sockets, handshakes done, none reading."""
    import selectors
    req = ("GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n" % (port, KEY)).encode()
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(req)
        socks.append(s)
    sel = selectors.DefaultSelector()
    heads = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        heads[s] = b""
    end = time.time() + deadline
    while heads and time.time() < end:
        for key, _ in sel.select(1):
            s = key.fileobj
            chunk = s.recv(4096)
            assert chunk, "connection closed during the handshake"
            heads[s] += chunk
            if b"\r\n\r\n" in heads[s]:
                assert heads[s].startswith(b"HTTP/1.1 101 "), heads[s]
                sel.unregister(s)
                del heads[s]
    assert not heads, "%d handshakes unanswered" % len(heads)
    sel.close()
    return socks


def test_idle_client_costs_under_4k(make_server):
    import resource
    n = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 500), hard))
    srv = make_server(["echo"], {"server": {"max_connections": n + 300}})
    # The first clients grow the loop's tables; count those after them.
    warm = open_idle(srv.port, 200)
    before = proc_kib(srv, "VmRSS")
    idle = open_idle(srv.port, n)
    per = (proc_kib(srv, "VmRSS") - before) * 1024 / n
    print("RSS per idle client: %.0f bytes" % per)
    # They are all still served.
    assert post_broadcast(srv, "tick", {"n": 1}) == n + 200
    for s in idle[:10]:
        s.setblocking(True)
        s.settimeout(10)
        r = b""
        while b"tick" not in r:
            r += s.recv(4096)
    for s in warm + idle:
        s.close()
    if not sanitized():
        assert per < 4096, "%.0f bytes of RSS per idle client" % per


def test_state_survives_between_reads(make_server):
    # An idle client holds no wslay context; one is made for the next
    # input.  A message open across reads, a frame dribbled a byte at a
    # time and the subscription must all outlive that.
    srv = make_server(["echo"])
    r = Raw(srv.port)
    r.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    r.send(frame(1, json.dumps({"type": "subscribe", "events": ["a"]})))
    assert r.message()["type"] == "subscribed"
    text = json.dumps({"type": "echo", "data": "across reads"})
    r.send(frame(1, text[:10], fin=False))
    # The pong says the server has read the first fragment.
    r.send(frame(9, b"p1"))
    assert r.frame() == (True, 10, b"p1")
    r.send(frame(0, text[10:], fin=True))
    assert r.message() == {"type": "echo", "data": "across reads"}
    for b in frame(1, json.dumps({"type": "echo", "data": 7})):
        r.send(bytes([b]))
    assert r.message() == {"type": "echo", "data": 7}
    post_broadcast(srv, "b", {"n": 0})
    post_broadcast(srv, "a", {"n": 1})
    assert r.message() == {"type": "a", "data": {"n": 1}}
    r.send(close_frame(1000))
    r.expect_close(1000)
    r.close()


# -- batched delivery ----------------------------------------------------------

def subscribe(r, msg):
    r.send(frame(1, json.dumps(dict(msg, type="subscribe"))))
    return r.message()


def test_batched_new_orders(make_server):
    srv = make_server(["echo"])
    plain = Raw(srv.port)
    batched = Raw(srv.port)
    assert subscribe(batched, {"events": ["newOrder", "tick"],
                               "batchMs": 10000}) == {
        "type": "subscribed", "events": ["newOrder", "tick"],
        "batchMs": 10000}
    post = Poster(srv)
    for i in range(5):
        assert post("newOrder", json.dumps({"id": i})) == 2
    # Any other message to the client sends the batch before it: the
    # order of what the server says is kept.
    post("tick", "{}")
    assert batched.message() == {"type": "newOrders",
                                 "data": [{"id": i} for i in range(5)]}
    assert batched.message() == {"type": "tick", "data": {}}
    for i in range(5):
        assert plain.message() == {"type": "newOrder", "data": {"id": i}}
    assert plain.message() == {"type": "tick", "data": {}}
    # Otherwise the batch leaves batchMs after its first order.
    assert subscribe(batched, {"events": ["newOrder"], "batchMs": 50}) == {
        "type": "subscribed", "events": ["newOrder"], "batchMs": 50}
    post("newOrder", json.dumps({"id": 5}))
    post("newOrder", "null")
    assert batched.message() == {"type": "newOrders",
                                 "data": [{"id": 5}, None]}
    # A subscribe without batchMs ends batching.
    assert subscribe(batched, {"events": []}) == {"type": "subscribed",
                                                  "events": []}
    post("newOrder", json.dumps({"id": 6}))
    assert batched.message() == {"type": "newOrder", "data": {"id": 6}}
    plain.close()
    batched.close()


def test_batch_ms_is_validated(make_server):
    srv = make_server(["echo"])
    r = Raw(srv.port)
    for bad in (9, 10001, "50", 1.5, None, -10):
        m = subscribe(r, {"events": ["newOrder"], "batchMs": bad})
        assert m["type"] == "error" and m["data"]["code"] == "bad_message", m
    # The refused subscribe changed nothing.
    assert post_broadcast(srv, "newOrder", {"id": 1}) == 1
    assert r.message() == {"type": "newOrder", "data": {"id": 1}}
    # batchMs inside "data" as "events" may be.
    assert subscribe(r, {"data": {"events": ["newOrder"], "batchMs": 10}}) \
        == {"type": "subscribed", "events": ["newOrder"], "batchMs": 10}
    r.close()


def test_batch_respects_the_filter(make_server):
    srv = make_server(["echo"])
    r = Raw(srv.port)
    assert subscribe(r, {"events": ["tick"], "batchMs": 10})["type"] == \
        "subscribed"
    post = Poster(srv)
    post("newOrder", json.dumps({"id": 1}))
    post("tick", "1")
    post("tick", "2")
    assert r.message() == {"type": "tick", "data": 1}
    assert r.message() == {"type": "tick", "data": 2}
    r.close()


def test_batching_client_that_stops_reading_is_1008(make_server):
    srv = make_server(["echo"], {"server": {"ws_max_buffered": 65536}})
    slow = Raw(srv.port, rcvbuf=4096)
    assert subscribe(slow, {"events": ["newOrder"], "batchMs": 10})["type"] \
        == "subscribed"
    post = Poster(srv)
    body = json.dumps({"pad": "z" * 2000})
    for _ in range(2000):
        if post("newOrder", body) == 0:
            break
    else:
        raise AssertionError("the server kept batching for a non-reader")
    frames, code = drain_to_close(slow)
    assert code == 1008
    assert "too slow" in srv.log()
    slow.close()


def test_shutdown_with_a_batch_waiting(make_server):
    srv = make_server(["echo"])
    r = Raw(srv.port)
    assert subscribe(r, {"events": ["newOrder"], "batchMs": 10000})["type"] \
        == "subscribed"
    post = Poster(srv)
    for i in range(3):
        post("newOrder", json.dumps({"id": i}))
    assert srv.stop() == 0
    r.expect_close(1001)
    r.close()


# -- subscribe names types the server sends -------------------------------------

def test_subscribe_to_an_unknown_event_is_refused(make_server):
    # The default modules declare what they send; a typo is told, not
    # silently sent nothing, and the subscription in force stays.
    srv = make_server(["orders", "analytics", "weather"])
    order = {"product_id": "101", "quantity": 1, "price": 2.5}

    async def go():
        async with connect(srv.ws_url) as ws:
            await ws.send(json.dumps({"type": "subscribe",
                                      "events": ["newOrder"], "batchMs": 10}))
            assert await recv_json(ws) == {"type": "subscribed",
                                           "events": ["newOrder"],
                                           "batchMs": 10}
            for bad in (["bogus"], ["newOrder", "neworder", "x\"y"],
                        ["newOrders"], ["*", "bogus"]):
                await ws.send(json.dumps({"type": "subscribe", "events": bad,
                                          "batchMs": 20}))
                m = await recv_json(ws)
                assert m["type"] == "error", m
                assert m["data"]["code"] == "unknown_event"
                unknown = [e for e in bad if e not in ("newOrder", "*")]
                assert m["data"]["events"] == unknown
                for e in unknown:
                    assert json.dumps(e) in m["data"]["message"]
                assert "newOrder, updateAnalytics, updatePromotions" in \
                    m["data"]["message"]
            # Unchanged: still only orders, still batched.
            assert srv.post("/orders", order)[0] == 201
            m = await recv_json(ws)
            assert m["type"] == "newOrders" and len(m["data"]) == 1
            # A valid subscribe still works after the refusals.
            await ws.send(json.dumps({"type": "subscribe",
                                      "events": ["updateAnalytics", "error"]}))
            assert await recv_json(ws) == {
                "type": "subscribed", "events": ["updateAnalytics", "error"]}
            assert srv.post("/orders", order)[0] == 201
            # (The first order's update may still be on its way.)
            for _ in range(2):
                m = await recv_json(ws)
                assert m["type"] == "updateAnalytics", m
                if m["data"]["totalOrders"] == 2:
                    break
            assert m["data"]["totalOrders"] == 2
    run(go())


def test_subscribe_with_a_relay_module_takes_any_name(make_server):
    srv = make_server(["orders", "echo"])

    async def go():
        async with connect(srv.ws_url) as ws:
            await ws.send(json.dumps({"type": "subscribe",
                                      "events": ["whatever"]}))
            assert await recv_json(ws) == {"type": "subscribed",
                                           "events": ["whatever"]}
            post_broadcast(srv, "whatever", {"n": 1})
            assert await recv_json(ws) == {"type": "whatever",
                                           "data": {"n": 1}}
    run(go())


def test_module_of_an_older_abi_may_send_any_type(make_server):
    # Built before ws_event existed, it could not declare "legacyTick":
    # the loader counts it as sending any type.
    srv = make_server(["orders", "oldabi"])

    async def go():
        async with connect(srv.ws_url) as ws:
            await ws.send(json.dumps({"type": "subscribe",
                                      "events": ["legacyTick"]}))
            assert await recv_json(ws) == {"type": "subscribed",
                                           "events": ["legacyTick"]}
            assert srv.post("/oldabi", {})[0] == 202
            assert await recv_json(ws) == {"type": "legacyTick", "data": 1}
    run(go())
