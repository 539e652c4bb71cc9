"""The typed bus payloads of <sales/events.h>, field by field, as the
busprobe test module receives them: "order.created" says what each 201
said, "analytics.updated.v2" says what
GET /analytics says (money exact, as units and micros), and
"weather.updated.v2" what GET /promotions says; the deprecated v1 topics
still come, for modules built before v2."""
import json
import time
from decimal import Decimal

from fakes import fake_upstream, openweather_body  # noqa: F401 (fixture)

ORDERS = [("101", 2, "25.5"), ("p2", 3, "10.1"), ("p3", 1, "0.05")]


def money(m):
    assert abs(m["micros"]) < 1000000
    assert m["units"] == 0 or m["micros"] == 0 or \
        (m["units"] > 0) == (m["micros"] > 0)
    return Decimal(m["units"]) + Decimal(m["micros"]) / 1000000


def probe_until(srv, cond, timeout=20):
    deadline = time.time() + timeout
    while True:
        st, _, body = srv.get("/busprobe")
        assert st == 200
        if cond(body):
            return body
        assert time.time() < deadline, body
        time.sleep(0.05)


def test_order_created_matches_the_201s(make_server):
    # One "order.created" per stored order, in commit order, each field
    # as the 201 said it; a refused order publishes nothing.
    srv = make_server(["orders", "busprobe"])
    made = []
    for pid, qty, price in ORDERS:
        st, _, body = srv.post("/orders", {
            "product_id": pid, "quantity": qty, "price": float(price),
            "date": "2025-04-22T10:00:00.250Z"})
        assert st == 201, body
        made.append(body)
    st, _, _ = srv.post("/orders", {"product_id": "x", "quantity": 0,
                                    "price": 1})
    assert st == 400
    p = probe_until(srv, lambda b: b["counts"]["order_created"] >= 3)
    assert p["counts"]["order_created"] == 3
    for got, want, (pid, qty, price) in zip(p["orders"], made, ORDERS):
        assert got["id"] == want["id"]
        assert got["product_id"] == pid == want["product_id"]
        assert got["quantity"] == qty
        assert Decimal(got["price_micros"]) == Decimal(price) * 1000000
        assert got["date_ms"] == 1745316000250
        assert got["received_at_ms"] > 1745316000250
    assert [o["id"] for o in p["orders"]] == sorted(o["id"] for o in made)


def test_analytics_v2_matches_rest(make_server):
    srv = make_server(["orders", "analytics", "busprobe"],
                      config={"analytics": {"broadcast_interval_ms": 0}})
    for pid, qty, price in ORDERS:
        st, _, body = srv.post("/orders", {
            "product_id": pid, "quantity": qty, "price": float(price),
            "date": "2025-04-22T10:00:00Z"})
        assert st == 201, body
    p = probe_until(srv, lambda b: b["analytics_v2"] is not None and
                    b["analytics_v2"]["total_orders"] == 3 and
                    b["analytics_v1"] is not None and
                    b["analytics_v1"]["total_orders"] == 3)
    a = p["analytics_v2"]
    st, _, rest = srv.get("/analytics")
    assert st == 200
    total = sum(q * Decimal(pr) for _, q, pr in ORDERS)
    assert money(a["total_revenue"]) == total == Decimal("81.35")
    assert a["total_revenue"] == {"units": 81, "micros": 350000}
    assert float(total) == rest["totalRevenue"]
    assert a["total_orders"] == rest["totalOrders"] == 3
    assert a["total_quantity"] == rest["totalQuantity"] == 6
    assert a["orders_last_minute"] == rest["orderCountLastMinute"] == 3
    assert money(a["revenue_last_minute"]) == total
    assert a["orders_previous_minute"] == 0
    assert money(a["revenue_previous_minute"]) == 0
    assert a["orders_last_hour"] == 3
    assert money(a["revenue_last_hour"]) == total
    assert a["reserved"] == 0 and a["as_of_ms"] > 0
    assert a["ntop"] == len(rest["topProducts"]) == 3
    for got, want in zip(a["top"], rest["topProducts"]):
        assert got["product_id"] == want["product_id"]
        assert got["quantity"] == want["quantity"]
        assert got["orders"] == want["orders"]
        assert float(money(got["revenue"])) == want["revenue"]
    assert [t["product_id"] for t in a["top"]] == ["101", "p2", "p3"]
    # The deprecated v1 still carries the GET /analytics text.
    v1 = json.loads(p["analytics_v1"]["json"])
    assert v1["topProducts"] == rest["topProducts"]
    assert p["counts"]["analytics_v1"] == p["counts"]["analytics_v2"]


def test_weather_v2_matches_rest(make_server, fake_upstream):
    fake = fake_upstream()
    fake.set(body=openweather_body(31.5, "Clear", "Paris"))
    cfg = {"api_key": "k", "city": "Paris", "base_url": fake.url + "/d",
           "timeout_ms": 2000, "retries": 0, "cache_ttl_s": 600,
           "rule.heatwave": "temp >= 30 | cold_drinks | 25 | Heatwave",
           "rule.warm": "temp >= 20 | cold_drinks | 10 | Warm",
           "rule.rain": "condition = rain | umbrellas | 10 | Rain",
           "rule.loyalty": "always | members | 5 | Membres: 5% – merci"}
    srv = make_server(["weather", "busprobe"], config={"weather": cfg})
    p = probe_until(srv, lambda b: b["weather_v2"] is not None and
                    b["weather_v2"]["source"] == "openweather")
    st, _, rest = srv.get("/promotions")
    assert st == 200
    w = p["weather_v2"]
    assert w["temperature_c"] == rest["weather"]["temperatureC"] == 31.5
    assert w["city"] == rest["weather"]["city"] == "Paris"
    assert w["condition"] == rest["weather"]["condition"] == "clear"
    assert w["source"] == rest["weather"]["source"]
    assert w["fetched_at_ms"] > 0
    assert w["npromotions"] == len(rest["promotions"]) == 2
    assert [{"category": x["category"], "message": x["message"],
             "discountPercent": x["discount_percent"]}
            for x in w["promotions"]] == rest["promotions"]
    assert w["promotions"][1]["message"] == "Membres: 5% – merci"
    v1 = p["weather_v1"]
    assert v1["city"] == "Paris" and v1["source"] == "openweather"
    assert json.loads(v1["promotions_json"])["promotions"] == \
        rest["promotions"]
