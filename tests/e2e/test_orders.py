"""POST /orders, GET /orders, GET /orders/{id}: validation, exact money,
pagination, Idempotency-Key (the restart cases are in test_durability.py)."""
import json
import threading

import pytest

from pg import bulk_orders


MODULES = ["orders", "analytics"]
GOOD = {"product_id": "101", "quantity": 2, "price": 25.50,
        "date": "2025-04-22T10:00:00Z"}


def order(**kw):
    o = dict(GOOD)
    o.update(kw)
    return o


def raw(s):
    """Send this exact text (for JSON that json.dumps cannot make)."""
    return s


def without(key):
    o = dict(GOOD)
    del o[key]
    return o


# (body, expected status, expected "field" or None)
BAD = [
    (raw("not json"), 400, None),
    (raw(""), 400, None),
    (raw("[]"), 400, None),
    (raw('"an order"'), 400, None),
    (raw("42"), 400, None),
    (raw('{"product_id":"1","quantity":1,"price":1} x'), 400, None),
    (raw('{"product_id":"1","quantity":1,"price":NaN}'), 400, None),
    (raw('{"product_id":"1","quantity":1,"price":1,}'), 400, None),
    (without("product_id"), 400, "product_id"),
    (order(product_id=""), 400, "product_id"),
    (order(product_id="x" * 65), 400, "product_id"),
    (order(product_id="a\u0001b"), 400, "product_id"),
    (order(product_id="a\u0085b"), 400, "product_id"),
    (order(product_id=True), 400, "product_id"),
    (order(product_id=1.5), 400, "product_id"),
    (order(product_id={"id": 1}), 400, "product_id"),
    (order(product_id=None), 400, "product_id"),
    (without("quantity"), 400, "quantity"),
    (order(quantity=0), 400, "quantity"),
    (order(quantity=-1), 400, "quantity"),
    (order(quantity=1000001), 400, "quantity"),
    (order(quantity=1.5), 400, "quantity"),
    (raw('{"product_id":"1","quantity":2.0,"price":1}'), 400, "quantity"),
    (order(quantity="2"), 400, "quantity"),
    (order(quantity=10 ** 30), 400, "quantity"),
    (without("price"), 400, "price"),
    (order(price=-1), 400, "price"),
    (order(price=-0.000001), 400, "price"),
    (order(price="25.50"), 400, "price"),
    (order(price=None), 400, "price"),
    (order(price=1000000000.000001), 400, "price"),
    (raw('{"product_id":"1","quantity":1,"price":1e10}'), 400, "price"),
    (raw('{"product_id":"1","quantity":1,"price":0.1234567}'), 400, "price"),
    (raw('{"product_id":"1","quantity":1,"price":1e400}'), 400, "price"),
    (order(date="2025-02-30T10:00:00Z"), 400, "date"),
    (order(date="2023-02-29T10:00:00Z"), 400, "date"),
    (order(date="2025-04-22"), 400, "date"),
    (order(date="2025-04-22T24:00:00Z"), 400, "date"),
    (order(date="2025-04-22T10:00:00"), 400, "date"),
    (order(date="2025-04-22T10:00:00+25:00"), 400, "date"),
    (order(date="22/04/2025 10:00"), 400, "date"),
    (order(date=20250422), 400, "date"),
    (order(customer="bob"), 400, "customer"),
    (raw('{"product_id":"1","quantity":1,"price":1,"price":2}'), 400, "price"),
    ([GOOD, GOOD, order(price=-5)], 400, "orders[2].price"),
    ([GOOD, 5], 400, "orders[1]"),
    ([GOOD, without("quantity")], 400, "orders[1].quantity"),
    ([GOOD] * 1001, 400, None),
    (raw('{"product_id":"' + "x" * (1024 * 1024) + '"}'), 413, None),
]


def count(srv):
    st, _, body = srv.get("/analytics")
    assert st == 200
    return body["totalOrders"]


def test_bad_bodies_are_refused_and_store_nothing(make_server):
    srv = make_server(MODULES)
    assert len(BAD) >= 25
    for body, status, field in BAD:
        st, _, resp = srv.post("/orders", body)
        label = str(body)[:80]
        assert st == status, (label, st, resp)
        if status == 400:
            err = resp["error"]
            assert err["code"] and err["message"], label
            assert err.get("field") == field, (label, err)
    assert count(srv) == 0
    st, _, page = srv.get("/orders")
    assert st == 200 and page["orders"] == []
    assert srv.sql("SELECT COUNT(*) FROM orders") == [(0,)]


