"""examples/hello, the out-of-tree module, as its author would use it:
the SDK installed by `cmake --install` into a temporary prefix, the
module built from a copy of examples/hello by its own Makefile through
that prefix's pkg-config, then loaded by path and by name into the
installed salesd and driven over HTTP; its unit test (test_hello.c)
built against the installed test kit and run.  The commands, config and
answers are the ones examples/hello/README.md shows, and the README's
and docs' copies of hello.c and of those blocks are checked to be the
real ones, so that none of them can rot."""
import glob
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import BUILD, ROOT

EXAMPLE = os.path.join(ROOT, "examples", "hello")
DOCS = [os.path.join(ROOT, "README.md"), os.path.join(EXAMPLE, "README.md"),
        os.path.join(ROOT, "docs", "MODULES.md")]
# Stands for the salesd tree in the docs' commands and config.
DOC_PREFIX = "/opt/salesd"
DOC_TREE = "/path/to/salesd"


def marked_blocks(path):
    """[(kind, name, text)] of the fenced blocks that follow a
    `<!-- file: PATH -->` or `<!-- example: NAME -->` line."""
    with open(path) as f:
        text = f.read()
    return re.findall(r"^<!-- (file|example): (\S+) -->\n```\w*\n(.*?)^```$",
                      text, re.S | re.M)


def example(name):
    """The block `name` of examples/hello/README.md."""
    found = [t for k, n, t in marked_blocks(DOCS[1])
             if k == "example" and n == name]
    assert len(found) == 1, (name, found)
    return found[0]


def pc_env(prefix):
    """pkg-config sees the temporary prefix's SDK and no other."""
    return dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib",
                                                         "pkgconfig"),
                PKG_CONFIG_LIBDIR="/nonexistent")


def kit_env(prefix):
    """The prefix's SDK first, and the system's pkg-config files after it:
    the kit needs sqlite3 and inih, as the author's machine gives them."""
    return dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib",
                                                         "pkgconfig"))


@pytest.fixture(scope="module")
def built():
    """(prefix, tree): the README's build block, run with the build under
    test for `build` and a temporary prefix for /opt/salesd, in a tree
    holding a copy of examples/hello only."""
    top = tempfile.mkdtemp(prefix="salesd-hello-")
    prefix = os.path.join(top, "prefix")
    tree = os.path.join(top, "tree")
    shutil.copytree(EXAMPLE, os.path.join(tree, "examples", "hello"),
                    ignore=shutil.ignore_patterns("*.so", "*.o"))
    script = example("hello-build").replace(DOC_PREFIX, prefix)
    script = script.replace("cmake --install build ",
                            "cmake --install %s " % BUILD)
    assert BUILD in script and prefix in script, script
    p = subprocess.run(["bash", "-euc", script], cwd=tree, capture_output=True,
                       env=pc_env(prefix), timeout=300)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, out
    assert "-Wall -Wextra -Werror -fPIC" in out and "-shared" in out, out
    yield prefix, tree
    shutil.rmtree(top, ignore_errors=True)


