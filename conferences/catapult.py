"""HTTP client for the Bandwidth Catapult v1 conference API.

HTTP only: no Django, no ORM. One method per endpoint, explicit timeouts, typed
results (frozen dataclasses) and typed errors. Every error carries ``transient``
(retry later) and ``poll_status`` (the confwatch poll outcome it maps to).

Reference: /work/shared/catapult-api.md (sections are cited as §n below).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Self
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
    "NotFound",
    "RateLimited",
    "TransientError",
    "parse_conference",
    "parse_member",
    "parse_timestamp",
]

logger = logging.getLogger(__name__)

REAL_API_BASE_URL = "https://api.catapult.inetwork.com"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MESSAGE_LENGTH = 300


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
    """A conference as the API reported it; a key the API did not send is None."""

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


@dataclass(frozen=True)
class Member:
    """A conference member (departed members stay listed with state "completed")."""

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
        raise MalformedResponse(f"timestamp has type {type(value).__name__}: {value!r:.60}")
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return _from_epoch_milliseconds(int(text))
    try:
        parsed = datetime.fromisoformat(text.upper())
    except ValueError:
        raise MalformedResponse(f"unparseable timestamp: {value!r:.60}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _from_epoch_milliseconds(value: int) -> datetime:
    try:
        return _EPOCH + timedelta(milliseconds=value)
    except OverflowError:
        raise MalformedResponse(f"epoch timestamp out of range: {value!r}") from None


def parse_conference(data: object) -> Conference:
    """Build a Conference from a decoded JSON body; unknown keys are ignored."""
    if not isinstance(data, dict):
        raise MalformedResponse(f"expected a conference object, got {_json_type(data)}")
    return Conference(
        id=_id_field(data),
        state=_state_field(data, "state"),
        from_number=_str_field(data, "from"),
        created_time=_time_field(data, "createdTime"),
        completed_time=_time_field(data, "completedTime"),
        active_members=_int_field(data, "activeMembers"),
        hold=_bool_field(data, "hold"),
        mute=_bool_field(data, "mute"),
        profile=_str_field(data, "profile"),
        callback_url=_str_field(data, "callbackUrl"),
        callback_http_method=_str_field(data, "callbackHttpMethod"),
        callback_timeout=_int_field(data, "callbackTimeout"),
        fallback_url=_str_field(data, "fallbackUrl"),
        tag=_str_field(data, "tag"),
    )


def parse_member(data: object) -> Member:
    """Build a Member from a decoded JSON body; unknown keys are ignored."""
    if not isinstance(data, dict):
        raise MalformedResponse(f"expected a member object, got {_json_type(data)}")
    call_url = _str_field(data, "call")
    return Member(
        id=_id_field(data),
        state=_state_field(data, "state"),
        mute=_bool_field(data, "mute"),
        hold=_bool_field(data, "hold"),
        join_tone=_bool_field(data, "joinTone"),
        leaving_tone=_bool_field(data, "leavingTone"),
        added_time=_time_field(data, "addedTime"),
        removed_time=_time_field(data, "removedTime"),
        call_url=call_url,
        call_id=_last_path_segment(call_url) if call_url else None,
    )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _id_field(data: dict) -> str:
    value = data.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise MalformedResponse(f"missing or invalid 'id': {value!r:.60}")
    return value


def _str_field(data: dict, key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MalformedResponse(f"'{key}' should be a string, got {_json_type(value)}")


def _state_field(data: dict, key: str) -> str | None:
    value = _str_field(data, key)
    return value.strip().lower() if value is not None else None


def _int_field(data: dict, key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise MalformedResponse(f"'{key}' should be an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise MalformedResponse(f"'{key}' should be an integer, got {value!r:.60}")


def _bool_field(data: dict, key: str) -> bool | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise MalformedResponse(f"'{key}' should be a boolean, got {value!r:.60}")


def _time_field(data: dict, key: str) -> datetime | None:
    try:
        return parse_timestamp(data.get(key))
    except MalformedResponse as exc:
        raise MalformedResponse(f"'{key}': {exc.message}") from None


def _last_path_segment(url: str) -> str | None:
    """The last non-empty path segment of an absolute or relative URL (host ignored)."""
    segments = [segment for segment in urlsplit(url.strip()).path.split("/") if segment]
    return unquote(segments[-1]) if segments else None


# --------------------------------------------------------------------------- error mapping


def _error_from_response(response: requests.Response, *, scrub) -> CatapultError:
    """Map a non-2xx response to the matching CatapultError subclass. Never raises."""
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
    except ValueError:
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
    if isinstance(value, bool) or value is None:
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
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --------------------------------------------------------------------------- client


def _drop_none(fields: dict) -> dict:
    """Request bodies carry only the fields that were given: never explicit nulls."""
    return {key: value for key, value in fields.items() if value is not None}


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
        self._secrets = (api_token, api_secret)

        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.auth = (api_token, api_secret)
        self._session.headers.update({"Accept": "application/json", "User-Agent": user_agent})

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
        response = self._request("GET", self._conference_url(conference_id))
        return parse_conference(self._json_body(response))

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

    def list_members(self, conference_id: str, *, max_pages: int = 20) -> list[Member]:
        """All members, departed ones included; follows ``Link: rel="next"`` up to max_pages."""
        if max_pages < 1:
            raise ValueError(f"max_pages must be at least 1, got {max_pages!r}")
        url = self._conference_url(conference_id, "members")
        members: list[Member] = []
        for _ in range(max_pages):
            response = self._request("GET", url)
            data = self._json_body(response)
            if not isinstance(data, list):
                raise MalformedResponse(f"expected a list of members, got {_json_type(data)}")
            members.extend(parse_member(item) for item in data)
            next_url = self._next_page_url(response)
            if next_url is None:
                return members
            url = next_url
        logger.warning(
            "catapult: stopped listing members of %s after %d pages (more advertised)",
            conference_id,
            max_pages,
        )
        return members

    def get_member(self, conference_id: str, member_id: str) -> Member:
        response = self._request("GET", self._conference_url(conference_id, "members", member_id))
        return parse_member(self._json_body(response))

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
        segments = [conference_id, *more]
        for segment in segments:
            if not isinstance(segment, str) or not segment:
                raise ValueError(f"ids must be non-empty strings, got {segment!r}")
        return "/".join([self._conferences_url(), *(quote(s, safe="") for s in segments)])

    def _request(self, method: str, url: str, *, body: dict | None = None) -> requests.Response:
        """Send one request; return a 2xx response or raise a CatapultError."""
        path = urlsplit(url).path
        started = time.monotonic()
        try:
            response = self._session.request(
                method, url, json=body, timeout=self.timeout, allow_redirects=False
            )
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

    def _json_body(self, response: requests.Response) -> object:
        content = response.content
        if not content or not content.strip():
            raise MalformedResponse("empty body", status=response.status_code)
        try:
            return json.loads(content)
        except ValueError:
            raise MalformedResponse("body is not JSON", status=response.status_code) from None

    def _id_from_location(self, response: requests.Response) -> str:
        location = response.headers.get("Location", "").strip()
        if not location:
            raise MalformedResponse("no Location header", status=response.status_code)
        resource_id = _last_path_segment(location)
        if not resource_id:
            raise MalformedResponse(
                self._scrub(f"no id in Location {location!r:.100}"), status=response.status_code
            )
        return resource_id

    def _next_page_url(self, response: requests.Response) -> str | None:
        """The resolved ``rel="next"`` target, or None. Refuses to leave the API's origin,
        because the session would send our credentials to any host."""
        for link in response.links.values():
            if "next" not in link.get("rel", "").lower().split():
                continue
            target = urljoin(response.url, link.get("url", "").strip())
            here, there = urlsplit(response.url), urlsplit(target)
            if (here.scheme, here.netloc) != (there.scheme, there.netloc):
                raise MalformedResponse(f"next page link points to another host: {there.netloc}")
            return target
        return None

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
