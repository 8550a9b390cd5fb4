"""The Simulator: wires users, rate limit, faults, state, callbacks and scenario to an
HTTP server running in a background thread."""

import math
import threading
from collections import deque

from simulator.auth import DEFAULT_USER_SPEC, User, Users
from simulator.callbacks import CallbackSender
from simulator.desk import DeskRunner, build_desk_plan
from simulator.faults import SHAPE_NAMES, Faults
from simulator.handler import SimulatorHTTPServer
from simulator.hostile import DEFAULT_DRIP_SECONDS, Hostile
from simulator.ratelimit import RateLimiter
from simulator.scenario import ScenarioRunner, build_plan
from simulator.state import State
from simulator.timestamps import TIME_FORMATS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_RATE_LIMIT = 1.0
JOURNAL_SIZE = 20_000
# Members per page under ``untidy`` when no page size is given.
UNTIDY_MEMBERS_PAGE_SIZE = 3


class Simulator:
    """A Catapult v1 simulator. ``start()`` serves in a thread; ``stop()`` shuts it down.

    Options (all keyword-only):
    - host, port: where to listen (port 0 picks a free port; see ``url`` after start).
    - users: iterable of ``User``, ``(user_id, token, secret)`` or ``"ID:TOKEN:SECRET"``;
      default one user ``u-demo`` / ``demo-token`` / ``demo-secret``.
    - rate_limit: requests per second per user (burst max(1, R)); <= 0 disables it.
    - seed: seeds ids, fault draws and the scenario plan.
    - scenario: number of scenario conferences (0 = none); speed: scenario pace factor.
    - callback_url: callbackUrl given to scenario conferences.
    - desk: the desk scenario (``simulator.desk``), a dict with ``conferences``,
      ``minutes``, ``log_path`` (the change log), ``delay`` (seconds before it starts)
      and ``callback_urls`` ({user id: URL}: those users' conferences call back); spread
      over every user, paced by ``speed``.
    - time_format: "z", "ms-z", "hour-offset", "ms-colon-offset" or "mixed".
    - faults: dict of fault settings (see ``simulator.faults``).
    - log_requests: write one line per request to stderr.
    - omit_rate: share of responses that leave out optional fields (0..1).
    - members_page_size: members per page of a members list (0: no paging).
    - hostile: dict of conference id ("*": all) -> hostile shape (see ``simulator.hostile``);
      drip_seconds, huge_bytes: how the "drip" and "huge-body" shapes behave.
    - untidy: as untidy as the real API gets: every field at its default left out
      (omit_rate 1), the "untidy" time format, members paged (``members_page_size`` or 3
      a page) and every untidy shape on (``simulator.faults.SHAPE_NAMES``: the full 429
      details, the legacy 400, the bare 403, relative and ``rel="first"`` links).
    """

    def __init__(
        self,
        *,
        host=DEFAULT_HOST,
        port=DEFAULT_PORT,
        users=None,
        rate_limit=DEFAULT_RATE_LIMIT,
        seed=0,
        scenario=0,
        speed=1.0,
        callback_url=None,
        desk=None,
        time_format="z",
        faults=None,
        log_requests=False,
        omit_rate=0.0,
        members_page_size=0,
        hostile=None,
        drip_seconds=DEFAULT_DRIP_SECONDS,
        huge_bytes=None,
        untidy=False,
    ):
        if untidy:
            time_format = "untidy"
            omit_rate = 1.0
            members_page_size = members_page_size or UNTIDY_MEMBERS_PAGE_SIZE
            faults = {**{name: True for name in SHAPE_NAMES}, **(faults or {})}
        if time_format not in TIME_FORMATS:
            raise ValueError(f"time_format must be one of {', '.join(TIME_FORMATS)}")
        self.host = host
        self.port = port
        self.seed = seed
        self.log_requests = log_requests
        self.url = None
        self.stop_event = threading.Event()
        self.users = Users(users or [DEFAULT_USER_SPEC])
        self.limiter = RateLimiter(checked_rate(rate_limit))
        self.faults = Faults(seed=seed, **(faults or {}))
        self.callbacks = CallbackSender()
        self.hostile = Hostile(hostile, drip_seconds=drip_seconds, huge_bytes=huge_bytes)
        if not 0 <= float(omit_rate) <= 1:
            raise ValueError("omit_rate must be between 0 and 1")
        if int(members_page_size) < 0:
            raise ValueError("members_page_size must be 0 or more")
        self.state = State(
            seed=seed,
            time_format=time_format,
            event_sink=self.callbacks.submit,
            event_cancel=self.callbacks.cancel,
            omit_rate=float(omit_rate),
            members_page_size=int(members_page_size),
        )
        self.scenario = None
        if scenario:
            self.scenario = ScenarioRunner(
                state=self.state,
                user_id=self.users.first_user_id(),
                plan=build_plan(seed=seed, count=int(scenario)),
                speed=float(speed),
                callback_url=callback_url,
                stop_event=self.stop_event,
            )
        self.desk = None
        if desk:
            user_ids = [user.user_id for user in self.users.all()]
            plan = build_desk_plan(
                seed=seed,
                conferences=int(desk["conferences"]),
                accounts=len(user_ids),
                minutes=float(desk["minutes"]),
                speed=float(speed),
            )
            self.desk = DeskRunner(
                state=self.state,
                user_ids=user_ids,
                plan=plan,
                speed=float(speed),
                callback_urls=desk.get("callback_urls"),
                log_path=desk.get("log_path"),
                delay=float(desk.get("delay", 0)),
                stop_event=self.stop_event,
            )
        # (method, path, started, finished, status, client port) of the latest API
        # requests, for tests that check what was asked, when and over how many
        # connections; status None when the server hung up.
        self.journal = deque(maxlen=JOURNAL_SIZE)
        self._httpd = None
        self._thread = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self):
        self._httpd = SimulatorHTTPServer((self.host, self.port), self)
        bound_host, bound_port = self._httpd.server_address[:2]
        self.port = bound_port
        self.url = f"http://{bound_host}:{bound_port}"
        self.state.base_url = self.url
        self.callbacks.start()
        if self.scenario is not None:
            self.scenario.create_conferences()
            self.scenario.start()
        if self.desk is not None:
            self.desk.create_conferences()
            self.desk.start()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sim-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self):
        self.stop_event.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None
        if self.scenario is not None:
            self.scenario.join(5)
        if self.desk is not None:
            self.desk.join(5)
        self.callbacks.stop()

    def wait(self):
        """Block until ``stop()`` is called from elsewhere (signal handler, other thread)."""
        while not self.stop_event.wait(0.5):
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # --- control -----------------------------------------------------------------------

    def add_user(self, user_id, token, secret):
        self.users.add(User(user_id, token, secret))

    def set_faults(self, **faults):
        self.faults.update(faults)
        return self.faults.settings()

    def reset_faults(self):
        self.faults.reset()

    def set_hostile(self, conference_id, shape):
        """Make a conference ("*": every one) answer its GETs in a hostile shape (None:
        normally again); returns the hostile settings."""
        self.hostile.set(conference_id, shape)
        return self.hostile.settings()

    def set_rate_limit(self, rate):
        self.limiter.set_rate(checked_rate(rate))

    def stats(self, *, include_arrivals=False):
        return {
            "rate_limit": self.limiter.rate,
            "callbacks_dropped": self.callbacks.dropped,
            "users": self.limiter.stats(include_arrivals=include_arrivals),
        }

    def reset_stats(self):
        self.limiter.reset_stats()
        self.journal.clear()

    def requests(self):
        """The journal of the latest API requests (not the /_sim/ control ones)."""
        return list(self.journal)

    def conferences(self):
        return self.state.summary()

    def conference_ids(self, user_id=None):
        return [
            conference["id"]
            for conference in self.state.summary()
            if user_id is None or conference["user_id"] == user_id
        ]

    def callback_deliveries(self):
        return self.callbacks.deliveries()

    def scenario_progress(self):
        if self.scenario is None:
            return {"conferences": 0, "steps": 0, "applied_steps": 0, "conference_ids": []}
        progress = self.scenario.progress()
        progress["kinds"] = list(self.scenario.plan.kinds)
        progress["conference_ids"] = list(self.scenario.conference_ids)
        return progress

    def desk_progress(self):
        if self.desk is None:
            return {"conferences": 0, "steps": 0, "applied_steps": 0, "list": []}
        return {**self.desk.progress(), "list": self.desk.conferences()}


def checked_rate(rate):
    if isinstance(rate, bool):
        raise ValueError("rate must be a number")
    rate = float(rate)
    if math.isnan(rate) or math.isinf(rate):
        raise ValueError("rate must be a finite number")
    return rate
