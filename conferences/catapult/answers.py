"""What Catapult's answers mean: the typed errors a call raises, the typed results it
returns (frozen dataclasses), and the pure functions that read a body into a result
(``decode_*``, ``parse_*``), so they can be tested without a server. No HTTP here (that
is conferences/catapult/client.py, which raises and returns these), no Django.

One unreadable optional field does not lose the rest of a conference or member: it is
recorded in the result's ``unknown`` and ``problems``.

Every text value is made safe here, once, before anyone stores or shows it
(docs/catapult-api.md §5.5): ``clean_text`` drops control characters, lone surrogates,
bidirectional overrides and zero-width characters and cuts the text to its field's limit
(the cut ends in "…"); ``read_state`` turns a state outside the documented ones into
"unknown" and keeps what was sent, cleaned, as ``state_raw``. Callbacks are read by the
very same ``parse_conference`` and ``parse_member`` (conferences/callbacks/processing.py),
so a value seen by a poll and told by a callback is stored alike.

Reference: docs/catapult-api.md in this repository (sections are cited as §n below).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import unquote, urlsplit

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*")

# --------------------------------------------------------------------------- safe text
# The longest text kept of each field (characters), each within its database column
# (conferences/models.py) or, for a text column, long enough for any sensible value.
ID_LIMIT = 100  # a conference or member id (Conference.conference_id, Member.member_id)
FROM_LIMIT = 50  # `from` (Conference.from_number)
CALL_ID_LIMIT = 200  # a member's call id (Member.call_id)
TAG_LIMIT = 1000  # `tag`
URL_LIMIT = 2000  # `callbackUrl`, `fallbackUrl`, a member's `call`
WORD_LIMIT = 100  # `profile`, `callbackHttpMethod`
STATE_RAW_LIMIT = 100  # an undocumented state, as sent
# The states the API documents (§1.2, §2); any other reads as UNKNOWN_STATE.
DOCUMENTED_STATES = frozenset({"created", "active", "completed"})
UNKNOWN_STATE = "unknown"
CUT_MARK = "…"
# Never kept from an answer: control characters (Unicode category Cc, NUL included, which
# Postgres cannot store), lone surrogates (not encodable), zero-width characters and
# marks (U+200B-U+200F), bidirectional embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069) and the byte order mark (U+FEFF), which could disguise what a page shows.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)


def clean_text(value: str, *, limit: int) -> str:
    """``value`` without unsafe characters (above), cut to at most ``limit`` characters;
    a cut value ends in "…". The one rule for every text read from Catapult, in answers
    and in callbacks alike."""
    # Every unsafe character is unprintable: most values skip the regular expression.
    if not value.isprintable():
        value = _UNSAFE.sub("", value)
    if len(value) > limit:
        value = value[: limit - 1] + CUT_MARK
    return value


def read_state(value: str) -> tuple[str | None, str | None]:
    """``(state, state_raw)`` for a conference or member state sent as text: a documented
    state, in lower case, with state_raw None; any other text "unknown" with state_raw
    what was sent, cleaned and cut to STATE_RAW_LIMIT; ``(None, None)`` when nothing is
    left of it (blank). Used by answers and callbacks alike."""
    if value in DOCUMENTED_STATES:
        return value, None
    text = _UNSAFE.sub("", value).strip()
    if not text:
        return None, None
    state = text.lower()
    if state in DOCUMENTED_STATES:
        return state, None
    return UNKNOWN_STATE, clean_text(text, limit=STATE_RAW_LIMIT)


T = TypeVar("T")

# --------------------------------------------------------------------------- errors


class CatapultError(Exception):
    """Base class of every error a Catapult call raises (conferences/catapult/client.py)."""

    transient: bool = False
    poll_status: str = "api_error"
    label: str = "Catapult error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        category: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.category = category

    def title(self) -> str:
        """What kind of error this is, as shown before its message."""
        return self.label

    def __str__(self) -> str:
        context = []
        if self.status is not None:
            context.append(f"HTTP {self.status}")
        if self.code and self.code != self.message:
            context.append(self.code)
        suffix = f" ({', '.join(context)})" if context else ""
        return f"{self.title()}: {self.message}{suffix}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, "
            f"code={self.code!r}, category={self.category!r})"
        )


class TransientError(CatapultError):
    """Timeouts, connection failures and 5xx: try again later."""

    transient = True
    poll_status = "unreachable"
    label = "Catapult unreachable"


class Conflict(TransientError):
    """409 (category ``conflict``: ``conference-update-conflict`` and the like): Catapult
    answered, but another change to the same conference was in progress. Transient, on a
    read as on an update: try again later (§4.5)."""

    poll_status = "conflict"
    label = "Conflict"


class NotFound(CatapultError):
    """404: the conference or member does not exist (for this user)."""

    poll_status = "not_found"
    label = "Not found"


class CredentialsRejected(CatapultError):
    """401, or a 403 about authentication/authorization: a human must fix the credentials."""

    poll_status = "credentials_rejected"
    label = "Credentials rejected"


class RateLimited(CatapultError):
    """429, or a 403 with category ``limit`` whose code names a rate limit
    (``is_rate_limit_code``): the account must rest until ``reset_at``."""

    transient = True
    poll_status = "rate_limited"
    label = "Rate limited"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        category: str | None = None,
        reset_at: datetime | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, category=category)
        self.reset_at = reset_at


class MalformedResponse(CatapultError):
    """A success response whose body or headers we cannot make sense of."""

    poll_status = "malformed"
    label = "Malformed response"


class ApiError(CatapultError):
    """Any other non-2xx response, including a 3xx (redirects are never followed)."""

    poll_status = "api_error"
    label = "API error"


class Forbidden(ApiError):
    """A 403 that neither rejects the credentials nor is the account's rate limit, named by
    its category: "forbidden" (invalid conference state), "credit", or a "limit" that is no
    rate (the 20-member cap, ``conference-max-members``). It pauses nothing (§4.5)."""

    def title(self) -> str:
        category = (self.category or "").lower()
        if category in ("", "forbidden"):
            return f"{self.label}: forbidden"
        return f"{self.label}: forbidden ({category})"


# The 403 ``limit`` codes the reference documents as an account's rate (§4.3): call
# creation and message sending (`call-rate-limit`, `message-rate-limit`; the simulator
# says `call-rate-limit-reached`). Every other 403 ``limit`` (the member cap) is Forbidden.
_RATE_LIMIT_CODE = re.compile(r"(call|message)-rate-limit")


def is_rate_limit_code(code: str | None) -> bool:
    """Whether a 403 with category ``limit`` and this ``code`` is the account's rate limit
    (then it rests the account), not a limit of one conference such as its 20 members."""
    return bool(code) and _RATE_LIMIT_CODE.match(code.lower()) is not None


def rests_account(error: CatapultError) -> bool:
    """Whether the error pauses the whole account, not only the conference polled: a
    rate limit (429, or a 403 ``limit`` on a call or message rate) until its reset time,
    or rejected credentials. A conflict, the member cap or any other 403 pauses nothing."""
    return isinstance(error, RateLimited | CredentialsRejected)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Conference:
    """A conference as the API reported it (docs/catapult-api.md §1.2).

    A field this response did not make known is None and named in ``unknown``: the key
    was absent (normal, §6 item 1), was JSON null, or held a value we could not read.
    Each unreadable value also has a short note in ``problems`` (§6 item 17).
    """

    id: str
    state: str | None = None
    # What an undocumented state said (state is then "unknown"); None otherwise.
    state_raw: str | None = None
    from_number: str | None = None
    created_time: datetime | None = None
    completed_time: datetime | None = None
    active_members: int | None = None
    hold: bool | None = None
    mute: bool | None = None
    profile: str | None = None
    callback_url: str | None = None
    callback_http_method: str | None = None
    callback_timeout: int | None = None
    fallback_url: str | None = None
    tag: str | None = None
    unknown: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Member:
    """A conference member (§2); departed members stay listed with state "completed".

    ``unknown`` and ``problems`` work as for Conference. ``call_id`` is the last path
    segment of ``call_url``, so it is unknown whenever ``call_url`` is (§6 item 13).
    """

    id: str
    state: str | None = None
    state_raw: str | None = None  # as for Conference
    mute: bool | None = None
    hold: bool | None = None
    join_tone: bool | None = None
    leaving_tone: bool | None = None
    added_time: datetime | None = None
    removed_time: datetime | None = None
    call_url: str | None = None
    call_id: str | None = None
    unknown: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemberList:
    """What ``list_members`` read: the usable members, a note for each list item it had
    to skip (or for pages it did not read), and how many HTTP requests it made."""

    members: tuple[Member, ...]
    problems: tuple[str, ...] = ()
    pages: int = 1


@dataclass(frozen=True)
class MembersPage:
    """One page of a members list, and the next page's URL (None on the last page)."""

    members: tuple[Member, ...]
    problems: tuple[str, ...] = ()
    next_page_url: str | None = None


