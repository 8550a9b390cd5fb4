"""HTTP client for the Bandwidth Catapult v1 conference API.

HTTP only: no Django, no ORM. One method per endpoint, explicit timeouts, typed
results (frozen dataclasses) and typed errors. Every error carries ``transient``
(retry later) and ``poll_status`` (the confwatch poll outcome it maps to).

Whatever the server answers, a call returns a result or raises a CatapultError
subclass; ValueError is kept for the caller's own bad arguments. One unreadable
optional field does not lose the rest of a conference or member: it is recorded in the
result's ``unknown`` and ``problems``. The pure ``decode_*`` functions turn a body into
a result, so they can be tested without a server.

Reference: docs/catapult-api.md in this repository (sections are cited as §n below).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Self, TypeVar
from urllib.parse import quote, unquote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

__all__ = [
    "REAL_API_BASE_URL",
    "ApiError",
    "CatapultClient",
    "CatapultError",
    "Conference",
    "CredentialsRejected",
    "MalformedResponse",
    "Member",
    "MemberList",
    "NotFound",
    "RateLimited",
    "TransientError",
    "decode_conference",
    "decode_member",
    "decode_members",
    "parse_conference",
    "parse_member",
    "parse_timestamp",
]

logger = logging.getLogger(__name__)

REAL_API_BASE_URL = "https://api.catapult.inetwork.com"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Any Basic credentials in a message (ours are scrubbed exactly; this catches the rest).
_BASIC_CREDENTIALS = re.compile(r"Basic\s+[A-Za-z0-9+/=]{8,}", re.IGNORECASE)
_MAX_MESSAGE_LENGTH = 300
_INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*")

T = TypeVar("T")


# --------------------------------------------------------------------------- errors


class CatapultError(Exception):
    """Base class for everything this module raises about a Catapult call."""

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

    def __str__(self) -> str:
        context = []
        if self.status is not None:
            context.append(f"HTTP {self.status}")
        if self.code and self.code != self.message:
            context.append(self.code)
        suffix = f" ({', '.join(context)})" if context else ""
        return f"{self.label}: {self.message}{suffix}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, "
            f"code={self.code!r}, category={self.category!r})"
        )


class TransientError(CatapultError):
    """Timeouts, connection failures, 5xx and 409: try again later."""

    transient = True
    poll_status = "unreachable"
    label = "Catapult unreachable"


class NotFound(CatapultError):
    """404: the conference or member does not exist (for this user)."""

    poll_status = "not_found"
    label = "Not found"


class CredentialsRejected(CatapultError):
    """401, or a 403 about authentication/authorization: a human must fix the credentials."""

    poll_status = "credentials_rejected"
    label = "Credentials rejected"


class RateLimited(CatapultError):
    """429, or a 403 with category ``limit`` (incl. the 20-member cap)."""

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
        return _EPOCH + timedelta(milliseconds=value)
    except OverflowError:
        raise MalformedResponse(f"epoch timestamp out of range: {_describe(value)}") from None


def parse_conference(data: object) -> Conference:
    """Build a Conference from a decoded JSON body; unknown keys are ignored (§6 item 2).

    Only a body that is not an object or has no usable ``id`` raises MalformedResponse;
    an unreadable optional field is recorded as unknown, with a note in ``problems``.
    """
    if not isinstance(data, dict):
        raise MalformedResponse(f"expected a conference object, got {_json_type(data)}")
    conference_id = _id_field(data)
    fields = _FieldReader(data)
    values = {
        "state": fields.read("state", _as_state),
        "from_number": fields.read("from", _as_text),
        "created_time": fields.read("createdTime", _as_timestamp),
        "completed_time": fields.read("completedTime", _as_timestamp),
        "active_members": fields.read("activeMembers", _as_integer),
        "hold": fields.read("hold", _as_boolean),
        "mute": fields.read("mute", _as_boolean),
        "profile": fields.read("profile", _as_text),
        "callback_url": fields.read("callbackUrl", _as_text),
        "callback_http_method": fields.read("callbackHttpMethod", _as_text),
        "callback_timeout": fields.read("callbackTimeout", _as_integer),
        "fallback_url": fields.read("fallbackUrl", _as_text),
        "tag": fields.read("tag", _as_text),
    }
    return Conference(
        id=conference_id, **values, unknown=_unknown(values), problems=fields.problems()
    )


def parse_member(data: object) -> Member:
    """Build a Member from a decoded JSON body; unknown keys are ignored (§6 item 2).

    Only a body that is not an object or has no usable ``id`` raises MalformedResponse;
    an unreadable optional field is recorded as unknown, with a note in ``problems``.
    """
    if not isinstance(data, dict):
        raise MalformedResponse(f"expected a member object, got {_json_type(data)}")
    member_id = _id_field(data)
    fields = _FieldReader(data)
    values = {
        "state": fields.read("state", _as_state),
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
        values["call_id"] = _last_path_segment(values["call_url"])
        if values["call_id"] is None:
            fields.note("'call' has no call id in its path")
    return Member(id=member_id, **values, unknown=_unknown(values), problems=fields.problems())


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


def _as_state(value: object) -> str:
    """Lower-cased and kept even when it is not a documented state (§6 item 4)."""
    state = _as_text(value).strip().lower()
    if not state:
        raise _FieldProblem("is blank")
    return state


def _as_integer(value: object) -> int:
    """An integer, also as a whole float or a string of digits (§6 item 5)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value) and len(value) <= 30:
        return int(value)
    raise _FieldProblem(f"should be an integer, got {_describe(value)}")


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


