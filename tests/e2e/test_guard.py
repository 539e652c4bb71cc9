"""Browser safety and access (core/guard.c): JSON-only bodies (415), the Host
check against DNS rebinding (421), the WebSocket Origin rule (403), bearer
tokens (401/403), refusals counted in /metrics, the start-up checks.
Every case here was accepted before the guard existed."""
import base64
import json
import os
import re
import subprocess

from conftest import SALESD, Server, run_check
from rawhttp import exchange

MODULES = ["orders"]
ORDER = {"product_id": "101", "quantity": 2, "price": 25.5}
READ = "r" * 8 + "-read-token-0123456789"
WRITE = "w" * 8 + "-write-token-0123456789"
OPS = "o" * 8 + "-ops-token-0123456789"


def raw(srv, head, body=b""):
    """Sends one request as given; returns (status, headers, body bytes)."""
    a = exchange(srv.port, head.encode() + body, timeout=5)
    return a.status, a.headers, a.raw


def code_of(body):
    return json.loads(body)["error"]["code"]


def ws_head(host="127.0.0.1", origin=None, path="/", extra=""):
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n%s%s\r\n"
            % (path, host, key, "Origin: %s\r\n" % origin if origin else "", extra))


def post_head(ctype, n, host="127.0.0.1", method="POST", path="/orders", extra=""):
    return ("%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n%s\r\n"
            % (method, path, host, "Content-Type: %s\r\n" % ctype if ctype else "", n, extra))


def stored(srv):
    st, _, body = srv.get("/orders")
    assert st == 200
    return len(body["orders"])


def metric(srv, reason):
    _, _, text = srv.get("/metrics")
    if isinstance(text, bytes):
        text = text.decode()
    m = re.search(r'^salesd_http_refused_total\{reason="%s"\} (\d+)$' % reason, text, re.M)
    assert m, text
    return int(m.group(1))


# -- 1. bodies are JSON ------------------------------------------------------

def test_write_bodies_must_be_json(make_server):
    srv = make_server(MODULES)
    body = json.dumps(ORDER).encode()
    # What a foreign page can make a browser send without a preflight.
    for ctype in ("text/plain", "text/plain;charset=UTF-8",
                  "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                  None, "application/jsonp", "application/json; charset=iso-8859-1",
                  "application/json-patch+json", "application/json;charset=\"latin1\""):
        st, h, b = raw(srv, post_head(ctype, len(body)), body)
        assert st == 415, ctype
        assert code_of(b) == "unsupported_media_type"
        assert json.loads(b)["error"]["field"] == "Content-Type"
        assert h["accept-post"] == "application/json"
    # A POST with no body and no type is refused too.
    st, _, b = raw(srv, post_head(None, 0), b"")
    assert st == 415
    assert stored(srv) == 0
    # PUT and PATCH alike (before routing: 415, not 405).
    st, h, _ = raw(srv, post_head("text/plain", 2, method="PATCH"), b"{}")
    assert st == 415 and h["accept-patch"] == "application/json"
    st, _, _ = raw(srv, post_head("text/plain", 2, method="PUT"), b"{}")
    assert st == 415
    # The JSON media type in any case, with parameters, UTF-8 only.
    for ctype in ("application/json", "Application/JSON", "application/json; charset=utf-8",
                  "application/json;charset=\"UTF-8\"", "application/json ; v=1"):
        st, _, b = raw(srv, post_head(ctype, len(body)), body)
        assert st == 201, (ctype, b)
    assert stored(srv) == 5
    assert metric(srv, "media_type") == 12


# -- 2. Host ------------------------------------------------------------------

def test_host_must_name_this_server(make_server):
    srv = make_server(MODULES)
    body = json.dumps(ORDER).encode()
    # DNS rebinding: the attacker's name, now pointing at us.
    for host in ("evil.example", "evil.example:%d" % srv.port, "localhost.evil.example",
                 "127.0.0.1.nip.io", "", "local host", "[::1"):
        st, _, b = raw(srv, post_head("application/json", len(body), host=host), body)
        assert st == 421, host
        assert code_of(b) == "host_not_allowed"
    assert stored(srv) == 0
    st, _, b = raw(srv, ws_head(host="evil.example"))
    assert st == 421 and code_of(b) == "host_not_allowed"
    # Localhost names and IP literals (which no DNS answer can forge).
    for host in ("localhost", "LocalHost:3000", "localhost.", "127.0.0.1",
                 "127.0.0.1:%d" % srv.port, "[::1]:3000", "[::1]", "10.1.2.3"):
        st, _, _ = raw(srv, "GET /orders HTTP/1.1\r\nHost: %s\r\n\r\n" % host)
        assert st == 200, host
    # HTTP/1.0 may omit Host; HTTP/1.1 may not (RFC 9112).
    st, _, _ = raw(srv, "GET /orders HTTP/1.0\r\n\r\n")
    assert st == 200
    st, _, b = raw(srv, "GET /orders HTTP/1.1\r\n\r\n")
    assert st == 400 and "Host" in json.loads(b)["error"]["message"]
    # The one without Host never reached the guard: the head check refused it.
    assert metric(srv, "host") == 8