# --------------------------------------------------------------------------- parsing


def parse_timestamp(value: object) -> datetime | None:
    """Return an aware UTC datetime for any timestamp form in §5.3, or None for None/"".

    Accepted: ISO 8601 with ``Z``, ``-02`` (hour-only), ``-02:00`` offsets, with or
    without fractions; naive strings (taken as UTC); epoch milliseconds as an int or
    an all-digit string. Anything else raises MalformedResponse.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise MalformedResponse(f"timestamp is a boolean: {value!r}")
    if isinstance(value, int):
        return _from_epoch_milliseconds(value)
    if not isinstance(value, str):
        raise MalformedResponse(f"timestamp has type {type(value).__name__}: {_describe(value)}")
    text = value.strip()
    if not text:
        return None
    try:
        if text.isascii() and text.isdigit():
            return _from_epoch_milliseconds(int(text))
        parsed = datetime.fromisoformat(text.upper())
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # int() of thousands of digits; year 1 at +01:00
        raise MalformedResponse(f"unparseable timestamp: {_describe(value)}") from None


def _from_epoch_milliseconds(value: int) -> datetime:
    try:
        return EPOCH + timedelta(milliseconds=value)
    except OverflowError:
        raise MalformedResponse(f"epoch timestamp out of range: {_describe(value)}") from None


def parse_conference(data: object, *, id_key: str = "id", state_key: str = "state") -> Conference:
    """Build a Conference from a decoded JSON body; unknown keys are ignored (§6 item 2).

    The one reader of a conference's fields, for polls and callbacks alike: a GET
    conference answer (the defaults), or a callback event, which names the id
    ``conferenceId`` and the state ``status`` (§3.1). Only a body that is not an object or
    has no usable id raises MalformedResponse; an unreadable optional field is recorded
    as unknown, with a note in ``problems``.
    """
    if not isinstance(data, dict):
        raise MalformedResponse(f"expected a conference object, got {_json_type(data)}")
    conference_id = read_id(data.get(id_key))
    fields = _FieldReader(data)
    state, state_raw = fields.read(state_key, _as_state) or (None, None)
    values = {
        "state": state,
        "from_number": fields.read("from", _as_from),
        "created_time": fields.read("createdTime", _as_timestamp),
        "completed_time": fields.read("completedTime", _as_timestamp),
        "active_members": fields.read("activeMembers", _as_count),
        "hold": fields.read("hold", _as_boolean),
        "mute": fields.read("mute", _as_boolean),
        "profile": fields.read("profile", _as_word),
        "callback_url": fields.read("callbackUrl", _as_url_text),
        "callback_http_method": fields.read("callbackHttpMethod", _as_word),
        "callback_timeout": fields.read("callbackTimeout", _as_count),
        "fallback_url": fields.read("fallbackUrl", _as_url_text),
        "tag": fields.read("tag", _as_tag),
    }
    return Conference(
        id=conference_id,
        state_raw=state_raw,
        **values,
        unknown=_unknown(values),
        problems=fields.problems(),
    )


def parse_member(data: object, *, id_key: str = "id") -> Member:
    """Build a Member from a decoded JSON body; unknown keys are ignored (§6 item 2).

    The one reader of a member's fields, for polls and callbacks alike: a member answer
    (the default), or a ``conference-member`` event, which names the id ``memberId``
    (§3.2). Only a body that is not an object or has no usable id raises
    MalformedResponse; an unreadable optional field is recorded as unknown, with a note
    in ``problems``.
    """
    if not isinstance(data, dict):
        raise MalformedResponse(f"expected a member object, got {_json_type(data)}")
    member_id = read_id(data.get(id_key))
    fields = _FieldReader(data)
    state, state_raw = fields.read("state", _as_state) or (None, None)
    values = {
        "state": state,
        "mute": fields.read("mute", _as_boolean),
        "hold": fields.read("hold", _as_boolean),
        "join_tone": fields.read("joinTone", _as_boolean),
        "leaving_tone": fields.read("leavingTone", _as_boolean),
        "added_time": fields.read("addedTime", _as_timestamp),
        "removed_time": fields.read("removedTime", _as_timestamp),
        "call_url": fields.read("call", _as_url),
    }
    values["call_id"] = None
    if values["call_url"] is not None:
        call_id = last_path_segment(values["call_url"])
        if call_id is not None:
            call_id = clean_text(call_id, limit=CALL_ID_LIMIT) or None
        values["call_id"] = call_id
        if call_id is None:
            fields.note("'call' has no call id in its path")
        values["call_url"] = clean_text(values["call_url"], limit=URL_LIMIT)
    return Member(
        id=member_id,
        state_raw=state_raw,
        **values,
        unknown=_unknown(values),
        problems=fields.problems(),
    )


def decode_conference(content: bytes, *, expected_id: str) -> Conference:
    """The Conference in a GET conference body, which must be about ``expected_id``.

    Raises MalformedResponse (and nothing else) for a body that is empty, not JSON,
    nested too deeply, not an object, without a usable id, or about another conference.
    """
    conference = parse_conference(_decode_json(content))
    if conference.id != expected_id:
        raise MalformedResponse(
            f"asked for conference {_describe(expected_id)}, "
            f"got an answer for {_describe(conference.id)}"
        )
    return conference


def decode_member(content: bytes, *, expected_id: str) -> Member:
    """The Member in a GET member body, which must be about ``expected_id`` (as above)."""
    member = parse_member(_decode_json(content))
    if member.id != expected_id:
        raise MalformedResponse(
            f"asked for member {_describe(expected_id)}, got an answer for {_describe(member.id)}"
        )
    return member


def decode_members(content: bytes) -> tuple[tuple[Member, ...], tuple[str, ...]]:
    """The members on one page of a members list (§1.6), and a note per skipped item.

    An item that is not an object or has no usable id is skipped; its note names its
    position (counting from 1), never its content. Raises MalformedResponse (and nothing
    else) when the body as a whole is unusable: empty, not JSON, or not a list.
    """
    data = _decode_json(content)
    if not isinstance(data, list):
        raise MalformedResponse(f"expected a list of members, got {_json_type(data)}")
    members: list[Member] = []
    problems: list[str] = []
    for position, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            problems.append(f"item {position} is {_json_type(item)}, not a member; skipped")
            continue
        try:
            members.append(parse_member(item))
        except MalformedResponse:
            problems.append(f"item {position} has no usable member id; skipped")
    return tuple(members), tuple(problems)


def _decode_json(content: bytes) -> object:
    if not content or not content.strip():
        raise MalformedResponse("empty body")
    try:
        return json.loads(content)
    except RecursionError:
        raise MalformedResponse("body is nested too deeply to read") from None
    except ValueError:  # includes UnicodeDecodeError and integers of thousands of digits
        raise MalformedResponse("body is not JSON") from None


class _FieldProblem(Exception):
    """A value that is present but unreadable; the message follows the key's name."""


