"""Durability: kill -9 under load loses no acknowledged order and stores
none twice; analytics after a restart equal a recount from the table;
Idempotency-Key survives restarts."""
import calendar
import http.client
import json
import threading
import time

MODULES = ["orders", "analytics"]


def iso_ms(s):
    t = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) * 1000 + int(s[20:23])


def test_kill9_under_load_loses_no_acknowledged_order(make_server):
    srv = make_server(MODULES)
    acked = {}		# product_id -> (id, quantity, price) from the 201
    sent = set()	# every product_id ever sent
    lock = threading.Lock()
    stop = threading.Event()

    def client(t):
        seq = 0
        conn = None
        deadline = time.time() + 20
        while not stop.is_set() and time.time() < deadline:
            batch = []
            for _ in range(1 + seq % 3):
                seq += 1
                batch.append({"product_id": "t%d-%d" % (t, seq),
                              "quantity": 1 + seq % 5,
                              "price": "%d.%02d" % (seq % 100, seq % 97)})
            body = json.dumps([dict(o, price=float(o["price"]))
                               for o in batch])
            with lock:
                sent.update(o["product_id"] for o in batch)
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", srv.port,
                                                      timeout=10)
                conn.request("POST", "/orders", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException):
                return		# the server died
            assert r.status == 201, data
            with lock:
                for o in json.loads(data)["orders"]:
                    acked[o["product_id"]] = (o["id"], o["quantity"],
                                              o["price"])

    threads = [threading.Thread(target=client, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    deadline = time.time() + 15
    while time.time() < deadline and len(acked) < 3000:
        time.sleep(0.02)
    assert srv.kill9() == -9
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) > 100, "too little load before the kill"

    rows = srv.sql("SELECT id, product_id, quantity, price_micros FROM "
                   "orders")
    by_pid = {}
    for oid, pid, q, pm in rows:
        assert pid not in by_pid, "order %s stored twice" % pid
        assert pid in sent, pid
        by_pid[pid] = (oid, q, pm)
    for pid, (oid, q, price) in acked.items():
        assert pid in by_pid, "acknowledged order %s lost" % pid
        assert by_pid[pid][0] == oid and by_pid[pid][1] == q
        assert by_pid[pid][2] == round(price * 10 ** 6)

    # Restart: the analytics equal a recount from the table.
    srv.start(timeout=60)
    st, _, a = srv.get("/analytics?top=100")
    assert st == 200
    # Either driver: srv.sql() reads the server's database.
    [(n, qty, rev)] = srv.sql("SELECT COUNT(*) AS n, SUM(quantity) AS q, "
                              "SUM(quantity * price_micros) AS r FROM orders")
    asof = iso_ms(a["asOf"])
    [(last_n, last_rev)] = srv.sql(
        "SELECT COUNT(*) AS n, COALESCE(SUM(quantity * price_micros), 0) "
        "AS r FROM "
        "orders WHERE received_at > %d AND received_at <= %d"
        % (asof - 60000, asof))
    top = srv.sql("SELECT product_id, SUM(quantity * price_micros) AS r "
                  "FROM orders GROUP BY product_id ORDER BY r DESC, "
                  "product_id LIMIT 100")
    [totals] = srv.sql("SELECT SUM(orders) AS n, SUM(revenue_units) * "
                       "1000000 + SUM(revenue_micros) AS r FROM "
                       "product_totals")
    assert totals == (n, rev)
    assert a["totalOrders"] == n and a["totalQuantity"] == qty
    assert round(a["totalRevenue"] * 10 ** 6) == rev
    assert a["orderCountLastMinute"] == last_n
    assert round(a["revenueLastMinute"] * 10 ** 6) == last_rev
    assert [(p["product_id"], round(p["revenue"] * 10 ** 6))
            for p in a["topProducts"]] == top
    # Ids continue past everything stored.
    st, _, o = srv.post("/orders", {"product_id": "after", "quantity": 1,
                                    "price": 1})
    assert st == 201 and o["id"] > max(r[0] for r in rows)


def test_idempotency_key_survives_restarts(make_server):
    srv = make_server(MODULES)
    order = {"product_id": "101", "quantity": 2, "price": 25.5}
    hdr = {"Idempotency-Key": "restart-1"}
    st, h, first = srv.post("/orders", order, headers=hdr)
    assert st == 201
    assert srv.stop() == 0
    srv.start(timeout=60)
    st, h2, again = srv.post("/orders", order, headers=hdr)
    assert st == 201 and again == first and h2["location"] == h["location"]
    st, _, e = srv.post("/orders", dict(order, quantity=3), headers=hdr)
    assert st == 422
    # After kill -9 too: the key was committed with the order.
    hdr2 = {"Idempotency-Key": "restart-2"}
    st, _, second = srv.post("/orders", [order, order], headers=hdr2)
    assert st == 201
    assert srv.kill9() == -9
    srv.start(timeout=60)
    st, _, again = srv.post("/orders", [order, order], headers=hdr2)
    assert st == 201 and again == second
    assert srv.get("/analytics")[2]["totalOrders"] == 3
