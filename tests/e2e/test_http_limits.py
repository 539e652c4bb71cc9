"""HTTP hardening end to end: strict RFC 9112 framing (the request shapes
proxies disagree on are refused), the body deadline as a total, the bytes
a client that never reads can make the server hold (per connection and
server-wide), and the accept-failure log when descriptors run out.
Raw sockets throughout; conditions are waited for, never slept on."""
import os
import re
import resource
import socket
import subprocess
import time

import pytest

from conftest import BUILD, run_check
from test_http import Raw, error_of, get

SMALL = {"server": {"max_body": 2048, "max_header": 1024,
                    "header_timeout_ms": 1000, "body_timeout_ms": 1000,
                    "idle_timeout_ms": 5000}}


@pytest.fixture
def srv(make_server):
    return make_server(["echo"], SMALL)


def wait_for(cond, timeout=20.0, step=0.05, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out waiting for " + what)


def metrics(srv):
    st, _, text = srv.get("/metrics")
    assert st == 200
    text = text.decode() if isinstance(text, bytes) else str(text)
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r"^(salesd_\w+) ([0-9.e+-]+)$", text, re.M)}


def sanitized():
    """AddressSanitizer keeps freed memory in quarantine: RSS says nothing."""
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return "SALES_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


def rss_grown_under(pid, base, limit):
    if not sanitized():
        grown = vm(pid, "VmHWM") - base
        assert grown < limit, grown


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


# -- strict framing ------------------------------------------------------

