"""GET /analytics and the live WebSocket messages: the seed's test case,
windows, top products, coalescing, and a restart over 1,000,000 stored
orders."""
import asyncio
import json
import time

import websockets

from pg import bulk_orders

MODULES = ["orders", "analytics"]
SEED = {"product_id": "101", "quantity": 2, "price": 25.50,
        "date": "2025-04-22T10:00:00Z"}


def iso_ms(s):
    """RFC 3339 UTC with milliseconds -> ms since the epoch."""
    import calendar
    t = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) * 1000 + int(s[20:23])


async def recv_json(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def post_raw(srv, body, headers=None):
    c = srv.conn()
    c.request("POST", "/orders", body=json.dumps(body),
              headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    r = c.getresponse()
    data = r.read().decode()
    c.close()
    return r.status, data


def test_seed_case_over_websocket(make_server):
    """The seed's own test case: a dashboard connected over WebSocket sees
    the order, then the analytics that count it."""
    srv = make_server(MODULES, config={"analytics": {"broadcast_interval_ms": 0}})
    st, _, before = srv.get("/analytics")
    assert st == 200

    async def scenario():
        async with websockets.connect(srv.ws_url) as ws:
            loop = asyncio.get_running_loop()
            st, body = await loop.run_in_executor(None, post_raw, srv, SEED)
            assert st == 201, body
            posted = json.loads(body)
            seen_new = False
            for _ in range(20):
                msg = await recv_json(ws)
                if msg["type"] == "newOrder":
                    assert msg["data"] == posted
                    seen_new = True
                elif msg["type"] == "updateAnalytics":
                    if msg["data"]["totalOrders"] >= before["totalOrders"] + 1:
                        assert seen_new, "updateAnalytics before its newOrder"
                        return posted, msg["data"]
            raise AssertionError("no updateAnalytics counting the order")

    posted, update = asyncio.run(scenario())
    assert update["orderCountLastMinute"] == before["orderCountLastMinute"] + 1
    st, _, after = srv.get("/analytics")
    assert after["orderCountLastMinute"] == before["orderCountLastMinute"] + 1
    assert after["revenueLastMinute"] == before["revenueLastMinute"] + 51
    assert after["totalRevenue"] == 51 and after["totalQuantity"] == 2
    assert after["topProducts"] == [{"product_id": "101", "revenue": 51,
                                     "quantity": 2, "orders": 1}]
    assert after["revenueChangeLastMinute"] == 51
    assert after["revenuePreviousMinute"] == 0
    assert abs(iso_ms(after["asOf"]) - time.time() * 1000) < 60000
    # newOrder carried exactly the bytes the POST answered.
    assert posted == srv.get("/orders/%d" % posted["id"])[2]


def test_neworder_bytes_equal_post_body(make_server):
    srv = make_server(MODULES)

    async def scenario():
        async with websockets.connect(srv.ws_url) as ws:
            loop = asyncio.get_running_loop()
            st, body = await loop.run_in_executor(
                None, post_raw, srv, [SEED, dict(SEED, product_id="7")])
            assert st == 201
            frames = []
            while len(frames) < 2:
                text = await asyncio.wait_for(ws.recv(), 5)
                if json.loads(text)["type"] == "newOrder":
                    frames.append(text)
            return body, frames

    body, frames = asyncio.run(scenario())
    for f in frames:
        data = f[f.index('"data":') + 7:f.rindex("}")]
        assert data in body, (data, body)


def test_get_analytics_message_and_errors(make_server):
    srv = make_server(MODULES)
    assert srv.post("/orders", SEED)[0] == 201

    async def scenario():
        async with websockets.connect(srv.ws_url) as ws:
            await ws.send(json.dumps({"type": "getAnalytics"}))
            for _ in range(10):
                msg = await recv_json(ws)
                if msg["type"] == "updateAnalytics":
                    return msg["data"]
            raise AssertionError("no answer to getAnalytics")

    data = asyncio.run(scenario())
    assert data["totalOrders"] == 1 and data["totalRevenue"] == 51


def test_windows_move_with_time(make_server):
    """window_ms shortens "the last minute" so the test need not wait."""
    srv = make_server(MODULES, config={"analytics": {"window_ms": 1000}})
    # An order dated long ago still counts by when it was received.
    st, _, o = srv.post("/orders", dict(SEED, date="2001-01-01T00:00:00Z"))
    assert st == 201
    st, _, a = srv.get("/analytics")
    assert (a["orderCountLastMinute"], a["revenueLastMinute"]) == (1, 51)
    deadline = time.time() + 10
    while time.time() < deadline:
        a = srv.get("/analytics")[2]
        if a["orderCountLastMinute"] == 0:
            break
        time.sleep(0.05)
    # Moved to the previous window (unless the machine stalled > 1 s).
    if a["revenuePreviousMinute"] != 0:
        assert a["revenuePreviousMinute"] == 51
        assert a["revenueChangeLastMinute"] == -51
    assert a["orderCountLastMinute"] == 0 and a["revenueLastMinute"] == 0
    while time.time() < deadline:
        a = srv.get("/analytics")[2]
        if a["revenuePreviousMinute"] == 0:
            break
        time.sleep(0.05)
    assert a["revenuePreviousMinute"] == 0 and a["revenueChangeLastMinute"] == 0
    assert a["totalOrders"] == 1 and a["totalRevenue"] == 51


def test_top_products(make_server):
    srv = make_server(MODULES, config={"analytics": {"top": 3}})
    batch = [{"product_id": "p%d" % i, "quantity": 1, "price": i} for i in
             range(1, 9)] + [{"product_id": "tie-b", "quantity": 2, "price": 4},
                             {"product_id": "tie-a", "quantity": 1, "price": 8}]
    assert srv.post("/orders", batch)[0] == 201
    a = srv.get("/analytics")[2]
    assert [p["product_id"] for p in a["topProducts"]] == ["p8", "tie-a", "tie-b"]
    a = srv.get("/analytics?top=100")[2]
    revs = [(p["revenue"], p["product_id"]) for p in a["topProducts"]]
    assert len(revs) == 10 and revs == sorted(revs, key=lambda r: (-r[0], r[1]))
    assert srv.get("/analytics?top=1")[2]["topProducts"][0]["product_id"] == "p8"
    for bad in ("0", "101", "-1", "x", "1.5", "", "5a"):
        st, _, e = srv.get("/analytics?top=" + bad)
        assert st == 400 and e["error"]["field"] == "top", bad


def test_updates_are_coalesced(make_server):
    srv = make_server(MODULES, config={"analytics": {"broadcast_interval_ms": 500}})

    async def scenario():
        async with websockets.connect(srv.ws_url) as ws:
            loop = asyncio.get_running_loop()
            t0 = time.time()
            for i in range(10):
                st, _ = await loop.run_in_executor(
                    None, post_raw, srv, dict(SEED, quantity=i + 1))
                assert st == 201
            news, updates = 0, []
            end = time.time() + 5
            while time.time() < end:
                try:
                    msg = await recv_json(ws, timeout=end - time.time())
                except asyncio.TimeoutError:
                    break
                if msg["type"] == "newOrder":
                    news += 1
                elif msg["type"] == "updateAnalytics":
                    # It follows every newOrder it accounts for.
                    assert msg["data"]["totalOrders"] <= news
                    updates.append((time.time(), msg["data"]["totalOrders"]))
                    if msg["data"]["totalOrders"] == 10:
                        break
            return t0, news, updates

    t0, news, updates = asyncio.run(scenario())
    assert news == 10 and updates and updates[-1][1] == 10
    elapsed = updates[-1][0] - t0
    assert len(updates) <= elapsed / 0.5 + 2, (len(updates), elapsed)


def _start_time(srv):
    t = time.time()
    srv.start(timeout=60)
    return time.time() - t


def test_restart_with_a_million_orders(make_server):
    """Start-up reads per-product totals and recent orders only, so 1M
    stored orders cost no more than an empty database."""
    srv = make_server(MODULES, start=False)
    empty = min(_start_time(srv), 10)
    assert srv.stop() == 0
    n, recent, previous = 1000000, 100, 40
    now = int(time.time() * 1000)
    # Generated inside the database (SQLite: the same trigger runs as
    # for the server; PostgreSQL: see pg.bulk_orders).
    rows = """INSERT INTO orders(id, product_id, quantity, price, date,
                                 price_micros, received_at)
              SELECT i, PRODUCT, 1 + i %% 7,
                     (10000 * (1 + i %% 5000) + i %% 3) / 1e6,
                     '2025-01-01T00:00:00Z', 10000 * (1 + i %% 5000) + i %% 3,
                     CASE WHEN i > %d THEN %d
                          WHEN i > %d THEN %d
                          ELSE %d + i END FROM """ % (
        n - recent, now - 5000, n - recent - previous, now - 65000,
        now - 172800000)
    srv.execute(sqlite="WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT "
                "i + 1 FROM c WHERE i < %d) " % n +
                rows.replace("PRODUCT", "printf('sku%03d', i % 200)") + "c",
                postgres=bulk_orders(
                    rows.replace("PRODUCT",
                                 "'sku' || lpad((i % 200)::text, 3, '0')") +
                    "generate_series(1, %d) i" % n))
    # The expected figures, recounted from the orders themselves.
    (tot_rev, tot_q), = srv.sql("SELECT SUM(quantity * price_micros) AS r, "
                                "SUM(quantity) AS q FROM orders")
    last_rev = srv.sql("SELECT SUM(quantity * price_micros) FROM orders "
                       "WHERE received_at = %d" % (now - 5000))[0][0]
    prev_rev = srv.sql("SELECT SUM(quantity * price_micros) FROM orders "
                       "WHERE received_at = %d" % (now - 65000))[0][0]
    top = srv.sql("SELECT product_id, SUM(quantity * price_micros) AS r, "
                  "SUM(quantity) AS q, COUNT(*) AS n FROM orders "
                  "GROUP BY product_id ORDER BY r DESC, product_id LIMIT 100")
    loaded = _start_time(srv)
    assert loaded < empty + 2.0, (loaded, empty)

    def text_money(m):
        return str(m // 10 ** 6) if m % 10 ** 6 == 0 else \
            ("%d.%06d" % (m // 10 ** 6, m % 10 ** 6)).rstrip("0")

    st, _, a = srv.get("/analytics?top=100")
    assert st == 200
    assert a["totalOrders"] == n and a["totalQuantity"] == tot_q
    assert a["orderCountLastMinute"] == recent
    # Compare money exactly in the response text, not through floats.
    c = srv.conn()
    c.request("GET", "/analytics?top=100")
    text = c.getresponse().read().decode()
    c.close()
    assert '"totalRevenue":%s,' % text_money(tot_rev) in text
    assert '"revenueLastMinute":%s,' % text_money(last_rev) in text
    assert '"revenuePreviousMinute":%s,' % text_money(prev_rev) in text
    assert [p["product_id"] for p in a["topProducts"]] == [t[0] for t in top]
    for pid, rev, q, cnt in top:
        assert '"product_id":"%s","revenue":%s,"quantity":%d,"orders":%d}' % (
            pid, text_money(rev), q, cnt) in text
    # And it takes new orders on top.
    st, _, o = srv.post("/orders", SEED)
    assert st == 201 and o["id"] == n + 1
    assert srv.get("/analytics")[2]["totalOrders"] == n + 1
