"""Deliver callback events in background threads (reference §3, transport).

Request handling only hands events over and never waits. Each conference's events go
through a lane of their own (a queue and a thread), so one slow receiver delays only the
conferences that call it, while one conference's events keep their order. Lanes are
bounded (``MAX_LANES`` at once, each queue ``LANE_QUEUE_SIZE``): past the cap a new
conference shares the least busy lane; a full lane drops the event and counts it. A lane
ends when idle for ``LANE_IDLE_SECONDS``. An event with a ``due`` time (a playback or speech
"done") waits in a scheduler until then and joins its lane at that moment, carrying that
time. A lane sends to the ``callbackUrl`` first and to the ``fallbackUrl`` when that fails
(exception or non-2xx).
"""

import base64
import heapq
import itertools
import json
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from urllib.error import HTTPError
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit
from urllib.request import ProxyHandler, Request, build_opener

from simulator.timestamps import format_time, utc_now

USER_AGENT = "BandwidthAPI/v1 (sim)"
DEFAULT_TIMEOUT_MS = 10000
MAX_LANES = 64
LANE_QUEUE_SIZE = 1000
LANE_IDLE_SECONDS = 2.0
MAX_SCHEDULED = 10_000
HISTORY_SIZE = 200


@dataclass(frozen=True)
class CallbackEvent:
    url: str
    method: str
    timeout_ms: int
    fallback_url: str | None
    payload: dict
    # The lane: events with the same key are sent one after the other, in order.
    key: str = ""
    # Epoch seconds before which the event is not sent (None: at once).
    due: float | None = None
    # Events scheduled under one cancel key can be dropped together before they are due.
    cancel_key: str | None = None


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


class Lane:
    def __init__(self):
        self.queue = queue.Queue(maxsize=LANE_QUEUE_SIZE)
        self.keys = set()
        self.thread = None


class CallbackSender:
    def __init__(self, *, user_agent=USER_AGENT, max_lanes=MAX_LANES, clock=time.time):
        self.user_agent = user_agent
        self.max_lanes = max_lanes
        self._clock = clock
        self._history = deque(maxlen=HISTORY_SIZE)
        self._lock = threading.Lock()
        self._lanes = {}  # key -> Lane
        self._scheduled = []  # heap of (due, order, event)
        self._order = itertools.count()
        self._wake = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._scheduler = None
        self._opener = build_opener(ProxyHandler({}))
        self.dropped = 0

    def start(self):
        self._stopping.clear()
        self._scheduler = threading.Thread(
            target=self._run_scheduler, name="sim-callbacks-due", daemon=True
        )
        self._scheduler.start()

    def stop(self, timeout=2.0):
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
            lanes = {id(lane): lane for lane in self._lanes.values()}.values()
            threads = {lane.thread for lane in lanes if lane.thread}
            for lane in lanes:
                try:
                    lane.queue.put_nowait(None)
                except queue.Full:
                    pass
        if self._scheduler is not None:
            self._scheduler.join(timeout)
            self._scheduler = None
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def submit(self, event):
        """Hand an event over without blocking; return False if it had to be dropped."""
        with self._lock:
            if event.due is not None and event.due > self._clock():
                if len(self._scheduled) >= MAX_SCHEDULED:
                    self.dropped += 1
                    return False
                heapq.heappush(self._scheduled, (event.due, next(self._order), event))
                self._wake.notify_all()
                return True
            return self._enqueue(event)

    def cancel(self, cancel_key):
        """Forget the scheduled events under ``cancel_key`` that are not due yet."""
        with self._lock:
            kept = [entry for entry in self._scheduled if entry[2].cancel_key != cancel_key]
            heapq.heapify(kept)
            self._scheduled = kept

    def deliveries(self):
        with self._lock:
            return list(self._history)

    def lane_count(self):
        with self._lock:
            return len({id(lane) for lane in self._lanes.values()})

    def _enqueue(self, event):
        """Put an event on its key's lane (call with the lock held)."""
        lane = self._lanes.get(event.key)
        if lane is None:
            lanes = {id(known): known for known in self._lanes.values()}
            if len(lanes) >= self.max_lanes:
                lane = min(lanes.values(), key=lambda known: known.queue.qsize())
            else:
                lane = Lane()
            lane.keys.add(event.key)
            self._lanes[event.key] = lane
        try:
            lane.queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            return False
        if lane.thread is None:
            lane.thread = threading.Thread(
                target=self._run_lane, args=(lane,), name="sim-callbacks", daemon=True
            )
            lane.thread.start()
        return True

    def _run_lane(self, lane):
        while not self._stopping.is_set():
            try:
                event = lane.queue.get(timeout=LANE_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if lane.queue.empty():
                        for key in lane.keys:
                            self._lanes.pop(key, None)
                        lane.thread = None
                        return
                continue
            if event is None:
                return
            self._deliver(event)

    def _run_scheduler(self):
        with self._wake:
            while not self._stopping.is_set():
                now = self._clock()
                while self._scheduled and self._scheduled[0][0] <= now:
                    _, _, event = heapq.heappop(self._scheduled)
                    self._enqueue(event)
                wait = self._scheduled[0][0] - now if self._scheduled else 1.0
                self._wake.wait(min(max(wait, 0.001), 1.0))

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