GOOD_EDGE = [
    (order(price=0), "0"),
    (order(price=1000000000), "1000000000"),
    (raw('{"product_id":"1","quantity":1,"price":2.55e1}'), "25.5"),
    (raw('{"product_id":"1","quantity":1,"price":0.000001}'), "0.000001"),
    (raw('{"product_id":"1","quantity":1,"price":0.10000000000}'), "0.1"),
    (raw('{"product_id":"1","quantity":1,"price":-0}'), "0"),
    (raw('{"product_id":"1","quantity":1,"price":1999.99}'), "1999.99"),
]


def test_valid_edge_values(make_server):
    srv = make_server(MODULES)
    for body, price in GOOD_EDGE:
        c = srv.conn()
        c.request("POST", "/orders", body=body if isinstance(body, str)
                  else json.dumps(body),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        assert r.status == 201, (body, text)
        assert '"price":%s,' % price in text, (body, text)
    st, _, o = srv.post("/orders", order(product_id=101, quantity=1000000))
    assert st == 201 and o["product_id"] == "101" and o["quantity"] == 1000000
    st, _, o = srv.post("/orders", order(product_id="é" * 32))
    assert st == 201 and o["product_id"] == "é" * 32
    # Offsets are normalised to UTC; fractions kept to the millisecond.
    st, _, o = srv.post("/orders", order(date="2024-02-29T23:30:00.1234-01:30"))
    assert st == 201 and o["date"] == "2024-03-01T01:00:00.123Z"
    # No date: the time the server received it.
    st, _, o = srv.post("/orders", without("date"))
    assert st == 201 and o["date"] == o["received_at"]
    st, _, o = srv.post("/orders", order(date=None))
    assert st == 201 and o["date"] == o["received_at"]
    assert count(srv) == len(GOOD_EDGE) + 5


def test_post_one_and_get_it(make_server):
    srv = make_server(MODULES)
    st, h, o = srv.post("/orders", GOOD)
    assert st == 201
    assert h["location"] == "/orders/%d" % o["id"]
    assert set(o) == {"id", "product_id", "quantity", "price", "date",
                      "received_at"}
    assert (o["product_id"], o["quantity"], o["price"], o["date"]) == \
        ("101", 2, 25.5, "2025-04-22T10:00:00Z")
    assert o["received_at"].endswith("Z") and len(o["received_at"]) == 24
    st, _, got = srv.get(h["location"])
    assert st == 200 and got == o
    assert srv.get("/orders/999999")[0] == 404
    assert srv.get("/orders/0")[0] == 404
    for bad in ("abc", "-1", "1.5", "1e3", "99999999999999999999"):
        st, _, e = srv.get("/orders/" + bad)
        assert st == 400 and e["error"]["field"] == "id", bad
    # The seed's columns are there for the sqlite3 shell.
    row = srv.sql("SELECT id, product_id, quantity, price, date FROM "
                  "orders")
    assert row == [(o["id"], "101", 2, 25.5, "2025-04-22T10:00:00Z")]


def test_array_is_all_or_nothing(make_server):
    srv = make_server(MODULES)
    batch = [order(product_id="p%d" % i, quantity=i + 1) for i in range(10)]
    st, h, body = srv.post("/orders", batch)
    assert st == 201
    ids = [o["id"] for o in body["orders"]]
    assert ids == list(range(ids[0], ids[0] + 10))
    assert h["location"] == "/orders/%d" % ids[0]
    assert [o["quantity"] for o in body["orders"]] == list(range(1, 11))
    batch[7]["price"] = "bad"
    st, _, e = srv.post("/orders", batch)
    assert st == 400 and e["error"]["field"] == "orders[7].price"
    assert count(srv) == 10


def test_exact_money_100000_orders_of_0_1(make_server):
    srv = make_server(MODULES)
    batch = json.dumps([{"product_id": "dime", "quantity": 1, "price": 0.1}]
                       * 1000)
    c = srv.conn(timeout=60)
    for _ in range(100):
        c.request("POST", "/orders", body=batch,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        assert r.status == 201
    c.close()
    st, _, a = srv.get("/analytics")
    assert a["totalOrders"] == 100000
    assert a["totalRevenue"] == 10000 and isinstance(a["totalRevenue"], int)
    assert a["topProducts"][0] == {"product_id": "dime", "revenue": 10000,
                                   "quantity": 100000, "orders": 100000}
    assert srv.sql("SELECT revenue_units, revenue_micros FROM "
                   "product_totals WHERE product_id='dime'") == [(10000, 0)]


def test_list_pagination_and_filters(make_server):
    srv = make_server(MODULES)
    batch = [order(product_id="a" if i % 3 else "b", quantity=i + 1)
             for i in range(25)]
    st, _, body = srv.post("/orders", batch)
    assert st == 201
    all_ids = [o["id"] for o in body["orders"]]
    st, _, page = srv.get("/orders")
    assert st == 200 and [o["id"] for o in page["orders"]] == all_ids[::-1]
    assert page["next_before_id"] is None
    assert page["orders"][-1] == body["orders"][0]
    seen, before = [], None
    for _ in range(10):
        path = "/orders?limit=10" + ("&before_id=%d" % before if before else "")
        st, _, page = srv.get(path)
        assert st == 200 and len(page["orders"]) <= 10
        seen += [o["id"] for o in page["orders"]]
        before = page["next_before_id"]
        if before is None:
            break
    assert seen == all_ids[::-1]
    st, _, page = srv.get("/orders?product_id=b&limit=1000")
    assert [o["id"] for o in page["orders"]] == \
        [o["id"] for o in body["orders"] if o["product_id"] == "b"][::-1]
    st, _, page = srv.get("/orders?product_id=a&before_id=%d&limit=2"
                          % all_ids[10])
    assert [o["product_id"] for o in page["orders"]] == ["a", "a"]
    assert all(o["id"] < all_ids[10] for o in page["orders"])
    assert page["next_before_id"] == page["orders"][-1]["id"]
    st, _, page = srv.get("/orders?product_id=nobody")
    assert page == {"orders": [], "next_before_id": None}
    for q, field in (("limit=0", "limit"), ("limit=1001", "limit"),
                     ("limit=x", "limit"), ("limit=-5", "limit"),
                     ("before_id=abc", "before_id"), ("before_id=0", "before_id"),
                     ("product_id=" + "x" * 65, "product_id")):
        st, _, e = srv.get("/orders?" + q)
        assert st == 400 and e["error"]["field"] == field, q


def test_idempotency_key(make_server):
    srv = make_server(MODULES)
    hdr = {"Idempotency-Key": "order-42"}
    st, h, first = srv.post("/orders", GOOD, headers=hdr)
    assert st == 201
    st2, h2, again = srv.post("/orders", GOOD, headers=hdr)
    assert st2 == 201 and again == first
    assert h2["location"] == h["location"]
    st, _, e = srv.post("/orders", order(quantity=3), headers=hdr)
    assert st == 422 and e["error"]["field"] == "Idempotency-Key"
    st, _, e = srv.post("/orders", GOOD, headers={"Idempotency-Key": "x" * 256})
    assert st == 400 and e["error"]["field"] == "Idempotency-Key"
    # A different key is a different order.
    st, _, other = srv.post("/orders", GOOD, headers={"Idempotency-Key": "k2"})
    assert st == 201 and other["id"] != first["id"]
    assert count(srv) == 2


def test_idempotency_key_concurrent_retries(make_server):
    """Retries racing the first request: 409 while it is in flight, its
    response after; never a second order."""
    srv = make_server(MODULES)
    results, lock = [], threading.Lock()
    body = json.dumps([GOOD] * 200)

    def post():
        c = srv.conn(timeout=30)
        c.request("POST", "/orders", body=body,
                  headers={"Idempotency-Key": "race",
                           "Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        with lock:
            results.append((r.status, data))

    threads = [threading.Thread(target=post) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = sorted(s for s, _ in results)
    assert len(results) == 16 and set(statuses) <= {201, 409}, statuses
    bodies = {d for s, d in results if s == 201}
    assert len(bodies) == 1
    assert count(srv) == 200


def test_product_filter_reads_a_bounded_window(make_server):
    """GET /orders?product_id= walks ids newest first without an index;
    one page looks at no more than 100,000 ids and says where to go on,
    so a rare product cannot make a request read the whole table."""
    srv = make_server(["orders"], start=False)
    srv.start()
    assert srv.stop() == 0
    # One statement inside the database, its insert trigger included.
    rows = """INSERT INTO orders(id, product_id, quantity, price, date,
                                 price_micros, received_at)
              SELECT i, CASE WHEN i = 10 THEN 'rare' ELSE 'common' END,
                     1, 1, '2025-01-01T00:00:00Z', 1000000, 0 FROM """
    srv.execute(sqlite="""
        WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c
                                WHERE i < 150000) """ + rows + "c",
        postgres=bulk_orders(rows + "generate_series(1, 150000) i"))
    srv.start()
    st, _, page = srv.get("/orders?product_id=rare&limit=5")
    assert st == 200 and page["orders"] == []
    assert page["next_before_id"] == 50001
    st, _, page = srv.get("/orders?product_id=rare&limit=5&before_id=50001")
    assert st == 200 and [o["id"] for o in page["orders"]] == [10]
    assert page["next_before_id"] is None
    # A full page ends at its last order, as without the filter.
    st, _, page = srv.get("/orders?product_id=common&limit=3")
    assert [o["id"] for o in page["orders"]] == [150000, 149999, 149998]
    assert page["next_before_id"] == 149998
    # Never sold: answered at once, nothing to follow.
    st, _, page = srv.get("/orders?product_id=nosuch")
    assert st == 200 and page == {"orders": [], "next_before_id": None}
