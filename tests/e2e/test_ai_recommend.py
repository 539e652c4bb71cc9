"""ai_recommend module: GET /recommendations against a fake
OpenAI-compatible server (and a fake OpenWeather for the weather).

Covers the request salesd sends (URL, key, model, JSON mode, a prompt
naming the sold products and the weather), validation of the answer
(unsold products dropped, malformed answers fall back), upstream
failures and timeouts answered fast by the fallback, single flight, the
cache, and the offline fallback with no network call at all, with and
without the analytics module.
"""
import concurrent.futures
import os
import time

import pytest

from fakes import chat_body, fake_upstream, openweather_body  # noqa: F401

BUILD = os.environ.get("SALESD_BUILD", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "build"))


def have_module(name):
    return os.path.exists(os.path.join(BUILD, "modules", name + ".so"))


needs_orders = pytest.mark.skipif(
    not (have_module("orders") and have_module("analytics")),
    reason="orders/analytics modules not built")

SALES = [
    {"product_id": "iced_tea", "quantity": 10, "price": 2.5},
    {"product_id": "umbrella", "quantity": 1, "price": 20},
    {"product_id": "101", "quantity": 3, "price": 4},
]

GOOD_ANSWER = {
    "recommendations": [
        {"product_id": "iced_tea", "action": "promote",
         "reason": "Hot day and the top seller"},
        {"product_id": "ghost_product", "action": "restock",
         "reason": "never sold"},
        {"product_id": 101, "action": "bundle", "reason": "pairs well"},
    ],
    "summary": "Push cold drinks while it is hot.",
}


def config(ai, weather=None, **kw):
    cfg = {"ai_recommend": {"api_key": "sk-test", "model": "my-model",
                            "base_url": ai.url + "/v1", "timeout_ms": 2000,
                            "cache_ttl_s": 60}}
    if "cache_ttl_ms" in kw:
        del cfg["ai_recommend"]["cache_ttl_s"]  # one spelling at a time
    cfg["ai_recommend"].update(kw)
    if weather is not None:
        cfg["weather"] = {"api_key": "wk", "city": "Madrid",
                          "base_url": weather.url, "timeout_ms": 1000,
                          "retries": 0}
    else:
        cfg["weather"] = {"api_key": ""}
    return cfg


def post_sales(srv, sales=SALES):
    for o in sales:
        st, _, body = srv.post("/orders", o)
        assert st == 201, body


def wait_weather(srv, source="openweather"):
    deadline = time.time() + 5
    while time.time() < deadline:
        st, _, body = srv.get("/promotions")
        if st == 200 and body["weather"]["source"] == source:
            return body
        time.sleep(0.05)
    raise AssertionError("weather never became %r" % source)


def recommend(srv):
    t0 = time.time()
    st, _, body = srv.get("/recommendations")
    assert st == 200, body
    return body, time.time() - t0


def check_shape(body):
    assert set(body) >= {"source", "model", "recommendations", "summary",
                         "weather", "generatedAt"}
    assert body["source"] in ("openai", "fallback")
    assert isinstance(body["summary"], str)
    assert body["generatedAt"].endswith("Z")
    for r in body["recommendations"]:
        assert set(r) == {"product_id", "action", "reason"}
        assert all(isinstance(v, str) and v for v in r.values())


@needs_orders
def test_prompt_names_sales_and_weather_and_unsold_is_dropped(
        make_server, fake_upstream):
    ai, wx = fake_upstream(), fake_upstream()
    wx.set(body=openweather_body(33, "Clear", "Madrid"))
    ai.set(body=chat_body(GOOD_ANSWER))
    srv = make_server(["orders", "analytics", "weather", "ai_recommend"],
                      config=config(ai, wx))
    wait_weather(srv)
    post_sales(srv)
    body, _ = recommend(srv)
    check_shape(body)
    assert body["source"] == "openai", body
    assert body["model"] == "my-model"
    assert body["reason"] is None
    ids = [r["product_id"] for r in body["recommendations"]]
    assert ids == ["iced_tea", "101"]           # ghost_product dropped
    assert body["summary"] == GOOD_ANSWER["summary"]
    assert body["weather"]["city"] == "Madrid"
    assert body["weather"]["temperatureC"] == 33

    reqs = ai.recorded()
    assert len(reqs) == 1
    r = reqs[0]
    assert r.method == "POST" and r.path == "/v1/chat/completions"
    assert r.headers["authorization"] == "Bearer sk-test"
    assert r.headers["content-type"].startswith("application/json")
    sent = r.json()
    assert sent["model"] == "my-model"
    assert sent["response_format"] == {"type": "json_object"}
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["system", "user"]
    prompt = sent["messages"][1]["content"]
    for word in ("iced_tea", "umbrella", "101", "Madrid", "clear", "33",
                 '"totalRevenue":57', '"revenueLastHour":',
                 '"revenueLastMinute":'):
        assert word in prompt, (word, prompt)


