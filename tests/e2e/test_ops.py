"""GET /metrics as a Prometheus server reads it, and /health/live and
/health/ready as an orchestrator does."""
import json
import math
import os
import re

import pytest

from conftest import project_version
from fakes import fake_upstream  # noqa: F401 (fixture)
from test_storage_faults import wait_for

MODULES = ["orders", "analytics", "weather", "ai_recommend"]
OPS = "o" * 8 + "-ops-token-0123456789"

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
SAMPLE = re.compile(r"^(%s)(\{(?:%s(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))
HELP = re.compile(r"^# HELP (%s) .+$" % NAME)
TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$"
                  % NAME)


def parse(text):
    """Checks every line; returns ({family: type}, [(name, labels, value)])."""
    assert text.endswith("\n")
    helps, types, samples = set(), {}, []
    for line in text.splitlines():
        m = HELP.match(line)
        if m:
            assert m.group(1) not in helps, "HELP twice: " + line
            helps.add(m.group(1))
            continue
        m = TYPE.match(line)
        if m:
            assert m.group(1) not in types, "TYPE twice: " + line
            types[m.group(1)] = m.group(2)
            continue
        m = SAMPLE.match(line)
        assert m, "not exposition format: %r" % line
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                 m.group(2) or ""))
        value = float(m.group(3))
        assert not math.isnan(value), line
        samples.append((m.group(1), labels, value))
    assert helps == set(types), helps ^ set(types)
    for fam, t in types.items():
        assert t != "counter" or fam.endswith("_total"), fam
    for name, labels, _ in samples:
        fam = name
        if name not in types:
            fam = re.sub(r"_(bucket|sum|count)$", "", name)
            assert types.get(fam) == "histogram", "undeclared: " + name
    return types, samples


def histograms(types, samples):
    """{(family, labels without le): [(le, count)], ...} and the counts."""
    buckets, counts, sums = {}, {}, set()
    for name, labels, v in samples:
        if name.endswith("_bucket") and types.get(name[:-7]) == "histogram":
            key = (name[:-7], tuple(sorted((k, x) for k, x in labels.items()
                                           if k != "le")))
            buckets.setdefault(key, []).append((labels["le"], v))
        elif name.endswith("_count") and types.get(name[:-6]) == "histogram":
            counts[(name[:-6], tuple(sorted(labels.items())))] = v
        elif name.endswith("_sum") and types.get(name[:-4]) == "histogram":
            assert v >= 0, name
            sums.add((name[:-4], tuple(sorted(labels.items()))))
    assert set(buckets) == set(counts) == sums, (set(buckets) ^ set(counts),
                                                 set(counts) ^ sums)
    for key, bs in buckets.items():
        les = [float(le) for le, _ in bs]
        assert bs[-1][0] == "+Inf", key
        assert les == sorted(les), key
        vals = [v for _, v in bs]
        assert vals == sorted(vals), "not cumulative: %r" % (key,)
        assert counts[key] == vals[-1], key
    return buckets, counts


