"""The SDK's rules enforced on modules: an init-only service called after
init is refused with one line naming the module and the service; a failed
init's registrations, timers included, are undone (tests/modules/latesync
and tests/modules/failtimer)."""
import re
import subprocess

from conftest import SALESD, Server, run_check


INIT_ONLY = ["store_query_sync", "http_route", "ws_on_message", "ws_event",
             "bus_subscribe", "metric_counter", "metric_gauge"]


def test_init_only_services_are_refused_after_init(make_server):
    srv = make_server(["latesync"])
    # In init store_query_sync ran (SELECT 42); from a handler every
    # init-only service is refused, each time with one line naming the
    # module and the service, and the request is still answered.
    for n in (1, 2):
        st, _, body = srv.get("/latesync")
        assert st == 200
        assert body["init"] == 42 and body["late"] == "refused"
        assert body["others"] == {k: -1 for k in INIT_ONLY[1:]}
        for name in INIT_ONLY:
            srv.wait_log(r"ERROR\s+latesync: %s outside sales_module_init "
                         r"is not allowed" % name, count=n)
    for name in INIT_ONLY:
        lines = [l for l in srv.log().splitlines()
                 if re.search(r"\b%s\b" % name, l)]
        assert len(lines) == 2, lines
    # Nothing was registered late.
    assert srv.get("/late")[0] == 404
    st, _, metrics = srv.request("GET", "/metrics")
    assert b"salesd_late" not in metrics


def test_failed_init_undoes_its_timers(tmp_path):
    rc, out = run_check(tmp_path / "a", ["failtimer"])
    assert rc != 0 and 'module "failtimer": init failed' in out
    # A real start stops the same way; its 0 ms and 1 ms timers never
    # fire, and nothing it registered leaks (the ASan build checks).
    s = Server(tmp_path / "b", ["echo", "failtimer"])
    p = subprocess.run([SALESD, "-c", s.config], capture_output=True,
                       timeout=60, cwd=s.tmpdir)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode != 0, out
    assert 'module "failtimer": init failed' in out
    assert "failing on purpose" in out
    assert "timer fired" not in out
    assert "listening on" not in out
    assert "LeakSanitizer" not in out and "AddressSanitizer" not in out, out
