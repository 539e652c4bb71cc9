"""SIGHUP re-reads sales.ini and applies what can change live, all of it or
none of it, and never stops the server, not even during start-up;
SIGUSR1 is ignored.  Each test waits for the log line that says
the reload happened (or was refused), never for a fixed time."""
import asyncio
import json
import os
import re
import signal
import subprocess
import time

import websockets

from conftest import SALESD

MODULES = ["orders", "analytics", "weather", "ai_recommend"]
TOKEN_A = "a" * 8 + "-read-token-0123456789"
TOKEN_B = "b" * 8 + "-read-token-0123456789"
RELOADED = r"reloaded \S+: \d+ changes?"
REFUSED = r"reload of \S+ refused, the running configuration stays"


def auth(token):
    return {"Authorization": "Bearer " + token}


def categories(srv, token):
    st, _, body = srv.get("/promotions", headers=auth(token))
    assert st == 200, body
    return sorted(p["category"] for p in body["promotions"])


def start(make_server):
    return make_server(MODULES, {
        "auth": {"read_token": TOKEN_A},
        "weather": {"rule.members": "always | members | 5 | Members save 5%"},
    })


def hup(srv, pattern, count=1):
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(pattern, count)


def test_reload_applies_log_level_rules_and_tokens(make_server):
    srv = start(make_server)
    assert categories(srv, TOKEN_A) == ["members"]
    # At info, a refusal is not logged.
    assert srv.get("/promotions", headers=auth(TOKEN_B))[0] == 401
    assert "DEBUG" not in srv.log()

    srv.write_config({
        "server": {"log_level": "debug"},
        "auth": {"read_token": TOKEN_B},
        "weather": {"rule.members": None,
                    "rule.vip": "always | vip | 10 | VIP save 10%"},
        "analytics": {"top": 3},
    })
    hup(srv, RELOADED)
    assert "reloaded %s: 5 changes" % srv.config in srv.log()
    assert "unknown key" not in srv.log()
    # The new token is in force, the old one is not.
    assert srv.get("/promotions", headers=auth(TOKEN_A))[0] == 401
    assert categories(srv, TOKEN_B) == ["vip"]
    # And the refusal above was logged at the new level.
    srv.wait_log(r"DEBUG .*guard: \"GET /promotions\" refused")
    st, _, body = srv.get("/analytics", headers=auth(TOKEN_B))
    assert st == 200 and "topProducts" in body
    # Tokens are never logged.
    assert TOKEN_A not in srv.log() and TOKEN_B not in srv.log()


def test_broken_config_keeps_the_old_one(make_server):
    srv = start(make_server)
    # Does not parse at all.
    srv.write_config(raw="[server\nport = \n")
    hup(srv, r"reload refused, the running configuration stays: .*syntax "
             r"error")
    assert categories(srv, TOKEN_A) == ["members"]

    # Parses, but a module refuses its section: nothing of the file is
    # taken, not even the parts the core accepted (the token).
    srv.write_config({
        "auth": {"read_token": TOKEN_B},
        "weather": {"rule.broken": "hot | cold drinks | 15 | x"},
    })
    hup(srv, REFUSED)
    assert 'module "weather": refused its new [weather] section' in srv.log()
    assert categories(srv, TOKEN_A) == ["members"]
    assert srv.get("/promotions", headers=auth(TOKEN_B))[0] == 401

    # A value the core refuses: the same.
    srv.write_config({"weather": {"rule.broken": None},
                      "server": {"max_body": "12"}})
    hup(srv, REFUSED, 2)
    assert categories(srv, TOKEN_A) == ["members"]

    # Fixed: taken.
    srv.write_config({"server": {"max_body": None}})
    hup(srv, RELOADED)
    assert categories(srv, TOKEN_B) == ["members"]


def test_port_change_needs_a_restart(make_server):
    srv = start(make_server)
    moved = srv.db + ".moved"
    srv.write_config({"server": {"port": "1"},
                      "modules": {"load": "orders analytics"},
                      "storage": {"max_group": 7, "path": moved}})
    hup(srv, RELOADED)
    log = srv.log()
    for key in ("[server] port", "[modules] load", "[storage] path",
                "[storage] max_group"):
        assert "%s: changed; that needs a restart, the running value " \
            "stays" % key in log, key
    # What only a restart reads is not reported as unknown on a reload.
    assert "unknown key" not in log, log
    # Still on the port it was on, with its modules and its database.
    assert categories(srv, TOKEN_A) == ["members"]
    assert srv.get("/recommendations", headers=auth(TOKEN_A))[0] == 200
    assert srv.post("/orders", {"product_id": "p", "quantity": 1,
                                "price": 1})[0] == 201
    assert srv.sql("SELECT count(*) FROM orders") == [(1,)]
    assert not srv.pg_db and not os.path.exists(moved)


def test_websocket_client_stays_connected(make_server):
    srv = start(make_server)
    url = "%s?token=%s" % (srv.ws_url, TOKEN_A)

    async def go():
        async with websockets.connect(url, ping_interval=None,
                                      close_timeout=5) as ws:
            srv.write_config({"analytics": {"top": 2},
                              "server": {"ws_ping_interval_ms": 20000}})
            await asyncio.get_running_loop().run_in_executor(
                None, hup, srv, RELOADED)
            await ws.send(json.dumps({"type": "getAnalytics"}))
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if msg.get("type") == "updateAnalytics":
                    return msg
    msg = asyncio.run(asyncio.wait_for(go(), 30))
    assert "topProducts" in json.dumps(msg)


