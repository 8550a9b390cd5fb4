"""The HTTP side: a ThreadingHTTPServer whose handler reads a request, asks ``api`` or
``control`` for a Response, and writes it (or hangs, for the hang fault, or drips its
body a byte at a time, for the hostile "drip" shape)."""

import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from simulator.api import handle_api
from simulator.control import handle_control
from simulator.responses import json_response

MAX_BODY_BYTES = 1024 * 1024


class SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Clients open many connections at once (a poller's pool, a test's threads): the
    # default backlog of 5 resets the rest.
    request_queue_size = 256

    def __init__(self, address, simulator):
        self.simulator = simulator
        super().__init__(address, RequestHandler)

    def handle_error(self, request, client_address):
        """A client that gave up (a poller past its deadline or read timeout) is not an
        error of the simulator: say nothing; anything else gets its traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CatapultSimulator/1.0"
    timeout = 300  # seconds an idle keep-alive connection may hold a thread
    # Answer at once: with Nagle's algorithm on, a keep-alive response waits for the
    # client's delayed ACK (about 40 ms) and every latency figure is off.
    disable_nagle_algorithm = True

    def version_string(self):
        return self.server_version

    def do_GET(self):
        self.handle_request()

    def do_POST(self):
        self.handle_request()

    def do_PUT(self):
        self.handle_request()

    def do_PATCH(self):
        self.handle_request()

    def do_DELETE(self):
        self.handle_request()

    def handle_request(self):
        sim = self.server.simulator
        started = time.time()
        status = None
        try:
            status = self.answer(sim)
        finally:
            if not urlsplit(self.path).path.startswith("/_sim"):
                path = urlsplit(self.path).path
                client_port = self.client_address[1]
                sim.journal.append((self.command, path, started, time.time(), status, client_port))

    def answer(self, sim):
        """Build and write the response; the status sent, or None when it hung up."""
        try:
            response = self.build_response(sim)
        except Exception as exc:  # noqa: BLE001 - a simulator bug must still answer
            traceback.print_exc(file=sys.stderr)
            body = {
                "category": "backend",
                "code": "simulator-error",
                "message": f"simulator error: {type(exc).__name__}: {exc}",
            }
            response = json_response(500, body)
        if response.hang_seconds is not None:
            sim.stop_event.wait(response.hang_seconds)
            self.close_connection = True
            return None
        if response.latency_seconds > 0:
            sim.stop_event.wait(response.latency_seconds)
        self.write_response(response, sim)
        return response.status

    def build_response(self, sim):
        parts = urlsplit(self.path)
        try:
            raw_body = self.read_body()
        except ValueError as exc:
            self.close_connection = True
            body = {"category": "bad-request", "code": "validation-error", "message": str(exc)}
            return json_response(400, body)
        if parts.path == "/_sim" or parts.path.startswith("/_sim/"):
            return handle_control(
                sim, method=self.command, path=parts.path, query=parts.query, raw_body=raw_body
            )
        return handle_api(
            sim,
            method=self.command,
            path=parts.path,
            authorization=self.headers.get("Authorization"),
            raw_body=raw_body,
            query=parts.query,
            remote_address=self.client_address[0],
        )

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.read_chunked_body()
        length_text = self.headers.get("Content-Length") or "0"
        try:
            length = int(length_text)
        except ValueError:
            raise ValueError(f"Invalid Content-Length {length_text!r}") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise ValueError(f"Request body must be 0 to {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length) if length else b""

    def read_chunked_body(self):
        chunks = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise ValueError("Malformed chunked request body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise ValueError(f"Request body must be at most {MAX_BODY_BYTES} bytes")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def write_response(self, response, sim):
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if response.drip_seconds is None:
            self.wfile.write(response.body)
            return
        self.wfile.flush()
        for index in range(len(response.body)):
            if sim.stop_event.wait(response.drip_seconds):
                self.close_connection = True
                return
            self.wfile.write(response.body[index : index + 1])
            self.wfile.flush()

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        if self.server.simulator.log_requests:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")