def _id_field(data: dict) -> str:
    value = data.get("id")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 200:
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise MalformedResponse(f"missing or invalid 'id': {_describe(value)}")
    return value


def _last_path_segment(url: str) -> str | None:
    """The last non-empty path segment of an absolute or relative URL (host ignored).
    Raises ValueError for a URL that cannot be split (an unbalanced IPv6 host)."""
    segments = [segment for segment in urlsplit(url.strip()).path.split("/") if segment]
    return unquote(segments[-1]) if segments else None


# --------------------------------------------------------------------------- error mapping


def _error_from_response(response: requests.Response, *, scrub) -> CatapultError:
    """Map a non-2xx response to the matching CatapultError subclass (§4.5). Never raises."""
    status = response.status_code
    body = _decode_error_body(response.content)
    category = _optional_text(body.get("category"))
    code = _optional_text(body.get("code"))
    message = (
        _optional_text(body.get("message")) or code or (response.reason or "").strip()
    ) or f"HTTP {status}"
    message = scrub(_one_line(message))
    code = scrub(code) if code else None
    fields = {"status": status, "code": code, "category": category}
    category_key = (category or "").lower()

    if status == 401:
        return CredentialsRejected(message, **fields)
    if status == 403 and category_key == "limit":
        return RateLimited(message, reset_at=_reset_at(response, body), **fields)
    if status == 403 and category_key in ("", "authentication", "authorization"):
        return CredentialsRejected(message, **fields)
    if status == 404:
        return NotFound(message, **fields)
    if status == 429:
        return RateLimited(message, reset_at=_reset_at(response, body), **fields)
    if status == 409 or status >= 500:
        return TransientError(message, **fields)
    return ApiError(message, **fields)


