"""docs/PROTOCOL.md is what the server says: its example session is played
against a live salesd line by line, and its JSON examples are sent."""
import asyncio
import json
import os
import re
import time

import websockets

from conftest import ROOT

DOC = os.path.join(ROOT, "docs", "PROTOCOL.md")
MODULES = ["orders", "analytics", "weather"]
ANY = "..."


def blocks(lang):
    text = open(DOC).read()
    return re.findall(r"```%s\n(.*?)```" % lang, text, re.S)


def matches(want, got):
    """got equals want, where the string "..." in want stands for anything."""
    if want == ANY:
        return True
    if isinstance(want, dict):
        return (isinstance(got, dict) and want.keys() == got.keys() and
                all(matches(v, got[k]) for k, v in want.items()))
    if isinstance(want, list):
        return (isinstance(got, list) and len(want) == len(got) and
                all(matches(w, g) for w, g in zip(want, got)))
    return type(want) is type(got) and want == got


def quiet_server(make_server):
    """A fresh server whose start-up broadcasts (the first
    updateAnalytics and updatePromotions) have gone out to nobody."""
    srv = make_server(MODULES)
    deadline = time.time() + 10
    while time.time() < deadline:
        _, _, text = srv.get("/metrics")
        m = re.search(rb"^salesd_analytics_updates_total (\d+)", text, re.M)
        if m and int(m.group(1)) >= 1:
            return srv
        time.sleep(0.02)
    raise AssertionError("no start-up updateAnalytics")


async def recv(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


def test_example_session(make_server):
    session = blocks("session")
    assert len(session) == 1
    lines = [l for l in session[0].splitlines() if l.strip()]
    assert len(lines) > 10
    srv = quiet_server(make_server)

    async def play():
        async with websockets.connect(srv.ws_url) as ws:
            for n, line in enumerate(lines, 1):
                what, rest = line[0], line[2:]
                if rest.startswith("close "):
                    code = int(rest.split()[1])
                    if what == ">":
                        await ws.close(code)
                    else:
                        await ws.wait_closed()
                        assert ws.close_code == code, (n, line)
                elif what == ">":
                    await ws.send(rest)
                elif what == "<":
                    got = await recv(ws)
                    assert matches(json.loads(rest), got), (n, line, got)
                elif what == "!":
                    method, path, body = rest.split(" ", 2)
                    st, _, answer = srv.request(method, path,
                                                body=body.encode())
                    assert 200 <= st < 300, (n, line, st, answer)
                else:
                    raise AssertionError("line %d: %r" % (n, line))
            assert ws.closed
    asyncio.run(play())


def test_json_examples(make_server):
    examples = [json.loads(b) for b in blocks("json")]
    assert {e["type"] for e in examples} == {"subscribe", "getAnalytics",
                                             "error"}
    srv = quiet_server(make_server)

    async def go():
        async with websockets.connect(srv.ws_url) as ws:
            for e in examples:
                if e["type"] == "error":
                    # The error shown is the answer to an unknown event.
                    bad = e["data"]["events"]
                    await ws.send(json.dumps({"type": "subscribe",
                                              "events": bad}))
                    assert await recv(ws) == e
                    continue
                await ws.send(json.dumps(e))
                got = await recv(ws)
                if e["type"] == "subscribe":
                    assert got == dict(e, type="subscribed")
                else:
                    assert got["type"] == "updateAnalytics"
    asyncio.run(go())