def test_allowed_hosts(make_server):
    srv = make_server(MODULES, {"server": {"allowed_hosts": "sales.example.com, Other.Example:8080"}})
    for host, want in (("sales.example.com", 200), ("SALES.example.com:3000", 200),
                       ("other.example", 200), ("evil.example", 421),
                       ("localhost", 200), ("192.168.1.10:3000", 200)):
        st, _, _ = raw(srv, "GET /orders HTTP/1.1\r\nHost: %s\r\n\r\n" % host)
        assert st == want, host
    srv = make_server(MODULES, {"server": {"allowed_hosts": "*"}})
    st, _, _ = raw(srv, "GET /orders HTTP/1.1\r\nHost: anything.example\r\n\r\n")
    assert st == 200


# -- 3. WebSocket Origin --------------------------------------------------------

def test_websocket_origin(make_server):
    srv = make_server(MODULES)
    host = "127.0.0.1:%d" % srv.port
    # A page elsewhere cannot open a WebSocket to us...
    for origin in ("http://evil.example", "null", "http://127.0.0.1:1",
                   "http://localhost:%d" % srv.port, "https://127.0.0.1"):
        st, _, b = raw(srv, ws_head(host=host, origin=origin))
        assert st == 403, origin
        assert code_of(b) == "origin_not_allowed"
    # ...our own pages (same host and port, any scheme) and non-browsers can.
    for origin in ("http://%s" % host, "https://%s" % host, "HTTP://127.0.0.1:%d" % srv.port, None):
        st, _, _ = raw(srv, ws_head(host=host, origin=origin))
        assert st == 101, origin
    st, _, _ = raw(srv, ws_head(host="localhost", origin="http://localhost"))
    assert st == 101
    assert metric(srv, "origin") == 5


def test_cors_origins(make_server):
    srv = make_server(MODULES, {"server": {"cors_origins": "https://dash.example.com http://localhost:8080/"}})
    for origin, want in (("https://dash.example.com", 101), ("https://dash.example.com:443", 101),
                         ("http://localhost:8080", 101), ("http://dash.example.com", 403),
                         ("https://evil.example", 403)):
        st, _, _ = raw(srv, ws_head(origin=origin))
        assert st == want, origin
    # A listed origin may read plain answers (simple CORS); others get nothing.
    st, h, _ = srv.get("/orders", headers={"Origin": "https://dash.example.com"})
    assert st == 200 and h["access-control-allow-origin"] == "https://dash.example.com"
    assert h["vary"] == "Origin"
    st, h, _ = srv.get("/orders", headers={"Origin": "https://evil.example"})
    assert st == 200 and "access-control-allow-origin" not in h
    srv = make_server(MODULES, {"server": {"cors_origins": "*"}})
    st, _, _ = raw(srv, ws_head(origin="https://anywhere.example"))
    assert st == 101


def test_bad_cors_origin_or_host_fails_check(tmp_path):
    rc, out = run_check(tmp_path / "a", MODULES, {"server": {"cors_origins": "dash.example.com"}})
    assert rc != 0 and "cors_origins" in out and "dash.example.com" in out
    rc, out = run_check(tmp_path / "b", MODULES, {"server": {"cors_origins": "https://x.example/app"}})
    assert rc != 0 and "cors_origins" in out
    rc, out = run_check(tmp_path / "c", MODULES, {"server": {"allowed_hosts": "http://x.example"}})
    assert rc != 0 and "allowed_hosts" in out


# -- 4. tokens -----------------------------------------------------------------

def auth(token):
    return {"Authorization": "Bearer " + token}


