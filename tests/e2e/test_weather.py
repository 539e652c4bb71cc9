"""weather module: GET /promotions against a fake OpenWeather.

Covers the rules (hot, cold, rain, always, custom, invalid), what the fake
saw (city, units=metric, appid), upstream failures (500, 401, 404, bad
JSON, hang past the timeout) answered fast with the failure in
weather.source, retries with one log line, single flight, the cache, the
offline mode and the updatePromotions WebSocket message.
"""
import asyncio
import concurrent.futures
import json
import os
import socket
import time

import pytest

BUILD = os.environ.get("SALESD_BUILD", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "build"))
from fakes import fake_upstream, openweather_body  # noqa: F401 (fixture)


def have_module(name):
    return os.path.exists(os.path.join(BUILD, "modules", name + ".so"))


def weather_config(fake, **kw):
    cfg = {"api_key": "k-123", "city": "Paris",
           "base_url": fake.url + "/data/2.5", "timeout_ms": 500,
           "retries": 0, "backoff_ms": 50, "cache_ttl_s": 600}
    if "cache_ttl_ms" in kw:
        del cfg["cache_ttl_s"]      # one spelling at a time
    cfg.update(kw)
    return {"weather": cfg}


def categories(body):
    return sorted(p["category"] for p in body["promotions"])


def get_promotions(srv):
    t0 = time.time()
    status, _, body = srv.get("/promotions")
    return status, body, time.time() - t0


def test_hot_day_gives_cold_drinks_and_fake_saw_query(make_server,
                                                       fake_upstream):
    fake = fake_upstream()
    fake.set(body=openweather_body(31.5, "Clear", "Paris"))
    srv = make_server(["weather"], config=weather_config(fake))
    status, body, _ = get_promotions(srv)
    assert status == 200
    w = body["weather"]
    assert w["city"] == "Paris"
    assert w["temperatureC"] == 31.5
    assert w["condition"] == "clear"
    assert w["source"] == "openweather"
    assert w["fetchedAt"].endswith("Z")
    assert categories(body) == ["cold_drinks"]
    promo = body["promotions"][0]
    assert promo["discountPercent"] == 15
    assert "cold drinks" in promo["message"]
    assert set(promo) == {"category", "message", "discountPercent"}
    assert set(w) == {"city", "temperatureC", "condition", "source",
                      "fetchedAt"}
    reqs = fake.recorded()
    assert len(reqs) >= 1
    r = reqs[0]
    assert r.method == "GET"
    assert r.path == "/data/2.5/weather"
    assert r.query == {"q": "Paris", "units": "metric", "appid": "k-123"}


def test_cold_snowy_day_gives_hot_drinks_and_delivery(make_server,
                                                        fake_upstream):
    fake = fake_upstream()
    fake.set(body=openweather_body(-2, "Snow"))
    srv = make_server(["weather"], config=weather_config(fake))
    status, body, _ = get_promotions(srv)
    assert status == 200
    assert body["weather"]["temperatureC"] == -2
    assert body["weather"]["condition"] == "snow"
    assert categories(body) == ["delivery", "hot_drinks"]


def test_rain_gives_umbrellas_and_delivery(make_server, fake_upstream):
    fake = fake_upstream()
    fake.set(body=openweather_body(16, "Rain"))
    srv = make_server(["weather"], config=weather_config(fake))
    status, body, _ = get_promotions(srv)
    assert status == 200
    assert categories(body) == ["delivery", "umbrellas"]


def test_thresholds_come_from_config(make_server, fake_upstream):
    fake = fake_upstream()
    fake.set(body=openweather_body(21, "Clouds"))
    srv = make_server(["weather"], config=weather_config(
        fake, hot_above_c=20, cold_below_c=5))
    _, body, _ = get_promotions(srv)
    assert categories(body) == ["cold_drinks"]


def test_city_is_url_encoded(make_server, fake_upstream):
    fake = fake_upstream()
    fake.set(body=openweather_body(12, "Clouds"))
    srv = make_server(["weather"], config=weather_config(
        fake, city="São Paulo,BR"))
    status, body, _ = get_promotions(srv)
    assert status == 200
    assert body["weather"]["city"] == "São Paulo,BR"
    assert fake.recorded()[0].query["q"] == "São Paulo,BR"