def test_metrics_exposition(make_server):
    srv = make_server(MODULES, {"auth": {"ops_token": OPS}})
    ops = {"Authorization": "Bearer " + OPS}
    for i in range(7):
        assert srv.post("/orders", {"product_id": str(i), "quantity": 1,
                                    "price": 1.5})[0] == 201
    for i in range(5):
        assert srv.get("/orders/%d" % (i + 1))[0] == 200
    assert srv.get("/orders/999")[0] == 404
    assert srv.get("/nowhere?x=1")[0] == 404
    st, h, body = srv.get("/metrics", headers=ops)
    assert st == 200 and h["content-type"].startswith("text/plain")
    text = body.decode()
    types, samples = parse(text)
    _, counts = histograms(types, samples)

    def count(route, method, status):
        return counts.get(("salesd_http_request_duration_seconds", tuple(sorted(
            {"route": route, "method": method, "status": status}.items()))))
    # By route pattern, never the raw path.
    assert count("/orders", "POST", "2xx") == 7
    assert count("/orders/{id}", "GET", "2xx") == 5
    assert count("/orders/{id}", "GET", "4xx") == 1
    assert count("other", "GET", "4xx") == 1
    assert "/orders/1" not in text and "/nowhere" not in text
    # Every request before this scrape, and nothing else: 7 + 5 + 1 + 1.
    assert sum(v for (fam, _), v in counts.items()
               if fam == "salesd_http_request_duration_seconds") == 14
    by = {n: v for n, l, v in samples if not l}
    assert by["salesd_http_requests_total"] == 15     # with the scrape
    assert sum(v for n, l, v in samples
               if n == "salesd_http_responses_total") == 14

    assert types["salesd_storage_commit_duration_seconds"] == "histogram"
    assert types["salesd_storage_commit_group_size"] == "histogram"
    assert types["salesd_upstream_duration_seconds"] == "histogram"
    assert types["salesd_websocket_messages_sent_total"] == "counter"
    assert types["salesd_websocket_messages_dropped_total"] == "counter"
    # One observation per commit group, of its units: every order.
    assert by["salesd_storage_commit_group_size_count"] == \
        by["salesd_storage_commit_duration_seconds_count"] == \
        by["salesd_storage_commits_total"] >= 1
    assert by["salesd_storage_commit_group_size_sum"] == \
        by["salesd_storage_units_total"] >= 7

    assert by["process_start_time_seconds"] > 1.7e9
    assert by["process_resident_memory_bytes"] > 1e6
    assert by["process_open_fds"] >= 3
    assert "salesd_upstream_latency_seconds_total" in by
    assert "salesd_upstream_latency_ms_total" not in text
    up = [l for l in text.splitlines() if l.startswith("salesd_uptime_seconds ")]
    assert re.match(r"^salesd_uptime_seconds \d+\.\d{3}$", up[0]), up
    assert re.search(r'^salesd_build_info\{version="%s",abi="\d+\.\d+"\} 1$'
                     % re.escape(project_version()), text, re.M)


