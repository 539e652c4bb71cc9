"""Orders formatted without printf (orders_parse.c): money, dates at the
edges of four-digit years and of the epoch, leap days, and product ids
taken from the raw JSON text or through unescaping.  Each value is checked
in the POST answer and again as stored and listed.  Money is printed by
the SDK's buf_money everywhere: the same text in an order, in GET
/analytics and in updateAnalytics."""
import asyncio
import json
from decimal import Decimal

import websockets

MODULES = ["orders", "analytics"]


def post_raw(srv, text):
    c = srv.conn()
    c.request("POST", "/orders", body=text,
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body


PRICES = [
    ("0", "0"), ("0.000001", "0.000001"), ("0.1", "0.1"), ("1", "1"),
    ("10", "10"), ("100.10", "100.1"), ("999999999.999999", "999999999.999999"),
    ("1e9", "1000000000"), ("1000000000", "1000000000"), ("0.5e-5", "0.000005"),
    ("123456.000100", "123456.0001"), ("7e-6", "0.000007"),
]

DATES = [
    ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
    ("1970-01-01T00:00:00.001Z", "1970-01-01T00:00:00.001Z"),
    ("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z"),
    ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
    ("0000-03-01T00:00:00+00:01", "0000-02-29T23:59:00Z"),
    ("0001-01-01T00:30:00+01:00", "0000-12-31T23:30:00Z"),
    ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
    ("9999-12-31T23:00:00-00:59", "9999-12-31T23:59:00Z"),
    ("2000-02-29T12:00:00Z", "2000-02-29T12:00:00Z"),
    ("2024-02-28T23:00:00-01:00", "2024-02-29T00:00:00Z"),
    ("2100-03-01T00:30:00+01:00", "2100-02-28T23:30:00Z"),
    ("2025-12-31T23:59:59.5Z", "2025-12-31T23:59:59.500Z"),
]

BAD_DATES = ["9999-12-31T23:59:59-00:01", "0000-01-01T00:00:00+00:01",
             "1900-02-29T00:00:00Z", "2023-02-29T00:00:00Z"]

# (raw JSON string literal, the product id it means)
PRODUCTS = [
    ('"plain"', "plain"),
    ('"a\\"b"', 'a"b'),
    ('"a\\\\b"', "a\\b"),
    ('"a\\/b"', "a/b"),
    ('"\\u00e9t\\u00e9"', "été"),
    ('"\\ud83d\\ude00"', "\U0001F600"),
    ('"' + "\\u0041" * 64 + '"', "A" * 64),
    ('"' + "x" * 64 + '"', "x" * 64),
    ("123", "123"),
]

BAD_PRODUCTS = ['"' + "\\u0041" * 65 + '"', '"' + "x" * 65 + '"',
                '"a\\u0000b"', '"a\\u007fb"', '"a\x7fb"', '"\\u0085"', '""']


def test_money_formatting(make_server):
    srv = make_server(MODULES)
    for text, want in PRICES:
        st, body = post_raw(srv, '{"product_id":"m","quantity":1,"price":%s}'
                            % text)
        assert st == 201, (text, body)
        assert '"price":%s,' % want in body, (text, body)
        oid = json.loads(body)["id"]
        c = srv.conn()
        c.request("GET", "/orders/%d" % oid)
        got = c.getresponse().read().decode()
        c.close()
        assert '"price":%s,' % want in got, (text, got)


def test_dates_at_the_edges(make_server):
    srv = make_server(MODULES)
    for text, want in DATES:
        st, body = post_raw(srv, '{"product_id":"d","quantity":1,"price":1,'
                            '"date":"%s"}' % text)
        assert st == 201, (text, body)
        doc = json.loads(body)
        assert doc["date"] == want, (text, doc)
        assert doc["received_at"].endswith("Z") and len(doc["received_at"]) == 24
        st, _, got = srv.get("/orders/%d" % doc["id"])
        assert st == 200 and got["date"] == want
    for text in BAD_DATES:
        st, body = post_raw(srv, '{"product_id":"d","quantity":1,"price":1,'
                            '"date":"%s"}' % text)
        assert st == 400 and json.loads(body)["error"]["field"] == "date", text


def test_product_ids_raw_and_escaped(make_server):
    srv = make_server(MODULES)
    for lit, want in PRODUCTS:
        st, body = post_raw(srv, '{"product_id":%s,"quantity":1,"price":1}'
                            % lit)
        assert st == 201, (lit, body)
        doc = json.loads(body)
        assert doc["product_id"] == want, (lit, doc)
        st, _, page = srv.get("/orders/%d" % doc["id"])
        assert page["product_id"] == want
    for lit in BAD_PRODUCTS:
        st, body = post_raw(srv, '{"product_id":%s,"quantity":1,"price":1}'
                            % lit)
        assert st == 400, (lit, body)
        assert json.loads(body)["error"]["field"] == "product_id", lit
    # A batch holding both kinds: the slow and the raw path in one POST.
    st, body = post_raw(srv, '[{"product_id":"q\\"1","quantity":1,"price":1},'
                        '{"product_id":"q2","quantity":2,"price":2}]')
    assert st == 201, body
    got = [o["product_id"] for o in json.loads(body)["orders"]]
    assert got == ['q"1', "q2"]


def plain(d):
    """A Decimal as buf_money prints it: no exponent, no trailing zeros."""
    t = format(d, "f")
    return t.rstrip("0").rstrip(".") if "." in t else t


def test_one_figure_one_way(make_server):
    srv = make_server(MODULES, config={"analytics": {"top": 100}})
    total = Decimal(0)
    for i, (text, want) in enumerate(PRICES):
        st, body = post_raw(srv, '{"product_id":"f%d","quantity":1,'
                            '"price":%s}' % (i, text))
        assert st == 201 and '"price":%s,' % want in body, (text, body)
        total += Decimal(want)
    st, body = post_raw(srv, '{"product_id":"f0","quantity":3,'
                        '"price":0.25}')
    assert st == 201, body
    total += Decimal("0.75")
    want = ['"totalRevenue":%s,' % plain(total),
            '{"product_id":"f0","revenue":0.75,']
    want += ['{"product_id":"f%d","revenue":%s,' % (i, w)
             for i, (_, w) in enumerate(PRICES) if i > 0]

    c = srv.conn()
    c.request("GET", "/analytics?top=100")
    rest = c.getresponse().read().decode()
    c.close()

    async def ws_update():
        async with websockets.connect(srv.ws_url) as ws:
            await ws.send('{"type":"getAnalytics"}')
            while True:
                text = await asyncio.wait_for(ws.recv(), 10)
                if json.loads(text)["type"] == "updateAnalytics":
                    return text

    frame = asyncio.run(ws_update())
    for w in want:
        assert w in rest, (w, rest)
        assert w in frame, (w, frame)
