"""requires in the magic block: a module that needs another is refused,
with one line naming it and the fix, when that one is missing or listed
after it in [modules] load; loaded otherwise.  analytics needs orders."""
from conftest import run_check


def lines_with(out, word):
    return [l for l in out.splitlines() if word in l]


def test_missing_requirement_is_refused(tmp_path):
    rc, out = run_check(tmp_path, ["needsecho"])
    assert rc != 0, out
    bad = lines_with(out, 'requires "echo"')
    assert len(bad) == 1, out
    assert 'module "needsecho"' in bad[0] and "not loaded" in bad[0]
    assert 'add "echo" before "needsecho" to [modules] load' in bad[0]
    assert "echo is there" not in out		# its init never ran


def test_misordered_requirement_is_refused(tmp_path):
    rc, out = run_check(tmp_path, ["needsecho", "echo"])
    assert rc != 0, out
    bad = lines_with(out, 'requires "echo"')
    assert len(bad) == 1, out
    assert "lists after it" in bad[0]
    assert 'list "echo" before "needsecho"' in bad[0]


def test_requirement_met(tmp_path, make_server):
    rc, out = run_check(tmp_path, ["echo", "needsecho"])
    assert rc == 0 and "ok (2 modules)" in out, out
    srv = make_server(["echo", "needsecho"])
    srv.wait_log("echo is there")


def test_analytics_requires_orders(tmp_path):
    rc, out = run_check(tmp_path / "a", ["analytics"])
    assert rc != 0
    assert 'module "analytics": requires "orders", which is not loaded' \
        in out, out
    rc, out = run_check(tmp_path / "b", ["analytics", "orders"])
    assert rc != 0
    assert 'list "orders" before "analytics"' in out, out
    rc, out = run_check(tmp_path / "c", ["orders", "analytics", "weather",
                                         "ai_recommend"])
    assert rc == 0, out


def test_module_without_requirements_field_loads(tmp_path):
    # oldabi's magic block is as long as before requirements existed.
    rc, out = run_check(tmp_path, ["oldabi"])
    assert rc == 0, out
