"""docs/openapi.yaml is what the server does.

The file is linted with redocly (pinned in tests/package.json; `make
test-tools` installs it), then a live salesd with every shipped module
(weather and ai_recommend on the fakes of fakes.py), tokens and a CORS
origin is called on every route with good and bad inputs (and "/" on one
without the dashboard module, where it is 426 again).  Each answer's
status must be documented for that path and method, its documented
headers present and valid, and its body valid against the schema of
that status and media type (python3-jsonschema, Draft 2020-12, which
OpenAPI 3.1 schemas are).  Then the other way round: every operation in
the spec was called, every route the sources register is in the spec
with exactly the methods the server answers (Allow, 405), and the
WebSocket messages both ways match the x-websocket schemas.
"""
import asyncio
import configparser
import glob
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time

import jsonschema
import pytest
import websockets
import yaml

from conftest import ROOT
from rawhttp import Answer, exchange
from fakes import chat_body, fake_upstream, openweather_body  # noqa: F401

SPEC_PATH = os.path.join(ROOT, "docs", "openapi.yaml")

READ = "read-token-0123456789"
WRITE = "write-token-0123456789"
OPS = "ops-token-0123456789"
ORIGIN = "http://dash.test:8080"
MAX_BODY = 65536
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

SPEC = yaml.safe_load(open(SPEC_PATH))


def deref(node):
    """Follows a local $ref ("#/components/...") to what it names."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = SPEC
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _max_decimals(validator, places, instance, schema):
    """x-max-decimal-places: the server's rule for price, checked on the
    number's shortest text as JSON writes it."""
    if isinstance(instance, float):
        text = repr(instance)
        if "e" in text or "E" in text:
            m, e = text.lower().split("e")
            frac = len(m.split(".")[1]) if "." in m else 0
            decimals = max(0, frac - int(e))
        else:
            decimals = len(text.split(".")[1].rstrip("0"))
        if decimals > places:
            yield jsonschema.ValidationError(
                "%r has more than %d decimal places" % (instance, places))


Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"x-max-decimal-places": _max_decimals})


def validator(schema):
    return Validator(schema, resolver=jsonschema.RefResolver.from_schema(SPEC),
                     format_checker=jsonschema.FormatChecker())


def schema_errors(schema, value):
    return [e.message for e in validator(schema).iter_errors(value)]


def component(name):
    return {"$ref": "#/components/schemas/" + name}


# -- talking to the server --------------------------------------------------

