"""CORS for browser pages on other origins (core/guard.c, core/http.c):
preflight OPTIONS on every routed path, the headers every answer to a
listed origin carries (errors included), refusals of other origins, and
nothing at all when [server] cors_origins is empty (the default); then
pages in headless chromium on a listed and on another origin.  The
README's preflight example is run as written."""
import html
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import time

import pytest

from conftest import ROOT
from test_guard import READ, WRITE, auth, code_of, metric, raw, ws_head

MODULES = ["orders", "analytics", "weather"]
DASH = "https://dash.example.com"
ORDER = {"product_id": "101", "quantity": 2, "price": 25.5}
EXPOSED = {"Location", "Idempotent-Replayed", "WWW-Authenticate", "Allow",
           "Accept-Post", "Accept-Patch"}


def names(value):
    return [v.strip() for v in value.split(",")]


def cors(h):
    return {k: v for k, v in h.items() if k.startswith("access-control-")}


def preflight(srv, path, method="POST", origin=DASH, headers=None, host=None):
    extra = {"Origin": origin, "Access-Control-Request-Method": method}
    if host:
        extra["Host"] = host
    extra.update(headers or {})
    return srv.request("OPTIONS", path, headers=extra)


def assert_listed(h, origin=DASH):
    """The headers a listed origin gets on every answer."""
    assert h["access-control-allow-origin"] == origin, h
    assert set(names(h["access-control-expose-headers"])) == EXPOSED
    assert "Origin" in names(h["vary"])
    assert "access-control-allow-credentials" not in h


# -- default: no CORS ---------------------------------------------------------

def test_no_cors_by_default(make_server):
    srv = make_server(MODULES)
    # OPTIONS is a method like any other (RFC 9110): 204 with Allow.
    st, h, body = srv.request("OPTIONS", "/orders")
    assert st == 204 and body == b""
    assert set(names(h["allow"])) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert not cors(h) and "vary" not in h
    # A preflight from any origin is refused plainly, with no CORS headers.
    st, h, body = preflight(srv, "/orders")
    assert st == 403 and body["error"]["code"] == "origin_not_allowed"
    assert body["error"]["field"] == "Origin"
    assert "cors_origins" in body["error"]["message"]
    assert not cors(h)
    # Plain requests are served, but give a page nothing to read.
    for method, path, body in (("GET", "/orders", None), ("GET", "/nope", None),
                               ("POST", "/orders", ORDER)):
        st, h, _ = srv.request(method, path, body=body, headers={"Origin": DASH})
        assert st in (200, 201, 404) and not cors(h) and "vary" not in h
    assert metric(srv, "origin") == 1


# -- preflight ----------------------------------------------------------------

