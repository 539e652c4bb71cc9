"""The SDK's rules enforced on modules: an init-only service called after
init is refused with one line naming the module and the service; a failed
init's registrations, timers included, are undone (tests/modules/latesync
and tests/modules/failtimer)."""
import subprocess

from conftest import SALESD, Server, run_check


def test_store_query_sync_outside_init_is_refused(make_server):
    srv = make_server(["latesync"])
    # In init it ran (SELECT 42); from a handler it is refused, each time
    # with one line, and the request is still answered.
    for n in (1, 2):
        st, _, body = srv.get("/latesync")
        assert st == 200
        assert body == {"init": 42, "late": "refused"}
        srv.wait_log(r"ERROR\s+latesync: store_query_sync outside "
                     r"sales_module_init is not allowed", count=n)
    lines = [l for l in srv.log().splitlines() if "store_query_sync" in l]
    assert len(lines) == 2, lines


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
