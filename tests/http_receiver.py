"""A small real HTTP server for a test to send webhooks and channel messages to:
``with running_receiver() as receiver: ...``.

It listens on 127.0.0.1 on a free port (``receiver.url``) and records every request it
reads (``receiver.requests``: method, path, headers, body). By default it answers 200;
``receiver.answer(500, 200)`` sets the next answers, and ``receiver.hang()`` makes it
read requests and answer none until ``receiver.release()`` (or the end of the test).
A 3xx answer sends ``Location: receiver.redirect_to`` (its own /followed by default).
"""

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: bytes


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests = []
        self.answers = []
        self.released = threading.Event()
        self.released.set()
        self.changed = threading.Condition()
        self.redirect_to = f"{self.url}/followed"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def host(self):
        return f"127.0.0.1:{self.server_address[1]}"

    def answer(self, *codes):
        self.answers.extend(codes)

    def hang(self):
        self.released.clear()

    def release(self):
        self.released.set()

    def wait_for(self, count, timeout=5):
        """The requests, once there are at least `count` (AssertionError otherwise)."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.requests) >= count, timeout=timeout)
            assert len(self.requests) >= count, f"{len(self.requests)} requests, not {count}"
            return list(self.requests)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.do_POST()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        server = self.server
        with server.changed:
            server.requests.append(
                Request(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
            server.changed.notify_all()
            code = server.answers.pop(0) if server.answers else 200
        # A hanging receiver holds the request until released (or the test ends).
        server.released.wait(timeout=60)
        self.send_response(code)
        if 300 <= code < 400:
            self.send_header("Location", server.redirect_to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@contextmanager
def running_receiver():
    receiver = Receiver()
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release()
        receiver.shutdown()
        receiver.server_close()
        thread.join(timeout=5)
