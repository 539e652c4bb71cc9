"""The command line and start-up: --version, --help, --check and the one
clear line that a bad module or config gets; /health and /metrics; the
clean exit on SIGTERM/SIGINT."""
import os
import re
import signal
import subprocess

from conftest import ROOT, SALESD, Server, project_version, run_check


def test_version_and_help():
    p = subprocess.run([SALESD, "--version"], capture_output=True, timeout=10)
    assert p.returncode == 0
    assert p.stdout.startswith(b"salesd ") and b"ABI 1." in p.stdout
    # One version everywhere: the project's, the binary's, the API's.
    version = project_version()
    assert p.stdout.split()[1].decode() == version, p.stdout
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        assert re.search(r"^  version: (\S+)$", f.read(),
                         re.M).group(1) == version
    p = subprocess.run([SALESD, "--help"], capture_output=True, timeout=10)
    assert p.returncode == 0 and b"--check" in p.stdout
    p = subprocess.run([SALESD, "--bogus"], capture_output=True, timeout=10)
    assert p.returncode == 2


def test_check_ok(tmp_path):
    rc, out = run_check(tmp_path, ["echo"])
    assert rc == 0, out
    assert "ok (1 modules)" in out


def test_check_missing_module(tmp_path):
    rc, out = run_check(tmp_path, ["echo", "nosuchmodule"])
    assert rc != 0
    assert 'module "nosuchmodule": cannot load' in out


def test_check_module_without_magic(tmp_path):
    rc, out = run_check(tmp_path, ["nomagic"])
    assert rc != 0
    assert 'module "nomagic": no magic block' in out


def test_check_abi_mismatch_and_failing_init(tmp_path):
    rc, out = run_check(tmp_path / "a", ["badabi"])
    assert rc != 0 and re.search(r'module "badabi": ABI mismatch \(server 1\.\d+, module 99\.0\)', out)
    rc, out = run_check(tmp_path / "b", ["failinit"])
    assert rc != 0 and 'module "failinit": init failed' in out


def test_check_bad_name_and_unknown_key(tmp_path):
    rc, out = run_check(tmp_path / "a", ["Echo-1"])
    assert rc != 0 and "invalid name" in out
    rc, out = run_check(tmp_path / "b", ["echo"], {"server": {"prot": "1"}})
    assert rc != 0 and 'unknown key "prot" in [server]' in out
    # Loaded by path: the check is on the file's base name.
    rc, out = run_check(tmp_path / "d", ["../elsewhere/Echo-1.so"])
    assert rc != 0 and 'module "Echo-1": invalid name' in out, out
    rc, out = run_check(tmp_path / "c", ["echo"], {"server": {"port": "99999"}})
    assert rc != 0 and "[server] port: 99999 is out of range" in out


def test_missing_config(tmp_path):
    p = subprocess.run([SALESD, "-c", str(tmp_path / "none.ini")],
                       capture_output=True, timeout=10)
    assert p.returncode == 1 and b"cannot open config" in p.stderr


def test_env_expansion_reaches_module(make_server, tmp_path):
    (tmp_path / "srv0").mkdir()
    (tmp_path / "srv0" / ".env").write_text("ECHO_GREETING=from dotenv\n")
    s = make_server(["echo"], config={"echo": {"greeting": "${ECHO_GREETING}"}})
    st, _, body = s.get("/echo")
    assert st == 200 and body["greeting"] == "from dotenv"


def test_health_and_metrics(make_server):
    s = make_server(["echo"])
    st, _, body = s.get("/health")
    assert st == 200
    assert body["status"] == "ok"
    assert body["version"] == project_version()
    assert body["modules"] == [{"name": "echo", "version": "1.0"}]
    assert body["storage"]["driver"] == "sqlite"
    st, h, text = s.get("/metrics")
    assert st == 200 and h["content-type"].startswith("text/plain")
    text = text.decode() if isinstance(text, bytes) else str(text)
    assert "salesd_http_requests_total" in text
    assert 'salesd_http_responses_total{class="2xx"} 1' in text
    assert "# TYPE salesd_websocket_clients gauge" in text


def test_sigint_exits_cleanly(make_server):
    s = make_server(["echo"])
    assert s.stop(signal.SIGINT) == 0
    assert "stopped" in s.log()
    assert "echo: finalised" in s.log()