class _FieldReader:
    """Reads the optional fields of one JSON object. An unreadable value reads as None
    and leaves a note such as "'hold' should be a boolean, got 'yes'"."""

    def __init__(self, data: dict) -> None:
        self._data = data
        self._notes: list[str] = []

    def read(self, key: str, parse: Callable[[object], T]) -> T | None:
        value = self._data.get(key)
        if value is None:
            return None
        try:
            return parse(value)
        except _FieldProblem as problem:
            self.note(f"'{key}' {problem}")
            return None

    def note(self, text: str) -> None:
        self._notes.append(text)

    def problems(self) -> tuple[str, ...]:
        return tuple(self._notes)


def _unknown(values: dict[str, object]) -> frozenset[str]:
    return frozenset(name for name, value in values.items() if value is None)


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    raise _FieldProblem(f"should be a string, got {_describe(value)}")


def _as_from(value: object) -> str:
    return clean_text(_as_text(value), limit=FROM_LIMIT)


def _as_tag(value: object) -> str:
    return clean_text(_as_text(value), limit=TAG_LIMIT)


def _as_word(value: object) -> str:
    return _not_blank(clean_text(_as_text(value), limit=WORD_LIMIT))


def _as_url_text(value: object) -> str:
    return _not_blank(clean_text(_as_text(value), limit=URL_LIMIT))


