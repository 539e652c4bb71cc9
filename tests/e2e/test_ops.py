"""GET /metrics as a Prometheus server reads it, and /health/live and
/health/ready as an orchestrator does."""
import json
import math
import os
import re

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
    for name, labels, _ in samples:
        fam = name
        if name not in types:
            fam = re.sub(r"_(bucket|sum|count)$", "", name)
            assert types.get(fam) == "histogram", "undeclared: " + name
    return types, samples


def histograms(types, samples):
    """{(family, labels without le): [(le, count)], ...} and the counts."""
    buckets, counts = {}, {}
    for name, labels, v in samples:
        if name.endswith("_bucket") and types.get(name[:-7]) == "histogram":
            key = (name[:-7], tuple(sorted((k, x) for k, x in labels.items()
                                           if k != "le")))
            buckets.setdefault(key, []).append((labels["le"], v))
        elif name.endswith("_count") and types.get(name[:-6]) == "histogram":
            counts[(name[:-6], tuple(sorted(labels.items())))] = v
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

    assert types["salesd_storage_commit_duration_seconds"] == "histogram"
    assert types["salesd_storage_commit_group_size"] == "histogram"
    assert types["salesd_upstream_request_duration_seconds"] == "histogram"
    commits = [v for n, l, v in samples
               if n == "salesd_storage_commit_group_size_sum"]
    assert commits and commits[0] >= 7    # every order, in some groups

    by = {n: v for n, l, v in samples if not l}
    assert by["process_start_time_seconds"] > 1.7e9
    assert by["process_resident_memory_bytes"] > 1e6
    assert by["process_open_fds"] >= 3
    assert "salesd_upstream_latency_seconds_total" in by
    assert "salesd_upstream_latency_ms_total" not in text
    up = [l for l in text.splitlines() if l.startswith("salesd_uptime_seconds ")]
    assert re.match(r"^salesd_uptime_seconds \d+\.\d{3}$", up[0]), up
    assert re.search(r'^salesd_build_info\{version="[^"]+",abi="\d+\.\d+"\} 1$',
                     text, re.M)


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