CUSTOM_RULES = {
    "rule.heatwave": "temp >= 30 | cold_drinks | 25 | Heatwave: 25% off cold drinks",
    "rule.warm": "temp >= 20 & condition = clear | cold_drinks | 10 | Warm: 10% off",
    "rule.sunny": "condition = clear | sunglasses | 5 | Sunny | 5% off shades",
    "rule.loyalty": "always | members | 5 | Members always save 5%",
}


@pytest.mark.parametrize("temp,main,expect", [
    (32, "Clear", {"cold_drinks": 25, "sunglasses": 5, "members": 5}),
    (22, "Clear", {"cold_drinks": 10, "sunglasses": 5, "members": 5}),
    (22, "Clouds", {"members": 5}),
])
def test_custom_rules_first_match_per_category(make_server, fake_upstream,
                                               temp, main, expect):
    fake = fake_upstream()
    fake.set(body=openweather_body(temp, main))
    cfg = weather_config(fake)
    cfg["weather"].update(CUSTOM_RULES)
    srv = make_server(["weather"], config=cfg)
    _, body, _ = get_promotions(srv)
    got = {p["category"]: p["discountPercent"] for p in body["promotions"]}
    assert got == expect
    if main == "Clear":
        sunny = [p for p in body["promotions"]
                 if p["category"] == "sunglasses"][0]
        assert sunny["message"] == "Sunny | 5% off shades"


def test_no_api_key_is_offline_and_always_rules_apply(make_server,
                                                      fake_upstream):
    fake = fake_upstream()
    cfg = weather_config(fake, api_key="")
    cfg["weather"]["rule.loyalty"] = CUSTOM_RULES["rule.loyalty"]
    cfg["weather"]["rule.hot"] = "hot | cold_drinks | 15 | Hot"
    srv = make_server(["weather"], config=cfg)
    status, body, _ = get_promotions(srv)
    assert status == 200
    assert body["weather"]["source"] == "no api key"
    assert body["weather"]["temperatureC"] is None
    assert body["weather"]["fetchedAt"] is None
    assert categories(body) == ["members"]
    time.sleep(0.2)
    assert fake.count() == 0


def test_api_key_from_environment(make_server, fake_upstream):
    fake = fake_upstream()
    fake.set(body=openweather_body(5, "Clear"))
    cfg = weather_config(fake, api_key="${WEATHER_TEST_KEY}")
    srv = make_server(["weather"], config=cfg,
                      env={"WEATHER_TEST_KEY": "from-env"})
    _, body, _ = get_promotions(srv)
    assert body["weather"]["source"] == "openweather"
    assert fake.recorded()[0].query["appid"] == "from-env"


@pytest.mark.parametrize("status,body,expect", [
    (500, {"cod": 500}, "500"),
    (401, {"cod": 401, "message": "Invalid API key"}, "401 unauthorized"),
    (404, {"cod": "404", "message": "city not found"}, "404 city not found"),
    (200, "{not json", "bad response"),
    (200, {"cod": 200, "main": {}}, "bad response"),
])
def test_upstream_failure_is_a_fast_200(make_server, fake_upstream, status,
                                        body, expect):
    fake = fake_upstream()
    fake.set(status=status, body=body)
    cfg = weather_config(fake)
    cfg["weather"]["rule.loyalty"] = CUSTOM_RULES["rule.loyalty"]
    srv = make_server(["weather"], config=cfg)
    st, out, elapsed = get_promotions(srv)
    assert st == 200
    assert elapsed < 2
    src = out["weather"]["source"]
    assert src.startswith("openweather error: ") and expect in src, src
    assert out["weather"]["temperatureC"] is None
    assert categories(out) == ["members"]
    # Further requests within the error TTL reuse the outcome: no storm.
    for _ in range(5):
        assert srv.get("/promotions")[0] == 200
    assert fake.count() == 1
    assert srv.log().count(src) == 1