@needs_orders
def test_max_recommendations_is_asked_and_enforced(make_server, fake_upstream):
    ai = fake_upstream()
    answer = {"recommendations": [
        {"product_id": p, "action": "promote", "reason": "sells"}
        for p in ("iced_tea", "umbrella", "101")], "summary": "s"}
    ai.set(body=chat_body(answer))
    srv = make_server(["orders", "analytics", "ai_recommend"],
                      config=config(ai, max_recommendations=2))
    post_sales(srv)
    body, _ = recommend(srv)
    assert body["source"] == "openai", body
    assert [r["product_id"] for r in body["recommendations"]] == ["iced_tea", "umbrella"]
    system = ai.recorded()[0].json()["messages"][0]["content"]
    assert "at most 2 recommendations" in system


@needs_orders
def test_malformed_answers_fall_back(make_server, fake_upstream):
    ai = fake_upstream()
    answers = iter([
        chat_body("this is not JSON at all"),
        chat_body({"recs": []}),
        {"choices": []},
        chat_body({"recommendations": [
            {"product_id": "ghost", "action": "x", "reason": "y"}]}),
    ])
    ai.respond = lambda rec: (200, next(answers))
    srv = make_server(["orders", "analytics", "ai_recommend"],
                      config=config(ai, cache_ttl_s=0))
    post_sales(srv)
    expect = ["content is not JSON", "no recommendations array",
              "no choices[0].message.content", "unsold products"]
    for want in expect:
        body, elapsed = recommend(srv)
        check_shape(body)
        assert body["source"] == "fallback", body
        assert want in body["reason"], body["reason"]
        assert body["reason"].startswith("openai error: malformed answer")
        ids = {r["product_id"] for r in body["recommendations"]}
        assert ids and ids <= {"iced_tea", "umbrella", "101"}
    assert ai.count() == 4


@needs_orders
def test_fenced_json_from_a_local_model_is_accepted(make_server,
                                                   fake_upstream):
    ai = fake_upstream()
    fenced = "```json\n" + '{"recommendations":[{"product_id":"umbrella",' \
        '"action":"feature","reason":"rainy week"}],"summary":"ok"}' + "\n```"
    ai.set(body=chat_body(fenced))
    srv = make_server(["orders", "ai_recommend"], config=config(ai))
    post_sales(srv)
    body, _ = recommend(srv)
    assert body["source"] == "openai"
    assert [r["product_id"] for r in body["recommendations"]] == ["umbrella"]


@needs_orders
@pytest.mark.parametrize("status,delay,want", [
    (500, 0, "HTTP 500"),
    (401, 0, "401 unauthorized"),
    (429, 0, "rate limited"),
    (200, 5, "timeout"),
])
def test_upstream_failure_falls_back_fast(make_server, fake_upstream,
                                          status, delay, want):
    ai = fake_upstream()
    ai.set(status=status, delay=delay,
           body=chat_body(GOOD_ANSWER) if status == 200 else
           {"error": {"message": "nope"}})
    srv = make_server(["orders", "analytics", "ai_recommend"],
                      config=config(ai, timeout_ms=500))
    post_sales(srv)
    body, elapsed = recommend(srv)
    check_shape(body)
    assert elapsed < 2, elapsed
    assert body["source"] == "fallback"
    assert body["model"] == "local-rules"
    assert want in body["reason"].lower() or want in body["reason"], body
    assert {r["product_id"] for r in body["recommendations"]} <= \
        {"iced_tea", "umbrella", "101"}
    assert body["recommendations"]
    # Logged once, however many requests see it.
    for _ in range(3):
        recommend(srv)
    assert srv.log().count(body["reason"]) == 1


@needs_orders
def test_hanging_model_blocks_nobody(make_server, fake_upstream):
    ai = fake_upstream()
    ai.set(body=chat_body(GOOD_ANSWER), delay=5)
    srv = make_server(["orders", "analytics", "ai_recommend"],
                      config=config(ai, timeout_ms=4000))
    post_sales(srv)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        pending = ex.submit(srv.get, "/recommendations")
        assert ai.wait_for(1) == 1
        t0 = time.time()
        st, _, _ = srv.post("/orders", {"product_id": "x", "quantity": 1,
                                        "price": 1})
        assert st == 201
        st, _, an = srv.get("/analytics")
        assert st == 200 and an["totalOrders"] == 4
        assert time.time() - t0 < 1
        assert not pending.done()
        st, _, body = pending.result(timeout=10)
    assert st == 200 and body["source"] == "fallback"
    assert "timeout" in body["reason"].lower()