def _not_blank(text: str) -> str:
    """A setting (profile, a callback URL or method) that says nothing is no setting."""
    if not text.strip():
        raise _FieldProblem("is blank")
    return text


def _as_state(value: object) -> tuple[str, str | None]:
    """``(state, state_raw)`` by ``read_state``: an undocumented state is "unknown" and
    what was sent is kept beside it (§6 item 4)."""
    state, state_raw = read_state(_as_text(value))
    if state is None:
        raise _FieldProblem("is blank")
    return state, state_raw


def _as_integer(value: object) -> int:
    """An integer, also as a whole float or a string of digits (§6 item 5)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value) and len(value) <= 30:
        return int(value)
    raise _FieldProblem(f"should be an integer, got {_describe(value)}")


def _as_count(value: object) -> int:
    """An integer that cannot be negative (a number of members, milliseconds)."""
    number = _as_integer(value)
    if number < 0:
        raise _FieldProblem(f"should not be negative, got {_describe(value)}")
    return number


def _as_boolean(value: object) -> bool:
    """A boolean, also as the strings "true"/"false" in any case (§6 item 5)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _FieldProblem(f"should be a boolean, got {_describe(value)}")


def _as_timestamp(value: object) -> datetime | None:
    try:
        return parse_timestamp(value)
    except MalformedResponse:
        raise _FieldProblem(f"should be a timestamp, got {_describe(value)}") from None