def test_hang_past_timeout_is_a_fast_200(make_server, fake_upstream):
    fake = fake_upstream()
    fake.set(body=openweather_body(30), delay=5)
    srv = make_server(["weather"], config=weather_config(fake,
                                                         timeout_ms=400))
    st, out, elapsed = get_promotions(srv)
    assert st == 200
    assert elapsed < 2, elapsed
    assert "timeout" in out["weather"]["source"].lower(), out
    assert out["promotions"] == []


def test_retries_with_backoff_and_one_log_line(make_server, fake_upstream):
    fake = fake_upstream()
    fake.set(status=503, body="{}")
    srv = make_server(["weather"], config=weather_config(
        fake, retries=2, backoff_ms=100))
    st, out, elapsed = get_promotions(srv)
    assert st == 200 and elapsed < 2
    assert "503" in out["weather"]["source"]
    assert fake.wait_for(3, timeout=5) == 3
    time.sleep(0.5)
    assert fake.count() == 3     # 1 try + 2 retries, then it stops
    assert srv.log().count("openweather error: HTTP 503") == 1


def test_recovers_after_failure(make_server, fake_upstream):
    fake = fake_upstream()
    fake.set(status=500, body="{}")
    srv = make_server(["weather"], config=weather_config(
        fake, retries=3, backoff_ms=200))
    _, out, _ = get_promotions(srv)
    assert "500" in out["weather"]["source"]
    fake.set(status=200, body=openweather_body(28))
    deadline = time.time() + 5
    while time.time() < deadline:
        _, out, _ = get_promotions(srv)
        if out["weather"]["source"] == "openweather":
            break
        time.sleep(0.1)
    assert out["weather"]["source"] == "openweather"
    assert categories(out) == ["cold_drinks"]
    assert "answers again" in srv.log()


def test_single_flight_twenty_concurrent_requests(make_server,
                                                  fake_upstream):
    fake = fake_upstream()
    fake.set(body=openweather_body(29), delay=0.6)
    srv = make_server(["weather"], config=weather_config(fake,
                                                         timeout_ms=3000))
    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        results = list(ex.map(lambda _: srv.get("/promotions"), range(20)))
    assert all(r[0] == 200 for r in results)
    assert all(r[2]["weather"]["source"] == "openweather" for r in results)
    assert fake.count() == 1
    # And the cache answers the next ones.
    for _ in range(5):
        assert srv.get("/promotions")[2]["weather"]["temperatureC"] == 29
    assert fake.count() == 1


def wait_temperature(srv, temp, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, body, _ = get_promotions(srv)
        if body["weather"]["temperatureC"] == temp:
            return body
        time.sleep(0.05)
    raise AssertionError("temperature never became %r" % temp)


def test_cache_expires_after_ttl(make_server, fake_upstream):
    fake = fake_upstream()
    fake.set(body=openweather_body(12))
    srv = make_server(["weather"], config=weather_config(
        fake, cache_ttl_ms=200, refresh_interval_ms=0))
    assert get_promotions(srv)[1]["weather"]["temperatureC"] == 12
    assert fake.count() == 1
    fake.set(body=openweather_body(27))
    # Requests within the TTL reuse the reading; the first after it
    # fetches once, and that is the one that brings 27.
    wait_temperature(srv, 27)
    assert fake.count() == 2


def test_weather_change_broadcasts_update_promotions(make_server,
                                                     fake_upstream):
    websockets = pytest.importorskip("websockets")
    fake = fake_upstream()
    fake.set(body=openweather_body(12))
    srv = make_server(["weather"], config=weather_config(
        fake, cache_ttl_ms=200, refresh_interval_ms=200))
    assert get_promotions(srv)[1]["weather"]["temperatureC"] == 12

    async def watch():
        async with websockets.connect(srv.ws_url) as ws:
            fake.set(body=openweather_body(33))
            deadline = time.time() + 6
            while time.time() < deadline:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 6))
                if msg["type"] == "updatePromotions":
                    return msg["data"]
        return None

    data = asyncio.run(watch())
    assert data is not None
    assert data["weather"]["temperatureC"] == 33
    assert categories(data) == ["cold_drinks"]
    status, _, body = srv.get("/promotions")
    assert body == data