def call(port, method, url, headers=None, body=None, host="localhost"):
    """One request on its own connection, headers exactly as given."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.putrequest(method, url, skip_host=True, skip_accept_encoding=True)
    hdrs = {"Host": host}
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    if body is not None:
        hdrs["Content-Length"] = str(len(body))
    hdrs.update(headers or {})
    for k, v in hdrs.items():
        if v is not None:
            c.putheader(k, v)
    c.endheaders(body)
    r = c.getresponse()
    raw = r.read()
    h = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return Answer(r.status, h, raw)


def handshake(port, url, headers, host="localhost"):
    """A WebSocket handshake on a raw socket: the head of the answer (and
    the body of a refusal)."""
    lines = ["GET %s HTTP/1.1" % url, "Host: " + host]
    lines += ["%s: %s" % kv for kv in headers.items()]
    return exchange(port, "\r\n".join(lines) + "\r\n\r\n")


# -- checking an answer against the spec -------------------------------------

class Spec:
    def __init__(self):
        self.called = set()             # (path, method)
        self.statuses = set()           # (path, method, status)

    def check(self, path, method, ans, why=""):
        what = "%s %s -> %d %s" % (method.upper(), path, ans.status, why)
        assert path in SPEC["paths"], "%s: path not in the spec" % what
        op = deref(SPEC["paths"][path].get(method))
        assert op is not None, "%s: method not in the spec" % what
        resp = op["responses"].get(str(ans.status))
        assert resp is not None, "%s: status not documented (body %r)" % (
            what, ans.raw[:300])
        resp = deref(resp)
        for name, h in resp.get("headers", {}).items():
            h = deref(h)
            v = ans.headers.get(name.lower())
            if h.get("required"):
                assert v is not None, "%s: no %s header" % (what, name)
            if v is not None:
                errs = schema_errors(h["schema"], v)
                assert not errs, "%s: header %s %r: %s" % (what, name, v, errs)
        content = resp.get("content")
        if method == "head" or content is None:
            assert ans.raw == b"", "%s: a body where none is documented" % what
        else:
            ctype = ans.headers.get("content-type", "")
            media = [m for m in content if m.lower() == ctype.lower()]
            assert media, "%s: Content-Type %r, documented %s" % (
                what, ctype, list(content))
            body = ans.raw.decode()
            if media[0] == "application/json":
                body = json.loads(body)
            errs = schema_errors(content[media[0]]["schema"], body)
            assert not errs, "%s: body %r: %s" % (what, body, errs)
        self.called.add((path, method))
        self.statuses.add((path, method, ans.status))
        return ans


def spec_operations():
    return {(p, m) for p, item in SPEC["paths"].items() for m in item
            if m in METHODS}


def dashboard_routes():
    """The dashboard's open routes (GET): the files embed.cmake compiles
    in from modules/dashboard/module.cmake's list, index.html at "/" and
    every other file at "/dashboard/<file>"."""
    d = os.path.join(ROOT, "modules", "dashboard")
    embed = open(os.path.join(d, "embed.cmake")).read()
    assert 'if(f STREQUAL "index.html")\n    set(url "/")' in embed and \
        'set(url "/dashboard/${f}")' in embed, \
        "embed.cmake maps files to URLs differently: update this test"
    files = re.search(r"set\(DASHBOARD_PAGE ([^)]*)\)", open(
        os.path.join(d, "module.cmake")).read()).group(1).split()
    assert "index.html" in files, files
    return {("GET", "/" if f == "index.html" else "/dashboard/" + f)
            for f in files}


def source_routes():
    """(METHOD, pattern) of every route the sources register: the
    modules' http_route() and http_route_open() calls (the dashboard's,
    from a table, by dashboard_routes()), the core's ops routes, and the
    WebSocket paths core/http.c answers."""
    routes = set()
    for f in glob.glob(os.path.join(ROOT, "modules", "*", "*.c")):
        text = open(f).read()
        routes |= set(re.findall(
            r'http_route\(\s*\w+\s*,\s*"([A-Z]+)"\s*,\s*"([^"]+)"', text))
        routes |= {("GET", p) for p in re.findall(
            r'http_route_open\(\s*\w+\s*,\s*"([^"]+)"', text)}
    routes |= dashboard_routes()
    text = open(os.path.join(ROOT, "core", "ops.c")).read()
    routes |= set(re.findall(
        r'core_router_add\(\s*"core"\s*,\s*"([A-Z]+)"\s*,\s*"([^"]+)"', text))
    http_c = open(os.path.join(ROOT, "core", "http.c")).read()
    for p in re.findall(r'strcmp\(path, "(/[a-z]*)"\) == 0', http_c):
        routes.add(("GET", p))
    return routes


def shipped_modules():
    """The default sales.ini's modules, then any other under modules/."""
    ini = configparser.ConfigParser(interpolation=None,
                                    inline_comment_prefixes=(";",))
    ini.read(os.path.join(ROOT, "sales.ini"))
    mods = ini["modules"]["load"].split()
    for d in sorted(os.listdir(os.path.join(ROOT, "modules"))):
        if os.path.isdir(os.path.join(ROOT, "modules", d)) and d not in mods:
            mods.append(d)
    return mods


def bearer(token):
    return {"Authorization": "Bearer " + token}


JSON = {"Content-Type": "application/json"}
SEED = {"product_id": "101", "quantity": 2, "price": 25.50,
        "date": "2025-04-22T10:00:00Z"}


# -- the tests ---------------------------------------------------------------

def readme_commands():
    """The commands of the README's "API reference" section, as argv."""
    text = open(os.path.join(ROOT, "README.md")).read()
    section = re.search(r"^## API reference\n(.*?)^## ", text, re.S | re.M)
    assert section, "README.md has no \"## API reference\" section"
    blocks = re.findall(r"```sh\n(.*?)```", section.group(1), re.S)
    assert len(blocks) == 1, blocks
    return [shlex.split(l) for l in blocks[0].replace("\\\n", " ").split("\n")
            if l.strip()]


