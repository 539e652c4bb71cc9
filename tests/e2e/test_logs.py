"""Access log ([server] access_log), JSON lines ([server] log_format), and
secrets that never reach a log line, a response or a metric."""
import json
import signal

import websockets  # noqa: F401  (the harness needs it anyway)

MODULES = ["orders", "analytics", "weather", "ai_recommend"]
READ = "r" * 8 + "-read-secret-0123456789"
WRITE = "w" * 8 + "-write-secret-0123456789"
OPS = "o" * 8 + "-ops-secret-0123456789"
WEATHER_KEY = "weather-api-secret-0123456789"
AI_KEY = "sk-ai-api-secret-0123456789"
SECRETS = (READ, WRITE, OPS, WEATHER_KEY, AI_KEY)


def auth(token):
    return {"Authorization": "Bearer " + token}


def access_lines(srv):
    return [l for l in srv.log().splitlines() if " access: " in l
            or '"who":"access"' in l]


def test_access_log_is_off_by_default(make_server):
    srv = make_server(["orders"])
    assert srv.get("/orders")[0] == 200
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"reloaded \S+: 0 changes")
    assert access_lines(srv) == []


def test_access_log_text(make_server):
    srv = make_server(["orders"], {"server": {"access_log": "on"}})
    assert srv.get("/orders?limit=2&token=hidden-value")[0] == 200
    assert srv.get("/nowhere")[0] == 404
    srv.wait_log(r"access: ", 2)
    a, b = access_lines(srv)[:2]
    assert '127.0.0.1 "GET /orders" 200 ' in a and a.endswith("ms"), a
    assert '127.0.0.1 "GET /nowhere" 404 ' in b, b
    assert "hidden-value" not in srv.log() and "limit=" not in srv.log()


def test_json_lines_and_reload_turns_access_log_on(make_server):
    srv = make_server(["orders"], {"server": {"log_format": "json"}})
    assert srv.get("/orders")[0] == 200
    srv.write_config({"server": {"access_log": "on"}})
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"reloaded \S+: 1 change")
    assert srv.post("/orders", {"product_id": "p\"1", "quantity": 1,
                                "price": 2.5})[0] == 201
    srv.wait_log(r'"who":"access"')
    lines = srv.log().splitlines()
    # The line that says where it listens is matched by the harness: it
    # must still say so inside the JSON.
    assert any("listening on http://" in l for l in lines)
    for line in lines:
        obj = json.loads(line)
        assert set(("time", "level", "who", "msg")) <= set(obj), line
        assert obj["time"].endswith("Z") and obj["level"] in (
            "error", "warn", "info", "debug")
    acc = [json.loads(l) for l in lines if '"who":"access"' in l]
    assert len(acc) == 1
    a = acc[0]
    assert (a["method"], a["path"], a["status"], a["remote"]) == (
        "POST", "/orders", 201, "127.0.0.1")
    assert a["bytes"] > 0 and a["duration_ms"] >= 0


def test_secrets_appear_nowhere(make_server):
    srv = make_server(MODULES, {
        "server": {"access_log": "on", "log_level": "debug"},
        "auth": {"read_token": READ, "write_token": WRITE, "ops_token": OPS},
        # Dead upstreams on loopback: the calls fail at once, and their
        # failures are logged.
        "weather": {"api_key": WEATHER_KEY, "base_url": "http://127.0.0.1:9",
                    "retries": 0},
        "ai_recommend": {"api_key": AI_KEY, "base_url": "http://127.0.0.1:9"},
    })
    seen = []
    for path, token in (("/orders", READ), ("/promotions", READ),
                        ("/recommendations", READ), ("/analytics", WRITE),
                        ("/metrics", OPS), ("/health", OPS),
                        ("/orders?token=" + READ, None),
                        ("/orders", "wrong-" + READ)):
        st, h, body = srv.get(path, headers=auth(token) if token else {})
        seen.append(json.dumps(body) if not isinstance(body, bytes)
                    else body.decode())
        seen.append(json.dumps(h))
    st, h, body = srv.post("/orders", {"product_id": "1", "quantity": 1,
                                       "price": 1}, headers=auth(WRITE))
    assert st == 201
    seen.append(json.dumps(body))
    st, _, metrics = srv.get("/metrics", headers=auth(OPS))
    assert st == 200
    seen.append(metrics.decode())
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"reloaded \S+: 0 changes")
    srv.wait_log(r"access: .*GET /recommendations")
    text = srv.log() + "\n".join(seen)
    for secret in SECRETS:
        assert secret not in text, secret


def test_reload_switches_log_format(make_server):
    srv = make_server(["orders"], {"server": {"access_log": "on"}})
    assert srv.get("/orders")[0] == 200
    srv.wait_log(r" access: ")
    srv.write_config({"server": {"log_format": "json"}})
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r'"msg":"reloaded \S+: 1 change"')
    assert srv.get("/orders")[0] == 200
    srv.wait_log(r'"who":"access"')
    lines = srv.log().splitlines()
    first = next(i for i, l in enumerate(lines) if '"msg":"reloaded' in l)
    assert not lines[0].startswith("{")
    for line in lines[first:]:
        assert json.loads(line)["time"].endswith("Z"), line
    # And back.
    srv.write_config({"server": {"log_format": "text"}})
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"INFO  core: reloaded \S+: 1 change")


def test_access_log_is_not_filtered_by_log_level(make_server):
    """At log_level = error salesd says nothing, not even where it
    listens (so the port is given here), but still logs each request."""
    import subprocess
    import time
    from conftest import SALESD
    from test_install import free_port
    port = free_port()
    srv = make_server(["orders"], {"server": {
        "access_log": "on", "log_level": "error", "port": port}},
        start=False)
    srv.logf = open(srv.log_path, "ab")     # closed by srv.stop()
    srv.proc = subprocess.Popen([SALESD, "-c", srv.config], stdout=srv.logf,
                                stderr=srv.logf, cwd=srv.tmpdir)
    srv.port = port
    deadline = time.time() + 20
    while True:
        assert srv.proc.poll() is None, srv.log()
        try:
            st = srv.get("/orders")[0]
            break
        except OSError:
            assert time.time() < deadline, srv.log()
            time.sleep(0.05)
    assert st == 200
    srv.wait_log(r'access: 127\.0\.0\.1 "GET /orders" 200 ')
    # Nothing else: the start-up's info lines were filtered.
    assert all(" access: " in l for l in srv.log().splitlines()), srv.log()


def test_reload_rereads_the_env_file(make_server, tmp_path):
    """${NAME} from the .env beside sales.ini is read again on SIGHUP."""
    d = tmp_path / "envsrv"
    d.mkdir()
    (d / ".env").write_text("SALESD_TEST_ACCESS=off\n")
    srv = make_server(["orders"], {"server": {
        "access_log": "${SALESD_TEST_ACCESS}"}}, subdir="envsrv")
    assert srv.get("/orders")[0] == 200
    (d / ".env").write_text("SALESD_TEST_ACCESS=on\n")
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"reloaded \S+: 1 change")
    assert access_lines(srv) == []
    assert srv.get("/orders")[0] == 200
    srv.wait_log(r'access: 127\.0\.0\.1 "GET /orders" 200 ')
    assert len(access_lines(srv)) == 1