@pytest.mark.parametrize("key,value,words", [
    ("rule.broken", "hot | cold drinks | 15 | x", "category"),
    ("rule.pct", "hot | cold_drinks | 150 | x", "discount"),
    ("rule.cond", "temp ~ 3 | cold_drinks | 15 | x", "temp"),
    ("rule.short", "hot | cold_drinks", "CONDITION | CATEGORY"),
    ("rule.what", "windy | kites | 5 | Fly a kite", "unknown condition"),
    ("rule.empty", "always | x | 5 |  ", "message"),
    ("cache_tll_s", "60", "unknown key"),
    # Beside weather_config's cache_ttl_s: the older spelling of the same.
    ("cache_ttl_ms", "1000", '"cache_ttl_ms" and "cache_ttl_s" are both'),
])
def test_bad_rule_or_key_fails_start_naming_it(make_server, fake_upstream,
                                             key, value, words):
    fake = fake_upstream()
    cfg = weather_config(fake)
    cfg["weather"][key] = value
    srv = make_server(["weather"], config=cfg, start=False)
    with pytest.raises(RuntimeError) as e:
        srv.start()
    # It exited by itself; the fixture must not expect a clean SIGTERM.
    assert srv.proc.wait(10) != 0
    srv.proc = None
    srv.logf.close()
    msg = str(e.value)
    assert '"%s"' % key in msg and words in msg, msg


def test_routes_and_methods(make_server, fake_upstream):
    fake = fake_upstream()
    srv = make_server(["weather"], config=weather_config(fake, api_key=""))
    status, headers, _ = srv.post("/promotions", {})
    assert status == 405
    assert "GET" in headers.get("allow", "")


@pytest.mark.skipif(not (have_module("orders") and have_module("analytics")),
                    reason="orders/analytics modules not built")
def test_hanging_upstream_blocks_nobody(make_server, fake_upstream):
    fake = fake_upstream()
    fake.set(body=openweather_body(30), delay=5)
    srv = make_server(["orders", "analytics", "weather"],
                      config=weather_config(fake, timeout_ms=4000))
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        promo = ex.submit(srv.get, "/promotions")
        assert fake.wait_for(1, timeout=5) == 1
        t0 = time.time()
        st, _, order = srv.post("/orders", {"product_id": "cola",
                                            "quantity": 2, "price": 1.5})
        assert st == 201, order
        st, _, an = srv.get("/analytics")
        assert st == 200
        assert an["totalOrders"] == 1
        assert time.time() - t0 < 1
        assert not promo.done()      # still waiting on the upstream
        st, _, out = promo.result(timeout=10)
    assert st == 200
    assert "timeout" in out["weather"]["source"].lower()


def test_sigterm_answers_a_request_waiting_on_the_upstream(make_server,
                                                          fake_upstream):
    fake = fake_upstream()
    fake.set(body=openweather_body(30), delay=30)
    srv = make_server(["weather"], config=weather_config(fake,
                                                         timeout_ms=20000))
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        # The start-up fetch hangs; the request joins it as a waiter.
        assert fake.wait_for(1, timeout=5) == 1
        promo = ex.submit(srv.get, "/promotions", timeout=30)
        time.sleep(0.5)
        assert not promo.done()
        t0 = time.time()
        assert srv.stop() == 0
        # Not held for the grace time, and the waiter is answered.
        assert time.time() - t0 < 5
        st, _, out = promo.result(timeout=10)
    assert st == 200
    assert out["promotions"] == []


def test_unreachable_upstream_names_no_address(make_server):
    """curl's text names our addresses and ports: clients get a class."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()               # bound, never listened on: connection refused
    cfg = {"weather": {"api_key": "k-123", "city": "Paris",
                       "base_url": "http://127.0.0.1:%d/data/2.5" % port,
                       "timeout_ms": 500, "retries": 0}}
    srv = make_server(["weather"], config=cfg)
    st, out, _ = get_promotions(srv)
    assert st == 200
    src = out["weather"]["source"]
    assert src == "openweather error: could not connect", src
    assert str(port) not in json.dumps(out)
    # The operator still gets curl's detail, once.
    assert srv.log().count("upstream request: could not connect (") == 1