@needs_orders
def test_single_flight_and_cache(make_server, fake_upstream):
    ai = fake_upstream()
    ai.set(body=chat_body(GOOD_ANSWER), delay=0.5)
    srv = make_server(["orders", "analytics", "ai_recommend"],
                      config=config(ai))
    post_sales(srv)
    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        results = list(ex.map(lambda _: srv.get("/recommendations"),
                              range(20)))
    assert all(r[0] == 200 for r in results)
    assert all(r[2]["source"] == "openai" for r in results)
    assert len({r[2]["generatedAt"] for r in results}) == 1
    assert ai.count() == 1
    for _ in range(3):
        assert recommend(srv)[0]["source"] == "openai"
    assert ai.count() == 1


@needs_orders
def test_cache_ttl_expires(make_server, fake_upstream):
    ai = fake_upstream()
    ai.set(body=chat_body(GOOD_ANSWER))
    srv = make_server(["orders", "ai_recommend"],
                      config=config(ai, cache_ttl_ms=500))
    post_sales(srv)
    first, _ = recommend(srv)
    again, _ = recommend(srv)
    assert ai.count() == 1
    assert again["generatedAt"] == first["generatedAt"]
    # Once the TTL is over, the next request asks the model again.
    deadline = time.time() + 10
    while ai.count() < 2 and time.time() < deadline:
        recommend(srv)
        time.sleep(0.05)
    assert ai.count() == 2


@needs_orders
def test_no_key_fallback_without_any_network_call(make_server,
                                                  fake_upstream):
    ai = fake_upstream()
    # No analytics module: the recommender works from order.created.
    srv = make_server(["orders", "ai_recommend"],
                      config=config(ai, api_key=""))
    post_sales(srv)
    body, elapsed = recommend(srv)
    check_shape(body)
    assert body["source"] == "fallback"
    assert body["reason"] == "no api key"
    assert body["weather"] is None
    ids = [r["product_id"] for r in body["recommendations"]]
    assert ids[0] == "iced_tea"                  # largest revenue share
    assert set(ids) == {"iced_tea", "umbrella", "101"}
    assert "3 orders" in body["summary"]
    time.sleep(0.2)
    assert ai.count() == 0


@needs_orders
def test_fallback_uses_weather_fit(make_server, fake_upstream):
    ai, wx = fake_upstream(), fake_upstream()
    wx.set(body=openweather_body(8, "Rain", "Madrid"))
    srv = make_server(["orders", "analytics", "weather", "ai_recommend"],
                      config=config(ai, wx, api_key=""))
    wait_weather(srv)
    post_sales(srv)
    body, _ = recommend(srv)
    assert body["source"] == "fallback"
    assert body["weather"]["condition"] == "rain"
    first = body["recommendations"][0]
    promoted = [r for r in body["recommendations"]
                if r["product_id"] == "umbrella"][0]
    assert promoted["action"] == "promote"
    assert "rain" in promoted["reason"]
    assert first["product_id"] in ("iced_tea", "umbrella")
    assert ai.count() == 0


def test_no_sales_yet_needs_no_call(make_server, fake_upstream):
    ai = fake_upstream()
    srv = make_server(["ai_recommend"], config=config(ai))
    body, _ = recommend(srv)
    check_shape(body)
    assert body["source"] == "fallback"
    assert body["reason"] == "no sales yet"
    assert body["recommendations"] == []
    assert ai.count() == 0


@pytest.mark.parametrize("kw,want", [
    ({"base_url": "ftp://x"},
     '[ai_recommend] base_url: "ftp://x" is not an http'),
    # cache_ttl_s is the older spelling of cache_ttl_ms: one at a time.
    ({"cache_ttl_ms": 1000, "cache_ttl_s": 1},
     '"cache_ttl_ms" and "cache_ttl_s" are both set'),
])
def test_bad_config_fails_start(make_server, fake_upstream, kw, want):
    ai = fake_upstream()
    srv = make_server(["ai_recommend"], config=config(ai, **kw),
                      start=False)
    with pytest.raises(RuntimeError) as e:
        srv.start()
    assert srv.proc.wait(10) != 0
    srv.proc = None
    srv.logf.close()
    assert want in str(e.value), str(e.value)