def test_preflight_from_a_listed_origin(make_server):
    srv = make_server(MODULES, {"server": {"cors_origins": DASH + " http://localhost:8080"},
                                "auth": {"read_token": READ, "write_token": WRITE}})
    # The methods are the router's for that path, module routes included;
    # no token is needed (a browser never sends one on a preflight).
    for path, methods in (("/orders", ["GET", "HEAD", "POST", "OPTIONS"]),
                          ("/orders/7", ["GET", "HEAD", "OPTIONS"]),
                          ("/orders/%37", ["GET", "HEAD", "OPTIONS"]),
                          ("/analytics", ["GET", "HEAD", "OPTIONS"]),
                          ("/promotions", ["GET", "HEAD", "OPTIONS"]),
                          ("/health", ["GET", "HEAD", "OPTIONS"]),
                          ("/ws", ["GET", "HEAD", "OPTIONS"])):
        st, h, body = preflight(srv, path, headers={
            "Access-Control-Request-Headers": "content-type,idempotency-key,authorization"})
        assert st == 204 and body == b"", path
        assert_listed(h)
        assert set(names(h["access-control-allow-methods"])) == set(methods), path
        assert set(names(h["allow"])) == set(methods)
        assert {n.lower() for n in names(h["access-control-allow-headers"])} == \
            {"content-type", "idempotency-key", "authorization"}
        assert int(h["access-control-max-age"]) > 0
    # The origin is echoed as listed, in any form that names it.
    st, h, _ = preflight(srv, "/orders", origin="http://localhost:8080")
    assert st == 204 and h["access-control-allow-origin"] == "http://localhost:8080"
    st, h, _ = preflight(srv, "/orders", origin="https://dash.example.com:443")
    assert st == 204 and h["access-control-allow-origin"] == "https://dash.example.com:443"
    # Chromium asks before a public page may reach a private address.
    st, h, _ = preflight(srv, "/orders", headers={
        "Access-Control-Request-Private-Network": "true"})
    assert st == 204 and h["access-control-allow-private-network"] == "true"
    st, h, _ = preflight(srv, "/orders")
    assert "access-control-allow-private-network" not in h
    # A path nobody routes: 404, readable by the page.
    st, h, body = preflight(srv, "/nope")
    assert st == 404 and body["error"]["code"] == "not_found"
    assert_listed(h)
    assert "access-control-allow-methods" not in h
    # The Host check still applies (DNS rebinding), and says why to a listed page.
    st, h, body = preflight(srv, "/orders", host="evil.example")
    assert st == 421 and body["error"]["code"] == "host_not_allowed"
    assert_listed(h)
    assert "access-control-allow-methods" not in h
    # Other origins: 403, nothing to read, counted.
    for origin in ("https://evil.example", "http://dash.example.com", "null",
                   "https://dash.example.com.evil.example"):
        st, h, body = preflight(srv, "/orders", origin=origin)
        assert st == 403 and body["error"]["code"] == "origin_not_allowed", origin
        assert not cors(h)
    assert metric(srv, "origin") == 4


def test_preflight_with_any_origin(make_server):
    srv = make_server(MODULES, {"server": {"cors_origins": "*"}})
    st, h, _ = preflight(srv, "/orders", origin="https://anywhere.example")
    assert st == 204
    assert h["access-control-allow-origin"] == "*"
    assert "POST" in names(h["access-control-allow-methods"])
    st, h, _ = srv.get("/orders", headers={"Origin": "https://anywhere.example"})
    assert st == 200 and h["access-control-allow-origin"] == "*"
    assert set(names(h["access-control-expose-headers"])) == EXPOSED


def test_same_origin_preflight_needs_no_listing(make_server):
    # A browser does not preflight its own origin; if something does, the
    # page came from us: the answer is a plain OPTIONS.
    srv = make_server(MODULES)
    host = "127.0.0.1:%d" % srv.port
    st, h, _ = preflight(srv, "/orders", origin="http://" + host, host=host)
    assert st == 204 and names(h["allow"])[-1] == "OPTIONS" and not cors(h)


# -- every answer to a listed origin --------------------------------------------

def test_listed_origin_reads_every_answer(make_server):
    srv = make_server(MODULES, {"server": {"cors_origins": DASH, "max_body": 4096,
                                           "body_timeout_ms": 300},
                                "auth": {"write_token": WRITE}})
    o = {"Origin": DASH}
    # 201 with Location, then its replay with Idempotent-Replayed: both
    # readable because they are exposed.
    hdr = dict(o, **auth(WRITE), **{"Idempotency-Key": "k1"})
    st, h, _ = srv.post("/orders", ORDER, headers=hdr)
    assert st == 201 and h["location"].startswith("/orders/")
    assert_listed(h)
    st, h, _ = srv.post("/orders", ORDER, headers=hdr)
    assert h["idempotent-replayed"] == "true"
    assert_listed(h)
    # Errors from the module, the router, the guard and the HTTP layer.
    for method, path, body, headers, want in (
            ("POST", "/orders", {"product_id": ""}, auth(WRITE), 400),
            ("POST", "/orders", ORDER, {}, 401),
            ("POST", "/orders", b"x=1", dict(auth(WRITE), **{
                "Content-Type": "application/x-www-form-urlencoded"}), 415),
            ("GET", "/orders/999", None, {}, 404),
            ("DELETE", "/orders", None, auth(WRITE), 405),
            ("GET", "/", None, {}, 426),
            ("POST", "/orders", b"[" * 5000, auth(WRITE), 413)):
        st, h, _ = srv.request(method, path, body=body, headers=dict(o, **headers))
        assert st == want, (method, path, st)
        assert_listed(h)
    # A body that never comes: the 408 is the connection's, not a handler's.
    head = ("POST /orders HTTP/1.1\r\nHost: localhost\r\nOrigin: %s\r\n"
            "Content-Type: application/json\r\nContent-Length: 50\r\n"
            "Authorization: Bearer %s\r\n\r\n{" % (DASH, WRITE))
    st, h, _ = raw(srv, head)
    assert st == 408
    assert_listed(h)
    # An unlisted origin gets the same answers, with nothing to read.
    st, h, _ = srv.get("/orders/999", headers={"Origin": "https://evil.example"})
    assert st == 404 and not cors(h) and h["vary"] == "Origin"