def _as_url(value: object) -> str:
    """A URL string we can split; the value is not repeated in the note, since a URL
    may carry ``user:password@`` (§3)."""
    if not isinstance(value, str):
        raise _FieldProblem(f"should be a URL, got {_json_type(value)}")
    if not value.strip():
        raise _FieldProblem("is blank")
    try:
        urlsplit(value.strip())
    except ValueError:  # e.g. "http://[::1/x": an unbalanced IPv6 host
        raise _FieldProblem("is not a usable URL") from None
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _describe(value: object) -> str:
    """A short description of a JSON value for a message: the repr of a scalar, cut to
    60 characters; only the type of a list or object (its repr could be huge or deep)."""
    if isinstance(value, dict | list) or value is None:
        return _json_type(value)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return "a very large number"
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def read_id(value: object) -> str:
    """A conference or member id as sent. An id is never altered (a cut or cleaned id
    would name another conference or member): one longer than ID_LIMIT or with unsafe
    characters is no id (MalformedResponse). The one rule for ids in answers and
    callbacks alike."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 200:
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise MalformedResponse(f"missing or invalid 'id': {_describe(value)}")
    if len(value) > ID_LIMIT:
        raise MalformedResponse(f"'id' is longer than {ID_LIMIT} characters")
    if not value.isprintable() and _UNSAFE.search(value) is not None:
        raise MalformedResponse(f"'id' has control or invisible characters: {_describe(value)}")
    return value


def last_path_segment(url: str) -> str | None:
    """The last non-empty path segment of an absolute or relative URL (host ignored).
    Raises ValueError for a URL that cannot be split (an unbalanced IPv6 host)."""
    segments = [segment for segment in urlsplit(url.strip()).path.split("/") if segment]
    return unquote(segments[-1]) if segments else None