class Salesd:
    """The installed salesd on a free port, with a config of its own."""

    def __init__(self, prefix, home, ini):
        self.home = home
        os.makedirs(home, exist_ok=True)
        self.config = os.path.join(home, "sales.ini")
        with open(self.config, "w") as f:
            f.write("[server]\nhost = 127.0.0.1\nport = 0\n"
                    "[storage]\npath = data/sales.db\n" + ini)
        self.binary = os.path.join(prefix, "bin", "salesd")
        self.log_path = os.path.join(home, "salesd.log")
        self.proc = None
        self.port = None

    def check(self):
        p = subprocess.run([self.binary, "-t", "-c", self.config], cwd="/",
                           capture_output=True, timeout=60)
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")

    def start(self, timeout=30):
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen([self.binary, "-c", self.config],
                                         stdout=logf, stderr=logf, cwd="/")
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(r"listening on http://[^:]+:(\d+)", self.log())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("salesd did not start:\n" + self.log())

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        log = self.log()
        for bad in ("ERROR: AddressSanitizer", "runtime error:",
                    "ERROR: LeakSanitizer"):
            assert bad not in log, log
        return rc

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def request(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, json.loads(data)

    def hello_when(self, orders, timeout=10):
        """GET /hello once it counts `orders` (the bus delivers after
        the commit, on the loop)."""
        deadline = time.time() + timeout
        while True:
            st, body = self.request("GET", "/hello")
            assert st == 200, body
            if body["orders"] >= orders or time.time() > deadline:
                return body
            time.sleep(0.02)


@pytest.fixture
def servers(tmp_path):
    started = []

    def factory(prefix, ini, sub="srv"):
        s = Salesd(prefix, str(tmp_path / sub), ini)
        started.append(s)
        return s

    yield factory
    for s in started:
        if s.proc is not None:
            assert s.stop() == 0, s.log()


def try_block():
    """(order body, documented /hello answer) of the README's curls."""
    text = example("hello-try")
    order = re.search(r"-d '([^']*)'", text).group(1)
    answer = re.search(r"curl \S+/hello\s+# (\{.*\})", text).group(1)
    return order, json.loads(answer)


def test_module_exports_only_its_entry_points(built):
    prefix, tree = built
    so = os.path.join(tree, "examples", "hello", "hello.so")
    p = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    names = {line.split()[-1] for line in p.stdout.decode().splitlines()}
    assert names == {"sales_module_magic", "sales_module_init"}, names
    # make install put it where pkg-config says salesd looks.
    p = subprocess.run(["pkg-config", "--variable=moduledir", "salesd"],
                       env=pc_env(prefix), capture_output=True, timeout=10)
    moddir = p.stdout.decode().strip()
    assert os.path.isfile(os.path.join(moddir, "hello.so")), moddir
    assert os.path.isfile(os.path.join(moddir, "orders.so")), moddir


def test_loaded_by_path_counts_orders(built, servers):
    prefix, tree = built
    ini = example("hello-config").replace(DOC_TREE, tree)
    assert os.path.join(tree, "examples", "hello", "hello.so") in ini, ini
    srv = servers(prefix, ini).start()
    assert srv.request("GET", "/hello") == (200, {"greeting": "hi",
                                                  "orders": 0, "quantity": 0})
    order, answer = try_block()
    st, body = srv.request("POST", "/orders", order)
    assert st == 201, body
    assert srv.hello_when(1) == answer
    st, body = srv.request("POST", "/orders", json.dumps(
        [json.loads(order), dict(json.loads(order), quantity=5)]))
    assert st == 201, body
    assert srv.hello_when(3) == dict(answer, orders=3, quantity=9)
    # Only GET is routed: the core answers the rest.
    assert srv.request("POST", "/hello", "{}")[0] == 405
    assert srv.stop() == 0


def test_installed_by_name_with_defaults(built, servers):
    prefix, _ = built
    srv = servers(prefix, "[modules]\nload = orders hello\n").start()
    order, _ = try_block()
    assert srv.request("POST", "/orders", order)[0] == 201
    assert srv.hello_when(1) == {"greeting": "hello", "orders": 1,
                                 "quantity": 2}


GREETING_WHY = "hello: [hello] greeting: must be 1 to 64 bytes"


@pytest.mark.parametrize("line,why", [
    ("greeting =", GREETING_WHY),
    ("greeting = " + "x" * 65, GREETING_WHY),
    ("greting = hi", 'unknown key "greting" in [hello]'),
])
def test_bad_config_stops_start_up(built, servers, line, why):
    prefix, _ = built
    srv = servers(prefix, "[modules]\nload = orders hello\n"
                  "[hello]\n%s\n" % line)
    rc, out = srv.check()
    assert rc != 0 and why in out, out


def test_build_without_the_sdk_says_so(tmp_path):
    shutil.copytree(EXAMPLE, str(tmp_path / "hello"),
                    ignore=shutil.ignore_patterns("*.so", "*.o"))
    env = dict(os.environ, PKG_CONFIG_PATH=str(tmp_path),
               PKG_CONFIG_LIBDIR=str(tmp_path))
    p = subprocess.run(["make", "-C", str(tmp_path / "hello")], env=env,
                       capture_output=True, timeout=60)
    assert p.returncode != 0
    assert b"salesd.pc not found" in p.stderr, p.stderr
    assert not os.path.exists(tmp_path / "hello" / "hello.so")


def test_unit_test_on_the_kit(built):
    """The README's `make check`: test_hello.c, built against the
    installed test kit through pkg-config salesd-testkit, loads hello.so
    on the kit's fake core and passes."""
    prefix, tree = built
    libs = subprocess.run(["pkg-config", "--libs", "salesd-testkit"],
                          env=kit_env(prefix), capture_output=True, timeout=10)
    assert libs.returncode == 0, libs.stderr
    assert "-lsales_testkit" in libs.stdout.decode(), libs.stdout
    assert glob.glob(os.path.join(prefix, "lib", "**", "libsales_testkit.a"),
                     recursive=True)
    assert os.path.isfile(os.path.join(prefix, "include", "sales",
                                       "testkit.h"))
    p = subprocess.run(["bash", "-euc", example("hello-check")], cwd=tree,
                       capture_output=True, env=kit_env(prefix), timeout=300)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0, out
    assert "test_hello: ok" in out, out
    for bad in ("ERROR: AddressSanitizer", "runtime error:",
                "ERROR: LeakSanitizer"):
        assert bad not in out, out


def test_unit_test_catches_a_broken_module(built, tmp_path):
    """The same test fails, saying what, on a hello that stops counting."""
    prefix, _ = built
    copy = tmp_path / "hello"
    shutil.copytree(EXAMPLE, str(copy),
                    ignore=shutil.ignore_patterns("*.so", "*.o", "test_hello"))
    src = (copy / "hello.c").read_text()
    assert "\torders++;\n" in src
    (copy / "hello.c").write_text(src.replace("\torders++;\n", "\n"))
    p = subprocess.run(["make", "-C", str(copy), "check"], env=kit_env(prefix),
                       capture_output=True, timeout=300)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode != 0, out
    assert "FAILED: one order of 2 counted" in out, out


def test_docs_show_the_real_code():
    """Every `<!-- file: PATH -->` block is that file, and every
    `<!-- example: NAME -->` block is the same wherever it appears."""
    files, examples = {}, {}
    for doc in DOCS:
        for kind, name, text in marked_blocks(doc):
            if kind == "file":
                with open(os.path.join(ROOT, name)) as f:
                    assert text == f.read(), "%s: %s differs" % (doc, name)
                files.setdefault(name, []).append(doc)
            else:
                examples.setdefault(name, set()).add(text)
    assert DOCS[0] in files.get("examples/hello/hello.c", []), files
    assert DOCS[2] in files.get("examples/hello/test_hello.c", []), files
    for name, texts in examples.items():
        assert len(texts) == 1, "%s differs between the docs" % name
    assert {"hello-build", "hello-config", "hello-try",
            "hello-check"} <= examples.keys()