def test_lint(tmp_path):
    """The README's lint command passes, with no warning either, and its
    page builds."""
    lint, build = readme_commands()
    assert lint[:2] == ["tests/node_modules/.bin/redocly", "lint"], lint
    assert build[:2] == ["tests/node_modules/.bin/redocly", "build-docs"]
    assert os.access(os.path.join(ROOT, lint[0]), os.X_OK), \
        "no %s: run `make test-tools` (npm ci in tests/)" % lint[0]
    p = subprocess.run(lint, cwd=ROOT, capture_output=True, timeout=300)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0 and "is valid" in out, out
    p = subprocess.run(lint + ["--format=json"], cwd=ROOT,
                       capture_output=True, timeout=300)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    totals = json.loads(out[out.index("{"):])["totals"]
    assert totals["errors"] == 0 and totals["warnings"] == 0, out
    page = str(tmp_path / "api.html")
    build[build.index("-o") + 1] = page
    p = subprocess.run(build, cwd=ROOT, capture_output=True, timeout=300)
    assert p.returncode == 0, (p.stdout + p.stderr).decode(errors="replace")
    html = open(page).read()
    assert "<title>salesd" in html and "Store one order or a batch" in html


def test_spec_covers_the_sources():
    """Every route the sources register is in the spec, and nothing else:
    with GET come HEAD, and every path has OPTIONS."""
    want = {}
    for method, pattern in source_routes():
        ms = want.setdefault(pattern, {"options"})
        ms.add(method.lower())
        if method == "GET":
            ms.add("head")
    have = {p: {m for m in item if m in METHODS}
            for p, item in SPEC["paths"].items()}
    assert have == want


def test_request_schemas_state_the_rules():
    """The NewOrders schema accepts what the server stores and refuses what
    it refuses (each of these is also posted in test_live below)."""
    schema = {"$ref": "#/components/schemas/NewOrders"}
    for good in GOOD_BODIES:
        assert not schema_errors(schema, good), good
    for bad, _ in BAD_BODIES:
        if bad is not None and not isinstance(bad, str):
            assert schema_errors(schema, bad), bad


GOOD_BODIES = [
    SEED,
    {"product_id": 7, "quantity": 1, "price": 0},
    {"product_id": "tea", "quantity": 1000000, "price": 1000000000,
     "date": None},
    {"product_id": "x" * 64, "quantity": 3, "price": 0.000001,
     "date": "2025-04-22T12:00:00.5+02:00"},
    [{"product_id": "102", "quantity": 1, "price": 10},
     {"product_id": "101", "quantity": 1, "price": 25.5}],
]

# (body, error code): every way the body can be refused.
BAD_BODIES = [
    ("{", "invalid_json"),
    ("", "invalid_json"),
    ("\"just a string\"", "invalid_body"),
    ([], "empty_array"),
    ([{"product_id": "1", "quantity": 1, "price": 1}] * 1001,
     "too_many_orders"),
    ([SEED, 5], "invalid_order"),
    ({"product_id": "101", "quantiy": 2, "quantity": 2, "price": 1},
     "unknown_field"),
    ("{\"product_id\":\"1\",\"quantity\":1,\"quantity\":2,\"price\":1}",
     "duplicate_field"),
    ({"quantity": 2, "price": 1}, "missing_field"),
    ({"product_id": "101", "price": 1}, "missing_field"),
    ({"product_id": "101", "quantity": 1}, "missing_field"),
    ({"product_id": "", "quantity": 1, "price": 1}, "invalid_field"),
    ({"product_id": "x" * 65, "quantity": 1, "price": 1}, "invalid_field"),
    ({"product_id": "a\u0001b", "quantity": 1, "price": 1}, "invalid_field"),
    ({"product_id": True, "quantity": 1, "price": 1}, "invalid_field"),
    ({"product_id": "1", "quantity": 0, "price": 1}, "invalid_field"),
    ({"product_id": "1", "quantity": 1000001, "price": 1}, "invalid_field"),
    ({"product_id": "1", "quantity": 2.5, "price": 1}, "invalid_field"),
    ({"product_id": "1", "quantity": "2", "price": 1}, "invalid_field"),
    ({"product_id": "1", "quantity": 1, "price": -1}, "invalid_field"),
    ({"product_id": "1", "quantity": 1, "price": 1000000001},
     "invalid_field"),
    ({"product_id": "1", "quantity": 1, "price": 0.1234567},
     "invalid_field"),
    ({"product_id": "1", "quantity": 1, "price": "1"}, "invalid_field"),
    ({"product_id": "1", "quantity": 1, "price": 1, "date": "yesterday"},
     "invalid_field"),
    ({"product_id": "1", "quantity": 1, "price": 1,
      "date": "2025-04-22 10:00:00"}, "invalid_field"),
    ({"product_id": "1", "quantity": 1, "price": 1, "date": 20250422},
     "invalid_field"),
]