def _decode_error_body(content: bytes) -> dict:
    """The error body as a dict; {} for empty, non-JSON (HTML) or non-object bodies."""
    if not content or not content.strip():
        return {}
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _optional_text(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        text = str(value).strip()
        return text or None
    return None


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _MAX_MESSAGE_LENGTH:
        text = text[: _MAX_MESSAGE_LENGTH - 1] + "…"
    return text


def _reset_at(response: requests.Response, body: dict) -> datetime | None:
    """When a rate limit clears (§4.3).

    ``Retry-After`` wins when present (the server told us explicitly); otherwise
    ``X-RateLimit-Reset`` (epoch ms, or epoch seconds defensively); otherwise the
    ``rateLimitResetTime`` detail of the body; otherwise None.
    """
    retry_after = _parse_retry_after(response.headers.get("Retry-After"))
    if retry_after is not None:
        return retry_after
    reset = _parse_epoch(response.headers.get("X-RateLimit-Reset"))
    if reset is not None:
        return reset
    details = body.get("details")
    if isinstance(details, list):
        for detail in details:
            if isinstance(detail, dict) and detail.get("name") == "rateLimitResetTime":
                return _parse_epoch(detail.get("value"))
    return None


def _parse_epoch(value: object) -> datetime | None:
    """Epoch milliseconds (13 digits), or seconds (10 digits) defensively; None if unusable."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    try:
        number = int(text) if text.isascii() and text.isdigit() else float(text)
    except ValueError:
        return None
    if not 0 < number < float("inf"):
        return None
    try:
        if number >= 100_000_000_000:
            return _EPOCH + timedelta(milliseconds=number)
        return _EPOCH + timedelta(seconds=number)
    except OverflowError:
        return None


def _parse_retry_after(value: str | None) -> datetime | None:
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        if value.isascii() and value.isdigit():
            return datetime.now(UTC) + timedelta(seconds=int(value))
        parsed = parsedate_to_datetime(value)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


# --------------------------------------------------------------------------- client


def _drop_none(fields: dict) -> dict:
    """Request bodies carry only the fields that were given: never explicit nulls."""
    return {key: value for key, value in fields.items() if value is not None}


class OneOriginAdapter(HTTPAdapter):
    """requests' HTTPAdapter that looks up the connection pool of the API's origin once:
    the stock adapter parses the URL and builds a pool key on every request, a twentieth
    of a round's CPU. Requests elsewhere, or with other TLS or proxy settings, take the
    stock path."""

    origin = None  # the API's base URL as requests prepares it ("http://host:port/...")
    _cached = None  # ((verify, cert, proxies), pool)

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        if self.origin is None or not request.url.startswith(self.origin):
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        settings = (verify, cert, proxies)
        cached = self._cached
        if cached is None or cached[0] != settings:
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            cached = self._cached = (settings, pool)
        return cached[1]

    def close(self):
        self._cached = None
        super().close()


class CatapultClient:
    """A small client for the v1 conference endpoints of one Catapult user.

    One ``requests.Session`` (connection pool of ``pool_size``, no automatic retries,
    no redirects). Use as a context manager or call ``close()``.
    """

    def __init__(
        self,
        *,
        base_url: str,
        user_id: str,
        api_token: str,
        api_secret: str,
        pool_size: int = 4,
        timeout: float | tuple[float, float] = (3.05, 10.0),
        user_agent: str = "confwatch/1",
    ) -> None:
        base_url = (base_url or "").strip().rstrip("/")
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        user_id = (user_id or "").strip()
        api_token = (api_token or "").strip()
        api_secret = (api_secret or "").strip()
        if not user_id or not api_token or not api_secret:
            raise ValueError("user_id, api_token and api_secret must all be non-empty")
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size!r}")

        self.base_url = base_url
        self.user_id = user_id
        self.timeout = timeout
        # What must never appear in a message: the token, the secret, and the Basic
        # credentials as they travel (a server may echo the Authorization header).
        basic = base64.b64encode(f"{api_token}:{api_secret}".encode()).decode()
        self._secrets = (basic, api_token, api_secret)

        self._session = requests.Session()
        adapter = OneOriginAdapter(
            pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0
        )
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.auth = (api_token, api_secret)
        self._session.headers.update({"Accept": "application/json", "User-Agent": user_agent})
        # The environment's proxy and CA bundle settings, read once for this API's host:
        # requests would otherwise walk os.environ on every request (a fifth of a round's
        # CPU at 2,000 conferences).
        environment = self._session.merge_environment_settings(base_url, {}, None, None, None)
        self._session.proxies = environment["proxies"]
        self._session.verify = environment["verify"]
        self._session.trust_env = False
        # Every GET carries the same headers and credentials: prepared once, copied per
        # request (requests' own per-request preparation costs more than the parsing).
        # GETs go to the adapter itself: Session.send adds cookie, hook and redirect
        # handling the API needs none of, at a tenth of a round's CPU.
        self._get_template = self._session.prepare_request(requests.Request("GET", base_url))
        self._adapter = adapter
        adapter.origin = self._get_template.url
        # A CA bundle path means a stat() per request to the adapter; plain HTTP has no
        # certificates to check.
        self._get_verify = self._session.verify if base_url.startswith("https:") else True

    def __repr__(self) -> str:
        return f"CatapultClient(base_url={self.base_url!r}, user_id={self.user_id!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- conferences

    def get_conference(self, conference_id: str) -> Conference:
        """The conference; MalformedResponse if the answer is about another id (§6 item 16)."""
        response = self._request("GET", self._conference_url(conference_id))
        conference = self._decode(decode_conference, response, expected_id=conference_id)
        return self._scrub_problems(conference)

    def create_conference(
        self,
        *,
        from_number: str,
        callback_url: str | None = None,
        callback_http_method: str | None = None,
        callback_timeout: int | None = None,
        fallback_url: str | None = None,
        profile: str | None = None,
        tag: str | None = None,
    ) -> str:
        """Create a conference and return its id (from the ``Location`` header)."""
        body = _drop_none(
            {
                "from": from_number,
                "callbackUrl": callback_url,
                "callbackHttpMethod": callback_http_method,
                "callbackTimeout": callback_timeout,
                "fallbackUrl": fallback_url,
                "profile": profile,
                "tag": tag,
            }
        )
        response = self._request("POST", self._conferences_url(), body=body)
        return self._id_from_location(response)

    def update_conference(
        self,
        conference_id: str,
        *,
        state: str | None = None,
        hold: bool | None = None,
        mute: bool | None = None,
        callback_url: str | None = None,
        callback_http_method: str | None = None,
        callback_timeout: int | None = None,
        fallback_url: str | None = None,
        tag: str | None = None,
    ) -> None:
        """Update a conference; ``state="completed"`` terminates it. Sends only given fields."""
        body = _drop_none(
            {
                "state": state,
                "hold": hold,
                "mute": mute,
                "callbackUrl": callback_url,
                "callbackHttpMethod": callback_http_method,
                "callbackTimeout": callback_timeout,
                "fallbackUrl": fallback_url,
                "tag": tag,
            }
        )
        if not body:
            raise ValueError("update_conference needs at least one field to change")
        self._request("POST", self._conference_url(conference_id), body=body)

    # ---- members

    def list_members(self, conference_id: str, *, max_pages: int = 20) -> MemberList:
        """All members, departed ones included; follows ``Link: rel="next"`` up to max_pages
        (§5.4). A list item that is not a member with an id is skipped and noted in
        ``problems``; a page that is not a JSON list raises MalformedResponse."""
        if max_pages < 1:
            raise ValueError(f"max_pages must be at least 1, got {max_pages!r}")
        members: list[Member] = []
        problems: list[str] = []
        url = None
        for page in range(1, max_pages + 1):
            result = self.list_members_page(conference_id, page_url=url)
            members.extend(result.members)
            problems.extend(f"page {page}: {problem}" for problem in result.problems)
            if result.next_page_url is None:
                return MemberList(members=tuple(members), problems=tuple(problems), pages=page)
            url = result.next_page_url
        logger.warning(
            "catapult: stopped listing members of %s after %d pages (more advertised)",
            conference_id,
            max_pages,
        )
        problems.append(f"stopped after {max_pages} pages; the server advertised more")
        return MemberList(members=tuple(members), problems=tuple(problems), pages=max_pages)

    def list_members_page(self, conference_id: str, *, page_url: str | None = None) -> MembersPage:
        """One page of the members list: one HTTP request, so a caller paced by a request
        budget can spend one slot per page. ``page_url`` is a ``next_page_url`` this client
        returned before (None: the first page); it must be on the API's own origin."""
        first = self._conference_url(conference_id, "members")
        url = first
        if page_url is not None:
            here, there = urlsplit(first), urlsplit(page_url)
            if (here.scheme, here.netloc) != (there.scheme, there.netloc):
                raise ValueError("page_url must be on the API's origin")
            url = page_url
        response = self._request("GET", url)
        page_members, page_problems = self._decode(decode_members, response)
        for problem in page_problems:
            logger.warning("catapult: members of %s: %s", conference_id, problem)
        return MembersPage(
            members=tuple(self._scrub_problems(member) for member in page_members),
            problems=tuple(page_problems),
            next_page_url=self._next_page_url(response),
        )

    def get_member(self, conference_id: str, member_id: str) -> Member:
        """The member; MalformedResponse if the answer is about another id (§6 item 16)."""
        response = self._request("GET", self._conference_url(conference_id, "members", member_id))
        member = self._decode(decode_member, response, expected_id=member_id)
        return self._scrub_problems(member)

    def add_member(
        self,
        conference_id: str,
        *,
        call_id: str,
        join_tone: bool | None = None,
        leaving_tone: bool | None = None,
        mute: bool | None = None,
        hold: bool | None = None,
    ) -> str:
        """Add an existing call to the conference and return the member id."""
        body = _drop_none(
            {
                "callId": call_id,
                "joinTone": join_tone,
                "leavingTone": leaving_tone,
                "mute": mute,
                "hold": hold,
            }
        )
        response = self._request("POST", self._conference_url(conference_id, "members"), body=body)
        return self._id_from_location(response)

    def update_member(
        self,
        conference_id: str,
        member_id: str,
        *,
        state: str | None = None,
        mute: bool | None = None,
        hold: bool | None = None,
        join_tone: bool | None = None,
        leaving_tone: bool | None = None,
    ) -> None:
        """Update a member; ``state="completed"`` removes it. Sends only given fields."""
        body = _drop_none(
            {
                "state": state,
                "mute": mute,
                "hold": hold,
                "joinTone": join_tone,
                "leavingTone": leaving_tone,
            }
        )
        if not body:
            raise ValueError("update_member needs at least one field to change")
        url = self._conference_url(conference_id, "members", member_id)
        self._request("POST", url, body=body)

    # ---- plumbing

    def _conferences_url(self) -> str:
        return f"{self.base_url}/v1/users/{quote(self.user_id, safe='')}/conferences"

    def _conference_url(self, conference_id: str, *more: str) -> str:
        """The URL of a conference or a resource below it. "." and ".." are refused: the
        HTTP layer would resolve them to the collection paths (§5.2)."""
        segments = [conference_id, *more]
        for segment in segments:
            if not isinstance(segment, str) or not segment:
                raise ValueError(f"ids must be non-empty strings, got {segment!r}")
            if segment in (".", ".."):
                raise ValueError(f"{segment!r} cannot be an id")
        return "/".join([self._conferences_url(), *(quote(s, safe="") for s in segments)])

    def _request(self, method: str, url: str, *, body: dict | None = None) -> requests.Response:
        """Send one request; return a 2xx response or raise a CatapultError."""
        path = urlsplit(url).path
        started = time.monotonic()
        try:
            response = self._send(method, url, body)
        except requests.Timeout as exc:
            raise TransientError(
                self._scrub(f"{method} {path} timed out ({type(exc).__name__})")
            ) from exc
        except requests.exceptions.ContentDecodingError as exc:
            raise MalformedResponse(
                self._scrub(f"{method} {path}: undecodable body ({type(exc).__name__})")
            ) from exc
        except requests.RequestException as exc:
            raise TransientError(
                self._scrub(f"{method} {path} failed: {type(exc).__name__}")
            ) from exc
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.debug(
            "catapult %s %s -> %s in %.0f ms", method, path, response.status_code, elapsed_ms
        )
        if 200 <= response.status_code < 300:
            return response
        error = _error_from_response(response, scrub=self._scrub)
        logger.info("catapult %s %s failed: %s", method, path, error)
        raise error

    def _send(self, method: str, url: str, body: dict | None) -> requests.Response:
        if method == "GET":
            prepared = self._get_template.copy()
            prepared.prepare_url(url, None)
            response = self._adapter.send(
                prepared,
                timeout=self.timeout,
                verify=self._get_verify,
                proxies=self._session.proxies,
            )
            response.content  # noqa: B018 (read now, as Session.send does: frees the connection)
            return response
        return self._session.request(
            method, url, json=body, timeout=self.timeout, allow_redirects=False
        )

    def _decode(self, decode: Callable[..., T], response: requests.Response, **options) -> T:
        """Run a ``decode_*`` function on the body; its MalformedResponse gets the status
        and loses anything that looks like our credentials."""
        try:
            return decode(response.content, **options)
        except MalformedResponse as error:
            raise MalformedResponse(
                self._scrub(error.message), status=response.status_code
            ) from None

    def _scrub_problems(self, result: T) -> T:
        if not result.problems:
            return result
        return replace(result, problems=tuple(self._scrub(note) for note in result.problems))

    def _id_from_location(self, response: requests.Response) -> str:
        """The id in a create/add answer's ``Location``, relative or absolute (§1.1)."""
        location = response.headers.get("Location", "").strip()
        if not location:
            raise MalformedResponse("no Location header", status=response.status_code)
        try:
            resource_id = _last_path_segment(location)
        except ValueError:
            raise MalformedResponse(
                "the Location header is not a usable URL", status=response.status_code
            ) from None
        if not resource_id:
            raise MalformedResponse(
                self._scrub(f"no id in Location {location!r:.100}"), status=response.status_code
            )
        return resource_id

    def _next_page_url(self, response: requests.Response) -> str | None:
        """The resolved ``rel="next"`` target, or None. Refuses to leave the API's origin,
        because the session would send our credentials to any host (§5.4)."""
        try:
            links = response.links
        except (ValueError, TypeError):  # requests' parser is lenient; this is a safety net
            raise MalformedResponse("unreadable Link header", status=response.status_code) from None
        for link in links.values():
            if "next" not in link.get("rel", "").lower().split():
                continue
            try:
                target = urljoin(response.url, link.get("url", "").strip())
                here, there = urlsplit(response.url), urlsplit(target)
            except ValueError:  # e.g. an unbalanced IPv6 host: "http://[::1/x"
                raise MalformedResponse(
                    "the next page link is not a usable URL", status=response.status_code
                ) from None
            if (here.scheme, here.netloc) != (there.scheme, there.netloc):
                raise MalformedResponse(
                    self._scrub(f"next page link points to another host: {there.netloc:.100}"),
                    status=response.status_code,
                )
            return target
        return None

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _BASIC_CREDENTIALS.sub("Basic ***", text)
