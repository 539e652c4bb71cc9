"""The Debian package: built from the build under test with
examples/packaging/deb/build (what `make deb` runs on a /usr build), its contents
and control data, its systemd unit verified by systemd-analyze, and,
where this machine allows (root, no salesd installed, dpkg free), an
install with dpkg -i, a run as the package's user, and a purge that the
teardown completes, leaving the machine as it was."""
import glob
import grp
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import BUILD, ROOT

UNIT = "usr/lib/systemd/system/salesd.service"
ORDER = {"product_id": "101", "quantity": 2, "price": 25.50,
         "date": "2025-04-22T10:00:00Z"}


@pytest.fixture(scope="module")
def deb():
    out = tempfile.mkdtemp(prefix="salesd-deb-")
    p = subprocess.run([os.path.join(ROOT, "examples", "packaging", "deb", "build"), BUILD, out],
                       capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    path = p.stdout.decode().strip().splitlines()[-1]
    assert os.path.isfile(path)
    root = os.path.join(out, "root")
    subprocess.run(["dpkg-deb", "-x", path, root], check=True, timeout=60)
    yield path, root
    shutil.rmtree(out, ignore_errors=True)


def test_contents(deb):
    path, root = deb
    names = subprocess.run(["dpkg-deb", "-c", path], capture_output=True,
                           check=True).stdout.decode()
    files = set(re.findall(r"\./(\S+)$", names, re.M))
    for f in ("usr/bin/salesd", UNIT, "etc/salesd/sales.ini",
              "usr/include/sales/module.h", "usr/share/salesd/sql/orders/001_orders.sql"):
        assert f in files, f
    for m in ("orders", "analytics", "weather", "ai_recommend", "dashboard"):
        assert any(re.fullmatch(r"usr/lib/(.+/)?salesd/modules/%s\.so" % m, f)
                   for f in files), m
    assert any(re.fullmatch(r"usr/lib/(.+/)?pkgconfig/salesd\.pc", f) for f in files)

    info = subprocess.run(["dpkg-deb", "-I", path], capture_output=True,
                          check=True).stdout.decode()
    assert "Package: salesd" in info
    assert re.search(r"Depends: .*adduser", info)
    assert "libsqlite3-0" in info
    for script in ("postinst", "prerm", "postrm", "conffiles"):
        assert script in info
    ctl = tempfile.mkdtemp()
    try:
        subprocess.run(["dpkg-deb", "-e", path, ctl], check=True)
        with open(os.path.join(ctl, "conffiles")) as f:
            assert f.read().split() == ["/etc/salesd/sales.ini"]
    finally:
        shutil.rmtree(ctl)
    with open(os.path.join(root, "etc", "salesd", "sales.ini")) as f:
        ini = f.read()
    assert re.search(r"^path = /var/lib/salesd/sales\.db$", ini, re.M)


def test_unit(deb):
    _, root = deb
    with open(os.path.join(root, UNIT)) as f:
        unit = f.read()
    for line in ("User=salesd", "StateDirectory=salesd", "ProtectSystem=strict",
                 "ProtectHome=yes", "NoNewPrivileges=yes", "PrivateTmp=yes",
                 "ExecReload=/bin/kill -HUP $MAINPID",
                 "ExecStart=/usr/bin/salesd -c /etc/salesd/sales.ini"):
        assert line in unit.splitlines(), line
    nofile = int(re.search(r"^LimitNOFILE=(\d+)$", unit, re.M).group(1))
    assert nofile > 10000        # [server] max_connections' default
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (make deps installs systemd)")
    # verify checks that ExecStart's binary exists here: the package is
    # not installed, so point the unit at the extracted one.
    copy = os.path.join(root, "salesd.service")
    with open(copy, "w") as f:
        f.write(unit.replace("/usr/bin/salesd", os.path.join(root, "usr/bin/salesd")))
    p = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True,
                       timeout=60)
    assert p.returncode == 0 and p.stderr == b"", p.stderr.decode()
    # Its own exposure score: "OK" is below 2.0 out of 10.
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                        "--threshold=20", copy], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stdout.decode()[-2000:]


def machine_allows_install():
    if os.geteuid() != 0:
        return "not root"
    if subprocess.run(["dpkg-query", "-W", "salesd"], capture_output=True).returncode == 0:
        return "a salesd package is installed already"
    for path in ("/usr/bin/salesd", "/etc/salesd", "/var/lib/salesd"):
        if os.path.exists(path):
            return "%s exists" % path
    try:
        pwd.getpwnam("salesd")
        return "a user salesd exists already"
    except KeyError:
        pass
    return None


