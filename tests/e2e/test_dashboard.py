"""The live dashboard (modules/dashboard) in a real browser: Debian's
chromium, headless, driven by tests/e2e/dashboard_driver.mjs through
playwright-core (tests/node_modules, `make test-tools`).  Orders are posted
through the API and every figure is read back from the rendered DOM; the
page's HTTP side (ETag, 304, CSP, HEAD, open routes, the WebSocket upgrade
kept on "/") is checked on the wire.

Screenshots go to the test's tmp_path; set DASHBOARD_SCREENSHOT=path to
also write the busy one there (that is how docs/dashboard.png is made:
DASHBOARD_SCREENSHOT=$PWD/docs/dashboard.png tests/run build -k screenshot)."""
import base64
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time

import pytest

from conftest import ROOT
from fakes import chat_body, fake_upstream, openweather_body  # noqa: F401
from rawhttp import exchange

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "dashboard_driver.mjs")
PLAYWRIGHT = os.path.join(ROOT, "tests", "node_modules", "playwright-core")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ALL = ["orders", "analytics", "weather", "ai_recommend", "dashboard"]
READ = "r" * 8 + "-read-token-0123456789"
WRITE = "w" * 8 + "-write-token-0123456789"
ASSETS = {"/": "text/html", "/dashboard/app.js": "text/javascript",
          "/dashboard/style.css": "text/css",
          "/dashboard/icon.svg": "image/svg+xml"}

needs_browser = pytest.mark.skipif(
    not (shutil.which("node") and os.path.isdir(PLAYWRIGHT)
         and os.access(CHROMIUM, os.X_OK)),
    reason="needs node, chromium and tests/node_modules: make test-tools")