def test_sighup_during_start_up_is_taken_once_up(make_server):
    """A reload asked for while salesd starts (systemctl reload right after
    start: Type=simple counts it started at once) waits for the server to
    be up instead of killing it.  Its config is a FIFO here, so that the
    signals surely arrive while it is reading it."""
    srv = make_server(MODULES, start=False)
    with open(srv.config) as f:
        text = f.read()
    os.unlink(srv.config)
    os.mkfifo(srv.config)
    srv.logf = open(srv.log_path, "ab")     # closed by srv.stop()
    srv.proc = subprocess.Popen([SALESD, "-c", srv.config], stdout=srv.logf,
                                stderr=srv.logf, cwd=srv.tmpdir)
    # The FIFO opens for writing once salesd opened it to read.
    fd, deadline = None, time.time() + 30
    while fd is None and time.time() < deadline and srv.proc.poll() is None:
        try:
            fd = os.open(srv.config, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            time.sleep(0.01)
    assert fd is not None, srv.log()
    try:
        for _ in range(3):
            srv.proc.send_signal(signal.SIGHUP)
        # The reload will read a plain file; this start reads the FIFO.
        with open(srv.config + ".new", "w") as f:
            f.write(text)
        os.replace(srv.config + ".new", srv.config)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    while time.time() < deadline and srv.proc.poll() is None:
        m = re.search(r"listening on http://[^:]+:(\d+)", srv.log())
        if m:
            srv.port = int(m.group(1))
            break
        time.sleep(0.02)
    assert srv.proc.poll() is None, "exited %r:\n%s" % (
        srv.proc.returncode, srv.log())
    # The signals came as one, taken once the server was up.
    srv.wait_log(RELOADED)
    assert srv.get("/promotions")[0] == 200
    hup(srv, RELOADED, 2)
    assert srv.proc.poll() is None


def test_sigusr1_is_ignored(make_server):
    srv = start(make_server)
    srv.proc.send_signal(signal.SIGUSR1)
    # A request after the signal was taken: the process is still there.
    assert categories(srv, TOKEN_A) == ["members"]
    assert srv.proc.poll() is None


def test_reload_applies_keys_models_limits_and_interval(make_server):
    """What the issue lists as live, each seen in effect after the reload:
    upstream API keys and the AI model (the next call carries them), a
    limit (max_body) and the analytics broadcast interval."""
    from fakes import FakeUpstream, chat_body, openweather_body
    ow, ai = FakeUpstream(), FakeUpstream()
    try:
        ow.set(body=openweather_body(20, "Clear", "Paris"))
        ai.set(body=chat_body({"recommendations": [], "summary": "ok"}))
        srv = make_server(MODULES, {
            "analytics": {"broadcast_interval_ms": 3600000},
            "weather": {"api_key": "wk-one-0123456789", "city": "Paris",
                        "base_url": ow.url, "retries": 0},
            "ai_recommend": {"api_key": "ak-one-0123456789",
                             "model": "model-one", "base_url": ai.url},
        })
        # 2 KB of JSON, most of it white space.
        big = json.dumps({"product_id": "b", "quantity": 1,
                          "price": 1}) + " " * 2000

        async def go():
            async with websockets.connect(srv.ws_url, ping_interval=None,
                                          close_timeout=5) as ws:
                async def until(pred):
                    while True:
                        m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                        if pred(m):
                            return m
                loop = asyncio.get_running_loop()

                def post(body):
                    return srv.post("/orders", body)[0]
                # Its update waits for the hour since the one at start-up.
                assert await loop.run_in_executor(None, post, big) == 201
                await until(lambda m: m["type"] == "newOrder")
                srv.write_config({
                    "server": {"max_body": 1024},
                    "analytics": {"broadcast_interval_ms": 0},
                    "weather": {"api_key": "wk-two-0123456789"},
                    "ai_recommend": {"api_key": "ak-two-0123456789",
                                     "model": "model-two"},
                })
                await loop.run_in_executor(None, hup, srv, RELOADED)
                assert await loop.run_in_executor(None, post, big) == 413
                assert await loop.run_in_executor(
                    None, post, {"product_id": "s", "quantity": 1,
                                 "price": 1}) == 201
                # The pending update went at once, re-armed by the new
                # interval, and so does the next one.
                await until(lambda m: m["type"] == "updateAnalytics" and
                            m["data"]["totalOrders"] == 2)
        asyncio.run(asyncio.wait_for(go(), 60))

        assert srv.get("/promotions")[0] == 200
        assert ow.recorded()[-1].query["appid"] == "wk-two-0123456789"
        assert srv.get("/recommendations")[0] == 200
        last = ai.recorded()[-1]
        assert last.headers["authorization"] == "Bearer ak-two-0123456789"
        assert last.json()["model"] == "model-two"
        for key in ("wk-one", "wk-two", "ak-one", "ak-two"):
            assert key not in srv.log()
    finally:
        ow.stop()
        ai.stop()


def test_reload_applies_hosts_origins_and_header_limit(make_server):
    """The rest of README's live [server] keys, each seen in effect."""
    srv = make_server(["orders"])
    site = {"Host": "sales.example.com"}
    dash = {"Origin": "https://dash.example.com"}
    long_header = {"X-Pad": "p" * 3000}
    assert srv.get("/orders", headers=site)[0] == 421
    st, h, _ = srv.get("/orders", headers=dash)
    assert st == 200 and "access-control-allow-origin" not in h
    assert srv.get("/orders", headers=long_header)[0] == 200
    srv.write_config({"server": {"allowed_hosts": "sales.example.com",
                                 "cors_origins": "https://dash.example.com",
                                 "max_header": 2048}})
    hup(srv, r"reloaded \S+: 3 changes")
    assert srv.get("/orders", headers=site)[0] == 200
    st, h, _ = srv.get("/orders", headers=dash)
    assert st == 200 and h["access-control-allow-origin"] == \
        "https://dash.example.com"
    assert srv.get("/orders", headers=long_header)[0] == 431