@pytest.fixture
def installed(deb):
    why = machine_allows_install()
    if why:
        pytest.skip("not installing the package: " + why)
    p = subprocess.run(["dpkg", "-i", deb[0]], capture_output=True, timeout=120)
    if p.returncode != 0 and b"lock" in p.stderr:
        pytest.skip("dpkg is busy: " + p.stderr.decode())
    try:
        assert p.returncode == 0, p.stderr.decode()
        yield
    finally:
        subprocess.run(["dpkg", "--purge", "salesd"], capture_output=True,
                       timeout=120)
        # The package keeps its user and database on purge, by design;
        # this test made them, so it removes them.
        subprocess.run(["userdel", "salesd"], capture_output=True)
        try:
            grp.getgrnam("salesd")
            subprocess.run(["groupdel", "salesd"], capture_output=True)
        except KeyError:
            pass
        shutil.rmtree("/var/lib/salesd", ignore_errors=True)
        shutil.rmtree("/etc/salesd", ignore_errors=True)


def test_dpkg_install_run_purge(installed):
    pw = pwd.getpwnam("salesd")
    assert pw.pw_uid < 1000 and pw.pw_shell.endswith("nologin")
    st = os.stat("/etc/salesd/sales.ini")
    assert st.st_mode & 0o777 == 0o640 and st.st_gid == pw.pw_gid
    # What StateDirectory=salesd does before each start, without systemd.
    os.makedirs("/var/lib/salesd", mode=0o750)
    os.chown("/var/lib/salesd", pw.pw_uid, pw.pw_gid)
    # setpriv execs salesd itself (runuser would stay as its parent).
    run = ["setpriv", "--reuid", "salesd", "--regid", "salesd", "--init-groups",
           "--", "/usr/bin/salesd", "-c", "/etc/salesd/sales.ini"]
    p = subprocess.run(run + ["-t"], capture_output=True, timeout=60, cwd="/")
    assert p.returncode == 0, p.stderr.decode()
    assert b'"/var/lib/salesd/sales.db" does not exist yet' in p.stderr
    assert not os.path.exists("/var/lib/salesd/sales.db")

    log = tempfile.NamedTemporaryFile(prefix="salesd-pkg-", delete=False)
    proc = subprocess.Popen(run + ["-p", "0"], stdout=log, stderr=log, cwd="/")
    try:
        port, deadline = None, time.time() + 20
        while port is None and time.time() < deadline and proc.poll() is None:
            with open(log.name, "rb") as f:
                m = re.search(rb"listening on http://[^:]+:(\d+)", f.read())
            port = int(m.group(1)) if m else None
            time.sleep(0.02)
        assert port, open(log.name).read()
        req = urllib.request.Request("http://127.0.0.1:%d/orders" % port,
                                     data=json.dumps(ORDER).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 201
        # The packaged sales.ini loads the dashboard.
        with urllib.request.urlopen("http://127.0.0.1:%d/" % port,
                                    timeout=10) as r:
            assert r.status == 200 and b"<html" in r.read()
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
        os.unlink(log.name)
    assert os.stat("/var/lib/salesd/sales.db").st_uid == pw.pw_uid
    p = subprocess.run(["dpkg", "--purge", "salesd"], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    assert not os.path.exists("/usr/bin/salesd")
    assert not os.path.exists("/etc/salesd/sales.ini")
    # The sales survive a purge.
    assert os.path.exists("/var/lib/salesd/sales.db")
    assert not glob.glob("/usr/lib/salesd/modules/*.so")
    assert not glob.glob("/usr/lib/*/salesd/modules/*.so")


def test_make_deb_is_this_build():
    """`make deb`, as README says: a /usr build in build-deb, then the
    script the fixture above runs."""
    p = subprocess.run(["make", "-n", "-C", ROOT, "deb"], capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    lines = [" ".join(l.split()) for l in
             p.stdout.decode().replace("\\\n", " ").splitlines()]
    assert any(l.startswith("cmake -S . -B build-deb ") and
               "-DCMAKE_INSTALL_PREFIX=/usr" in l for l in lines), lines
    assert "examples/packaging/deb/build build-deb" in lines, lines