class Browser:
    """One headless chromium page, one command at a time."""

    def __init__(self):
        self.p = subprocess.Popen(["node", DRIVER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, cwd=ROOT, text=True)

    def do(self, **cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert line, "the browser driver exited"
        answer = json.loads(line)
        assert answer["ok"], "%s: %s" % (cmd, answer["error"])
        return answer["value"]

    def open(self, url):
        return self.do(cmd="open", url=url)

    def wait(self, expr, timeout=20000):
        return self.do(cmd="wait", expr=expr, timeout=timeout)

    def eval(self, expr):
        return self.do(cmd="eval", expr=expr)

    def value(self, el_id):
        return self.eval("document.getElementById(%r).dataset.value" % el_id)

    def wait_value(self, el_id, want, timeout=20000):
        """Waits until #el_id's data-value is the number want."""
        try:
            # An element not yet filled has data-value "", which
            # Number() would take for 0.
            self.wait("document.getElementById(%r).dataset.value !== '' && "
                      "Number(document.getElementById(%r).dataset.value) "
                      "=== %r" % (el_id, el_id, want), timeout)
        except AssertionError as e:
            raise AssertionError("#%s is %r, not %r: %s"
                                 % (el_id, self.value(el_id), want, e))

    def text(self, el_id):
        return self.eval("document.getElementById(%r).textContent" % el_id)

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write('{"cmd":"quit"}\n')
                self.p.stdin.close()
                self.p.wait(30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()


@pytest.fixture
def browser():
    b = Browser()
    yield b
    b.close()


def upgrade(port, path="/"):
    key = base64.b64encode(os.urandom(16)).decode()
    return exchange(port, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13"
                    "\r\n\r\n" % (path, key)).status


def url(srv, fragment=""):
    return "http://127.0.0.1:%d/%s" % (srv.port, fragment)


# -- the page on the wire --------------------------------------------------------

def test_page_headers_etag_and_upgrade(make_server):
    srv = make_server(ALL)
    for path, ctype in ASSETS.items():
        st, h, body = srv.get(path)
        assert st == 200, (path, body)
        assert h["content-type"].startswith(ctype)
        assert h["x-content-type-options"] == "nosniff"
        assert h["cache-control"] == "no-cache"
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp
        etag = h["etag"]
        assert etag.startswith('"') and etag.endswith('"') and len(etag) > 8
        # Revalidation: 304, no body; a list and a weak tag count too.
        for inm in (etag, '"nope", ' + etag, "W/" + etag, "*"):
            st, h2, body2 = srv.get(path, headers={"If-None-Match": inm})
            assert st == 304 and body2 == b"" and h2["etag"] == etag, inm
        st, _, _ = srv.get(path, headers={"If-None-Match": '"other"'})
        assert st == 200
        st, h3, body3 = srv.request("HEAD", path)
        assert st == 200 and body3 == b""
        assert int(h3["content-length"]) == len(body if isinstance(body, bytes)
                                                else json.dumps(body))
    st, _, page = srv.get("/")
    page = page.decode()
    assert "<script src=\"/dashboard/app.js\"" in page
    assert "<script>" not in page and "style=" not in page
    assert "http://" not in page and "https://" not in page   # no CDN
    # "/" and "/ws" still upgrade; a page route changes nothing for them.
    assert upgrade(srv.port, "/") == 101
    assert upgrade(srv.port, "/ws") == 101
    st, h, _ = srv.request("POST", "/", body={})
    assert st == 405 and "GET" in h["allow"]


def test_without_the_module_root_is_websocket_only(make_server):
    srv = make_server(["orders"])
    st, h, body = srv.get("/")
    assert st == 426 and body["error"]["code"] == "upgrade_required"
    assert srv.get("/dashboard/app.js")[0] == 404


def test_open_routes_need_no_token_and_nothing_else_opens(make_server):
    srv = make_server(ALL, {"auth": {"read_token": READ,
                                     "write_token": WRITE}})
    for path in ASSETS:
        assert srv.get(path)[0] == 200, path
        assert srv.request("HEAD", path)[0] == 200, path
    # Every other read still needs its token, unknown paths included.
    for path in ("/analytics", "/orders", "/promotions", "/dashboard/x",
                 "/dashboard", "/nope"):
        st, _, body = srv.get(path)
        assert st == 401 and body["error"]["code"] == "unauthorized", path
    assert srv.get("/analytics", headers={
        "Authorization": "Bearer " + READ})[0] == 200
    # The WebSocket on the page's own path still needs it too.
    assert upgrade(srv.port, "/") == 401
    assert upgrade(srv.port, "/?token=" + READ) == 101
    assert upgrade(srv.port, "/ws?token=" + READ) == 101


def test_readme_shows_the_committed_screenshot():
    """The README's Dashboard section shows docs/dashboard.png, which is
    in the repository and is the browser test's screenshot (a PNG at its
    width)."""
    text = open(os.path.join(ROOT, "README.md")).read()
    section = re.search(r"^## Dashboard\n(.*?)^## ", text, re.S | re.M)
    assert section, "README.md has no \"## Dashboard\" section"
    assert "](docs/dashboard.png)" in section.group(1)
    with open(os.path.join(ROOT, "docs", "dashboard.png"), "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert width == 1280 and height >= 900, (width, height)


# -- the page in a browser ------------------------------------------------------

def post(srv, order, token=None):
    h = {"Authorization": "Bearer " + token} if token else {}
    st, _, body = srv.post("/orders", order, headers=h)
    assert st == 201, body
    return body


@needs_browser
def test_dashboard_live(make_server, browser, tmp_path):
    srv = make_server(ALL)
    b = browser
    b.open(url(srv))
    b.wait("document.getElementById('conn').dataset.state === 'live'")
    b.wait_value("kpi-revenue", 0)
    b.wait_value("kpi-orders", 0)
    assert b.eval("document.getElementById('feed').children.length") == 0

    # Orders through the API: the page hears of them over the WebSocket.
    orders = [{"product_id": "101", "quantity": 2, "price": 25.5},
              {"product_id": "202", "quantity": 1, "price": 10},
              {"product_id": "101", "quantity": 1, "price": 25.5}]
    ids = [post(srv, o)["id"] for o in orders]
    b.wait_value("kpi-revenue", 86.5)
    b.wait_value("kpi-orders", 3)
    b.wait_value("kpi-minute-revenue", 86.5)
    b.wait_value("kpi-minute-orders", 3)
    b.wait_value("kpi-minute-change", 86.5)
    b.wait_value("kpi-minute-orders-change", 3)
    assert b.text("kpi-revenue") == "86.50"
    assert b.text("kpi-minute-change").startswith("▲ +86.50")
    assert b.text("kpi-minute-orders-change").startswith("▲ +3")
    # The chart: revenue per second, as drawn.
    b.wait("Number(document.getElementById('chart').dataset.total) === 86.5")
    series = json.loads(b.eval("document.getElementById('chart').dataset.series"))
    assert abs(sum(v for _, v in series) - 86.5) < 1e-9
    assert all(abs(t - time.time()) < 60 for t, _ in series)
    assert b.eval("document.getElementById('chart-bars').getAttribute('d')") != ""
    # Top products by revenue, and the feed newest first.
    b.wait("document.querySelector('#top li') && "
           "document.querySelector('#top li').dataset.revenue === '76.5'")
    top = b.eval("[...document.querySelectorAll('#top li')].map("
                 "e => [e.dataset.product, Number(e.dataset.revenue)])")
    assert top == [["101", 76.5], ["202", 10]]
    feed = b.eval("[...document.querySelectorAll('#feed li')].map("
                  "e => Number(e.dataset.id))")
    assert feed == sorted(ids, reverse=True)
    # No API key: weather and recommendations say they are fallbacks.
    b.wait("document.getElementById('promo-source').dataset.source")
    assert b.eval("document.getElementById('promo-source')"
                  ".classList.contains('fallback')")
    b.wait("document.getElementById('rec-source').dataset.source === 'fallback'")
    assert b.eval("document.body.dataset.events") == \
        "newOrder updateAnalytics updatePromotions"
    assert "fallback" in b.text("rec-source")
    assert "London" in b.text("weather")
    # The recommendations were asked for when the page opened, before any
    # sale; the orders make the page ask again (once, a little later),
    # and the answer names what was sold.
    b.wait("[...document.querySelectorAll('#recommendations li')]"
           ".some(e => e.dataset.product === '101')")
    recs = b.eval("[...document.querySelectorAll('#recommendations li')]"
                  ".map(e => e.dataset.product)")
    assert set(recs) <= {"101", "202"}, recs
    assert b.eval("document.getElementById('rec-state').hidden")

    # The form: an invalid order shows the API's own words...
    st, _, err = srv.post("/orders", {"product_id": "101", "quantity": 0,
                                      "price": 1})
    assert st == 400
    words = "%s (%s)" % (err["error"]["message"], err["error"]["field"])
    b.do(cmd="fill", selector="#f-quantity", value="0")
    b.do(cmd="fill", selector="#f-price", value="1")
    b.do(cmd="click", selector="#f-submit")
    b.wait("document.getElementById('form-result').classList.contains('error')")
    assert b.text("form-result") == words
    # ...and a valid one is stored, once, and counted.
    b.do(cmd="fill", selector="#f-product", value="form-1")
    b.do(cmd="fill", selector="#f-quantity", value="2")
    b.do(cmd="fill", selector="#f-price", value="5")
    b.do(cmd="click", selector="#f-submit")
    b.wait("document.getElementById('form-result').classList.contains('ok')")
    b.wait_value("kpi-orders", 4)
    b.wait_value("kpi-revenue", 96.5)
    st, _, page = srv.get("/orders?product_id=form-1")
    assert len(page["orders"]) == 1

    shot = str(tmp_path / "dashboard.png")
    b.do(cmd="screenshot", path=shot, width=1280, height=900, full=True)
    assert os.path.getsize(shot) > 10000
    # Nothing refused by the CSP, no script error (the form's 400 is
    # reported by chromium as a failed load: that one was meant).
    problems = [p for p in b.do(cmd="log")
                if "Failed to load resource" not in p]
    assert problems == []

    # The server goes away: the page says so plainly...
    port = srv.port
    assert srv.stop() == 0
    b.wait("document.getElementById('conn').dataset.state === 'disconnected'")
    assert "Disconnected" in b.text("conn") and "Retrying in" in b.text("conn")
    # The figures stay, dimmed, marked stale; the state stays in sight
    # at the foot of the page too.
    assert b.eval("document.body.classList.contains('offline')")
    b.eval("window.scrollTo(0, document.body.scrollHeight)")
    assert b.eval("window.scrollY") > 0
    assert b.eval("(r => r.top >= 0 && r.bottom <= window.innerHeight)("
                  "document.getElementById('conn').getBoundingClientRect())")
    assert b.value("kpi-orders") == "4"
    b.do(cmd="screenshot", path=str(tmp_path / "dashboard-offline.png"),
         width=1280, height=900)
    # ...and comes back by itself (backoff) when the server does.
    srv.write_config({"server": {"port": port}})
    srv.start()
    b.wait("document.getElementById('conn').dataset.state === 'live'", 45000)
    b.wait_value("kpi-orders", 4)


@needs_browser
def test_dashboard_first_state_from_rest(make_server, browser):
    """Orders stored before the page opens: the WebSocket never repeats
    them, so the feed and the chart can only have come from GET /orders,
    and the figures agree with GET /analytics.  The page's labels are
    checked here too."""
    srv = make_server(ALL)
    orders = [{"product_id": "tea", "quantity": 3, "price": 2.5},
              {"product_id": "cake", "quantity": 1, "price": 4},
              {"product_id": "tea", "quantity": 1, "price": 2.5}]
    ids = [post(srv, o)["id"] for o in orders]
    b = browser
    b.open(url(srv))
    b.wait("document.querySelectorAll('#feed li').length === 3")
    feed = b.eval("[...document.querySelectorAll('#feed li')].map("
                  "e => [Number(e.dataset.id), Number(e.dataset.revenue)])")
    assert feed == [[ids[2], 2.5], [ids[1], 4], [ids[0], 7.5]]
    b.wait("Number(document.getElementById('chart').dataset.total) === 14")
    st, _, a = srv.get("/analytics")
    assert st == 200 and a["totalRevenue"] == 14
    b.wait_value("kpi-revenue", a["totalRevenue"])
    b.wait_value("kpi-orders", a["totalOrders"])
    b.wait_value("kpi-minute-revenue", a["revenueLastMinute"])
    b.wait_value("kpi-minute-orders", a["orderCountLastMinute"])
    top = b.eval("[...document.querySelectorAll('#top li')].map("
                 "e => [e.dataset.product, Number(e.dataset.revenue)])")
    assert top == [[p["product_id"], p["revenue"]] for p in a["topProducts"]]
    # Accessible names: every field and button, every figure, every
    # section; the connection state is announced.
    unlabelled = b.eval("""[...document.querySelectorAll('input, button')]
        .filter(e => !(e.labels && e.labels.length) &&
                     !e.textContent.trim()).map(e => e.id)""")
    assert unlabelled == []
    unnamed = b.eval("""[...document.querySelectorAll('.kpi .num')]
        .filter(e => !e.getAttribute('aria-label') &&
                     !document.getElementById(
                         e.getAttribute('aria-labelledby') || '-'))
        .map(e => e.id)""")
    assert unnamed == []
    unnamed = b.eval("""[...document.querySelectorAll('section')]
        .filter(e => !e.getAttribute('aria-label') &&
                     !document.getElementById(
                         e.getAttribute('aria-labelledby') || '-'))
        .length""")
    assert unnamed == 0
    assert b.eval("document.getElementById('conn').getAttribute('role')") \
        == "status"


@needs_browser
def test_dashboard_live_weather_and_model(make_server, browser,
                                          fake_upstream):  # noqa: F811
    """With a weather key and a model (both fakes): the promotions with
    the weather and its source, the model's recommendations with theirs,
    nothing marked as a fallback; then the weather changes and the page
    shows it over the WebSocket (updatePromotions), without reloading."""
    weather = fake_upstream()
    weather.set(body=openweather_body(28.4, "Clear", "London"))
    ai = fake_upstream()
    ai.set(body=chat_body({
        "recommendations": [{"product_id": "lemonade", "action": "promote",
                             "reason": "a hot day"}],
        "summary": "Push lemonade."}))
    srv = make_server(ALL, {
        "weather": {"api_key": "wk", "city": "London",
                    "base_url": weather.url, "timeout_ms": 3000,
                    "retries": 0},
        "ai_recommend": {"api_key": "sk-test", "model": "fake-model",
                         "base_url": ai.url + "/v1", "timeout_ms": 5000}})
    # Recommendations name only products that were sold.
    post(srv, {"product_id": "lemonade", "quantity": 2, "price": 3.5})
    b = browser
    b.open(url(srv))
    b.wait("document.getElementById('promo-source').dataset.source "
           "=== 'openweather'")
    st, _, promo = srv.get("/promotions")
    assert st == 200 and promo["weather"]["source"] == "openweather"
    assert promo["promotions"], promo
    assert not b.eval("document.getElementById('promo-source')"
                      ".classList.contains('fallback')")
    text = b.text("weather")
    assert "London" in text and "28.4 °C" in text, text
    assert promo["weather"]["condition"] in text, text
    shown = b.eval("[...document.querySelectorAll('#promotions li')]"
                   ".map(e => [e.dataset.category, e.textContent])")
    assert [c for c, _ in shown] == \
        [p["category"] for p in promo["promotions"]]
    for (_, t), p in zip(shown, promo["promotions"]):
        assert p["message"] in t and "%d%%" % p["discountPercent"] in t
    # The model's answer, and where it came from.
    b.wait("document.getElementById('rec-source').dataset.source "
           "=== 'openai'")
    assert b.text("rec-source") == "openai fake-model"
    assert not b.eval("document.getElementById('rec-source')"
                      ".classList.contains('fallback')")
    assert b.text("rec-summary") == "Push lemonade."
    assert b.eval("[...document.querySelectorAll('#recommendations li')]"
                  ".map(e => e.textContent)") == \
        ["lemonade: promote — a hot day"]
    # The weather changes: the page hears it, in the same document.
    b.eval("window.sameDocument = true")
    weather.set(body=openweather_body(4.0, "Rain", "Oslo"))
    srv.write_config({"weather": {"city": "Oslo"}})
    srv.proc.send_signal(signal.SIGHUP)
    b.wait("document.getElementById('weather').textContent"
           ".includes('Oslo')")
    assert b.eval("window.sameDocument") is True
    assert "4.0 °C" in b.text("weather")
    st, _, promo = srv.get("/promotions")
    b.wait("[...document.querySelectorAll('#promotions li')]"
           ".map(e => e.dataset.category).join() === %r"
           % ",".join(p["category"] for p in promo["promotions"]))


@needs_browser
def test_dashboard_with_a_read_token(make_server, browser):
    srv = make_server(ALL, {"auth": {"read_token": READ,
                                     "write_token": WRITE}})
    b = browser
    # Without the token: the page loads and says what it needs.
    b.open(url(srv))
    b.wait("!document.getElementById('auth-note').hidden")
    assert b.eval("document.getElementById('conn').dataset.state") != "live"
    # With it in the fragment (never sent to the server).
    b.open(url(srv, "#token=" + READ))
    b.wait("document.getElementById('conn').dataset.state === 'live'")
    b.wait_value("kpi-orders", 0)
    assert b.eval("document.getElementById('auth-note').hidden")
    post(srv, {"product_id": "7", "quantity": 3, "price": 2}, WRITE)
    b.wait_value("kpi-revenue", 6)
    b.wait("document.querySelectorAll('#feed li').length === 1")
    # A read token may not write: the form says so in the API's words.
    b.do(cmd="click", selector="#f-submit")
    b.wait("document.getElementById('form-result').classList.contains('error')")
    assert b.text("form-result") == "this token may not do this (Authorization)"
    assert READ not in srv.log()


@needs_browser
def test_dashboard_without_weather_and_ai(make_server, browser):
    srv = make_server(["orders", "analytics", "dashboard"])
    b = browser
    b.open(url(srv))
    b.wait("document.getElementById('conn').dataset.state === 'live'")
    b.wait("document.getElementById('promo-state').textContent"
           ".includes('not enabled')")
    b.wait("document.getElementById('rec-state').textContent"
           ".includes('not enabled')")
    # It subscribed only to what this server sends, and still hears orders.
    b.wait("document.body.dataset.events === 'newOrder updateAnalytics'")
    post(srv, {"product_id": "9", "quantity": 1, "price": 4})
    b.wait_value("kpi-revenue", 4)
    b.wait("document.querySelectorAll('#feed li').length === 1")


@needs_browser
def test_dashboard_screenshot_phone_and_wall(make_server, browser, tmp_path):
    """A busier page for the screenshot (docs/dashboard.png is this one),
    and the layout on a phone and on a wall screen: nothing wider than
    the window."""
    srv = make_server(ALL)
    b = browser
    b.open(url(srv))
    b.wait("document.getElementById('conn').dataset.state === 'live'")
    catalogue = [("espresso", 2.8), ("croissant", 3.2), ("iced-tea", 3.9),
                 ("umbrella", 18.0), ("sandwich", 6.5), ("lemonade", 3.5)]
    # Orders until the chart spans a few seconds: paced by the page
    # showing each one, bounded in count and time.
    deadline, n = time.time() + 60, 0
    while n < 150 and time.time() < deadline:
        name, price = catalogue[(n * 7) % len(catalogue)]
        post(srv, {"product_id": name, "quantity": 1 + n % 3, "price": price})
        n += 1
        b.wait("document.querySelectorAll('#feed li').length >= %d"
               % min(n, 20))
        b.wait_value("kpi-orders", n)
        if len(json.loads(b.eval(
                "document.getElementById('chart').dataset.series"))) >= 8:
            break
    assert b.eval("document.querySelectorAll('#top li').length") == 5
    # The recommendations follow the sales: the page asks again after
    # orders (at most every 10 s).
    b.wait("document.querySelectorAll('#recommendations li').length > 0",
           30000)
    shot = str(tmp_path / "dashboard-wide.png")
    b.do(cmd="screenshot", path=shot, width=1280, height=900, full=True)
    if os.environ.get("DASHBOARD_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["DASHBOARD_SCREENSHOT"])
    for w, h in ((390, 844), (2560, 1440)):
        b.do(cmd="screenshot", path=str(tmp_path / ("dashboard-%d.png" % w)),
             width=w, height=h, full=True)
        assert b.eval("document.documentElement.scrollWidth "
                      "<= window.innerWidth"), w
    # Figures keep their box when they change (tabular numbers).
    assert b.eval("getComputedStyle(document.getElementById('kpi-revenue'))"
                  ".fontVariantNumeric") == "tabular-nums"