def test_tokens(make_server):
    srv = make_server(MODULES, {"auth": {"read_token": "${SALES_READ}",
                                         "write_token": "${SALES_WRITE}"}},
                      env={"SALES_READ": READ, "SALES_WRITE": WRITE})
    # Writes: none, wrong, read-only, right.
    st, h, b = srv.post("/orders", ORDER)
    assert st == 401 and b["error"]["code"] == "unauthorized"
    assert h["www-authenticate"] == 'Bearer realm="salesd"'
    st, h, b = srv.post("/orders", ORDER, headers=auth("x" * 32))
    assert st == 401 and b["error"]["code"] == "invalid_token"
    assert h["www-authenticate"] == 'Bearer realm="salesd", error="invalid_token"'
    st, h, b = srv.post("/orders", ORDER, headers=auth(READ))
    assert st == 403 and b["error"]["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in h["www-authenticate"]
    st, _, _ = srv.post("/orders", ORDER, headers={"Authorization": "Basic " + WRITE})
    assert st == 401
    st, _, _ = srv.post("/orders", ORDER, headers=auth(WRITE + "x"))
    assert st == 401
    st, _, _ = srv.post("/orders", ORDER, headers=auth(WRITE[:-1]))
    assert st == 401
    # A token in the query does nothing for REST.
    st, _, _ = srv.post("/orders?token=" + WRITE, ORDER)
    assert st == 401
    st, _, _ = srv.post("/orders", ORDER, headers=auth(WRITE))
    assert st == 201
    st, _, _ = srv.post("/orders", ORDER, headers={"Authorization": "bearer   " + WRITE})
    assert st == 201
    # Reads: the read or the write token.
    assert srv.get("/orders")[0] == 401
    assert srv.get("/orders", headers=auth("y" * 40))[0] == 401
    st, _, b = srv.get("/orders", headers=auth(READ))
    assert st == 200 and len(b["orders"]) == 2
    assert srv.get("/orders", headers=auth(WRITE))[0] == 200
    assert srv.request("HEAD", "/orders")[0] == 401
    # /health and /metrics stay open without ops_token.
    assert srv.get("/health")[0] == 200
    assert srv.get("/metrics")[0] == 200
    # The live feed: header, or ?token= on the handshake (browsers).
    st, h, _ = raw(srv, ws_head())
    assert st == 401 and "www-authenticate" in h
    assert raw(srv, ws_head(path="/?token=nope-nope-nope-nope"))[0] == 401
    assert raw(srv, ws_head(path="/?token=" + READ))[0] == 101
    assert raw(srv, ws_head(path="/ws?token=" + WRITE))[0] == 101
    assert raw(srv, ws_head(extra="Authorization: Bearer %s\r\n" % READ))[0] == 101
    assert metric(srv, "auth") == 12
    # No token ever reaches the log, right or wrong.
    srv.stop()
    log = srv.log()
    for t in (READ, WRITE, "x" * 32, "y" * 40, "nope-nope"):
        assert t not in log


def test_ops_token(make_server):
    srv = make_server(MODULES, {"auth": {"ops_token": OPS, "write_token": WRITE}})
    for path in ("/health", "/metrics"):
        assert srv.get(path)[0] == 401
        assert srv.get(path, headers=auth(OPS))[0] == 200
        assert srv.get(path, headers=auth(WRITE))[0] == 200
    # Spelt with escapes, as the router reads them, they are the same paths.
    for path in ("/%68ealth", "/metric%73"):
        assert srv.get(path)[0] == 401
        assert srv.get(path, headers=auth(OPS))[0] == 200
    # Reads are open (no read_token); the ops token writes nothing.
    assert srv.get("/orders")[0] == 200
    assert srv.post("/orders", ORDER, headers=auth(OPS))[0] == 403


def test_short_token_fails_startup(tmp_path):
    s = Server(tmp_path, MODULES, {"auth": {"write_token": "short-secret"}})
    p = subprocess.run([SALESD, "-c", s.config], capture_output=True, timeout=10, cwd=s.tmpdir)
    out = (p.stdout + p.stderr).decode()
    assert p.returncode != 0
    assert "[auth] write_token: too short" in out
    assert "short-secret" not in out
    rc, out = run_check(tmp_path / "b", MODULES, {"auth": {"read_token": "a b" * 8}})
    assert rc != 0 and "read_token" in out


def test_unset_token_variable_means_no_token(make_server):
    srv = make_server(MODULES, {"auth": {"write_token": "${SALES_TEST_UNSET_TOKEN}"}})
    assert srv.post("/orders", ORDER)[0] == 201


def check_output(tmp_path, config, env=None):
    """salesd --check on a config: nothing listens (tests bind loopback only)."""
    s = Server(tmp_path / ("c%d" % len(list(tmp_path.iterdir()))), MODULES, config)
    p = subprocess.run([SALESD, "-c", s.config, "--check"], capture_output=True,
                       timeout=30, cwd=s.tmpdir, env=dict(os.environ, **(env or {})))
    return (p.stdout + p.stderr).decode(errors="replace")


def test_public_bind_without_write_token_warns(tmp_path):
    warning = "is not a loopback address and [auth] write_token is not set"
    assert warning in check_output(tmp_path, {"server": {"host": "0.0.0.0"}})
    # The address it will really listen on counts, however it was given.
    assert warning in check_output(tmp_path, {}, env={"SALESD_HOST": "0.0.0.0"})
    assert warning not in check_output(
        tmp_path, {"server": {"host": "0.0.0.0"}, "auth": {"write_token": WRITE}})
    assert warning not in check_output(tmp_path, {})
