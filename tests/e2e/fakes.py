"""Fake upstream servers for the end-to-end tests: OpenWeather and an
OpenAI-compatible chat-completions API, on 127.0.0.1.

Each fake is a threaded stdlib HTTP server that records every request
(method, path, query, headers, body) and answers with a status, body and
delay the test controls, or with a callable that decides per request.
A hanging answer (large delay) ends early when the fake is stopped, so
tests never wait on it.  Standard library only.
"""
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Recorded:
    """One request as the fake saw it."""

    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query          # {name: first value}
        self.headers = headers      # {lower-case name: value}
        self.body = body            # bytes

    def json(self):
        return json.loads(self.body)


class FakeUpstream:
    """A fake HTTP API.  Set status/body/delay, or respond=callable(Recorded)
    returning (status, body) to decide per request."""

    def __init__(self):
        self.status = 200
        self.body = b"{}"
        self.delay = 0.0
        self.respond = None
        self.requests = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                u = urllib.parse.urlsplit(self.path)
                q = {k: v[0] for k, v in urllib.parse.parse_qs(
                    u.query, keep_blank_values=True).items()}
                rec = Recorded(self.command, u.path, q,
                               {k.lower(): v for k, v in self.headers.items()},
                               body)
                with fake.lock:
                    fake.requests.append(rec)
                    status, out, delay = fake.status, fake.body, fake.delay
                    respond = fake.respond
                if respond is not None:
                    status, out = respond(rec)
                if delay:
                    fake.stopping.wait(delay)
                if isinstance(out, str):
                    out = out.encode()
                elif not isinstance(out, bytes):
                    out = json.dumps(out).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass    # the client gave up (timeout): fine

            do_GET = _handle
            do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def set(self, status=None, body=None, delay=None):
        with self.lock:
            if status is not None:
                self.status = status
            if body is not None:
                self.body = body
            if delay is not None:
                self.delay = delay

    def count(self, path=None):
        with self.lock:
            return sum(1 for r in self.requests
                       if path is None or r.path.endswith(path))

    def recorded(self):
        with self.lock:
            return list(self.requests)

    def wait_for(self, n, timeout=5.0):
        """Waits until at least n requests arrived; returns the count."""
        deadline = time.time() + timeout
        while time.time() < deadline and self.count() < n:
            time.sleep(0.02)
        return self.count()

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def openweather_body(temp, main="Clear", city="London"):
    """An OpenWeather current-weather answer (the fields salesd reads plus
    a few it ignores, as the real API sends)."""
    return {
        "coord": {"lon": -0.13, "lat": 51.51},
        "weather": [{"id": 800, "main": main, "description": main.lower(),
                     "icon": "01d"}],
        "main": {"temp": temp, "feels_like": temp, "humidity": 50},
        "name": city, "cod": 200,
    }


def chat_body(content, model="fake-model"):
    """An OpenAI chat-completions answer whose message content is content
    (a dict is sent as its JSON text, as a model would)."""
    if not isinstance(content, str):
        content = json.dumps(content)
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                  "total_tokens": 2},
    }


@pytest.fixture
def fake_upstream():
    """fake_upstream() -> a started FakeUpstream, stopped after the test."""
    fakes = []

    def factory():
        f = FakeUpstream()
        fakes.append(f)
        return f

    yield factory
    for f in fakes:
        f.stop()
