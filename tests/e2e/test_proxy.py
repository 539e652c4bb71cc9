"""The README's nginx configuration ("TLS: put nginx in front"), run as
written in front of salesd: a real nginx (Debian's nginx-light, from
`make test-tools`) terminating TLS for sales.example.com with a
throw-away certificate, on a free loopback port, unprivileged, with its
pid, logs and temp files in a temporary prefix.  Through it: the seed's
order is posted and read back in GET /analytics, a WebSocket upgrade gets
the newOrder broadcast, and a Host salesd does not allow is still refused
(nginx passes the client's Host on)."""
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import ROOT
from test_install import as_user, free_port
from test_ws import KEY, ACCEPT, Raw

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NAME = "sales.example.com"
SEED = {"product_id": "101", "quantity": 2, "price": 25.50,
        "date": "2025-04-22T10:00:00Z"}

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK),
                                reason="nginx is not installed: make test-tools")

# What the README leaves to the machine: the main context and the paths
# nginx would otherwise take under /var and /run.
MAIN = """daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log notice;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{snippet}
}}
"""


def readme_nginx():
    """The one nginx block of README.md."""
    with open(os.path.join(ROOT, "README.md")) as f:
        blocks = re.findall(r"^```nginx\n(.*?)^```$", f.read(), re.S | re.M)
    assert len(blocks) == 1, "README.md should have one nginx block"
    return blocks[0]


def subst(text, old, new):
    """Replaces old exactly once: the README cannot drift unnoticed."""
    assert text.count(old) == 1, (old, text)
    return text.replace(old, new)


def start_nginx(prefix, uid, gid, tmp, port, upstream, crt, key):
    """nginx on port with the README's block; None if the port was taken."""
    snippet = readme_nginx()
    snippet = subst(snippet, "listen 443 ssl;",
                    "listen 127.0.0.1:%d ssl;" % port)
    snippet = subst(snippet, "/etc/ssl/%s.crt" % NAME, crt)
    snippet = subst(snippet, "/etc/ssl/%s.key" % NAME, key)
    snippet = subst(snippet, "proxy_pass http://127.0.0.1:3000;",
                    "proxy_pass http://127.0.0.1:%d;" % upstream)
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(MAIN.format(tmp=tmp, snippet=snippet))
    return run_nginx(prefix, uid, gid, tmp, conf, port)


def run_nginx(prefix, uid, gid, tmp, conf, port, args=()):
    """nginx on conf, as uid:gid in tmp (which it is given), until it
    listens on port; None if the port was taken meanwhile."""
    for dirpath, _, files in os.walk(tmp):
        os.chown(dirpath, uid, gid)
        for name in files:
            os.chown(os.path.join(dirpath, name), uid, gid)
    out = os.path.join(tmp, "stderr")
    with open(out, "wb") as errlog:
        proc = subprocess.Popen(prefix + [NGINX, "-p", tmp, *args,
                                          "-c", conf],
                                stdout=errlog, stderr=errlog)
    deadline = time.time() + 20
    while True:
        if proc.poll() is not None:
            with open(out) as f:
                text = f.read()
            if "Address already in use" in text:
                return None
            raise AssertionError("nginx exited: " + text)
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return proc
        except OSError:
            if time.time() > deadline:
                proc.kill()
                proc.wait()
                raise AssertionError("nginx did not listen")
            time.sleep(0.05)


@pytest.fixture
def proxied(make_server):
    """(salesd, nginx port, TLS context trusting nginx's certificate)."""
    srv = make_server(["orders", "analytics"],
                      {"server": {"allowed_hosts": NAME}})
    prefix, uid, gid = as_user()
    tmp = tempfile.mkdtemp(prefix="salesd-proxy-")
    proc = None
    try:
        crt, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        p = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
             "-subj", "/CN=" + NAME, "-addext", "subjectAltName=DNS:" + NAME,
             "-keyout", key, "-out", crt], capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr.decode()
        # A free port may be taken before nginx binds it: try another.
        for _ in range(3):
            port = free_port()
            proc = start_nginx(prefix, uid, gid, tmp, port, srv.port, crt,
                               key)
            if proc is not None:
                break
        else:
            raise AssertionError("nginx found no free port")
        ctx = ssl.create_default_context(cafile=crt)
        yield srv, port, ctx
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def tls(port, ctx):
    """A TLS connection to nginx, checked against sales.example.com."""
    raw = socket.create_connection(("127.0.0.1", port), 10)
    return ctx.wrap_socket(raw, server_hostname=NAME)


def request(port, ctx, method, path, body=None, host=NAME):
    s = tls(port, ctx)
    try:
        data = json.dumps(body).encode() if body is not None else b""
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (
            method, path, host)
        if body is not None:
            head += ("Content-Type: application/json\r\n"
                     "Content-Length: %d\r\n" % len(data))
        s.sendall(head.encode() + b"\r\n" + data)
        r = http.client.HTTPResponse(s)
        r.begin()
        out = r.read()
        return r.status, json.loads(out) if out else None
    finally:
        s.close()


def websocket(port, ctx):
    """A test_ws.Raw client whose socket is TLS through nginx."""
    r = Raw.__new__(Raw)
    r.sock = tls(port, ctx)
    r.buf = b""
    r.sock.sendall((
        "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n" % (NAME, KEY)).encode())
    while b"\r\n\r\n" not in r.buf:
        chunk = r.sock.recv(4096)
        assert chunk, "closed during the handshake"
        r.buf += chunk
    head, r.buf = r.buf.split(b"\r\n\r\n", 1)
    r.head = head.decode()
    assert r.head.startswith("HTTP/1.1 101 "), r.head
    assert ("sec-websocket-accept: " + ACCEPT.lower()) in r.head.lower()
    return r


def test_readme_nginx_proxies_rest_and_websocket(proxied):
    srv, port, ctx = proxied
    ws = websocket(port, ctx)
    st, order = request(port, ctx, "POST", "/orders", SEED)
    assert st == 201, order
    assert order["product_id"] == "101" and order["price"] == 25.5
    msg = ws.message()
    assert msg == {"type": "newOrder", "data": order}
    st, body = request(port, ctx, "GET", "/analytics")
    assert st == 200
    assert body["totalOrders"] == 1 and body["totalRevenue"] == 51
    assert body["topProducts"][0]["product_id"] == "101"
    # The WebSocket stays up through the proxy: a second order comes too.
    st, second = request(port, ctx, "POST", "/orders", SEED)
    assert st == 201
    while True:
        msg = ws.message()
        if msg["type"] == "newOrder":
            break
        assert msg["type"] == "updateAnalytics", msg
    assert msg["data"]["id"] == second["id"]
    ws.close()


def test_readme_nginx_passes_the_host_on(proxied):
    srv, port, ctx = proxied
    # nginx forwards the client's Host: salesd's check still holds.
    st, body = request(port, ctx, "GET", "/analytics", host="evil.example")
    assert st == 421 and body["error"]["code"] == "host_not_allowed"
    assert request(port, ctx, "GET", "/orders")[0] == 200