@pytest.fixture
def server(make_server, fake_upstream):  # noqa: F811
    weather = fake_upstream()
    weather.set(body=openweather_body(28.4, "Clear", "London"))
    ai = fake_upstream()
    ai.set(body=chat_body({
        "recommendations": [{"product_id": "101", "action": "promote",
                             "reason": "the top seller"}],
        "summary": "Push 101."}))
    cfg = {
        "server": {"cors_origins": ORIGIN, "max_body": MAX_BODY},
        "auth": {"read_token": READ, "write_token": WRITE,
                 "ops_token": OPS},
        "weather": {"api_key": "wk", "city": "London",
                    "base_url": weather.url, "timeout_ms": 3000,
                    "retries": 0},
        "ai_recommend": {"api_key": "sk-test", "model": "fake-model",
                         "base_url": ai.url + "/v1", "timeout_ms": 5000},
    }
    srv = make_server(shipped_modules(), config=cfg)
    srv.weather = weather
    return srv


def test_live(server, make_server):
    spec = Spec()
    port = server.port

    def do(path, method, url, headers=None, body=None, host="localhost",
           status=None):
        ans = call(port, method.upper(), url, headers, body, host)
        if status is not None:
            assert ans.status == status, "%s %s: %d %r" % (
                method, url, ans.status, ans.raw[:300])
        return spec.check(path, method, ans, url)

    R, W, O = bearer(READ), bearer(WRITE), bearer(OPS)

    # POST /orders: stored, replayed, refused.
    first = do("/orders", "post", "/orders", {**JSON, **W}, SEED, status=201)
    assert first.headers["location"] == "/orders/%d" % first.json()["id"]
    for good in GOOD_BODIES[1:]:
        do("/orders", "post", "/orders", {**JSON, **W}, good, status=201)
    key = {"Idempotency-Key": "order-2026-0001"}
    a = do("/orders", "post", "/orders", {**JSON, **W, **key}, SEED,
           status=201)
    b = do("/orders", "post", "/orders", {**JSON, **W, **key}, SEED,
           status=201)
    assert b.headers.get("idempotent-replayed") == "true"
    assert a.raw == b.raw
    do("/orders", "post", "/orders", {**JSON, **W, **key},
       {**SEED, "quantity": 3}, status=422)
    for bad, code in BAD_BODIES:
        ans = do("/orders", "post", "/orders", {**JSON, **W}, bad,
                 status=400)
        assert ans.json()["error"]["code"] == code, (bad, ans.raw)
    for k in ("", "x" * 256, "caf\u00e9".encode().decode("latin-1")):
        do("/orders", "post", "/orders",
           {**JSON, **W, "Idempotency-Key": k}, SEED, status=400)
    do("/orders", "post", "/orders", {**JSON, **W},
       "[" + " " * MAX_BODY + "]", status=413)
    do("/orders", "post", "/orders", W, SEED, status=415)
    do("/orders", "post", "/orders", {**W, "Content-Type": "text/plain"},
       SEED, status=415)
    do("/orders", "post", "/orders", JSON, SEED, status=401)
    do("/orders", "post", "/orders", {**JSON, **bearer("x" * 20)}, SEED,
       status=401)
    do("/orders", "post", "/orders", {**JSON, **R}, SEED, status=403)
    do("/orders", "post", "/orders", {**JSON, **W}, SEED,
       host="evil.example", status=421)
    concurrent_key(port, spec)

    # GET/HEAD /orders and /orders/{id}.
    page = do("/orders", "get", "/orders?limit=2", R, status=200).json()
    assert len(page["orders"]) == 2 and page["next_before_id"]
    do("/orders", "get", "/orders?limit=2&before_id=%d"
       % page["next_before_id"], W, status=200)
    do("/orders", "get", "/orders?product_id=101", R, status=200)
    do("/orders", "get", "/orders?product_id=never-sold", R, status=200)
    for q in ("limit=0", "limit=1001", "limit=x", "before_id=0",
              "before_id=-1", "product_id=" + "x" * 65):
        ans = do("/orders", "get", "/orders?" + q, R, status=400)
        assert ans.json()["error"]["field"] == q.split("=")[0]
    do("/orders", "head", "/orders", R, status=200)
    do("/orders", "head", "/orders?limit=0", R, status=400)
    one = do("/orders/{id}", "get", "/orders/1", R, status=200).json()
    assert one == first.json()
    do("/orders/{id}", "get", "/orders/999999", R, status=404)
    do("/orders/{id}", "get", "/orders/abc", R, status=400)
    do("/orders/{id}", "head", "/orders/1", R, status=200)
    do("/orders/{id}", "head", "/orders/999999", R, status=404)
    do("/orders/{id}", "head", "/orders/abc", R, status=400)

    # The other reads.
    an = do("/analytics", "get", "/analytics", R, status=200).json()
    assert an["totalOrders"] >= 7
    do("/analytics", "get", "/analytics?top=1", R, status=200)
    for q in ("0", "101", "x", "1.5", ""):
        do("/analytics", "get", "/analytics?top=" + q, R, status=400)
    do("/analytics", "head", "/analytics", R, status=200)
    do("/analytics", "head", "/analytics?top=0", R, status=400)
    promo = do("/promotions", "get", "/promotions", R, status=200).json()
    assert promo["weather"]["source"] == "openweather", promo
    do("/promotions", "head", "/promotions", R, status=200)
    rec = do("/recommendations", "get", "/recommendations", R,
             status=200).json()
    assert rec["source"] == "openai", rec
    do("/recommendations", "head", "/recommendations", R, status=200)
    for path in ("/health", "/health/live", "/health/ready", "/metrics"):
        do(path, "get", path, O, status=200)
        do(path, "get", path, W, status=200)
        do(path, "head", path, O, status=200)
        do(path, "get", path, R, status=403)
        do(path, "head", path, R, status=403)
        do(path, "get", path, None, status=401)
        do(path, "head", path, bearer("y" * 20), status=401)
        do(path, "get", path, O, host="evil.example", status=421)
        do(path, "head", path, O, host="evil.example", status=421)

    # Tokens and Host on every read; OPTIONS and 405 on every path.
    reads = {"/orders": "/orders", "/orders/{id}": "/orders/1",
             "/analytics": "/analytics", "/promotions": "/promotions",
             "/recommendations": "/recommendations"}
    for path, url in reads.items():
        do(path, "get", url, None, status=401)
        do(path, "get", url, bearer("z" * 20), status=401)
        do(path, "get", url, O, status=403)
        do(path, "get", url, R, host="evil.example", status=421)
        do(path, "head", url, None, status=401)
        do(path, "head", url, O, status=403)
        do(path, "head", url, R, host="evil.example", status=421)
    for path in SPEC["paths"]:
        url = path.replace("{id}", "1")
        allowed = sorted(m.upper() for m in SPEC["paths"][path]
                         if m in METHODS)
        ans = do(path, "options", url, status=204)
        assert sorted(ans.headers["allow"].split(", ")) == allowed, path
        pre = do(path, "options", url, {
            "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
            "Access-Control-Request-Private-Network": "true"}, status=204)
        assert pre.headers["access-control-allow-origin"] == ORIGIN
        assert sorted(pre.headers["access-control-allow-methods"]
                      .split(", ")) == allowed
        do(path, "options", url, {
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "GET"}, status=403)
        do(path, "options", url, host="evil.example", status=421)
        # A method the path does not have: 405, the same Allow.
        for m in ("DELETE", "PUT", "PATCH"):
            if m in allowed:
                continue
            ans = call(port, m, url, {**JSON, **W}, "{}")
            assert ans.status == 405, (m, url, ans.status, ans.raw)
            assert sorted(ans.headers["allow"].split(", ")) == allowed
            assert not schema_errors(component("Error"), ans.json())
            assert ans.json()["error"]["code"] == "method_not_allowed"
    ans = call(port, "GET", "/no/such/route", R)
    assert ans.status == 404
    assert not schema_errors(component("Error"), ans.json())

    # The WebSocket endpoint's HTTP side.
    key = {"Upgrade": "websocket", "Connection": "Upgrade",
           "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    for path in ("/", "/ws"):
        def hs(headers, url=path, host="localhost", status=None):
            ans = handshake(port, url, headers, host)
            assert status is None or ans.status == status, (
                url, headers, ans.status, ans.raw)
            return spec.check(path, "get", ans, url)
        ok = hs({**key, **R}, status=101)
        assert ok.headers["sec-websocket-accept"] == \
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        hs(key, url=path + "?token=" + READ, status=101)
        hs({**key, **W}, status=101)
        hs({**key, **R, "Sec-WebSocket-Version": "12"}, status=426)
        hs({**key, **R, "Sec-WebSocket-Key": "short"}, status=400)
        hs({**key, **R, "Connection": "keep-alive"}, status=400)
        hs({**key, **R, "Origin": "http://evil.example"}, status=403)
        hs({**key, **O}, status=403)
        hs(key, status=401)
        hs({**key, **bearer("w" * 20)}, status=401)
        hs({**key, **R}, host="evil.example", status=421)
        do(path, "head", path, {**R, **key}, status=400)
        do(path, "head", path, R, host="evil.example", status=421)
    # Without Upgrade, /ws is refused; / is the dashboard's page (below).
    do("/ws", "get", "/ws", R, status=426)
    do("/ws", "head", "/ws", R, status=426)
    do("/ws", "head", "/ws", None, status=401)
    do("/ws", "head", "/ws", O, status=403)
    # HEAD / asking for an upgrade is a handshake's: it needs the token.
    do("/", "head", "/", {"Upgrade": "websocket"}, status=401)
    do("/", "head", "/", {"Upgrade": "websocket", **O}, status=403)

    dashboard(port, spec, do)

    # "/" without the dashboard module: the WebSocket endpoint only.
    bare = make_server(["orders"], subdir="bare")
    for method in ("get", "head"):
        ans = call(bare.port, method.upper(), "/")
        assert ans.status == 426, ans.raw
        assert ans.headers["upgrade"] == "websocket"
        spec.check("/", method, ans, "without the dashboard module")
    ans = handshake(bare.port, "/", key)
    assert ans.status == 101, ans.raw
    spec.check("/", "get", ans, "without the dashboard module")
    assert call(bare.port, "GET", "/dashboard/app.js").status == 404

    # Every operation of the spec was called; the dashboard's with every
    # status it documents (503, the connection limit, is the same for
    # every path: test_connection_limit).
    missing = spec_operations() - spec.called
    assert not missing, "never called: %s" % sorted(missing)
    for path in DASHBOARD:
        for method in ("get", "head", "options"):
            want = {(path, method, int(st)) for st in
                    SPEC["paths"][path][method]["responses"] if st != "503"}
            unseen = want - spec.statuses
            assert not unseen, "never answered: %s" % sorted(unseen)

    asyncio.run(websocket_messages(server))


# The dashboard's open routes and their media types.
DASHBOARD = {"/": "text/html; charset=utf-8",
             "/dashboard/app.js": "text/javascript; charset=utf-8",
             "/dashboard/style.css": "text/css; charset=utf-8",
             "/dashboard/icon.svg": "image/svg+xml"}


def dashboard(port, spec, do):
    """The dashboard's page and files (the server has read, write and ops
    tokens): open to no token and to any token, the same file each time,
    revalidated by ETag, the same 404/405 as any route around them."""
    R, W, O = bearer(READ), bearer(WRITE), bearer(OPS)
    for path, ctype in DASHBOARD.items():
        # The documented security is none: no token, any token, a wrong
        # one and one that may not read all get the file.
        first = do(path, "get", path, None, status=200)
        assert first.headers["content-type"] == ctype
        assert int(first.headers["content-length"]) == len(first.raw) > 0
        etag = first.headers["etag"]
        for h in (R, W, O, bearer("v" * 20), {"Authorization": "Basic x"}):
            ans = do(path, "get", path, h, status=200)
            assert ans.raw == first.raw and ans.headers["etag"] == etag
        # A query string is not part of the route.
        assert do(path, "get", path + "?v=2", status=200).raw == first.raw
        head = do(path, "head", path, None, status=200)
        assert head.headers["etag"] == etag
        assert head.headers["content-type"] == ctype
        assert head.headers["content-length"] == str(len(first.raw))
        do(path, "head", path, bearer("v" * 20), status=200)
        # Revalidation: the weak comparison of RFC 9110 13.1.2.
        for inm in (etag, "W/" + etag, '"0000000000000000", ' + etag, "*"):
            ans = do(path, "get", path, {"If-None-Match": inm}, status=304)
            assert ans.headers["etag"] == etag
            assert "content-type" not in ans.headers
            do(path, "head", path, {"If-None-Match": inm}, status=304)
        for inm in ('"0000000000000000"', etag[:-2] + '"', "garbage"):
            ans = do(path, "get", path, {"If-None-Match": inm}, status=200)
            assert ans.raw == first.raw
        do(path, "get", path, None, host="evil.example", status=421)
        do(path, "head", path, None, host="evil.example", status=421)
        # Other methods: the write token's, then 405 with the path's Allow.
        allowed = "GET, HEAD, OPTIONS"
        for m in ("POST", "PUT", "PATCH", "DELETE"):
            ans = call(port, m, path, JSON, "{}")
            assert ans.status == 401, (m, path, ans.status, ans.raw)
            ans = call(port, m, path, {**JSON, **W}, "{}")
            assert ans.status == 405, (m, path, ans.status, ans.raw)
            assert ans.headers["allow"] == allowed
            assert ans.json()["error"]["code"] == "method_not_allowed"
            assert not schema_errors(component("Error"), ans.json())
    # The page names its files, and CSP 'self' lets it load them.
    page = call(port, "GET", "/").raw.decode()
    for path in DASHBOARD:
        if path != "/":
            assert 'src="%s"' % path in page or 'href="%s"' % path in page
    # Only those paths are open: an unknown file is an unknown path.
    for url in ("/dashboard/nope.js", "/dashboard/", "/dashboard",
                "/dashboard/app.js/x", "/index.html"):
        ans = call(port, "GET", url)
        assert ans.status == 401, (url, ans.status, ans.raw)
        ans = call(port, "GET", url, R)
        assert ans.status == 404, (url, ans.status, ans.raw)
        assert not schema_errors(component("Error"), ans.json())
        assert ans.json()["error"]["code"] == "not_found"


def concurrent_key(port, spec):
    """Two requests with one new Idempotency-Key on one connection, back
    to back: the second finds the first in flight (409) or committed
    (its replay); either must be as documented."""
    body = json.dumps({"product_id": "pipelined", "quantity": 1,
                       "price": 1}).encode()
    req = ("POST /orders HTTP/1.1\r\nHost: localhost\r\n"
           "Content-Type: application/json\r\nAuthorization: Bearer %s\r\n"
           "Idempotency-Key: pipelined-1\r\nContent-Length: %d\r\n\r\n"
           % (WRITE, len(body))).encode() + body
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(req + req)
    f = s.makefile("rb")
    statuses = []
    for _ in range(2):
        line = f.readline().decode()
        status = int(line.split()[1])
        h = {}
        while True:
            l = f.readline().decode().rstrip("\r\n")
            if not l:
                break
            k, _, v = l.partition(":")
            h[k.strip().lower()] = v.strip()
        raw = f.read(int(h.get("content-length", "0")))
        spec.check("/orders", "post", Answer(status, h, raw), "pipelined")
        statuses.append(status)
    s.close()
    assert statuses[0] == 201 and statuses[1] in (201, 409), statuses


async def websocket_messages(server):
    """The messages of x-websocket, both ways, with a live client."""
    ws_spec = SPEC["x-websocket"]
    client_schema = ws_spec["clientMessage"]
    server_schema = ws_spec["serverMessage"]
    port = server.port

    async def recv(ws, want_type):
        deadline = time.time() + 20
        while time.time() < deadline:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
            errs = schema_errors(server_schema, msg)
            assert not errs, (msg, errs)
            assert not schema_errors(ws_spec["serverMessages"][msg["type"]],
                                     msg)
            if msg["type"] == want_type:
                return msg
        raise AssertionError("no %s" % want_type)

    async def send(ws, msg, valid=True):
        if valid:
            assert not schema_errors(client_schema, msg), msg
        await ws.send(msg if isinstance(msg, str) else json.dumps(msg))

    url = "ws://127.0.0.1:%d/ws" % port
    async with websockets.connect(url, extra_headers=bearer(READ)) as ws:
        await send(ws, {"type": "subscribe", "events": ["bogus"]})
        err = await recv(ws, "error")
        assert err["data"]["code"] == "unknown_event"
        assert err["data"]["events"] == ["bogus"]
        await send(ws, {"type": "subscribe", "events": []})
        await recv(ws, "subscribed")
        await send(ws, {"type": "getAnalytics"})
        await recv(ws, "updateAnalytics")
        st, _, order = server.post("/orders", SEED, headers=bearer(WRITE))
        assert st == 201
        got = await recv(ws, "newOrder")
        assert got["data"] == order
        await recv(ws, "updateAnalytics")
        await send(ws, {"type": "subscribe", "events": ["newOrder"],
                        "batchMs": 50})
        sub = await recv(ws, "subscribed")
        assert sub["batchMs"] == 50
        st, _, _ = server.post("/orders", GOOD_BODIES[-1],
                               headers=bearer(WRITE))
        assert st == 201
        batch = await recv(ws, "newOrders")
        assert len(batch["data"]) >= 1
        await send(ws, {"type": "subscribe", "events": ["newOrder"],
                        "batchMs": 5}, valid=False)
        assert (await recv(ws, "error"))["data"]["code"] == "bad_message"
        await send(ws, {"type": "hello"}, valid=False)
        assert (await recv(ws, "error"))["data"]["code"] == "unknown_type"
        await send(ws, "not json", valid=False)
        assert (await recv(ws, "error"))["data"]["code"] == "bad_json"
        # updatePromotions: the weather changes on a reload with a new city.
        await send(ws, {"type": "subscribe", "events": ["updatePromotions"]})
        await recv(ws, "subscribed")
        server.weather.set(body=openweather_body(4.0, "Rain", "Oslo"))
        server.write_config({"weather": {"city": "Oslo"}})
        server.proc.send_signal(signal.SIGHUP)
        promo = await recv(ws, "updatePromotions")
        assert promo["data"]["weather"]["city"] == "Oslo"
        await ws.close()
        assert ws.close_code == 1000


def test_connection_limit(make_server):
    """Past [server] max_connections a connection gets the documented 503
    (and is closed) whatever it asks."""
    srv = make_server(["orders", "analytics"],
                      config={"server": {"max_connections": 1}})
    hold = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    try:
        # The first connection is surely counted once it was answered.
        hold.sendall(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert hold.recv(4096).startswith(b"HTTP/1.1 200")
        spec = Spec()
        ans = call(srv.port, "GET", "/analytics")
        assert ans.status == 503, ans.raw
        spec.check("/analytics", "get", ans)
        assert json.loads(ans.raw)["error"]["code"] == "too_many_connections"
        assert ans.headers.get("retry-after") == "1"
    finally:
        hold.close()


def test_storage_fault(make_server):
    """With the database deleted underneath, the 503s of /health,
    /health/ready and POST /orders are the documented ones (and the reads
    answer as documented, whichever way they go)."""
    srv = make_server(["orders", "analytics"])
    spec = Spec()
    assert spec.check("/orders", "post", call(
        srv.port, "POST", "/orders", JSON, SEED)).status == 201
    for suffix in ("", "-wal", "-shm"):
        os.unlink(srv.db + suffix)
    deadline = time.time() + 20
    while call(srv.port, "GET", "/health").status != 503:
        assert time.time() < deadline, "storage fault not noticed"
        time.sleep(0.05)
    health = spec.check("/health", "get", call(srv.port, "GET", "/health"))
    assert health.status == 503 and health.json()["status"] == "degraded"
    assert health.json()["storage"]["fault"]
    ready = spec.check("/health/ready", "get",
                       call(srv.port, "GET", "/health/ready"))
    assert ready.status == 503 and ready.json()["status"] == "not_ready"
    spec.check("/health", "head", call(srv.port, "HEAD", "/health"))
    post = spec.check("/orders", "post",
                      call(srv.port, "POST", "/orders", JSON, SEED))
    assert post.status == 503
    assert post.json()["error"]["code"] == "storage_error"
    assert post.headers.get("retry-after") == "1"
    assert health.headers.get("retry-after") == "1"
    spec.check("/orders", "get", call(srv.port, "GET", "/orders"))
    spec.check("/orders/{id}", "get", call(srv.port, "GET", "/orders/1"))
    assert call(srv.port, "GET", "/health/live").status == 200
