"""JSON that costs the parser nothing: deep nesting and empty messages.

Nesting past CORE_JSON_MAX_DEPTH (64) is refused before jsmn runs.  On
the old code a 1 MiB "[[[...]]]" body held the loop thread for minutes
and a 64 KiB one over WebSocket for over a second: here every answer
must come within the client's timeout, and the server must answer the
next request right after.
"""
import json

from test_ws import Raw, frame

DEPTH = 64


def nested(size):
    return "[" * (size // 2) + "]" * (size // 2)


def test_deeply_nested_order_body_is_400_and_server_stays_responsive(
        make_server):
    srv = make_server(["orders"])
    for body in (nested(1024 * 1024),           # the whole max_body
                 "[" * (1024 * 1024),           # never closed
                 '{"a":' * 170000 + "1" + "}" * 170000):
        st, _, data = srv.post("/orders", body, timeout=10)
        assert st == 400, (st, data)
        assert data["error"]["code"] == "invalid_json"
        st, _, data = srv.get("/health", timeout=10)
        assert st == 200 and data["status"] == "ok"
    # At the limit the JSON is fine; it is only not an order.
    body = "[" * DEPTH + "]" * DEPTH
    st, _, data = srv.post("/orders", body, timeout=10)
    assert st == 400 and data["error"]["code"] != "invalid_json", data
    st, _, data = srv.get("/orders", timeout=10)
    assert st == 200 and data["orders"] == []


def test_deeply_nested_ws_message_is_an_error_and_connection_stays(
        make_server):
    srv = make_server(["echo"])
    r = Raw(srv.port)
    for text in (nested(65536), "[" * 65536, "[" * (DEPTH + 1)):
        r.send(frame(1, text))
        m = r.message()
        assert m["type"] == "error" and m["data"]["code"] == "bad_json", m
    r.send(frame(1, json.dumps({"type": "echo", "data": [[[1]]]})))
    assert r.message() == {"type": "echo", "data": [[[1]]]}
    st, _, data = srv.get("/health", timeout=10)
    assert st == 200
    r.close()


def test_empty_ws_text_frame_is_bad_json(make_server):
    srv = make_server(["echo"])
    r = Raw(srv.port)
    r.send(frame(1, b""))
    m = r.message()
    assert m["type"] == "error" and m["data"]["code"] == "bad_json", m
    assert isinstance(m["data"]["message"], str)
    # Empty fragments adding up to nothing are the same.
    r.send(frame(1, b"", fin=False))
    r.send(frame(0, b""))
    m = r.message()
    assert m["type"] == "error" and m["data"]["code"] == "bad_json", m
    r.send(frame(1, json.dumps({"type": "echo", "data": ""})))
    assert r.message() == {"type": "echo", "data": ""}
    r.close()
