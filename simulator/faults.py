"""Injected faults for ``/v1/`` requests (checked after auth and the rate limit).

- ``latency_ms``: added before every response.
- ``error_rate``: fraction answered 500 (backend) or 503 (unavailable).
- ``bad_gateway_rate``: fraction answered 502 with an HTML page, as a gateway in front of
  the API answers when the API is down (no Catapult error body at all).
- ``malformed_rate``: fraction answered 200 with a broken body; the kinds rotate: truncated
  JSON, an HTML page, a JSON list, an object with ``"state": 42``.
- ``hang_rate`` + ``hang_seconds``: fraction where the server waits, then closes the
  connection without any response.
- ``rate_limited_seconds``: every request answers 429 until that many seconds from now.
- ``limit_rate``: fraction answered 403 with category ``limit`` (an account rate limit
  other than the 429, as Catapult sends for call and message rates).
- ``echo_authorization_rate``: fraction answered 500 with the request's ``Authorization``
  header repeated in the error message (as some misconfigured gateways do).
- ``conflict_rate``: fraction of update POSTs (a conference's or a member's, never a create
  or an audio request) answered 409 (conference or member update conflict).
- ``call_unavailable_rate``: fraction of member requests answered 503 ``call-unavailable``.
- ``unauthorized_body``: the body of a 401: "json" (default), "empty" or "html".
- ``conference_ids``: when set, faults only touch requests about those conferences.

Untidy shapes (booleans; ``--untidy`` turns every one on; reference §4.1, §5.4):
- ``full_429_details``: a 429's details also carry ``remoteAddress`` and ``requestMethod``.
- ``legacy_400``: every 400 in the legacy stored-error shape (``BAD_REQUEST``, integer
  ``time``, nested ``user``, details with ``id`` and ``version``).
- ``empty_403_details``: every 403 with ``"details": []``.
- ``relative_links``: a members page's ``Link`` targets are relative (``members?page=1``).
- ``first_links``: a members page's ``Link`` also names ``rel="first"``.

A faulted request is not applied: the state does not change. Random draws use a
``random.Random`` seeded from the simulator's seed.
"""

import math
import random
import threading
import time
from dataclasses import dataclass

from simulator import errors

RATE_NAMES = (
    "error_rate",
    "bad_gateway_rate",
    "malformed_rate",
    "hang_rate",
    "echo_authorization_rate",
    "limit_rate",
    "conflict_rate",
    "call_unavailable_rate",
)
SHAPE_NAMES = (
    "full_429_details",
    "legacy_400",
    "empty_403_details",
    "relative_links",
    "first_links",
)
UNAUTHORIZED_BODIES = ("json", "empty", "html")
DEFAULT_HANG_SECONDS = 30.0
MALFORMED_KINDS = ("truncated-json", "html", "json-list", "json-wrong-types")
BAD_GATEWAY_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
)
HTML = "text/html; charset=utf-8"


