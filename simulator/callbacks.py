"""Deliver callback events in a background thread (reference §3, transport).

Request handling only puts events on a bounded queue and never waits: when the queue is
full the event is dropped and counted. One worker thread sends events in order, to the
``callbackUrl`` first and to the ``fallbackUrl`` when that fails (exception or non-2xx).
"""

import base64
import json
import queue
import threading
from collections import deque
from dataclasses import dataclass
from urllib.error import HTTPError
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit
from urllib.request import ProxyHandler, Request, build_opener

from simulator.timestamps import format_time, utc_now

USER_AGENT = "BandwidthAPI/v1 (sim)"
DEFAULT_TIMEOUT_MS = 10000
QUEUE_SIZE = 1000
HISTORY_SIZE = 200


@dataclass(frozen=True)
class CallbackEvent:
    url: str
    method: str
    timeout_ms: int
    fallback_url: str | None
    payload: dict


def query_value(value):
    """In GET mode every value is a string: booleans become "true"/"false"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def split_credentials(url):
    """Take ``user:pass@`` out of a URL; return (url without it, Authorization or None)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return urlunsplit(parts._replace(netloc=netloc)), authorization


class CallbackSender:
    def __init__(self, *, user_agent=USER_AGENT, queue_size=QUEUE_SIZE):
        self.user_agent = user_agent
        self._queue = queue.Queue(maxsize=queue_size)
        self._history = deque(maxlen=HISTORY_SIZE)
        self._lock = threading.Lock()
        self._thread = None
        self._opener = build_opener(ProxyHandler({}))
        self.dropped = 0

    def start(self):
        self._thread = threading.Thread(target=self._run, name="sim-callbacks", daemon=True)
        self._thread.start()

    def stop(self, timeout=2.0):
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self._thread = None

    def submit(self, event):
        """Queue an event without blocking; return False if it had to be dropped."""
        try:
            self._queue.put_nowait(event)
            return True
        except queue.Full:
            with self._lock:
                self.dropped += 1
            return False

    def deliveries(self):
        with self._lock:
            return list(self._history)

    def _run(self):
        while True:
            event = self._queue.get()
            if event is None:
                return
            self._deliver(event)

    def _deliver(self, event):
        ok = self._attempt(event, event.url, fallback=False)
        if not ok and event.fallback_url:
            self._attempt(event, event.fallback_url, fallback=True)

    def _attempt(self, event, url, *, fallback):
        status = None
        error = None
        try:
            status = self._send(event, url)
        except HTTPError as exc:
            status = exc.code
        except Exception as exc:  # noqa: BLE001 - any failure means "try the fallback"
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        if status is not None and not ok:
            error = f"HTTP {status}"
        record = {
            "time": format_time(utc_now(), "ms-z"),
            "event_type": event.payload.get("eventType"),
            "url": url,
            "method": event.method,
            "fallback": fallback,
            "status": status,
            "ok": ok,
            "error": error,
            "payload": event.payload,
        }
        with self._lock:
            self._history.append(record)
        return ok

    def _send(self, event, url):
        url, authorization = split_credentials(url)
        headers = {"User-Agent": self.user_agent}
        if authorization:
            headers["Authorization"] = authorization
        if event.method == "GET":
            query = urlencode({name: query_value(v) for name, v in event.payload.items()})
            url = url + ("&" if "?" in url else "?") + query
            data = None
        else:
            data = json.dumps(event.payload).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        request = Request(url, data=data, headers=headers, method=event.method)
        with self._opener.open(request, timeout=event.timeout_ms / 1000) as response:
            response.read()
            return response.status