def test_read_token_from_a_page(make_server):
    # What a dashboard on another site does with a read token: the
    # preflight allows Authorization, then the GET is readable.
    srv = make_server(MODULES, {"server": {"cors_origins": DASH},
                                "auth": {"read_token": READ}})
    st, h, _ = preflight(srv, "/analytics", method="GET",
                         headers={"Access-Control-Request-Headers": "authorization"})
    assert st == 204 and "Authorization" in names(h["access-control-allow-headers"])
    assert "GET" in names(h["access-control-allow-methods"])
    st, h, body = srv.get("/analytics", headers={"Origin": DASH, **auth(READ)})
    assert st == 200 and "totalRevenue" in body
    assert_listed(h)
    st, h, _ = srv.get("/analytics", headers={"Origin": DASH})
    assert st == 401 and "WWW-Authenticate" in names(h["access-control-expose-headers"])
    assert_listed(h)


def test_websocket_handshake_gets_no_cors_headers(make_server):
    # WebSocket is not CORS: the Origin rule decides, the 101 says nothing.
    srv = make_server(MODULES, {"server": {"cors_origins": DASH}})
    st, h, _ = raw(srv, ws_head(origin=DASH))
    assert st == 101 and not cors(h)
    st, h, b = raw(srv, ws_head(origin="https://evil.example"))
    assert st == 403 and code_of(b) == "origin_not_allowed" and not cors(h)


# -- README ----------------------------------------------------------------------

def readme_example():
    """The README's preflight example: its ini block, its curl command and
    the answer it shows, in that order after "**CORS.**"."""
    text = open(os.path.join(ROOT, "README.md")).read()
    part = text[text.index("**CORS.**"):]
    blocks = re.findall(r"```(\w*)\n(.*?)```", part, re.S)
    ini = next(b for lang, b in blocks if lang == "ini")
    sh = next(b for lang, b in blocks if lang == "sh" and "OPTIONS" in b)
    out = next(b for lang, b in blocks if lang == "http")
    return ini, sh, out