SMUGGLING = [
    # Space or tab before the colon: some proxies ignore the header.
    (400, "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding : chunked\r\n\r\n"
          "0\r\n\r\nGET /echo?q=smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    (400, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length : 45\r\n\r\n"
          "GET /echo?q=smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    (400, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length\t: 3\r\n\r\nabc"),
    # CL or TE hidden in an obs-fold continuation.
    (400, "POST /echo HTTP/1.1\r\nHost: localhost\r\nX-Pad: a\r\n Transfer-Encoding: chunked\r\n"
          "Content-Length: 3\r\n\r\nabc"),
    (400, "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: x\r\n\tchunked\r\n\r\n"),
    # Bare LF line ends, anywhere in the head.
    (400, "GET /echo HTTP/1.1\nHost: t\n\n"),
    (400, "GET /echo HTTP/1.1\r\nHost: t\nX-A: b\r\n\r\n"),
    (400, "GET /echo HTTP/1.1\r\nHost: localhost\r\n\n"),
    # Host: none, or two.
    (400, "GET /echo HTTP/1.1\r\n\r\n"),
    (400, "GET /echo HTTP/1.1\r\nHost: localhost\r\nHost: u\r\n\r\n"),
    # Content-Length with Transfer-Encoding; codings other than chunked.
    (400, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n"
          "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    (501, "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
    (400, "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n"),
    (400, "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
          "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    (400, "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    # Content-Length that is not one plain number.
    (400, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1, 1\r\n\r\na"),
    (400, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: +5\r\n\r\nabcde"),
    (400, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nabcde"),
    (400, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcde"),
    # Control characters in values, bad names, odd request lines.
    (400, "GET /echo HTTP/1.1\r\nHost: localhost\r\nX-A: a\x01b\r\n\r\n"),
    (400, "GET /echo HTTP/1.1\r\nHost: localhost\r\nX-A: a\x00b\r\n\r\n"),
    (400, "GET /echo HTTP/1.1\r\nHost: localhost\r\nX-A: a\rb\r\n\r\n"),
    (400, "GET /echo HTTP/1.1\r\nHost: localhost\r\nX(A): b\r\n\r\n"),
    (400, "GET /echo HTTP/1.1\r\nHost: localhost\r\nX\x80A: b\r\n\r\n"),
    (400, "GET  /echo HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    (400, "GET /echo  HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    (400, "GET /echo HTTP/1.1\rHost: localhost\r\n\r\n"),
]


@pytest.mark.parametrize("status,raw", SMUGGLING)
def test_ambiguous_framing_is_refused_and_closed(srv, status, raw):
    c = Raw(srv)
    c.send(raw.encode("latin-1"))
    st, h, body = c.response()
    assert st == status, raw
    assert error_of(body)["code"] == ("not_implemented" if status == 501 else "bad_request")
    assert h["connection"] == "close"
    # Nothing after the refused head is taken as a request.
    assert c.closed()
    assert b"smuggled" not in c.buf
    c.close()


def test_strict_heads_still_serve_normal_clients(srv):
    c = Raw(srv)
    # Pipelined: a GET, a chunked POST (lower-case coding name), a
    # Content-Length POST, an HTTP/1.0 request without Host last.
    c.send(get("/echo?q=1") +
           "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: Chunked\r\n\r\n"
           "2\r\nab\r\n1\r\nc\r\n0\r\n\r\n" +
           "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\nX-E:\r\n\r\nde" +
           "GET /echo?q=4 HTTP/1.0\r\nUser-Agent: old\xe9\r\n\r\n")
    st, _, body = c.response()
    assert st == 200 and b'"q":"1"' in body
    st, _, body = c.response()
    assert st == 200 and body == b"abc"
    st, _, body = c.response()
    assert st == 200 and body == b"de"
    st, h, body = c.response()
    assert st == 200 and b'"q":"4"' in body and h["connection"] == "close"
    c.close()
    # 100-continue and an empty line before a request still work.
    c = Raw(srv)
    c.send("\r\nPOST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
           "Expect: 100-continue\r\n\r\n")
    while b"\r\n\r\n" not in c.buf:
        c._fill()
    assert c.buf.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    c.send("{}")
    st, _, body = c.response()
    assert st == 200 and body == b"{}"
    c.close()


# -- deadlines -----------------------------------------------------------

def test_dribbled_body_gets_408_within_body_timeout(srv):
    """One byte every 200 ms used to keep a 1000 ms body timeout from
    ever firing; the body now has 1000 ms in total."""
    c = Raw(srv)
    c.send("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
    t0 = time.time()
    c.sock.settimeout(0.2)
    got = b""
    while time.time() - t0 < 6 and b"\r\n\r\n" not in got:
        try:
            c.sock.sendall(b"x")
        except OSError:
            break
        try:
            chunk = c.sock.recv(65536)
            if not chunk:
                break
            got += chunk
        except socket.timeout:
            pass
    elapsed = time.time() - t0
    assert got.startswith(b"HTTP/1.1 408 "), got
    assert elapsed < 3.0
    c.close()


def test_half_closed_partial_head_is_let_go(srv):
    """A head held back for the strict check, then the client's FIN: no
    more bytes can come, so the connection must end, not wait untimed
    (found by fuzz_http)."""
    before = metrics(srv)["salesd_http_connections"]
    c = Raw(srv)
    c.send("GET /w")
    c.sock.shutdown(socket.SHUT_WR)
    c.sock.settimeout(10)
    assert c.sock.recv(65536) == b""
    c.close()
    wait_for(lambda: metrics(srv)["salesd_http_connections"] <= before,
             what="the connection to be freed")


# -- bytes held for clients that never read ------------------------------

def fill_orders(srv, n=1000):
    batch = [{"product_id": "p%04d" % i, "quantity": 1 + i % 7,
              "price": 12.25, "date": "2025-04-22T10:00:00Z"} for i in range(n)]
    st, _, _ = srv.post("/orders", batch)
    assert st == 201
    st, _, page = srv.get("/orders?limit=1000")
    assert st == 200 and len(page["orders"]) == n


def non_readers(srv, n, depth=32, path="/orders?limit=1000"):
    """n connections that pipeline depth big GETs and never read."""
    socks = []
    req = get(path).encode() * depth
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(req)
        socks.append(s)
    return socks


def settled(srv):
    """Waits until the server stops taking requests and holding more
    (each look at /metrics is one request more: not counted)."""
    last = {"cur": None, "same": 0, "polls": 0}

    def same():
        m = metrics(srv)
        last["polls"] += 1
        cur = (m["salesd_http_requests_total"] - last["polls"],
               m["salesd_output_memory_bytes"])
        if cur == last["cur"]:
            last["same"] += 1
        else:
            last["cur"], last["same"] = cur, 0
        return last["same"] >= 4
    wait_for(same, timeout=60, step=0.25, what="the server to settle")
    return metrics(srv)


def test_non_reading_clients_hold_bounded_bytes(make_server):
    """12 clients pipelining 128 answers of ~130 KB each, never reading:
    the old server held every answer the kernel did not take (~150 MB);
    now each connection stops taking requests at max_conn_output, with a
    few answers in flight at most."""
    srv = make_server(["orders"], {"server": {"max_output_memory": 0,
                                              "max_pipeline": 128,
                                              "idle_timeout_ms": 60000}})
    fill_orders(srv)
    pid = srv.proc.pid
    base = vm(pid, "VmRSS")
    socks = non_readers(srv, 12, depth=128)
    m = settled(srv)
    # 12 x (256 KiB + 4 x 130 KB) at most, and a few MB of slack.
    rss_grown_under(pid, base, 40 << 20)
    # Each stopped well short of its 128 (the kernel took some).
    assert m["salesd_http_requests_total"] < 2 + 12 * 64
    assert 0 < m["salesd_output_memory_bytes"] < 12 * (2 << 20)
    # Everyone else is still served.
    for _ in range(3):
        assert srv.get("/orders?limit=5")[0] == 200
    for s in socks:
        s.close()
    wait_for(lambda: metrics(srv)["salesd_http_connections"] <= 1,
             what="the non-readers to be gone")


def test_non_reading_client_is_dropped_after_idle_timeout(make_server):
    srv = make_server(["orders"], {"server": {"idle_timeout_ms": 1000}})
    fill_orders(srv)
    s = non_readers(srv, 1)[0]
    # The server's writes make no progress: the write timeout ends it.
    wait_for(lambda: metrics(srv)["salesd_http_connections"] <= 1,
             timeout=15, what="the write timeout")
    s.close()


def test_output_budget_cuts_the_biggest_holders(make_server):
    srv = make_server(["orders"], {"server": {"max_output_memory": 2 << 20,
                                              "idle_timeout_ms": 60000}})
    fill_orders(srv)
    pid = srv.proc.pid
    base = vm(pid, "VmRSS")
    socks = non_readers(srv, 20)
    wait_for(lambda: metrics(srv)["salesd_output_memory_cuts_total"] > 0,
             what="a cut")
    # A normal client, reading its answers, is served throughout.
    c = Raw(srv)
    for i in range(10):
        c.send(get("/orders?limit=100&i=%d" % i))
        st, _, body = c.response()
        assert st == 200 and body.count(b'"product_id"') == 100
    c.close()
    m = settled(srv)
    assert m["salesd_output_memory_cuts_total"] >= 10
    assert m["salesd_output_memory_bytes"] < 4 << 20
    rss_grown_under(pid, base, 40 << 20)
    # The cut connections are closed by the server.
    closed = 0
    for s in socks:
        s.settimeout(10)
        try:
            while s.recv(1 << 16):
                pass
            closed += 1
        except ConnectionResetError:
            closed += 1
        except socket.timeout:
            pass
        s.close()
    assert closed >= 10
    assert "cutting the connection holding the most" in srv.log()


# -- out of descriptors --------------------------------------------------

def test_accept_failures_are_logged_rarely_and_recovered(make_server):
    srv = make_server(["echo"], {"server": {"idle_timeout_ms": 60000}})
    pid = srv.proc.pid
    nfd = len(os.listdir("/proc/%d/fd" % pid))
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (nfd + 8, nfd + 8))
    socks = []
    for _ in range(30):
        socks.append(socket.create_connection(("127.0.0.1", srv.port)))
    # Descriptors run out; the listener retries every 100 ms.
    wait_for(lambda: "accept failed" in srv.log(), what="EMFILE")
    first = time.time()
    # Two seconds of refusals: the old server wrote ~20 lines.
    wait_for(lambda: time.time() - first > 2.0, what="time to pass")
    lines = [l for l in srv.log().splitlines() if "accept failed" in l]
    assert 1 <= len(lines) <= 2, lines
    for s in socks:
        s.close()
    st, _, _ = srv.get("/health", timeout=20)
    assert st == 200


def listen_backlog(port):
    # For a listening socket ss shows the accept queue's length as Send-Q.
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[2])


def test_listen_backlog_is_set_and_checked(make_server, tmp_path):
    # libevent's own default is 128, which a burst of connects overflows.
    assert listen_backlog(make_server(["echo"]).port) == 511
    srv = make_server(["echo"], {"server": {"listen_backlog": 300}})
    assert listen_backlog(srv.port) == 300
    rc, out = run_check(tmp_path, ["echo"], {"server": {"listen_backlog": 0}})
    assert rc != 0 and "listen_backlog" in out, out