@dataclass
class FaultSettings:
    latency_ms: float = 0.0
    error_rate: float = 0.0
    bad_gateway_rate: float = 0.0
    malformed_rate: float = 0.0
    hang_rate: float = 0.0
    conflict_rate: float = 0.0
    call_unavailable_rate: float = 0.0
    unauthorized_body: str = "json"
    hang_seconds: float = DEFAULT_HANG_SECONDS
    rate_limited_until: float = 0.0
    conference_ids: tuple | None = None
    echo_authorization_rate: float = 0.0
    limit_rate: float = 0.0
    full_429_details: bool = False
    legacy_400: bool = False
    empty_403_details: bool = False
    relative_links: bool = False
    first_links: bool = False


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one request. ``kind`` is None when the request is served normally."""

    kind: str | None = None
    latency_seconds: float = 0.0
    hang_seconds: float = 0.0
    reset_ms: int | None = None
    error: errors.ApiError | None = None
    status: int = 200
    content_type: str = ""
    body: bytes = b""


def number(name, value, *, minimum, maximum=math.inf):
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return float(value)


def flag(name, value):
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def malformed_body(kind):
    """(content type, body) for one kind of broken 200 response."""
    if kind == "truncated-json":
        return "application/json", b'{"id": "conf-truncated", "state": "act'
    if kind == "html":
        return HTML, BAD_GATEWAY_PAGE
    if kind == "json-list":
        return "application/json", b"[]"
    return "application/json", b'{"state": 42}'


class Faults:
    def __init__(self, *, seed=0, clock=time.time, **initial):
        self._lock = threading.Lock()
        self._random = random.Random(f"{seed}:faults")
        self._clock = clock
        self._settings = FaultSettings()
        self._malformed_count = 0
        if initial:
            self.update(initial)

    def update(self, changes):
        """Merge validated changes into the current settings; raise ValueError if bad."""
        new = {}
        for name, value in changes.items():
            if name == "latency_ms":
                new[name] = number(name, value, minimum=0)
            elif name in RATE_NAMES:
                new[name] = number(name, value, minimum=0, maximum=1)
            elif name == "hang_seconds":
                new[name] = number(name, value, minimum=0)
            elif name == "rate_limited_seconds":
                seconds = number(name, value, minimum=0)
                new["rate_limited_until"] = self._clock() + seconds if seconds else 0.0
            elif name in SHAPE_NAMES:
                new[name] = flag(name, value)
            elif name == "conference_ids":
                new[name] = self._conference_ids(value)
            elif name == "unauthorized_body":
                if value not in UNAUTHORIZED_BODIES:
                    raise ValueError(f"unauthorized_body must be one of {UNAUTHORIZED_BODIES}")
                new[name] = value
            else:
                raise ValueError(f"unknown fault setting {name!r}")
        with self._lock:
            for name, value in new.items():
                setattr(self._settings, name, value)

    def reset(self):
        with self._lock:
            self._settings = FaultSettings()

    def settings(self):
        with self._lock:
            current = self._settings
            remaining = max(0.0, current.rate_limited_until - self._clock())
            return {
                "latency_ms": current.latency_ms,
                "error_rate": current.error_rate,
                "bad_gateway_rate": current.bad_gateway_rate,
                "malformed_rate": current.malformed_rate,
                "hang_rate": current.hang_rate,
                "conflict_rate": current.conflict_rate,
                "call_unavailable_rate": current.call_unavailable_rate,
                "unauthorized_body": current.unauthorized_body,
                "hang_seconds": current.hang_seconds,
                "rate_limited_seconds": round(remaining, 3),
                "rate_limited_until_ms": (
                    math.ceil(current.rate_limited_until * 1000) if remaining else None
                ),
                "conference_ids": (
                    list(current.conference_ids) if current.conference_ids is not None else None
                ),
                "echo_authorization_rate": current.echo_authorization_rate,
                "limit_rate": current.limit_rate,
                **{name: getattr(current, name) for name in SHAPE_NAMES},
            }

    def shapes(self):
        """The untidy shapes turned on, as error shape names (``errors.ERROR_SHAPES``) and
        link shape names ("relative-links", "first-links")."""
        with self._lock:
            return frozenset(
                name.replace("_", "-") for name in SHAPE_NAMES if getattr(self._settings, name)
            )

    def decide(self, *, conference_id, method="GET", member_id=None, update=False):
        """Pick the fault for one request about ``conference_id`` (None for create) and
        ``member_id`` (None unless the request is about one member). ``update``: the
        request updates a conference or a member, the only ones a conflict can hit."""
        with self._lock:
            current = self._settings
            if current.conference_ids is not None and conference_id not in current.conference_ids:
                return FaultDecision()
            latency = current.latency_ms / 1000
            now = self._clock()
            if current.rate_limited_until > now:
                reset_ms = math.ceil(current.rate_limited_until * 1000)
                return FaultDecision(
                    kind="rate-limited", latency_seconds=latency, reset_ms=reset_ms
                )
            if self._draw(current.hang_rate):
                return FaultDecision(kind="hang", hang_seconds=current.hang_seconds)
            if self._draw(current.limit_rate):
                return FaultDecision(
                    kind="error", latency_seconds=latency, error=errors.limit_reached()
                )
            if self._draw(current.echo_authorization_rate):
                return FaultDecision(kind="echo-authorization", latency_seconds=latency)
            if self._draw(current.error_rate):
                return FaultDecision(
                    kind="error", latency_seconds=latency, error=self._server_error(conference_id)
                )
            if self._draw(current.bad_gateway_rate):
                return FaultDecision(
                    kind="bad-gateway",
                    latency_seconds=latency,
                    status=502,
                    content_type=HTML,
                    body=BAD_GATEWAY_PAGE,
                )
            if update and method == "POST" and self._draw(current.conflict_rate):
                code = "conference-member-update-conflict" if member_id else None
                error = errors.update_conflict(code or "conference-update-conflict")
                return FaultDecision(kind="error", latency_seconds=latency, error=error)
            if member_id is not None and self._draw(current.call_unavailable_rate):
                error = errors.call_unavailable(member_id)
                return FaultDecision(kind="error", latency_seconds=latency, error=error)
            if self._draw(current.malformed_rate):
                kind = MALFORMED_KINDS[self._malformed_count % len(MALFORMED_KINDS)]
                self._malformed_count += 1
                content_type, body = malformed_body(kind)
                return FaultDecision(
                    kind="malformed",
                    latency_seconds=latency,
                    content_type=content_type,
                    body=body,
                )
            return FaultDecision(latency_seconds=latency)

    def _draw(self, rate):
        return rate > 0 and self._random.random() < rate

    def _server_error(self, conference_id):
        subject = f"conference {conference_id}" if conference_id else "the request"
        if self._random.random() < 0.5:
            return errors.ApiError(
                500,
                "backend",
                "backend-protocol-support-failure",
                f"backend error while processing {subject}",
            )
        return errors.ApiError(
            503,
            "unavailable",
            "gateway-unavailable",
            f"gateway unavailable while processing {subject}, retry later",
        )

    @staticmethod
    def _conference_ids(value):
        if value is None:
            return None
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError("conference_ids must be a list of conference ids or null")
        return tuple(value)