def test_readme_preflight_example(make_server):
    ini, sh, out = readme_example()
    origins = re.search(r"^cors_origins = (.*)$", ini, re.M).group(1)
    srv = make_server(MODULES, {"server": {"cors_origins": origins}})
    cmd = shlex.split(sh.replace("\\\n", " ").replace(
        "localhost:3000", "localhost:%d" % srv.port))
    assert cmd[0] == "curl"
    p = subprocess.run(cmd, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    got = p.stdout.decode().replace("\r\n", "\n").splitlines()
    want = [l for l in out.splitlines() if l and not l.startswith("Date:")]
    for line in want:
        assert line in got, (line, got)


# -- a real browser -------------------------------------------------------------

PAGE = """<!doctype html><meta charset="utf-8"><pre id="out">pending</pre>
<script>
const base = "http://127.0.0.1:%(port)d", out = {};
async function step(name, f) {
  try { out[name] = await f(); } catch (e) { out[name] = "failed: " + e; }
  document.getElementById("out").textContent = JSON.stringify(out);
}
const json = {"Content-Type": "application/json"};
(async () => {
  await step("read", async () => {
    const r = await fetch(base + "/analytics",
      {headers: {Authorization: "Bearer %(read)s"}});
    return [r.status, (await r.json()).totalOrders];
  });
  for (const name of ["post", "replay"])
    await step(name, async () => {
      const r = await fetch(base + "/orders", {method: "POST",
        headers: {...json, "Idempotency-Key": "page-1",
                  Authorization: "Bearer %(write)s"},
        body: JSON.stringify({product_id: "101", quantity: 2, price: 25.5})});
      return [r.status, r.headers.get("Location"),
              r.headers.get("Idempotent-Replayed")];
    });
  await step("refused", async () => {
    const r = await fetch(base + "/orders", {method: "POST", headers: json,
      body: "{}"});
    return [r.status, (await r.json()).error.code,
            r.headers.get("WWW-Authenticate")];
  });
  await step("ws", async () => {
    let got = null;
    const ws = new WebSocket("ws://127.0.0.1:%(port)d/?token=%(read)s");
    ws.onopen = () => ws.send('{"type":"subscribe","events":["bogus"]}');
    ws.onmessage = (e) => { got = JSON.parse(e.data).data.code; ws.close(); };
    ws.onerror = () => { got = "ws error"; };
    // Headless virtual time waits for fetches, not for a WebSocket.
    for (let i = 0; i < 50 && got === null; i++)
      await fetch("/wait");
    return got;
  });
  out.done = true;
  document.getElementById("out").textContent = JSON.stringify(out);
})();
</script>"""


class PageServer:
    """Serves one page, set later, at / of a new loopback origin."""

    def __init__(self):
        owner = self
        self.page = ""

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/wait":
                    time.sleep(0.1)
                body = owner.page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def chromium_or_skip():
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("no chromium (make deps installs it)")
    return path


def run_page(chromium, origin, profile):
    """What headless chromium's DOM shows in #out once the page is done."""
    p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        "--user-data-dir=%s" % profile,
                        "--virtual-time-budget=10000", "--dump-dom",
                        origin + "/"], capture_output=True, timeout=120)
    m = re.search(r'<pre id="out">(.*?)</pre>', p.stdout.decode())
    assert m, p.stdout.decode() + p.stderr.decode()
    text = html.unescape(m.group(1))
    assert "done" in text, text
    return json.loads(text)


def test_browser_pages_on_listed_and_other_origins(make_server, tmp_path):
    # Chromium itself decides what a page may read: the preflight with
    # Authorization and Idempotency-Key, the exposed headers, a 401 the
    # page can read, the WebSocket Origin rule.
    chromium = chromium_or_skip()
    listed, other = PageServer(), PageServer()
    try:
        srv = make_server(MODULES, {"server": {"cors_origins": listed.origin},
                                    "auth": {"read_token": READ,
                                             "write_token": WRITE}})
        listed.page = other.page = PAGE % {"port": srv.port, "read": READ,
                                           "write": WRITE}
        out = run_page(chromium, listed.origin, tmp_path / "a")
        assert out["read"] == [200, 0], out
        assert out["post"][0] == 201, out
        assert out["post"][1].startswith("/orders/"), out
        assert out["replay"] == [201, out["post"][1], "true"], out
        assert out["refused"] == [401, "unauthorized",
                                  'Bearer realm="salesd"'], out
        assert out["ws"] == "unknown_event", out
        # The same page elsewhere reads nothing, writes nothing, and
        # cannot open the feed.
        st, _, body = srv.get("/orders", headers=auth(READ))
        stored = len(body["orders"])
        out = run_page(chromium, other.origin, tmp_path / "b")
        for step in ("read", "post", "replay", "refused"):
            assert out[step].startswith("failed: TypeError"), out
        assert out["ws"] == "ws error", out
        st, _, body = srv.get("/orders", headers=auth(READ))
        assert len(body["orders"]) == stored
    finally:
        listed.close()
        other.close()
