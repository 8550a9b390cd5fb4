"""Hostile answers: chosen conferences answer their GETs with values no real Catapult
should send, to show that one bad answer spoils nothing else (reference §5.5).

Shapes, set per conference id (``"*"``: every conference without a shape of its own):
- ``nul-text``: the conference's ``tag`` and ``from`` carry NUL characters, a
  right-to-left override and a zero-width space; its members list gets one more member
  whose call id has a NUL.
- ``long-state``: the conference's ``state`` (and every listed member's) is 500
  characters of text that is no state.
- ``long-call-id``: its members list gets one more member whose call id is 300 characters.
- ``huge-body``: the conference's ``tag`` (and, in its members list, an extra member's
  unknown ``padding`` key) is ``huge_bytes`` of text (default 10 MB): valid JSON, too big.
- ``drip``: the usual answer, sent one byte every ``drip_seconds`` (default 2 s) after
  the headers.

Only 200 answers to ``GET`` a conference or its members list are reshaped; everything
else (auth, the rate limit, faults, errors, updates) works as usual. The stored state is
never changed.
"""

import json
import threading
from dataclasses import replace

from simulator.faults import number
from simulator.render import call_url

SHAPES = ("nul-text", "long-state", "long-call-id", "huge-body", "drip")
EVERY_CONFERENCE = "*"
DEFAULT_DRIP_SECONDS = 2.0
DEFAULT_HUGE_BYTES = 10 * 1024 * 1024
HOSTILE_TEXT = "\x00\u202e\u200b"
LONG_STATE = ("not-a-state-" * 50)[:500]
LONG_CALL_ID = "c-" + "9" * 298
HOSTILE_MEMBER_ID = "member-hostile"


class Hostile:
    """Which conference answers in which hostile shape; safe to use from any thread."""

    def __init__(self, conferences=None, *, drip_seconds=DEFAULT_DRIP_SECONDS, huge_bytes=None):
        self._lock = threading.Lock()
        self._shapes = {}
        self._drip_seconds = DEFAULT_DRIP_SECONDS
        self._huge_bytes = DEFAULT_HUGE_BYTES
        self.update(
            {
                "conferences": dict(conferences or {}),
                "drip_seconds": drip_seconds,
                "huge_bytes": huge_bytes if huge_bytes is not None else DEFAULT_HUGE_BYTES,
            }
        )

    def update(self, changes):
        """Merge ``{"conferences": {id: shape or None}, "drip_seconds": S, "huge_bytes": N}``
        (each key optional; a None shape removes the conference's); ValueError if bad."""
        unknown = set(changes) - {"conferences", "drip_seconds", "huge_bytes"}
        if unknown:
            raise ValueError(f"unknown hostile setting {sorted(unknown)[0]!r}")
        conferences = changes.get("conferences") or {}
        if not isinstance(conferences, dict):
            raise ValueError("conferences must be an object of conference id -> shape")
        for conference_id, shape in conferences.items():
            if shape is not None and shape not in SHAPES:
                raise ValueError(f"shape of {conference_id!r} must be one of {', '.join(SHAPES)}")
        drip = changes.get("drip_seconds")
        if drip is not None:
            drip = number("drip_seconds", drip, minimum=0.01, maximum=3600)
        huge = changes.get("huge_bytes")
        if huge is not None:
            huge = int(number("huge_bytes", huge, minimum=1, maximum=1024**3))
        with self._lock:
            for conference_id, shape in conferences.items():
                if shape is None:
                    self._shapes.pop(conference_id, None)
                else:
                    self._shapes[conference_id] = shape
            if drip is not None:
                self._drip_seconds = drip
            if huge is not None:
                self._huge_bytes = huge

    def set(self, conference_id, shape):
        """Make ``conference_id`` ("*": every conference) answer in ``shape`` (None: normally)."""
        self.update({"conferences": {conference_id: shape}})

    def reset(self):
        with self._lock:
            self._shapes = {}
            self._drip_seconds = DEFAULT_DRIP_SECONDS
            self._huge_bytes = DEFAULT_HUGE_BYTES

    def settings(self):
        with self._lock:
            return {
                "conferences": dict(self._shapes),
                "drip_seconds": self._drip_seconds,
                "huge_bytes": self._huge_bytes,
            }

    def reshape(self, response, *, conference_id, members, base_url, user_id):
        """The response a hostile conference sends instead of ``response`` (a 200 to a GET
        of the conference, or of its members list with ``members``)."""
        with self._lock:
            shape = self._shapes.get(conference_id, self._shapes.get(EVERY_CONFERENCE))
            drip_seconds, huge_bytes = self._drip_seconds, self._huge_bytes
        if shape is None:
            return response
        if shape == "drip":
            return replace(response, drip_seconds=drip_seconds)
        data = json.loads(response.body)
        if members:
            data = reshaped_members(
                shape, data, base_url=base_url, user_id=user_id, size=huge_bytes
            )
        else:
            data = reshaped_conference(shape, data, size=huge_bytes)
        return replace(response, body=json.dumps(data).encode("utf-8"))


def reshaped_conference(shape, data, *, size):
    data = dict(data)
    if shape == "nul-text":
        data["tag"] = f"hostile{HOSTILE_TEXT}tag"
        data["from"] = f"+1919{HOSTILE_TEXT}5550100"
    elif shape == "long-state":
        data["state"] = LONG_STATE
    elif shape == "huge-body":
        data["tag"] = "x" * size
    return data


def reshaped_members(shape, data, *, base_url, user_id, size):
    data = [dict(member) for member in data]
    extra = {"id": HOSTILE_MEMBER_ID, "state": "active", "hold": False, "mute": False}
    if shape == "nul-text":
        data.append({**extra, "call": call_url(base_url, user_id, f"c-nul{HOSTILE_TEXT}id")})
    elif shape == "long-state":
        for member in data:
            member["state"] = LONG_STATE
    elif shape == "long-call-id":
        data.append({**extra, "call": call_url(base_url, user_id, LONG_CALL_ID)})
    elif shape == "huge-body":
        data.append({**extra, "call": call_url(base_url, user_id, "c-huge"), "padding": "x" * size})
    return data