def test_readme_metrics_table_is_the_exposition(make_server):
    """Every family README's Metrics table lists is exposed, with its type
    and labels, so the reference cannot drift from the server."""
    from conftest import ROOT
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    section = readme.split("\n### Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in section.splitlines() if r.startswith("| `")]
    assert len(rows) >= 15, rows
    srv = make_server(MODULES)
    # A request first, so that the HTTP histogram has a series.
    assert srv.get("/orders")[0] == 200
    st, _, body = srv.get("/metrics")
    types, samples = parse(body.decode())
    documented = set(re.findall(r"`((?:salesd|process)_\w+)`", section))
    # And the other way: the core's families are all in the table (the
    # modules' own, salesd_<module>_*, are theirs to document).
    for fam in types:
        assert fam in documented or any(
            fam.startswith("salesd_%s_" % m) for m in MODULES), fam
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if cells[0].startswith("module metrics"):
            continue
        names = re.findall(r"`(salesd_\w+|process_\w+)`", cells[0])
        kind = cells[1].split()[0]
        labels = set(re.findall(r"`(\w+)`",
                                re.sub(r"\([^)]*\)", "", cells[2])))
        assert names, row
        for name in names:
            assert types.get(name) == kind, (name, types.get(name), kind)
            # Each series has the documented labels (a family whose
            # series come with traffic may have none yet).
            for n, l, _ in samples:
                if n == name or (kind == "histogram" and
                                 n == name + "_count"):
                    assert set(l) == labels, (n, l, labels)


def test_upstream_duration_by_module_and_outcome(make_server, fake_upstream):
    from test_ai_recommend import config as ai_config
    from test_weather import weather_config
    from fakes import openweather_body
    ow, ai = fake_upstream(), fake_upstream()
    ow.set(body=openweather_body(31.5, "Clear", "Paris"))
    ai.set(status=500, body={"error": "down"})
    cfg = ai_config(ai, api_key="sk-secret-4242")
    cfg.update(weather_config(ow, api_key="w-secret-4242"))
    srv = make_server(["orders", "analytics", "weather", "ai_recommend"], cfg)
    assert srv.get("/promotions")[0] == 200
    assert srv.post("/orders", {"product_id": "101", "quantity": 2,
                                "price": 25.5})[0] == 201
    assert srv.get("/recommendations")[0] == 200
    wait_for(lambda: ow.count() >= 1 and ai.count() >= 1)

    def hist(module, outcome):
        return scrape(srv).get(("salesd_upstream_duration_seconds_count",
                                (("module", module), ("outcome", outcome))))
    wait_for(lambda: hist("ai_recommend", "http_error") == ai.count())
    assert hist("weather", "ok") == ow.count()
    assert hist("weather", "timeout") == 0        # every outcome is shown
    assert hist("unknown", "ok") is None          # every call attributed

    # A call past its timeout is one.
    ow.set(body=openweather_body(30), delay=5)
    srv2 = make_server(["weather"], weather_config(ow, timeout_ms=300))
    assert srv2.get("/promotions")[0] == 200
    wait_for(lambda: scrape(srv2).get(
        ("salesd_upstream_duration_seconds_count",
         (("module", "weather"), ("outcome", "timeout")))) == 1)

    # The keys went upstream, and nowhere else.
    assert ow.recorded()[0].query["appid"] == "w-secret-4242"
    text = srv.get("/metrics")[2].decode()
    assert "secret-4242" not in text and "secret-4242" not in srv.log()


def test_live_and_ready(make_server):
    srv = make_server(["orders"], {"auth": {"ops_token": OPS}})
    ops = {"Authorization": "Bearer " + OPS}
    # Ops paths, like /health: the ops token.
    assert srv.get("/health/live")[0] == 401
    assert srv.get("/health/ready")[0] == 401
    st, _, body = srv.get("/health/live", headers=ops)
    assert st == 200 and body == {"status": "live"}
    st, _, body = srv.get("/health/ready", headers=ops)
    assert st == 200 and body == {"status": "ready"}

    # Storage gone: not ready (503, with the fault), still live.
    for suffix in ("", "-wal", "-shm"):
        os.unlink(srv.db + suffix)
    wait_for(lambda: srv.get("/health/ready", headers=ops)[0] == 503)
    st, _, body = srv.get("/health/ready", headers=ops)
    assert body["status"] == "not_ready" and srv.db in body["fault"]
    assert srv.get("/health/live", headers=ops)[0] == 200
    assert srv.get("/health", headers=ops)[0] == 503


def test_slow_websocket_cuts_are_counted(make_server):
    from test_ws import Raw, post_broadcast
    srv = make_server(["echo"], {"server": {"ws_max_buffered": 65536}})
    slow = Raw(srv.port, rcvbuf=4096)
    body = json.dumps({"pad": "z" * 60000})
    for _ in range(300):
        if post_broadcast(srv, "big", body) == 0:
            break
    srv.wait_log("too slow")
    slow.close()
    st, _, text = srv.get("/metrics")
    assert st == 200
    assert re.search(r"^salesd_websocket_slow_cuts_total 1$", text.decode(),
                     re.M), text


def scrape(srv, headers=None):
    """The whole exposition, checked; {(name, ((label, value), ...)): v}."""
    st, _, body = srv.get("/metrics", headers=headers)
    assert st == 200
    types, samples = parse(body.decode())
    histograms(types, samples)
    return {(n, tuple(sorted(l.items()))): v for n, l, v in samples}


def ws_count(m, what, type_):
    return m.get(("salesd_websocket_messages_%s_total" % what,
                  (("type", type_),)), 0)


def test_websocket_messages_sent_by_type(make_server):
    from test_ws import Raw, frame, post_broadcast
    srv = make_server(["echo"])
    a, b = Raw(srv.port), Raw(srv.port)
    for _ in range(3):
        assert post_broadcast(srv, "t1", '{"x":1}') == 2
    for r in (a, b):
        assert [r.message()["type"] for _ in range(3)] == ["t1"] * 3
    a.send(frame(1, json.dumps({"type": "subscribe", "events": ["t2"]})))
    assert a.message()["type"] == "subscribed"
    post_broadcast(srv, "t1", "1")          # filtered out for a: not counted
    post_broadcast(srv, "t2", "2")
    assert a.message()["type"] == "t2"
    assert [b.message()["type"] for _ in range(2)] == ["t1", "t2"]
    a.send(frame(1, "not json"))
    assert a.message()["type"] == "error"
    b.send(frame(1, json.dumps({"type": "subscribe", "events": ["newOrder"],
                                "batchMs": 50})))
    assert b.message()["type"] == "subscribed"
    for i in range(3):
        post_broadcast(srv, "newOrder", json.dumps({"id": i}))
    orders, batches = [], 0
    while len(orders) < 3:
        m = b.message()
        assert m["type"] == "newOrders"
        orders += m["data"]
        batches += 1

    m = scrape(srv)
    assert ws_count(m, "sent", "t1") == 7
    assert ws_count(m, "sent", "t2") == 2
    assert ws_count(m, "sent", "subscribed") == 2
    assert ws_count(m, "sent", "error") == 1
    assert ws_count(m, "sent", "newOrders") == batches
    assert ws_count(m, "sent", "newOrder") == 0    # they went as newOrders
    assert not [k for k, v in m.items()
                if k[0] == "salesd_websocket_messages_dropped_total" and v]
    a.close()
    b.close()


@pytest.mark.parametrize("limit", ["ws_max_buffered", "max_output_memory"])
def test_websocket_messages_dropped_are_the_ones_never_sent(make_server, limit):
    from test_ws import Raw, post_broadcast
    from test_ws import drain_to_close
    server = {"ws_max_buffered": 65536} if limit == "ws_max_buffered" else {
        "ws_max_buffered": 8 * 1024 * 1024, "max_output_memory": 262144}
    srv = make_server(["echo"], {"server": server})
    slow = Raw(srv.port, rcvbuf=4096)
    body = json.dumps({"pad": "z" * 60000})
    posted = 0
    for _ in range(300):
        posted += 1
        if post_broadcast(srv, "big", body) == 0:
            break
    else:
        raise AssertionError("never closed")
    frames, code = drain_to_close(slow)
    assert code == 1008
    slow.close()
    # Every message addressed to the client was either written whole
    # (and read here) or dropped; the counts settle once it is freed.
    wait_for(lambda: sum(ws_count(scrape(srv), w, "big")
                         for w in ("sent", "dropped")) == posted)
    m = scrape(srv)
    assert ws_count(m, "sent", "big") == frames
    assert ws_count(m, "dropped", "big") == posted - frames >= 1
    cut = ("salesd_websocket_slow_cuts_total" if limit == "ws_max_buffered"
           else "salesd_output_memory_cuts_total")
    assert m[(cut, ())] == 1


def test_root_owned_database_is_a_storage_fault_until_fixed():
    """The issue's case: the database made by root (a --check or a first
    start as root), the service then run as its own user.  Writes are 503,
    /health and /health/ready say so, and all heals once it is chowned."""
    import shutil
    from conftest import Server
    from test_install import public_dir
    if os.geteuid() != 0:
        pytest.skip("needs root to make a root-owned database")
    import pwd
    pw = pwd.getpwnam("nobody")
    d = public_dir()
    srv = Server(d, ["orders"])
    try:
        srv.start()
        assert srv.post("/orders", {"product_id": "a", "quantity": 1,
                                    "price": 1})[0] == 201
        assert srv.stop() == 0
        os.chown(d, pw.pw_uid, pw.pw_gid)       # the directory is its own
        assert os.stat(srv.db).st_uid == 0

        def drop():
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        srv.preexec = drop
        srv.start()
        st, _, body = srv.post("/orders", {"product_id": "b", "quantity": 1,
                                           "price": 1})
        assert st == 503 and body["error"]["code"] == "storage_error", body
        st, _, body = srv.get("/health")
        assert st == 503 and body["status"] == "degraded"
        assert not body["storage"]["writable"]
        assert "writable" in body["storage"]["fault"], body
        assert srv.get("/health/ready")[0] == 503
        assert srv.get("/health/live")[0] == 200
        assert srv.get("/orders")[0] == 200      # reads still served

        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(srv.db + suffix):
                os.chown(srv.db + suffix, pw.pw_uid, pw.pw_gid)
        wait_for(lambda: srv.get("/health/ready")[0] == 200)
        assert srv.post("/orders", {"product_id": "c", "quantity": 1,
                                    "price": 1})[0] == 201
        assert srv.get("/health")[2]["status"] == "ok"
        log = srv.log()
        assert len(re.findall(r"storage fault: .* is read-only for this user",
                              log)) == 1, log
        assert "storage recovered after" in log
        assert srv.stop() == 0
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()
        shutil.rmtree(d, ignore_errors=True)
