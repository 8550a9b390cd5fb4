"""HTTP client for the Bandwidth Catapult v1 conference API.

HTTP only: no Django, no ORM. One method per endpoint, explicit timeouts, typed
results (frozen dataclasses) and typed errors, defined with the reading of bodies in
conferences/catapult/answers.py and importable from here too (``catapult.Conference``,
``catapult.TransientError``). Every error carries ``transient`` (retry later) and
``poll_status`` (the confwatch poll outcome it maps to).

Whatever the server answers, a call returns a result or raises a CatapultError
subclass; ValueError is kept for the caller's own bad arguments.

Reference: docs/catapult-api.md in this repository (sections are cited as §n below).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Self, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from conferences.catapult.answers import (
    EPOCH,
    URL_LIMIT,
    ApiError,
    CatapultError,
    Conference,
    Conflict,
    CredentialsRejected,
    Forbidden,
    MalformedResponse,
    Member,
    MemberList,
    MembersPage,
    NotFound,
    RateLimited,
    TransientError,
    clean_text,
    decode_conference,
    decode_member,
    decode_members,
    is_rate_limit_code,
)

logger = logging.getLogger(__name__)


# Any Basic credentials in a message (ours are scrubbed exactly; this catches the rest).
_BASIC_CREDENTIALS = re.compile(r"Basic\s+[A-Za-z0-9+/=]{8,}", re.IGNORECASE)
_MAX_MESSAGE_LENGTH = 300
# A request's whole life (connect, headers and the whole body), in seconds: the
# connect and read timeouts are per socket operation, so a server sending a byte now and
# then would otherwise hold a request for as long as it liked (§5.5).
DEFAULT_TOTAL_TIMEOUT = 15.0
# The largest response body read (bytes); a larger 2xx answer is a MalformedResponse.
DEFAULT_MAX_BYTES = 1_048_576
# Bytes asked of the socket at a time: a read returns what has arrived, up to this.
_CHUNK_BYTES = 65_536

T = TypeVar("T")


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
    if status == 403 and category_key == "limit" and is_rate_limit_code(code):
        return RateLimited(message, reset_at=_reset_at(response, body), **fields)
    if status == 403 and category_key in ("", "authentication", "authorization"):
        return CredentialsRejected(message, **fields)
    if status == 403:
        return Forbidden(message, **fields)
    if status == 404:
        return NotFound(message, **fields)
    if status == 429:
        return RateLimited(message, reset_at=_reset_at(response, body), **fields)
    if status == 409:
        return Conflict(message, **fields)
    if status >= 500:
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
        text = clean_text(str(value), limit=_MAX_MESSAGE_LENGTH).strip()
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
            return EPOCH + timedelta(milliseconds=number)
        return EPOCH + timedelta(seconds=number)
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
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
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
        if not total_timeout > 0:
            raise ValueError(f"total_timeout must be positive, got {total_timeout!r}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes!r}")

        self.base_url = base_url
        self.user_id = user_id
        self.timeout = timeout
        self.total_timeout = total_timeout
        self.max_bytes = max_bytes
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self._read_timeout = read
        # urllib3's ``total`` also cuts the wait for the headers to what is left of it.
        self._timeouts = urllib3.Timeout(connect=connect, read=read, total=total_timeout)
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
        except _DeadlinePassed as exc:
            raise TransientError(
                f"{method} {path} timed out (no complete answer within {self.total_timeout:g} s)"
            ) from exc
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
        """Send the request and read its whole body within ``total_timeout`` seconds and
        ``max_bytes`` bytes (``_read_body``)."""
        deadline = time.monotonic() + self.total_timeout
        if method == "GET":
            prepared = self._get_template.copy()
            prepared.prepare_url(url, None)
            response = self._adapter.send(
                prepared,
                stream=True,
                timeout=self._timeouts,
                verify=self._get_verify,
                proxies=self._session.proxies,
            )
        else:
            response = self._session.request(
                method, url, json=body, timeout=self._timeouts, allow_redirects=False, stream=True
            )
        self._read_body(response, deadline=deadline)
        return response

    def _read_body(self, response: requests.Response, *, deadline: float) -> None:
        """Read the body into ``response.content``, reading what has arrived each time
        and never waiting on the socket past the deadline: a body still coming at the
        deadline is a timeout (requests.Timeout). A 2xx body over ``max_bytes`` is a
        MalformedResponse "too large"; an error answer's body over it is dropped (its
        status still says what happened). The connection is closed unless read to its end."""
        raw = response.raw
        is_success = 200 <= response.status_code < 300
        length = response.headers.get("Content-Length", "")
        too_large = length.isdigit() and int(length) > self.max_bytes
        chunks: list[bytes] = []
        size = 0
        try:
            while not too_large:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _DeadlinePassed()
                # Each read waits at most the read timeout, and never past the deadline.
                connection = raw.connection
                if remaining < self._read_timeout and connection and connection.sock:
                    connection.sock.settimeout(remaining)
                chunk = raw.read1(_CHUNK_BYTES, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                too_large = size > self.max_bytes
                chunks.append(chunk)
        except _DeadlinePassed:
            response.close()
            raise
        except urllib3.exceptions.ReadTimeoutError as exc:
            response.close()
            if time.monotonic() >= deadline:
                raise _DeadlinePassed() from exc
            raise requests.ReadTimeout(str(exc)) from exc
        except urllib3.exceptions.DecodeError as exc:
            response.close()
            raise requests.exceptions.ContentDecodingError(str(exc)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            response.close()
            raise requests.ConnectionError(str(exc)) from exc
        if too_large:
            response.close()
            if is_success:
                raise MalformedResponse(
                    f"too large (over {self.max_bytes} bytes)", status=response.status_code
                )
            chunks = []
        response._content = b"".join(chunks)
        response._content_consumed = True
        raw.release_conn()

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
            # It is stored until the page is read (§5.5): it must be storable as it is.
            if clean_text(target, limit=URL_LIMIT) != target:
                raise MalformedResponse(
                    "the next page link is too long or has control characters",
                    status=response.status_code,
                )
            return target
        return None

    def _scrub(self, text: str) -> str:
        """The text without our credentials or unsafe characters (clean_text)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return clean_text(_BASIC_CREDENTIALS.sub("Basic ***", text), limit=_MAX_MESSAGE_LENGTH * 2)


class _DeadlinePassed(requests.Timeout):
    """The request's total deadline passed before its whole answer had arrived."""
