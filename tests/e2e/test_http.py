"""HTTP/1.1 server end to end: routing, keep-alive, pipelining, bodies,
limits, timeouts and the WebSocket hand-over, against the real salesd with
the echo test module.  Protocol-level cases use raw sockets."""
import base64
import json
import os
import signal
import socket
import struct
import threading
import time

import pytest

# Small limits so that the limit cases are cheap to provoke.
SMALL = {"server": {"max_body": 2048, "max_header": 1024,
                    "header_timeout_ms": 500, "body_timeout_ms": 500,
                    "idle_timeout_ms": 800}}


class Raw:
    """One raw client connection that can read responses one by one."""

    def __init__(self, srv, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def response(self, head=False):
        """Returns (status, headers (lower-case names), body bytes)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        if status == 100:
            return self.response(head)
        hdrs = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            hdrs.setdefault(k.strip().lower(), v.strip())
        n = 0 if head else int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, body

    def closed(self, within=5.0):
        """True when the server closes the connection within `within` s."""
        self.sock.settimeout(within)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def get(path, extra=""):
    return "GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n" % (path, extra)


def error_of(body):
    doc = json.loads(body)
    assert set(doc) == {"error"}
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
    return doc["error"]


@pytest.fixture
def srv(make_server):
    return make_server(["echo"], SMALL)


def test_routes_params_query_headers(srv):
    st, h, body = srv.get("/echo?q=a+b%21%C3%A9&q=second", headers={"X-Test": "hi there"})
    assert st == 200
    assert h["content-type"] == "application/json"
    assert h["server"] == "salesd"
    assert int(h["content-length"]) == len(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    assert body == {"method": "GET", "path": "/echo", "q": "a b!\u00e9",
                    "header": "hi there", "greeting": "hello"}
    # Absent query and header are NULL to the module.
    st, _, body = srv.get("/echo")
    assert body["q"] is None and body["header"] is None
    st, _, body = srv.get("/echo/4%2F2/items/x%20y")
    assert st == 200 and body == {"id": "4/2", "item": "x y"}
    st, h, body = srv.post("/echo", b'{"a":[1,2]}', headers={"Content-Type": "application/json; charset=utf-8"})
    assert st == 200 and body == {"a": [1, 2]}
    assert h["content-type"] == "application/json; charset=utf-8"


def test_not_found_and_bad_method(srv):
    st, h, body = srv.get("/nope")
    assert st == 404 and h["content-type"] == "application/json"
    assert body["error"]["code"] == "not_found"
    st, _, _ = srv.get("/echo/1/items")          # a prefix of a pattern
    assert st == 404
    st, h, body = srv.request("DELETE", "/echo")
    assert st == 405
    assert [m.strip() for m in h["allow"].split(",")] == ["GET", "HEAD", "POST", "OPTIONS"]
    assert body["error"]["code"] == "method_not_allowed"
    st, h, _ = srv.request("PUT", "/echo/1/items/2", body=b"")
    assert st == 405 and h["allow"] == "GET, HEAD, OPTIONS"


def test_bad_escapes_are_400(srv):
    for target in ("/echo/%zz/items/1", "/echo/a%00b/items/1", "/echo%", "/echo?q=%4",
                   "/echo?q=%00", "echo"):
        c = Raw(srv)
        c.send(get(target))
        st, h, body = c.response()
        assert st == 400, target
        assert error_of(body)["code"] == "bad_request"
        assert h["connection"] == "close"
        assert c.closed()
        c.close()


def test_keep_alive(srv):
    c = Raw(srv)
    for i in range(5):
        c.send(get("/echo?q=%d" % i))
        st, h, body = c.response()
        assert st == 200 and json.loads(body)["q"] == str(i)
        assert "connection" not in h
    c.close()


def test_pipelining_keeps_order(srv):
    c = Raw(srv)
    c.send(get("/echo/slow?ms=300") + get("/echo?q=two") + get("/echo/3/items/4"))
    t0 = time.time()
    first = c.response()
    assert first[0] == 200 and json.loads(first[2]) == {"slept": 300}
    assert time.time() - t0 >= 0.25
    second = c.response()
    assert json.loads(second[2])["q"] == "two"
    third = c.response()
    assert json.loads(third[2]) == {"id": "3", "item": "4"}
    c.close()


def test_pipeline_cap_pauses_and_resumes(make_server):
    s = make_server(["echo"], {"server": {"max_pipeline": 2}})
    c = Raw(s)
    c.send(get("/echo/slow?ms=200") + "".join(get("/echo?q=%d" % i) for i in range(6)))
    assert json.loads(c.response()[2]) == {"slept": 200}
    for i in range(6):
        st, _, body = c.response()
        assert st == 200 and json.loads(body)["q"] == str(i)
    c.close()


def test_chunked_body(srv):
    c = Raw(srv)
    c.send("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
           "Transfer-Encoding: chunked\r\n\r\n"
           "4\r\n{\"a\"\r\n6;ext=1\r\n:[1,2]\r\n1\r\n}\r\n0\r\n\r\n")
    st, h, body = c.response()
    assert st == 200 and json.loads(body) == {"a": [1, 2]}
    # The connection is still usable afterwards.
    c.send(get("/echo?q=after"))
    assert json.loads(c.response()[2])["q"] == "after"
    c.close()


def test_expect_100_continue(srv):
    c = Raw(srv)
    c.send("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n"
           "Content-Type: application/json\r\nExpect: 100-continue\r\n\r\n")
    while b"\r\n\r\n" not in c.buf:
        c._fill()
    assert c.buf.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    c.send("{}")
    st, _, body = c.response()
    assert st == 200 and body == b"{}"
    c.close()


def test_body_too_large_content_length(srv):
    c = Raw(srv)
    # Answered from the head alone, before any of the body is sent.
    c.send("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4096\r\n\r\n")
    st, h, body = c.response()
    assert st == 413 and error_of(body)["code"] == "payload_too_large"
    assert h["connection"] == "close"
    assert c.closed()
    c.close()
    # Exactly at the limit is fine.
    st, _, body = srv.post("/echo", b"x" * 2048)
    assert st == 200 and body == b"x" * 2048


def test_body_too_large_chunked(srv):
    c = Raw(srv)
    chunk = "400\r\n" + "y" * 1024 + "\r\n"
    c.send("POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 3)
    st, h, body = c.response()
    assert st == 413 and error_of(body)["code"] == "payload_too_large"
    assert c.closed()
    c.close()


def test_headers_too_large(srv):
    c = Raw(srv)
    c.send("GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Big: %s\r\n\r\n" % ("z" * 1500))
    st, h, body = c.response()
    assert st == 431 and error_of(body)["code"] == "headers_too_large"
    assert c.closed()
    c.close()
    # Many small headers add up too.
    c = Raw(srv)
    c.send("GET /echo HTTP/1.1\r\n" + "".join("X-%d: 1\r\n" % i for i in range(200)) + "\r\n")
    assert c.response()[0] == 431
    c.close()
    # A long URL counts.
    c = Raw(srv)
    c.send(get("/echo?q=" + "a" * 1500))
    assert c.response()[0] == 431
    c.close()


def test_malformed_request(srv):
    for junk in ("GARBAGE\r\n\r\n", "GET /echo HTTP/1.1 extra\r\n\r\n",
                 "GET /echo HTTP/1.1\r\nBad Header\r\n\r\n",
                 "POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                 "POST /echo HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                 "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"):
        c = Raw(srv)
        c.send(junk)
        st, h, body = c.response()
        assert st == 400, junk
        assert error_of(body)["code"] == "bad_request"
        assert c.closed()
        c.close()
    c = Raw(srv)
    c.send("GET /echo HTTP/2.0\r\n\r\n")
    st, _, body = c.response()
    assert st == 505 and error_of(body)["code"] == "http_version_not_supported"
    c.close()
    # An error after good pipelined requests comes after their answers.
    c = Raw(srv)
    c.send(get("/echo/slow?ms=100") + get("/echo?q=1") + "NOT HTTP\r\n\r\n")
    assert json.loads(c.response()[2]) == {"slept": 100}
    assert json.loads(c.response()[2])["q"] == "1"
    assert c.response()[0] == 400
    c.close()
    # The server is fine.
    assert srv.get("/echo")[0] == 200


def test_slowloris_does_not_block_and_times_out(srv):
    slow = Raw(srv)
    slow.send("GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
    t0 = time.time()
    for _ in range(5):
        st, _, _ = srv.get("/echo")
        assert st == 200
    assert time.time() - t0 < 1.0
    # Trickling bytes does not extend the head deadline.
    slow.send("a")
    time.sleep(0.2)
    slow.send("b")
    st, h, body = slow.response()
    assert st == 408 and error_of(body)["code"] == "request_timeout"
    assert slow.closed(3)
    assert time.time() - t0 < 3.0
    slow.close()


def test_body_timeout(srv):
    c = Raw(srv)
    c.send("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nab")
    t0 = time.time()
    st, _, body = c.response()
    assert st == 408
    assert time.time() - t0 < 3.0
    c.close()


def test_idle_keep_alive_timeout(srv):
    c = Raw(srv)
    c.send(get("/echo"))
    assert c.response()[0] == 200
    t0 = time.time()
    assert c.closed(5)
    assert 0.5 < time.time() - t0 < 4.0
    c.close()
    # A connection that never sends a byte gets the header timeout.
    c = Raw(srv)
    t0 = time.time()
    assert c.closed(5)
    assert time.time() - t0 < 3.0
    assert c.buf == b""
    c.close()


def test_head(srv):
    c = Raw(srv)
    c.send("HEAD /echo HTTP/1.1\r\nHost: localhost\r\n\r\n" + get("/echo?q=next"))
    st, h, body = c.response(head=True)
    assert st == 200 and int(h["content-length"]) > 0 and body == b""
    # No body bytes were sent: the next response parses cleanly.
    st, _, body = c.response()
    assert json.loads(body)["q"] == "next"
    c.send("HEAD /nope HTTP/1.1\r\nHost: localhost\r\n\r\n")
    st, h, _ = c.response(head=True)
    assert st == 404 and int(h["content-length"]) > 0
    c.close()


def test_connection_close(srv):
    c = Raw(srv)
    c.send(get("/echo", "Connection: close\r\n"))
    st, h, _ = c.response()
    assert st == 200 and h["connection"] == "close"
    assert c.closed()
    c.close()
    # Requests pipelined after a close are not answered.
    c = Raw(srv)
    c.send(get("/echo?q=1", "Connection: close\r\n") + get("/echo?q=2"))
    assert json.loads(c.response()[2])["q"] == "1"
    assert c.closed()
    assert c.buf == b""
    c.close()


def test_http10(srv):
    c = Raw(srv)
    c.send("GET /echo?q=old HTTP/1.0\r\n\r\n")
    st, h, body = c.response()
    assert st == 200 and json.loads(body)["q"] == "old"
    assert h["connection"] == "close"
    assert c.closed()
    c.close()
    c = Raw(srv)
    for i in range(2):
        c.send("GET /echo?q=%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % i)
        st, h, body = c.response()
        assert h["connection"] == "keep-alive" and json.loads(body)["q"] == str(i)
    c.close()


def test_client_gone_before_answer(srv):
    for _ in range(3):
        c = Raw(srv)
        c.send(get("/echo/slow?ms=200") + get("/echo/slow?ms=100"))
        c.close()
    time.sleep(0.5)
    # The late answers were dropped; the server is fine (and ASan-clean).
    assert srv.get("/echo")[0] == 200


def test_half_close_still_answered(srv):
    c = Raw(srv)
    c.send(get("/echo/slow?ms=100") + get("/echo?q=x"))
    c.sock.shutdown(socket.SHUT_WR)
    assert json.loads(c.response()[2]) == {"slept": 100}
    assert json.loads(c.response()[2])["q"] == "x"
    assert c.closed()
    c.close()


def test_max_connections(make_server):
    s = make_server(["echo"], {"server": {"max_connections": 2}})
    a, b = Raw(s), Raw(s)
    for c in (a, b):
        c.send(get("/echo"))
        assert c.response()[0] == 200
    extra = Raw(s)
    extra.send(get("/echo"))
    try:
        st, _, body = extra.response()
        assert st == 503
    except (EOFError, ConnectionResetError):
        pass
    extra.close()
    a.close()
    deadline = time.time() + 5
    while time.time() < deadline:
        c = Raw(s)
        try:
            c.send(get("/echo"))
            if c.response()[0] == 200:
                break
        except (EOFError, ConnectionResetError):
            pass
        finally:
            c.close()
        time.sleep(0.05)
    else:
        pytest.fail("a slot never came free")
    b.close()


def ws_key():
    return base64.b64encode(os.urandom(16)).decode()


def ws_head(path="/ws", version="13", key=None, extra=""):
    return ("GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: %s\r\n%s\r\n") % (path, key or ws_key(), version, extra)


def test_websocket_handshake_errors(srv):
    c = Raw(srv)
    c.send(ws_head(version="8"))
    st, h, body = c.response()
    assert st == 426 and h["sec-websocket-version"] == "13"
    assert error_of(body)["field"] == "Sec-WebSocket-Version"
    c.close()
    c = Raw(srv)
    c.send(ws_head(key="short"))
    st, _, body = c.response()
    assert st == 400 and error_of(body)["field"] == "Sec-WebSocket-Key"
    c.close()
    c = Raw(srv)
    c.send("GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % ws_key())
    st, _, body = c.response()
    assert st == 400 and error_of(body)["field"] == "Connection"
    c.close()
    # Plain GETs to the WebSocket paths say what is expected.
    for path in ("/", "/ws"):
        st, h, body = srv.get(path)
        assert st == 426 and h["upgrade"] == "websocket"
        assert body["error"]["code"] == "upgrade_required"
    st, h, _ = srv.request("POST", "/ws", body=b"")
    assert st == 405 and h["allow"] == "GET, HEAD, OPTIONS"


def read_frame(c):
    while len(c.buf) < 2:
        c._fill()
    b1, b2 = c.buf[0], c.buf[1]
    n, off = b2 & 0x7f, 2
    if n == 126:
        while len(c.buf) < 4:
            c._fill()
        n, off = struct.unpack("!H", c.buf[2:4])[0], 4
    while len(c.buf) < off + n:
        c._fill()
    payload, c.buf = c.buf[off:off + n], c.buf[off + n:]
    return b1 & 0x0f, payload


def masked_text(data):
    mask = os.urandom(4)
    data = data.encode()
    return (bytes([0x81, 0x80 | len(data)]) + mask +
            bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def test_websocket_upgrade_after_pipelined_requests(srv):
    """The upgrade waits for earlier answers; bytes after the head reach ws.c."""
    c = Raw(srv)
    frame = masked_text('{"type":"echo","data":{"n":1}}')
    c.send((get("/echo/slow?ms=200") + ws_head("/")).encode() + frame)
    st, _, body = c.response()
    assert st == 200 and json.loads(body) == {"slept": 200}
    while b"\r\n\r\n" not in c.buf:
        c._fill()
    head, c.buf = c.buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101")
    op, payload = read_frame(c)
    assert op == 1
    assert json.loads(payload) == {"type": "echo", "data": {"n": 1}}
    c.close()


def test_concurrent_clients(srv):
    errors = []

    def worker(n):
        try:
            c = Raw(srv)
            for i in range(20):
                c.send(get("/echo?q=%d-%d" % (n, i)))
                st, _, body = c.response()
                if st != 200 or json.loads(body)["q"] != "%d-%d" % (n, i):
                    errors.append((n, i, st))
            c.close()
        except Exception as e:       # noqa: BLE001 - reported below
            errors.append((n, repr(e)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors


def test_shutdown_answers_in_flight(srv):
    c = Raw(srv)
    c.send(get("/echo/slow?ms=400"))
    time.sleep(0.1)
    srv.proc.send_signal(signal.SIGTERM)
    st, h, body = c.response()
    assert st == 200 and json.loads(body) == {"slept": 400}
    assert h["connection"] == "close"
    c.close()
    assert srv.proc.wait(10) == 0
    srv.proc = None
    srv.logf.close()


def test_percent_escapes_must_decode_to_utf8(make_server):
    s = make_server(["echo"])
    st, _, body = s.get("/echo?q=caf%C3%A9+au+lait")
    assert st == 200 and body["q"] == "caf\u00e9 au lait"
    st, _, body = s.get("/echo/%E2%82%AC/items/x")
    assert st == 200 and body["id"] == "\u20ac"
    for bad in ("/echo?q=%C0%AF", "/echo?q=%FF", "/echo/%ED%A0%80/items/x"):
        st, _, body = s.get(bad)
        assert st == 400 and body["error"]["code"] == "bad_request", bad
