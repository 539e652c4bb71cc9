"""One HTTP request sent byte for byte on its own socket, for tests that
need what http.client will not send (no Host, odd heads, handshakes)."""
import socket


class Answer:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers          # lower-case name -> value
        self.raw = raw

    def json(self):
        import json
        return json.loads(self.raw)


def exchange(port, request, timeout=30):
    """Sends request (bytes or str) as given; returns the Answer.  The body
    is read by Content-Length, except after a HEAD, a 101, 204 or 304."""
    if isinstance(request, str):
        request = request.encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(request)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ")[1])
        headers = {}
        for line in lines:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if request.startswith(b"HEAD ") or status in (101, 204, 304):
            return Answer(status, headers, b"")
        n = int(headers.get("content-length", "0"))
        while len(rest) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return Answer(status, headers, rest[:n])
    finally:
        s.close()
