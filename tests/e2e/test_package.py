"""The Debian packages: built from the build under test with
examples/packaging/deb/build (what `make deb` runs on a /usr build):
salesd, the server with no libpq anywhere in it, and salesd-postgres,
the PostgreSQL driver and its dialect's migrations; their contents and
control data, salesd's systemd unit verified by systemd-analyze, and,
where this machine allows (root, no salesd installed, dpkg free), an
install with dpkg -i of salesd alone (run as the package's user on
SQLite, libpq never mapped), then of salesd-postgres (the installed
server finds the driver and its migrations in their default places and
runs on a throwaway PostgreSQL), and purges that the teardown completes,
leaving the machine as it was."""
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

from conftest import BUILD, ROOT, project_version

UNIT = "usr/lib/systemd/system/salesd.service"
ORDER = {"product_id": "101", "quantity": 2, "price": 25.50,
         "date": "2025-04-22T10:00:00Z"}
PACKAGES = ("salesd", "salesd-postgres")
# The migrations in PostgreSQL's dialect, as the source tree has them.
PG_SQL = sorted(os.path.relpath(f, os.path.join(ROOT, "sql")) for f in
                glob.glob(os.path.join(ROOT, "sql", "*", "postgres", "*.sql")))


@pytest.fixture(scope="module")
def debs():
    """{package: (its .deb, the tree it extracts to)}."""
    out = tempfile.mkdtemp(prefix="salesd-deb-")
    p = subprocess.run([os.path.join(ROOT, "examples", "packaging", "deb",
                                     "build"), BUILD, out],
                       capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    # The two paths it prints, and nothing else in out.
    paths = p.stdout.decode().split()
    assert sorted(os.listdir(out)) == sorted(os.path.basename(d)
                                             for d in paths), paths
    found = {}
    for path in paths:
        name = field(path, "Package")
        assert os.path.basename(path).startswith(name + "_"), path
        root = os.path.join(out, "root-" + name)
        subprocess.run(["dpkg-deb", "-x", path, root], check=True, timeout=60)
        found[name] = (path, root)
    assert sorted(found) == sorted(PACKAGES), paths
    yield found
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def deb(debs):
    return debs["salesd"]


def field(path, name):
    p = subprocess.run(["dpkg-deb", "-f", path, name], capture_output=True,
                       check=True, timeout=60)
    return p.stdout.decode().strip()


def relations(path, name):
    """The package names of a relationship field, versions dropped."""
    return [re.split(r"[ (]", r.strip())[0]
            for r in field(path, name).split(",") if r.strip()]


def files_of(path):
    names = subprocess.run(["dpkg-deb", "-c", path], capture_output=True,
                           check=True).stdout.decode()
    return set(re.findall(r"\./(\S*[^/\s])$", names, re.M))


def needed(root):
    """{file: the sonames it is linked against} of the tree's ELF files."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            f = os.path.join(dirpath, n)
            with open(f, "rb") as fh:
                if fh.read(4) != b"\x7fELF":
                    continue
            p = subprocess.run(["objdump", "-p", f], capture_output=True,
                               check=True, timeout=60).stdout.decode()
            out[os.path.relpath(f, root)] = re.findall(r"^\s*NEEDED\s+(\S+)",
                                                       p, re.M)
    return out


def test_contents(deb):
    path, root = deb
    files = files_of(path)
    for f in ("usr/bin/salesd", UNIT, "etc/salesd/sales.ini",
              "usr/include/sales/module.h", "usr/share/salesd/sql/orders/001_orders.sql"):
        assert f in files, f
    for m in ("orders", "analytics", "weather", "ai_recommend", "dashboard"):
        assert any(re.fullmatch(r"usr/lib/(.+/)?salesd/modules/%s\.so" % m, f)
                   for f in files), m
    assert any(re.fullmatch(r"usr/lib/(.+/)?pkgconfig/salesd\.pc", f) for f in files)
    # Nothing of PostgreSQL's: the driver and its dialect are the other
    # package's.
    assert not [f for f in files if "/drivers/" in f or "/postgres/" in f]

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


def test_server_package_has_no_libpq(deb):
    path, root = deb
    depends = relations(path, "Depends")
    assert not [d for d in depends if "libpq" in d], depends
    assert "libsqlite3-0" in depends and "adduser" in depends
    linked = needed(root)
    assert "usr/bin/salesd" in linked and len(linked) >= 6, linked
    assert not {f: n for f, n in linked.items()
                if any(s.startswith("libpq") for s in n)}
    # Suggested, not depended on: the driver, and for module authors
    # what salesd-testkit.pc requires (the server needs none of it).
    assert "salesd-postgres" in relations(path, "Suggests")
    assert not [d for d in depends if d.endswith("-dev")], depends


def test_sdk_suggests_what_its_pc_files_require(deb):
    path, root = deb
    suggests = relations(path, "Suggests")
    for name in ("libsqlite3-dev", "libinih-dev", "pkg-config"):
        assert name in suggests, suggests
    # Every .pc the package's own require is owned by a suggested
    # package, so that "apt install salesd <suggests>" lets
    # pkg-config --libs salesd-testkit succeed.
    pcs = glob.glob(os.path.join(root, "usr", "lib", "**", "*.pc"),
                    recursive=True)
    own = {os.path.basename(f)[:-3] for f in pcs}
    assert own == {"salesd", "salesd-testkit"}, pcs
    required = set()
    for f in pcs:
        with open(f) as fh:
            for line in fh:
                if re.match(r"Requires(\.private)?:", line):
                    required |= {w for w in re.split(r"[\s,]+",
                                                     line.split(":", 1)[1])
                                 if re.match(r"[A-Za-z]", w)}
    assert {"sqlite3", "inih"} <= required - own, required
    for name in required - own:
        pc = subprocess.run(["pkg-config", "--path", name],
                            capture_output=True, check=True,
                            timeout=10).stdout.decode().strip()
        owner = subprocess.run(["dpkg", "-S", pc], capture_output=True,
                               check=True, timeout=30).stdout.decode()
        assert owner.split(":")[0] in suggests, (name, owner, suggests)


def test_postgres_package(debs):
    path, root = debs["salesd-postgres"]
    server_path, _ = debs["salesd"]
    files = files_of(path)
    drivers = [f for f in files if f.endswith(".so")]
    assert len(drivers) == 1, files
    driver = drivers[0]
    assert files == {driver} | {"usr/share/salesd/sql/" + f for f in PG_SQL}
    assert PG_SQL, "sql/*/postgres/*.sql"
    # Where the server's default driver_dir is: drivers/ beside the
    # modules/ of the same libdir.
    modules = [f for f in files_of(server_path)
               if f.endswith("/modules/orders.so")]
    assert driver == os.path.join(os.path.dirname(os.path.dirname(
        modules[0])), "drivers", "postgres.so"), (driver, modules)
    assert not files & files_of(server_path)
    assert any(n.startswith("libpq.so") for n in needed(root)[driver])

    assert field(path, "Package") == "salesd-postgres"
    version = field(server_path, "Version")
    assert field(path, "Version") == version
    assert field(path, "Architecture") == field(server_path, "Architecture")
    depends = [d.strip() for d in field(path, "Depends").split(",")]
    assert "salesd (= %s)" % version in depends, depends
    assert "libpq5" in relations(path, "Depends"), depends
    # The server's own libraries come with salesd.
    assert "libsqlite3-0" not in relations(path, "Depends"), depends
    # A running server is restarted onto the driver just installed (on
    # an upgrade: of the same version as the server), if systemd runs it.
    ctl = tempfile.mkdtemp()
    try:
        subprocess.run(["dpkg-deb", "-e", path, ctl], check=True)
        assert sorted(os.listdir(ctl)) == ["control", "postinst"]
        with open(os.path.join(ctl, "postinst")) as f:
            assert "systemctl try-restart salesd.service" in f.read()
    finally:
        shutil.rmtree(ctl)


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
    for name in PACKAGES:
        if subprocess.run(["dpkg-query", "-W", name],
                          capture_output=True).returncode == 0:
            return "a %s package is installed already" % name
    for path in ("/usr/bin/salesd", "/etc/salesd", "/var/lib/salesd",
                 "/usr/share/salesd"):
        if os.path.exists(path):
            return "%s exists" % path
    try:
        pwd.getpwnam("salesd")
        return "a user salesd exists already"
    except KeyError:
        pass
    return None


def dpkg(*args):
    p = subprocess.run(["dpkg"] + list(args), capture_output=True, timeout=120)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


@pytest.fixture(scope="module")
def installed(debs):
    """salesd alone, installed with dpkg -i: {package: (deb, tree)}."""
    why = machine_allows_install()
    if why:
        pytest.skip("not installing the package: " + why)
    rc, out = dpkg("-i", debs["salesd"][0])
    if rc != 0 and "lock" in out:
        pytest.skip("dpkg is busy: " + out)
    try:
        assert rc == 0, out
        yield debs
    finally:
        dpkg("--purge", "salesd-postgres", "salesd")
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


# setpriv execs salesd itself (runuser would stay as its parent), so the
# pid is the server's.
AS_SALESD = ["setpriv", "--reuid", "salesd", "--regid", "salesd",
             "--init-groups", "--", "/usr/bin/salesd"]


def state_dir():
    """What StateDirectory=salesd does before each start, without systemd."""
    pw = pwd.getpwnam("salesd")
    os.makedirs("/var/lib/salesd", mode=0o750, exist_ok=True)
    os.chown("/var/lib/salesd", pw.pw_uid, pw.pw_gid)


def check(config):
    p = subprocess.run(AS_SALESD + ["-c", config, "-t"], capture_output=True,
                       timeout=60, cwd="/")
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


class Installed:
    """The installed /usr/bin/salesd, run as salesd on config."""

    def __init__(self, config):
        self.log = tempfile.NamedTemporaryFile(prefix="salesd-pkg-",
                                               delete=False)
        self.proc = subprocess.Popen(AS_SALESD + ["-c", config, "-p", "0"],
                                     stdout=self.log, stderr=self.log,
                                     cwd="/")
        self.port, deadline = None, time.time() + 30
        while (self.port is None and time.time() < deadline and
               self.proc.poll() is None):
            m = re.search(r"listening on http://[^:]+:(\d+)", self.output())
            self.port = int(m.group(1)) if m else None
            time.sleep(0.02)
        if self.port is None:
            self.stop()
            raise AssertionError("salesd did not start:\n" + self.output())

    def output(self):
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")

    def maps(self):
        with open("/proc/%d/maps" % self.proc.pid) as f:
            return f.read()

    def post_order(self):
        req = urllib.request.Request(
            "http://127.0.0.1:%d/orders" % self.port,
            data=json.dumps(ORDER).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())

    def get(self, path):
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()

    def stop(self):
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
            assert self.proc.wait(30) == 0, self.output()
        finally:
            os.unlink(self.log.name)


PACKAGED = "/etc/salesd/sales.ini"


def test_dpkg_install_server_runs_on_sqlite_without_libpq(installed):
    assert dpkg("-s", "salesd-postgres")[0] != 0    # salesd alone
    pw = pwd.getpwnam("salesd")
    assert pw.pw_uid < 1000 and pw.pw_shell.endswith("nologin")
    st = os.stat(PACKAGED)
    assert st.st_mode & 0o777 == 0o640 and st.st_gid == pw.pw_gid
    state_dir()
    if not os.path.exists("/var/lib/salesd/sales.db"):
        rc, out = check(PACKAGED)
        assert rc == 0, out
        assert '"/var/lib/salesd/sales.db" does not exist yet' in out
        assert not os.path.exists("/var/lib/salesd/sales.db")

    s = Installed(PACKAGED)
    try:
        assert s.post_order()[0] == 201
        # The packaged sales.ini loads the dashboard.
        st, body = s.get("/")
        assert st == 200 and b"<html" in body
        # The embedded SQLite: no driver, and libpq never mapped (it may
        # not even be installed: salesd does not depend on it).
        maps = s.maps()
        assert "libsqlite3.so" in maps
        assert "/libpq.so" not in maps and "/drivers/" not in maps
    finally:
        s.stop()
    assert os.stat("/var/lib/salesd/sales.db").st_uid == pw.pw_uid


SPLIT = "0.2.0"     # the first salesd without the driver in it


def old_dpkg(tmp, *args):
    """dpkg on a database of its own under tmp (no maintainer script of
    these packages runs on --unpack: salesd has no preinst)."""
    p = subprocess.run(["dpkg", "--root", os.path.join(tmp, "root")] +
                       list(args), capture_output=True, timeout=120)
    return p.returncode, (p.stdout + p.stderr).decode()


def test_postgres_package_takes_over_from_the_single_package(debs,
                                                             tmp_path):
    """Up to 0.1.0 the driver was in salesd itself: salesd-postgres
    Breaks and Replaces salesd (<< 0.2.0), so that upgrading the single
    package to the two is no file conflict (Debian policy 7.6.1).
    Shown with dpkg itself on a database of its own: an old salesd with
    the driver's files; the new salesd-postgres alone is refused while
    it stays; both together (as apt unpacks them, the driver first)
    take the files over; without Replaces they would conflict."""
    path, root = debs["salesd-postgres"]
    server_path, _ = debs["salesd"]
    version = field(server_path, "Version")
    assert version == project_version() == field(path, "Version")
    assert field(path, "Breaks") == "salesd (<< %s)" % SPLIT
    assert field(path, "Replaces") == "salesd (<< %s)" % SPLIT
    # Not broken by itself: the salesd it depends on is past the split.
    assert subprocess.run(["dpkg", "--compare-versions", version, "ge",
                           SPLIT]).returncode == 0
    if os.geteuid() != 0:
        pytest.skip("dpkg --root needs root to own what it unpacks")

    tmp = str(tmp_path)
    driver = [f for f in files_of(path) if f.endswith(".so")][0]
    old = os.path.join(tmp, "old")
    shutil.copytree(root, old)
    os.makedirs(os.path.join(old, "DEBIAN"))
    with open(os.path.join(old, "DEBIAN", "control"), "w") as f:
        f.write("Package: salesd\nVersion: 0.1.0\nArchitecture: %s\n"
                "Maintainer: salesd developers <salesd@localhost>\n"
                "Description: the single package of 0.1.0\n" % field(
                    path, "Architecture"))
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", old,
                    old + ".deb"], check=True, capture_output=True,
                   timeout=120)
    # The same salesd-postgres without Replaces, to see what it is for.
    bare = os.path.join(tmp, "bare")
    subprocess.run(["dpkg-deb", "-R", path, bare], check=True, timeout=60)
    ctl = os.path.join(bare, "DEBIAN", "control")
    with open(ctl) as f:
        text = f.read()
    with open(ctl, "w") as f:
        f.write(re.sub(r"^Replaces: .*\n", "", text, flags=re.M))
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", bare,
                    bare + ".deb"], check=True, capture_output=True,
                   timeout=120)

    def fresh():
        db = os.path.join(tmp, "root", "var", "lib", "dpkg")
        shutil.rmtree(os.path.join(tmp, "root"), ignore_errors=True)
        for d in ("info", "updates"):
            os.makedirs(os.path.join(db, d))
        os.makedirs(os.path.join(tmp, "root", "var", "log"))
        for f in ("status", "available"):
            open(os.path.join(db, f), "w").close()
        rc, out = old_dpkg(tmp, "-i", old + ".deb")
        assert rc == 0, out

    fresh()
    rc, out = old_dpkg(tmp, "--unpack", path)
    assert rc != 0 and "salesd-postgres breaks salesd (<< %s)" % SPLIT \
        in out, out
    rc, out = old_dpkg(tmp, "--auto-deconfigure", "--unpack", path,
                       server_path)
    assert rc == 0, out
    rc, out = old_dpkg(tmp, "-S", "/" + driver)
    assert rc == 0 and out.startswith("salesd-postgres: "), out
    out = subprocess.run(["dpkg-query", "--root", os.path.join(tmp, "root"),
                          "-W", "-f", "${Package} ${Version}\n"],
                         capture_output=True, check=True,
                         timeout=60).stdout.decode()
    assert sorted(out.split()) == sorted(
        ["salesd", version, "salesd-postgres", version]), out
    assert os.path.isfile(os.path.join(tmp, "root", driver))

    fresh()
    rc, out = old_dpkg(tmp, "--auto-deconfigure", "--unpack",
                       bare + ".deb", server_path)
    assert rc != 0 and "trying to overwrite '/%s'" % driver in out, out


def missing(out):
    """The driver path of salesd's "cannot load", normalised (while the
    default directory does not exist it is named by bin/../lib/...)."""
    m = re.search(r'storage driver "postgres": cannot load "([^"]+)"', out)
    return m and os.path.normpath(m.group(1))


def test_dpkg_install_postgres_driver(installed):
    """salesd-postgres on the installed salesd: a config that names the
    driver and no driver_dir or migrations finds both where the packages
    put them; purging the driver leaves the server."""
    from pg import Cluster     # only here: it may install postgresql
    path, root = installed["salesd-postgres"]
    driver = "/" + [f for f in files_of(path) if f.endswith(".so")][0]
    pgsql = "/usr/share/salesd/sql/orders/postgres"
    cluster = Cluster(log_statements=False)
    # Readable by salesd (pytest's tmp_path is not).
    conf = tempfile.mkdtemp(prefix="salesd-pkg-")
    try:
        url = cluster.createdb("salesd_pkg")
        os.chmod(conf, 0o755)
        config = os.path.join(conf, "sales.ini")
        with open(config, "w") as f:
            f.write("[server]\nhost = 127.0.0.1\n"
                    "[modules]\nload = orders analytics\n"
                    "[storage]\ndriver = postgres\nurl = %s\n" % url)
        os.chmod(config, 0o644)

        # Without the package: the driver's default place, named, and
        # what to install.
        rc, out = check(config)
        assert rc != 0 and missing(out) == driver, out
        assert "; install the salesd-postgres package (from source:" in out

        rc, out = dpkg("-i", path)
        assert rc == 0, out
        assert os.path.isfile(driver)
        rc, out = check(config)
        assert rc == 0, out
        assert "%d migration(s) pending, would be applied (from \"%s\")" % (
            len(glob.glob(os.path.join(pgsql, "*.sql"))), pgsql) in out, out

        s = Installed(config)
        try:
            assert s.post_order()[0] == 201
            st, body = s.get("/orders/1")
            assert st == 200 and json.loads(body)["quantity"] == 2
            maps = s.maps()
            assert driver in maps and "/libpq.so" in maps
        finally:
            s.stop()
        assert cluster.psql("salesd_pkg", "SELECT count(*) FROM orders") == "1"

        # Removed again: the server stays, and says what is missing.
        rc, out = dpkg("--purge", "salesd-postgres")
        assert rc == 0, out
        assert not os.path.exists(driver) and not os.path.exists(pgsql)
        assert os.path.isfile("/usr/share/salesd/sql/orders/001_orders.sql")
        rc, out = check(config)
        assert rc != 0 and missing(out) == driver, out
        rc, out = check(PACKAGED)
        assert rc == 0, out
    finally:
        cluster.destroy()
        shutil.rmtree(conf, ignore_errors=True)


def test_dpkg_purge(installed):
    state_dir()
    if not os.path.exists("/var/lib/salesd/sales.db"):
        s = Installed(PACKAGED)
        try:
            assert s.post_order()[0] == 201
        finally:
            s.stop()
    rc, out = dpkg("--purge", "salesd")
    assert rc == 0, out
    assert not os.path.exists("/usr/bin/salesd")
    assert not os.path.exists("/etc/salesd/sales.ini")
    # The sales survive a purge.
    assert os.path.exists("/var/lib/salesd/sales.db")
    assert not glob.glob("/usr/lib/salesd/modules/*.so")
    assert not glob.glob("/usr/lib/*/salesd/modules/*.so")
    assert not os.path.exists("/usr/share/salesd")


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
