"""HTTP connection reuse end to end: a keep-alive connection hands its last
request's buffers to the next (core/http_request.c spare) and writes answers straight
to the socket when nothing waits.  These check that nothing of one request
shows in the next, and that big, partial or pipelined answers keep their
bytes and their order.  Raw sockets, echo test module."""
import hashlib
import json
import socket
import threading
import time

from test_http import Raw, get

CFG = {"server": {"max_body": 8 * 1024 * 1024, "max_header": 16384}}


def post(path, body, extra=""):
    if isinstance(body, str):
        body = body.encode()
    head = ("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n%s\r\n" % (path, len(body), extra))
    return head.encode() + body


def test_nothing_of_a_request_shows_in_the_next(make_server):
    s = make_server(["echo"], CFG)
    c = Raw(s)
    many = "".join("X-H%d: %s\r\n" % (i, "v" * 300) for i in range(40))
    c.send(get("/echo?q=first", "X-Test: one\r\n" + many))
    st, _, body = c.response()
    assert st == 200 and json.loads(body)["header"] == "one"
    # Fewer headers, no query, no X-Test: nothing may be left over.
    c.send(get("/echo"))
    doc = json.loads(c.response()[2])
    assert doc["q"] is None and doc["header"] is None and doc["path"] == "/echo"
    c.send(get("/echo?q=" + "a" * 600, "X-Test: " + "b" * 600 + "\r\n"))
    doc = json.loads(c.response()[2])
    assert doc["q"] == "a" * 600 and doc["header"] == "b" * 600
    c.send(get("/echo?q=x", "X-Test: y\r\n"))
    doc = json.loads(c.response()[2])
    assert doc["q"] == "x" and doc["header"] == "y"
    # A body, then none: the second must be empty, not the old bytes.
    c.send(post("/echo", "0123456789" * 50))
    assert c.response()[2] == b"0123456789" * 50
    c.send(post("/echo", b""))
    st, _, body = c.response()
    assert st == 200 and body == b""
    c.send(post("/echo", "short"))
    assert c.response()[2] == b"short"
    # Chunked after a Content-Length body of a different size.
    c.send("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
           "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert c.response()[2] == b"abc"
    c.close()


def test_head_then_get_on_one_connection(make_server):
    s = make_server(["echo"], CFG)
    c = Raw(s)
    c.send("HEAD /echo?q=h HTTP/1.1\r\nHost: localhost\r\n\r\n" + get("/echo?q=g"))
    st, h, body = c.response(head=True)
    assert st == 200 and body == b"" and int(h["content-length"]) > 0
    st, _, body = c.response()
    assert st == 200 and json.loads(body)["q"] == "g"
    c.close()


def test_big_answers_partly_written_keep_bytes_and_order(make_server):
    """Answers bigger than the socket buffer: the direct write is short
    and the rest waits in the bufferevent; pipelined answers after it must
    follow it, not overtake it."""
    s = make_server(["echo"], CFG)
    c = Raw(s, timeout=20)
    # A small receive window makes the server's first write short.
    c.sock.close()
    c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.sock.settimeout(20)
    c.sock.connect(("127.0.0.1", s.port))
    big = [bytes([65 + i]) * (3 * 1024 * 1024 + i) for i in range(3)]
    data = b""
    for i, b in enumerate(big):
        data += post("/echo", b)
        data += get("/echo?q=%d" % i).encode()
    # Sent while nothing is read, so the server's writes fill the socket;
    # from a thread, as the server stops reading while its output is full.
    sender = threading.Thread(target=c.sock.sendall, args=(data,))
    sender.start()
    time.sleep(0.3)
    for i, b in enumerate(big):
        st, _, body = c.response()
        assert st == 200 and len(body) == len(b)
        assert hashlib.sha256(body).digest() == hashlib.sha256(b).digest()
        st, _, body = c.response()
        assert st == 200 and json.loads(body)["q"] == str(i)
    c.close()


def test_slow_answer_after_the_client_left_then_new_clients(make_server):
    s = make_server(["echo"], CFG)
    for _ in range(3):
        c = Raw(s)
        c.send(get("/echo/slow?ms=150") + get("/echo?q=queued"))
        c.close()
    time.sleep(0.5)
    c = Raw(s)
    c.send(get("/echo/slow?ms=50") + get("/echo?q=after"))
    assert json.loads(c.response()[2]) == {"slept": 50}
    assert json.loads(c.response()[2])["q"] == "after"
    c.close()


def test_async_answer_then_pipelined_reuse(make_server):
    """A slow answer arrives after the next requests were parsed and
    answered: each must get its own answer, in order, many times over."""
    s = make_server(["echo"], CFG)
    c = Raw(s)
    for round_ in range(5):
        c.send(get("/echo/slow?ms=30").encode() + get("/echo?q=r%d" % round_,
               "X-Test: t%d\r\n" % round_).encode() +
               post("/echo", "b%d" % round_))
        assert json.loads(c.response()[2]) == {"slept": 30}
        doc = json.loads(c.response()[2])
        assert doc["q"] == "r%d" % round_ and doc["header"] == "t%d" % round_
        assert c.response()[2] == b"b%d" % round_
    c.close()


def test_expect_continue_then_reuse(make_server):
    s = make_server(["echo"], CFG)
    c = Raw(s)
    for i in range(3):
        c.send("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
               "Content-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        while b"\r\n\r\n" not in c.buf:
            c._fill()
        assert c.buf.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        c.send("x%02d" % i)
        st, _, body = c.response()
        assert st == 200 and body == b"x%02d" % i
    c.close()


def test_connection_close_answer_is_complete(make_server):
    s = make_server(["echo"], CFG)
    body = b"z" * (2 * 1024 * 1024)
    c = Raw(s, timeout=20)
    c.send(post("/echo", body, "Connection: close\r\n"))
    time.sleep(0.2)
    st, h, got = c.response()
    assert st == 200 and h.get("connection") == "close" and got == body
    assert c.closed()
    c.close()


def test_websocket_upgrade_after_requests(make_server):
    s = make_server(["echo"], CFG)
    c = Raw(s)
    c.send(get("/echo?q=1", "X-Test: " + "k" * 400 + "\r\n"))
    assert json.loads(c.response()[2])["q"] == "1"
    c.send("GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    while b"\r\n\r\n" not in c.buf:
        c._fill()
    head = c.buf.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 101")
    assert "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    c.close()
    # The server is still fine.
    c = Raw(s)
    c.send(get("/echo?q=2"))
    assert json.loads(c.response()[2])["q"] == "2"
    c.close()
