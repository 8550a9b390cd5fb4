"""Tests for conferences/catapult/client.py, the Catapult v1 HTTP client.

Every test crosses a real socket: either the Catapult simulator (``simulator.testing``)
or, for API quirks the simulator cannot produce, a tiny canned-response server below
standing in for the remote API's edge cases.
"""

from __future__ import annotations

import base64
import gzip
import json
import pickle
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conferences.catapult import REAL_API_BASE_URL
from conferences.catapult.answers import (
    CALL_ID_LIMIT,
    ID_LIMIT,
    STATE_RAW_LIMIT,
    TAG_LIMIT,
    URL_LIMIT,
    ApiError,
    CatapultError,
    Conference,
    CredentialsRejected,
    Forbidden,
    MalformedResponse,
    Member,
    MemberList,
    NotFound,
    RateLimited,
    TransientError,
    clean_text,
    decode_conference,
    decode_member,
    decode_members,
    parse_conference,
    parse_member,
    parse_timestamp,
    read_state,
)
from tests.catapult_driver import CatapultDriver

USER_ID = "u-test"
TOKEN = "t-0123456789abcdef"
SECRET = "s3cr3t-do-not-print"
BASE_PATH = f"/v1/users/{USER_ID}/conferences"


# --------------------------------------------------------------------------- canned server


class CannedServer:
    """Serves canned responses keyed by (method, path incl. query); records each request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], tuple[int, dict, bytes, float]] = {}
        self.requests: list[dict] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def route(self, method, path, *, status=200, headers=None, body=b"", delay=0.0):
        if isinstance(body, dict | list):
            body = json.dumps(body)
            headers = {"Content-Type": "application/json", **(headers or {})}
        if isinstance(body, str):
            body = body.encode()
        self.routes[(method, path)] = (status, headers or {}, body, delay)

    def client(self, **overrides) -> CatapultDriver:
        options = {
            "base_url": self.url,
            "user_id": USER_ID,
            "api_token": TOKEN,
            "api_secret": SECRET,
            "timeout": (1.0, 2.0),
        }
        return CatapultDriver(**{**options, **overrides})

    def _handler_class(self):
        canned = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                canned.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(raw) if raw else None,
                    }
                )
                status, headers, body, delay = canned.routes.get(
                    (self.command, self.path), (599, {}, b"no canned route", 0.0)
                )
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (read timeout tests)
                    self.close_connection = True

            do_GET = _serve
            do_POST = _serve

        return Handler

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def canned_server():
    with CannedServer() as server:
        yield server


@pytest.fixture
def canned(canned_server):
    canned_server.routes.clear()
    canned_server.requests.clear()
    return canned_server


def conference_path(*segments: str) -> str:
    return "/".join([BASE_PATH, *segments])


def make_conference_body(**overrides) -> dict:
    body = {
        "id": "conf-ixaagbn5wcyskisiy",
        "state": "active",
        "from": "+19195551212",
        "createdTime": "2013-07-12T15:22:47-02",
        "activeMembers": 2,
        "hold": False,
        "mute": False,
        "profile": "interpret_digits",
    }
    return {**body, **overrides}


def make_member_body(**overrides) -> dict:
    body = {
        "id": "member-yy",
        "state": "active",
        "addedTime": "2013-07-12T15:47:04-03",
        "hold": False,
        "mute": False,
        "joinTone": True,
        "leavingTone": False,
        "call": f"https://localhost:8444/v1/users/{USER_ID}/calls/c-oexifypjlh5ygjr7qi4nesq",
    }
    return {**body, **overrides}


CONFERENCE_FIELDS = frozenset(
    {
        "state",
        "from_number",
        "created_time",
        "completed_time",
        "active_members",
        "hold",
        "mute",
        "profile",
        "callback_url",
        "callback_http_method",
        "callback_timeout",
        "fallback_url",
        "tag",
    }
)
MEMBER_FIELDS = frozenset(
    {
        "state",
        "mute",
        "hold",
        "join_tone",
        "leaving_tone",
        "added_time",
        "removed_time",
        "call_url",
        "call_id",
    }
)


def raised_by(call) -> CatapultError:
    with pytest.raises(CatapultError) as excinfo:
        call()
    return excinfo.value


# --------------------------------------------------------------------------- parse_timestamp


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2013-07-12T15:22:47-02", datetime(2013, 7, 12, 17, 22, 47, tzinfo=UTC)),
        ("2013-07-12T15:22:47Z", datetime(2013, 7, 12, 15, 22, 47, tzinfo=UTC)),
        ("2013-07-12T16:26:55.685-02:00", datetime(2013, 7, 12, 18, 26, 55, 685000, tzinfo=UTC)),
        ("2013-07-12T20:53:11.646Z", datetime(2013, 7, 12, 20, 53, 11, 646000, tzinfo=UTC)),
        ("2013-07-12t20:53:11z", datetime(2013, 7, 12, 20, 53, 11, tzinfo=UTC)),
        ("2013-02-21T13:38:00", datetime(2013, 2, 21, 13, 38, tzinfo=UTC)),
        (1419032854964, datetime(2014, 12, 19, 23, 47, 34, 964000, tzinfo=UTC)),
        ("1391514755496", datetime(2014, 2, 4, 11, 52, 35, 496000, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_parse_timestamp_returns_aware_utc_for_every_documented_form(value, expected):
    parsed = parse_timestamp(value)

    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", ["yesterday", "2013-13-45T00:00:00Z", True, 3.5, [], {}])
def test_parse_timestamp_rejects_anything_else_as_malformed(value):
    with pytest.raises(MalformedResponse):
        parse_timestamp(value)


# --------------------------------------------------------------------------- parsing (pure)


def test_a_conference_with_only_an_id_has_every_other_field_none_and_unknown():
    conference = parse_conference({"id": "conf-1"})

    assert conference == Conference(id="conf-1", unknown=CONFERENCE_FIELDS)
    assert conference.active_members is None
    assert conference.hold is None
    assert conference.problems == ()


def test_a_member_with_only_an_id_has_every_other_field_none_and_unknown():
    member = parse_member({"id": "m-1"})

    assert member == Member(id="m-1", unknown=MEMBER_FIELDS)
    assert member.problems == ()


def test_a_json_null_is_unknown_like_an_absent_key_and_is_no_problem():
    conference = parse_conference({"id": "conf-1", "hold": None, "state": "active"})

    assert conference.hold is None
    assert "hold" in conference.unknown
    assert "state" not in conference.unknown
    assert conference.problems == ()


def test_a_member_with_mixed_offsets_may_leave_before_it_joined_without_crashing():
    member = parse_member(
        make_member_body(
            state="completed",
            addedTime="2013-07-12T15:47:04-03",
            removedTime="2013-07-12T15:49:11-02",
        )
    )

    assert member.added_time == datetime(2013, 7, 12, 18, 47, 4, tzinfo=UTC)
    assert member.removed_time == datetime(2013, 7, 12, 17, 49, 11, tzinfo=UTC)


# --------------------------------------------------------------------------- decoding anything

# Whatever bytes arrive, decoding returns a result or raises a CatapultError subclass:
# never ValueError, TypeError, KeyError, RecursionError, OverflowError...

CONFERENCE_KEYS = [
    "id",
    "state",
    "from",
    "createdTime",
    "completedTime",
    "activeMembers",
    "hold",
    "mute",
    "profile",
    "callbackUrl",
    "callbackHttpMethod",
    "callbackTimeout",
    "fallbackUrl",
    "tag",
]
MEMBER_KEYS = [
    "id",
    "state",
    "mute",
    "hold",
    "joinTone",
    "leavingTone",
    "addedTime",
    "removedTime",
    "call",
]
ODD_TEXT = [
    "conf-1",
    "m-1",
    "",
    " ",
    ".",
    "..",
    "true",
    "FALSE",
    "yes",
    "2000",
    "2000ms",
    "-0",
    "１２",
    "1" * 5000,
    "2013-07-12T15:22:47-02",
    "2013-07-12T16:26:55.685-02:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "1419032854964",
    "99999999999999999999999",
    "http://[::1/x",
    "https://localhost:8444/v1/users/u/calls/c-1",
    "https://user:pass@host/",
    "\x00\ud800",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**4000, max_value=10**4299)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(ODD_TEXT)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=8) | st.sampled_from(CONFERENCE_KEYS), children, max_size=4
        )
    ),
    max_leaves=20,
)


field_values = st.sampled_from(ODD_TEXT) | json_scalars | json_values


def objects_like(keys, *, usual_id, other_ids):
    """Dicts with some of ``keys``, each with a random value; mostly with ``usual_id``."""
    ids = st.sampled_from([usual_id] * 3 + other_ids) | json_values
    return st.fixed_dictionaries(
        {"id": ids}, optional={key: field_values for key in keys if key != "id"}
    )


conference_like = objects_like(CONFERENCE_KEYS, usual_id="conf-1", other_ids=["conf-2", 1, ""])
member_like = objects_like(MEMBER_KEYS, usual_id="m-1", other_ids=["m-2", 7, " "])


def deeply_nested(depth: int, *, inside: bytes = b"") -> bytes:
    """A JSON list ``depth`` levels deep; put inside a field of an object when ``inside``."""
    nested = b"[" * depth + b"]" * depth
    return inside.replace(b"@", nested) if inside else nested


depths = st.integers(min_value=1, max_value=3000) | st.sampled_from([10_000, 100_000])
deep_bodies = st.builds(
    deeply_nested,
    depths,
    inside=st.sampled_from(
        [b"", b'{"id": "conf-1", "tag": @}', b'[{"id": "m-1", "call": @}]', b'{"id": @}']
    ),
) | depths.map(lambda depth: b"[" * depth)


def json_bytes(value) -> bytes:
    return json.dumps(value).encode()


def outcome_of(decode, content, **options):
    """The result, or the CatapultError raised; anything else fails the test."""
    try:
        return decode(content, **options)
    except CatapultError as error:
        return error


def assert_unknown_matches_the_values(result, fields):
    for name in fields:
        assert (getattr(result, name) is None) == (name in result.unknown), name
    assert result.unknown <= fields
    assert len(result.problems) <= len(result.unknown)
    assert all(isinstance(note, str) and note for note in result.problems)


bodies = (
    st.binary(max_size=200)
    | json_values.map(json_bytes)
    | conference_like.map(json_bytes)
    | member_like.map(json_bytes)
    | st.lists(member_like | json_values, max_size=5).map(json_bytes)
    | deep_bodies
)
examples = settings(max_examples=300, deadline=None, database=None)


@examples
@given(content=bodies)
def test_decoding_any_bytes_as_a_conference_gives_a_conference_or_a_catapult_error(content):
    outcome = outcome_of(decode_conference, content, expected_id="conf-1")

    assert isinstance(outcome, Conference | MalformedResponse)
    if isinstance(outcome, Conference):
        assert outcome.id == "conf-1"
        assert_unknown_matches_the_values(outcome, CONFERENCE_FIELDS)


@examples
@given(content=bodies)
def test_decoding_any_bytes_as_a_member_gives_a_member_or_a_catapult_error(content):
    outcome = outcome_of(decode_member, content, expected_id="m-1")

    assert isinstance(outcome, Member | MalformedResponse)
    if isinstance(outcome, Member):
        assert outcome.id == "m-1"
        assert_unknown_matches_the_values(outcome, MEMBER_FIELDS)


@examples
@given(content=bodies)
def test_decoding_any_bytes_as_a_members_page_gives_members_or_a_catapult_error(content):
    outcome = outcome_of(decode_members, content)

    assert isinstance(outcome, tuple | MalformedResponse)
    if isinstance(outcome, tuple):
        members, problems = outcome
        assert all(isinstance(member, Member) for member in members)
        for member in members:
            assert_unknown_matches_the_values(member, MEMBER_FIELDS)
        assert len(members) + len(problems) == len(json.loads(content))


@examples
@given(body=conference_like)
def test_a_conference_like_object_keeps_every_field_it_could_read(body):
    outcome = outcome_of(decode_conference, json_bytes(body), expected_id="conf-1")

    if body["id"] != "conf-1":
        assert isinstance(outcome, MalformedResponse)
        return
    assert isinstance(outcome, Conference)
    assert_unknown_matches_the_values(outcome, CONFERENCE_FIELDS)
    given_fields = {
        FIELD_OF_KEY[key] for key, value in body.items() if key != "id" and not _blank(key, value)
    }
    assert outcome.unknown == (CONFERENCE_FIELDS - given_fields) | {
        name for name in given_fields if getattr(outcome, name) is None
    }
    assert len(outcome.problems) == len(outcome.unknown & given_fields)


@examples
@given(body=member_like)
def test_a_member_like_object_keeps_every_field_it_could_read(body):
    outcome = outcome_of(decode_member, json_bytes(body), expected_id="m-1")

    if body["id"] != "m-1":
        assert isinstance(outcome, MalformedResponse)
        return
    assert isinstance(outcome, Member)
    assert_unknown_matches_the_values(outcome, MEMBER_FIELDS)
    given_keys = {key for key, value in body.items() if key != "id" and not _blank(key, value)}
    unreadable = {key for key in given_keys if getattr(outcome, MEMBER_FIELD_OF_KEY[key]) is None}
    no_call_id = "call" not in unreadable and "call" in given_keys and outcome.call_id is None
    assert len(outcome.problems) == len(unreadable) + no_call_id


MEMBER_FIELD_OF_KEY = {
    "state": "state",
    "mute": "mute",
    "hold": "hold",
    "joinTone": "join_tone",
    "leavingTone": "leaving_tone",
    "addedTime": "added_time",
    "removedTime": "removed_time",
    "call": "call_url",
}


FIELD_OF_KEY = {
    "state": "state",
    "from": "from_number",
    "createdTime": "created_time",
    "completedTime": "completed_time",
    "activeMembers": "active_members",
    "hold": "hold",
    "mute": "mute",
    "profile": "profile",
    "callbackUrl": "callback_url",
    "callbackHttpMethod": "callback_http_method",
    "callbackTimeout": "callback_timeout",
    "fallbackUrl": "fallback_url",
    "tag": "tag",
}


def _blank(key, value) -> bool:
    """Not given: null, or a blank timestamp (which reads as "no time yet", not a problem)."""
    return value is None or (key.endswith("Time") and isinstance(value, str) and not value.strip())


@pytest.mark.parametrize(
    "content",
    [
        b'{"id": "conf-1", "activeMembers": ' + b"1" * 5000 + b"}",
        b'{"id": ' + b"1" * 5000 + b"}",
        b'{"id": "conf-1", "createdTime": "' + b"1" * 5000 + b'"}',
        b'{"id": "conf-1", "createdTime": 1' + b"0" * 300 + b"}",
        b'{"id": "conf-1", "tag": NaN, "activeMembers": Infinity, "hold": -Infinity}',
        b"\xff\xfe\x00",
        b'{"id": "conf-1"' + b" " * 10_000,
        '{"id": "conf-1", "state": "\u00e9t\u00e9"}'.encode("utf-16"),
    ],
)
def test_bodies_that_break_naive_parsers_give_a_conference_or_a_catapult_error(content):
    outcome = outcome_of(decode_conference, content, expected_id="conf-1")

    assert isinstance(outcome, Conference | MalformedResponse)


# --------------------------------------------------------------------------- client basics


def test_repr_of_the_client_never_shows_the_token_or_secret(canned):
    with canned.client() as client:
        text = repr(client)

    assert SECRET not in text
    assert TOKEN not in text
    assert USER_ID in text


def test_the_real_api_base_url_is_the_catapult_host():
    assert REAL_API_BASE_URL == "https://api.catapult.inetwork.com"


def test_requests_carry_basic_auth_accept_json_and_the_user_agent(canned):
    canned.route("GET", conference_path("conf-1"), body={"id": "conf-1"})

    with canned.client(user_agent="confwatch-test/9") as client:
        client.get_conference("conf-1")

    headers = canned.requests[0]["headers"]
    expected = base64.b64encode(f"{TOKEN}:{SECRET}".encode()).decode()
    assert headers["Authorization"] == f"Basic {expected}"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"] == "confwatch-test/9"


def test_a_proxy_named_in_the_environment_carries_the_requests(canned, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", canned.url)
    api = "http://api.example.invalid"
    canned.route("GET", api + conference_path("c1"), body={"id": "c1"})

    with canned.client(base_url=api) as client:
        conference = client.get_conference("c1")

    assert conference.id == "c1"
    assert canned.requests[0]["path"] == api + conference_path("c1")


def test_ids_are_quoted_as_single_path_segments(canned):
    canned.route("GET", conference_path("a%2Fb%20c", "members", "m%3F1"), body={"id": "m?1"})

    with canned.client() as client:
        member = client.get_member("a/b c", "m?1")

    assert member.id == "m?1"


# --------------------------------------------------------------------------- success shapes


def test_a_conference_keeps_unknown_keys_out_and_accepts_string_booleans_and_numbers(canned):
    body = make_conference_body(
        state="ACTIVE",
        hold="TRUE",
        mute="false",
        activeMembers="3",
        callbackTimeout="2000",
        callbackHttpMethod="post",
        somethingNew={"nested": [1, 2]},
        anotherOne=None,
    )
    canned.route("GET", conference_path("conf-ixaagbn5wcyskisiy"), body=body)

    with canned.client() as client:
        conference = client.get_conference("conf-ixaagbn5wcyskisiy")

    assert conference == Conference(
        id="conf-ixaagbn5wcyskisiy",
        state="active",
        from_number="+19195551212",
        created_time=datetime(2013, 7, 12, 17, 22, 47, tzinfo=UTC),
        completed_time=None,
        active_members=3,
        hold=True,
        mute=False,
        profile="interpret_digits",
        callback_url=None,
        callback_http_method="post",
        callback_timeout=2000,
        fallback_url=None,
        tag=None,
        unknown=frozenset({"completed_time", "callback_url", "fallback_url", "tag"}),
        problems=(),
    )


def test_an_undocumented_state_reads_unknown_and_keeps_what_was_sent(canned):
    canned.route("GET", conference_path("c1"), body={"id": "c1", "state": "Paused"})
    canned.route("GET", conference_path("c2"), body={"id": "c2", "state": " ACTIVE "})

    with canned.client() as client:
        paused, active = client.get_conference("c1"), client.get_conference("c2")

    assert (paused.state, paused.state_raw) == ("unknown", "Paused")
    assert "state" not in paused.unknown and paused.problems == ()
    assert (active.state, active.state_raw) == ("active", None)


NUL, RLO, ZWSP, BOM = "\x00", "\u202e", "\u200b", "\ufeff"


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        ("weekly standup", 50, "weekly standup"),
        (f"+1919{NUL}5551234", 50, "+19195551234"),
        (f"a{NUL}b\x1b[31mc\x7fd\x85e", 50, "ab[31mcde"),
        ("tab\there\nnewline\r", 50, "tabherenewline"),
        (f"{RLO}gnp.exe", 50, "gnp.exe"),
        (f"ad{ZWSP}min\u200c\u200d\u200e\u200f", 50, "admin"),
        ("\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069x", 50, "x"),
        (f"{BOM}tag", 50, "tag"),
        ("lone \ud800 surrogate", 50, "lone  surrogate"),
        ("café 会議 ☎", 50, "café 会議 ☎"),
        ("x" * 50, 50, "x" * 50),
        ("x" * 51, 50, "x" * 49 + "…"),
        (NUL * 10 + "y" * 60, 50, "y" * 49 + "…"),
        (NUL * 5, 50, ""),
    ],
)
def test_clean_text_drops_unsafe_characters_and_shows_the_cut(value, limit, expected):
    cleaned = clean_text(value, limit=limit)

    assert cleaned == expected
    assert len(cleaned) <= limit
    cleaned.encode("utf-8")  # storable: no lone surrogate


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("active", ("active", None)),
        ("Completed", ("completed", None)),
        (f" cre{ZWSP}ated{NUL} ", ("created", None)),
        ("paused", ("unknown", "paused")),
        (f"on{NUL}hold{RLO}", ("unknown", "onhold")),
        ("s" * 500, ("unknown", "s" * (STATE_RAW_LIMIT - 1) + "…")),
        (f" {NUL}{BOM} ", (None, None)),
    ],
)
def test_read_state_keeps_documented_states_and_names_the_others_unknown(value, expected):
    assert read_state(value) == expected


def test_hostile_text_in_an_answer_is_stored_safe_and_within_its_column():
    body = {
        "id": "conf-1",
        "state": "x" * 500,
        "from": f"+1919{NUL}555{RLO}1234" + "9" * 100,
        "tag": f"t{NUL}ag{ZWSP}" + "g" * 5000,
        "callbackUrl": "https://example.com/" + "p" * 5000,
        "profile": f"passthru{NUL}_digits",
    }

    conference = decode_conference(json_bytes(body), expected_id="conf-1")

    assert (conference.state, conference.state_raw) == ("unknown", "x" * 99 + "…")
    assert conference.from_number.startswith("+19195551234") and len(conference.from_number) == 50
    assert conference.from_number.endswith("…")
    assert conference.tag.startswith("tagggg") and len(conference.tag) == TAG_LIMIT
    assert len(conference.callback_url) == URL_LIMIT and conference.callback_url.endswith("…")
    assert conference.profile == "passthru_digits"
    assert conference.problems == ()


def test_a_member_call_id_is_cleaned_and_cut_to_its_column():
    long_call = "c-" + "9" * 300
    body = [
        {"id": "m-1", "state": "active", "call": f"https://h/v1/users/u/calls/{long_call}"},
        {"id": "m-2", "state": "ACTIVE", "call": "https://h/v1/users/u/calls/c-%00nul"},
        {"id": "m-3", "state": "Waiting", "call": "https://h/v1/users/u/calls/%00"},
    ]

    (long_one, nul_one, empty_one), problems = decode_members(json_bytes(body))

    assert long_one.call_id == long_call[: CALL_ID_LIMIT - 1] + "…"
    assert nul_one.call_id == "c-nul"
    assert (empty_one.call_id, empty_one.state, empty_one.state_raw) == (None, "unknown", "Waiting")
    assert empty_one.problems == ("'call' has no call id in its path",)
    assert problems == ()


@pytest.mark.parametrize(
    "member_id", ["m" * (ID_LIMIT + 1), f"m-{NUL}1", f"m-{RLO}1", f"m{ZWSP}"], ids=repr
)
def test_a_member_id_is_never_altered_one_too_long_or_unsafe_is_skipped(member_id):
    body = [{"id": member_id, "state": "active"}, {"id": "m-ok", "state": "active"}]

    members, problems = decode_members(json_bytes(body))

    assert [member.id for member in members] == ["m-ok"]
    assert problems == ("item 1 has no usable member id; skipped",)


def test_an_error_message_with_control_characters_is_cleaned(canned):
    body = {"category": "unavailable", "code": f"down{NUL}", "message": f"try{NUL} later{RLO}"}
    canned.route("GET", conference_path("c1"), status=503, body=body)

    error = raised_by(lambda: canned.client().get_conference("c1"))

    assert isinstance(error, TransientError)
    assert error.message == "try later" and error.code == "down"


@pytest.mark.parametrize(
    ("overrides", "field", "problem"),
    [
        ({"tag": 5}, "tag", "'tag' should be a string, got 5"),
        (
            {"callbackTimeout": "2000ms"},
            "callback_timeout",
            "'callbackTimeout' should be an integer, got '2000ms'",
        ),
        ({"callbackTimeout": 2.5}, "callback_timeout", "'callbackTimeout' should be an integer"),
        ({"hold": "yes"}, "hold", "'hold' should be a boolean, got 'yes'"),
        ({"mute": 3}, "mute", "'mute' should be a boolean, got 3"),
        ({"activeMembers": 2.5}, "active_members", "'activeMembers' should be an integer"),
        ({"activeMembers": True}, "active_members", "'activeMembers' should be an integer"),
        ({"activeMembers": "lots"}, "active_members", "'activeMembers' should be an integer"),
        (
            {"createdTime": "last tuesday"},
            "created_time",
            "'createdTime' should be a timestamp, got 'last tuesday'",
        ),
        ({"createdTime": "0001-01-01T00:00:00+01:00"}, "created_time", "'createdTime'"),
        ({"state": 42}, "state", "'state' should be a string, got 42"),
        ({"state": ["active"]}, "state", "'state' should be a string, got a list"),
        ({"from": 19195551212}, "from_number", "'from' should be a string"),
        ({"callbackUrl": {"url": "x"}}, "callback_url", "'callbackUrl' should be a string"),
    ],
)
def test_one_odd_field_is_unknown_and_the_rest_of_the_conference_is_kept(
    canned, overrides, field, problem
):
    body = make_conference_body(id="c1", **overrides)
    canned.route("GET", conference_path("c1"), body=body)

    with canned.client() as client:
        conference = client.get_conference("c1")

    assert getattr(conference, field) is None
    absent = {"completed_time", "callback_url", "callback_http_method", "callback_timeout"}
    assert conference.unknown == absent | {"fallback_url", "tag", field}
    assert len(conference.problems) == 1
    assert conference.problems[0].startswith(problem)
    kept = parse_conference(make_conference_body(id="c1"))
    for name in CONFERENCE_FIELDS - {field}:
        assert getattr(conference, name) == getattr(kept, name), name
    assert conference.id == "c1"


def test_several_odd_fields_each_leave_a_note_and_the_rest_is_kept():
    conference = parse_conference(
        make_conference_body(id="c1", tag=5, hold="yes", callbackTimeout="2000ms")
    )

    assert conference.problems == (
        "'hold' should be a boolean, got 'yes'",
        "'callbackTimeout' should be an integer, got '2000ms'",
        "'tag' should be a string, got 5",
    )
    assert {"hold", "callback_timeout", "tag"} <= conference.unknown
    assert (conference.state, conference.active_members, conference.mute) == ("active", 2, False)
    assert conference.created_time == datetime(2013, 7, 12, 17, 22, 47, tzinfo=UTC)


def test_problem_notes_never_repeat_the_credentials(canned):
    canned.route("GET", conference_path("c1"), body={"id": "c1", "hold": f"{TOKEN}:{SECRET}"})

    with canned.client() as client:
        conference = client.get_conference("c1")

    assert "hold" in conference.unknown
    assert len(conference.problems) == 1
    assert SECRET not in conference.problems[0]
    assert TOKEN not in conference.problems[0]


@pytest.mark.parametrize("value", [None, "", "   ", True, 1.5, [], {}, ["c1"]])
def test_a_conference_without_a_usable_id_is_a_malformed_response(canned, value):
    canned.route("GET", conference_path("c1"), body=make_conference_body(id=value))

    with canned.client() as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, MalformedResponse)
    assert (error.poll_status, error.transient, error.status) == ("malformed", False, 200)


def test_an_answer_for_another_conference_is_a_malformed_response(canned):
    canned.route("GET", conference_path("c1"), body=make_conference_body(id="c2"))

    with canned.client() as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, MalformedResponse)
    assert error.message == "asked for conference 'c1', got an answer for 'c2'"


def test_an_answer_for_another_member_is_a_malformed_response(canned):
    canned.route("GET", conference_path("c1", "members", "m-1"), body=make_member_body(id="m-2"))

    with canned.client() as client:
        error = raised_by(lambda: client.get_member("c1", "m-1"))

    assert isinstance(error, MalformedResponse)
    assert error.message == "asked for member 'm-1', got an answer for 'm-2'"


def test_a_numeric_id_answers_for_the_same_id_as_text(canned):
    canned.route("GET", conference_path("42"), body={"id": 42, "state": "created"})

    with canned.client() as client:
        conference = client.get_conference("42")

    assert (conference.id, conference.state) == ("42", "created")


@pytest.mark.parametrize("conference_id", [".", ".."])
def test_dot_and_dot_dot_are_refused_as_ids_before_any_request(canned, conference_id):
    with canned.client() as client:
        with pytest.raises(ValueError):
            client.get_conference(conference_id)
        with pytest.raises(ValueError):
            client.list_members(conference_id)
        with pytest.raises(ValueError):
            client.get_member("c1", conference_id)

    assert canned.requests == []


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>hello</html>", b"[]", b'"conf"', b"null", b'{"state": "active"}'],
)
def test_a_conference_body_that_is_not_an_object_with_an_id_is_malformed(canned, body):
    canned.route("GET", conference_path("c1"), body=body)

    with canned.client() as client, pytest.raises(MalformedResponse):
        client.get_conference("c1")


def test_a_member_with_a_call_url_on_a_malformed_host_keeps_its_other_fields(canned):
    body = make_member_body(id="m-1", call="http://[::1/v1/users/u/calls/c-1")
    canned.route("GET", conference_path("c1", "members", "m-1"), body=body)

    with canned.client() as client:
        member = client.get_member("c1", "m-1")

    assert (member.call_url, member.call_id) == (None, None)
    assert member.unknown == {"call_url", "call_id", "removed_time"}
    assert member.problems == ("'call' is not a usable URL",)
    assert (member.state, member.join_tone) == ("active", True)
    assert member.added_time == datetime(2013, 7, 12, 18, 47, 4, tzinfo=UTC)


def test_a_member_call_url_without_a_path_leaves_only_the_call_id_unknown():
    member = parse_member(make_member_body(call="https://localhost:8444/"))

    assert member.call_url == "https://localhost:8444/"
    assert member.call_id is None
    assert member.unknown == {"call_id", "removed_time"}
    assert member.problems == ("'call' has no call id in its path",)


def test_one_odd_member_does_not_lose_the_members_list(canned, caplog):
    canned.route(
        "GET",
        conference_path("c1", "members"),
        body=[
            {"id": "m-1", "state": "active"},
            "member-secret-looking-text",
            {"state": "active", "call": "/v1/users/u/calls/c-2"},
            {"id": "m-3", "hold": "yes", "state": "completed"},
            None,
        ],
    )

    with (
        canned.client() as client,
        caplog.at_level("WARNING", logger="conferences.catapult.client"),
    ):
        listed = client.list_members("c1")

    assert [member.id for member in listed.members] == ["m-1", "m-3"]
    assert (listed.members[1].state, listed.members[1].hold) == ("completed", None)
    assert listed.members[1].problems == ("'hold' should be a boolean, got 'yes'",)
    assert listed.problems == (
        "page 1: item 2 is a string, not a member; skipped",
        "page 1: item 3 has no usable member id; skipped",
        "page 1: item 5 is null, not a member; skipped",
    )
    assert listed.pages == 1
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert len(warnings) == 3
    assert "item 2" in warnings[0]
    assert not any("secret-looking" in text or "c-2" in text for text in warnings)


def test_a_member_list_that_is_not_a_list_is_malformed(canned):
    canned.route("GET", conference_path("c1", "members"), body={"id": "m-1"})

    with canned.client() as client, pytest.raises(MalformedResponse):
        client.list_members("c1")


def test_a_member_call_id_is_the_last_segment_of_the_call_url_on_any_host(canned):
    canned.route(
        "GET",
        conference_path("c1", "members", "member-yy"),
        body=make_member_body(extra="ignored"),
    )

    with canned.client() as client:
        member = client.get_member("c1", "member-yy")

    assert member == Member(
        id="member-yy",
        state="active",
        mute=False,
        hold=False,
        join_tone=True,
        leaving_tone=False,
        added_time=datetime(2013, 7, 12, 18, 47, 4, tzinfo=UTC),
        removed_time=None,
        call_url=f"https://localhost:8444/v1/users/{USER_ID}/calls/c-oexifypjlh5ygjr7qi4nesq",
        call_id="c-oexifypjlh5ygjr7qi4nesq",
        unknown=frozenset({"removed_time"}),
        problems=(),
    )


def test_members_follow_a_relative_next_link_until_there_is_none(canned):
    canned.route(
        "GET",
        conference_path("c1", "members"),
        headers={"Link": '<members?page=0>; rel="first", <members?page=1&size=2>; rel="next"'},
        body=[{"id": "m-1", "state": "completed"}, {"id": "m-2"}],
    )
    canned.route(
        "GET",
        conference_path("c1", "members?page=1&size=2"),
        body=[{"id": "m-3", "state": "active", "call": "/v1/users/u/calls/c-3"}],
    )

    with canned.client() as client:
        listed = client.list_members("c1")

    members = listed.members
    assert (listed.pages, listed.problems) == (2, ())
    assert [m.id for m in members] == ["m-1", "m-2", "m-3"]
    assert [m.state for m in members] == ["completed", None, "active"]
    assert members[2].call_id == "c-3"
    assert [r["path"] for r in canned.requests] == [
        conference_path("c1", "members"),
        conference_path("c1", "members?page=1&size=2"),
    ]


def test_member_pagination_stops_at_max_pages(canned):
    path = conference_path("c1", "members")
    canned.route("GET", path, headers={"Link": f'<{path}>; rel="next"'}, body=[{"id": "m-1"}])

    with canned.client() as client:
        listed = client.list_members("c1", max_pages=3)

    assert len(listed.members) == 3
    assert listed.pages == 3
    assert listed.problems == ("stopped after 3 pages; the server advertised more",)
    assert len(canned.requests) == 3


def test_a_next_link_to_another_host_is_refused_so_credentials_stay_home(canned):
    canned.route(
        "GET",
        conference_path("c1", "members"),
        headers={"Link": '<http://evil.example/steal>; rel="next"'},
        body=[{"id": "m-1"}],
    )

    with canned.client() as client, pytest.raises(MalformedResponse):
        client.list_members("c1")

    assert len(canned.requests) == 1


@pytest.mark.parametrize(
    "target", [f"{BASE_PATH}/c1/members?page=1{NUL}x", f"{BASE_PATH}/c1/members?" + "p" * 3000]
)
def test_a_next_link_with_control_characters_or_too_long_is_a_malformed_response(canned, target):
    canned.route(
        "GET",
        conference_path("c1", "members"),
        headers={"Link": f'<{target}>; rel="next"'},
        body=[{"id": "m-1"}],
    )

    with canned.client() as client:
        error = raised_by(lambda: client.list_members_page("c1"))

    assert isinstance(error, MalformedResponse)
    assert error.message == "the next page link is too long or has control characters"


def test_a_link_with_a_malformed_host_is_a_malformed_response(canned):
    canned.route(
        "GET",
        conference_path("c1", "members"),
        headers={"Link": '<http://[::1/members?page=2>; rel="next"'},
        body=[{"id": "m-1"}],
    )

    with canned.client() as client:
        error = raised_by(lambda: client.list_members("c1"))

    assert isinstance(error, MalformedResponse)
    assert error.message == "the next page link is not a usable URL"
    assert len(canned.requests) == 1


def test_a_location_with_a_malformed_host_is_a_malformed_response(canned):
    canned.route("POST", BASE_PATH, status=201, headers={"Location": "http://[::1/conf-new"})

    with canned.client() as client:
        error = raised_by(lambda: client.create_conference(from_number="+19195551212"))

    assert isinstance(error, MalformedResponse)
    assert error.status == 201


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda client: client.get_conference("c1"), conference_path("c1")),
        (lambda client: client.list_members("c1"), conference_path("c1", "members")),
        (lambda client: client.get_member("c1", "m-1"), conference_path("c1", "members", "m-1")),
    ],
)
def test_deeply_nested_json_is_a_malformed_response(canned, call, path):
    canned.route("GET", path, headers={"Content-Type": "application/json"}, body=b"[" * 100_000)

    with canned.client() as client:
        error = raised_by(lambda: call(client))

    assert isinstance(error, MalformedResponse)
    assert error.message == "body is nested too deeply to read"


def test_a_deeply_nested_error_body_still_maps_to_its_status(canned):
    canned.route("GET", conference_path("c1"), status=503, body=b"[" * 100_000)

    with canned.client() as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, TransientError)
    assert error.status == 503


@pytest.mark.parametrize(
    "location",
    [
        f"{BASE_PATH}/conf-new",
        f"http://localhost/v1/users/{USER_ID}/conferences/conf-new",
        "http://localhost/conf-new/",
    ],
)
def test_create_conference_returns_the_id_from_a_relative_or_absolute_location(canned, location):
    canned.route("POST", BASE_PATH, status=201, headers={"location": location})

    with canned.client() as client:
        conference_id = client.create_conference(from_number="+19195551212", tag="t1")

    assert conference_id == "conf-new"
    assert canned.requests[0]["body"] == {"from": "+19195551212", "tag": "t1"}


def test_create_conference_without_a_location_is_malformed(canned):
    canned.route("POST", BASE_PATH, status=201, body={})

    with canned.client() as client, pytest.raises(MalformedResponse):
        client.create_conference(from_number="+19195551212")


def test_add_member_accepts_200_and_sends_only_the_given_fields(canned):
    canned.route(
        "POST",
        conference_path("c1", "members"),
        status=200,
        headers={"Location": conference_path("c1", "members", "m-9")},
    )

    with canned.client() as client:
        member_id = client.add_member("c1", call_id="c-1", join_tone=False)

    assert member_id == "m-9"
    assert canned.requests[0]["body"] == {"callId": "c-1", "joinTone": False}


def test_updates_send_only_the_given_fields_and_never_parse_the_empty_body(canned):
    canned.route("POST", conference_path("c1"), status=200)
    canned.route("POST", conference_path("c1", "members", "m-1"), status=200, body="not json")

    with canned.client() as client:
        assert client.update_conference("c1", mute=True, callback_timeout=2000) is None
        assert client.update_member("c1", "m-1", state="completed") is None

    assert [r["body"] for r in canned.requests] == [
        {"mute": True, "callbackTimeout": 2000},
        {"state": "completed"},
    ]


# --------------------------------------------------------------------------- error shapes


def test_a_404_reads_as_a_one_line_not_found_message(canned):
    canned.route(
        "GET",
        conference_path("conf-x"),
        status=404,
        body={
            "category": "not-found",
            "code": "conference-not-found",
            "message": "Conference conf-x not found",
            "details": [{"name": "requestMethod", "value": "GET"}],
        },
    )

    with canned.client() as client:
        error = raised_by(lambda: client.get_conference("conf-x"))

    assert isinstance(error, NotFound)
    assert str(error) == "Not found: Conference conf-x not found (HTTP 404, conference-not-found)"
    assert (error.status, error.code, error.category) == (404, "conference-not-found", "not-found")
    assert (error.transient, error.poll_status) == (False, "not_found")


def test_a_member_cap_403_is_a_forbidden_api_error_not_a_rate_limit(canned):
    canned.route(
        "POST",
        conference_path("c1", "members"),
        status=403,
        body={
            "category": "limit",
            "code": "conference-max-members",
            "message": "Conference c1 has reached its maximum of 20 members",
        },
    )

    with canned.client() as client:
        error = raised_by(lambda: client.add_member("c1", call_id="c-21"))

    assert isinstance(error, Forbidden)
    assert (error.status, error.code, error.transient) == (403, "conference-max-members", False)
    assert error.poll_status == "api_error"
    assert str(error) == (
        "API error: forbidden (limit): Conference c1 has reached its maximum of 20 members "
        "(HTTP 403, conference-max-members)"
    )


@pytest.mark.parametrize("code", ["call-rate-limit", "message-rate-limit", "CALL-RATE-LIMIT"])
def test_a_403_limit_naming_a_call_or_message_rate_is_the_accounts_rate_limit(canned, code):
    canned.route(
        "GET",
        conference_path("c1"),
        status=403,
        body={"category": "limit", "code": code, "message": "slow down"},
    )

    with canned.client() as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, RateLimited)
    assert (error.transient, error.poll_status) == (True, "rate_limited")


@pytest.mark.parametrize(
    "body",
    [b"", b'{"category": "AUTHORIZATION", "code": "user-access-denied"}', b"<h1>Forbidden</h1>"],
)
def test_a_403_without_a_category_or_about_authorization_rejects_the_credentials(canned, body):
    canned.route("GET", conference_path("c1"), status=403, body=body)

    with canned.client() as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, CredentialsRejected)
    assert error.poll_status == "credentials_rejected"
    assert error.transient is False


def test_a_403_about_conference_state_is_a_plain_api_error(canned):
    canned.route(
        "POST",
        conference_path("c1"),
        status=403,
        body={"category": "forbidden", "code": "conference-error", "message": "Invalid state"},
    )

    with canned.client() as client:
        error = raised_by(lambda: client.update_conference("c1", state="completed"))

    assert isinstance(error, ApiError)
    assert (error.poll_status, error.transient) == ("api_error", False)
    assert str(error) == "API error: forbidden: Invalid state (HTTP 403, conference-error)"


def test_an_error_body_with_only_a_code_uses_the_code_as_message(canned):
    canned.route("GET", conference_path("c1"), status=400, body={"code": "validation-error"})

    with canned.client() as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, ApiError)
    assert error.message == "validation-error"
    assert str(error) == "API error: validation-error (HTTP 400)"


def test_an_upper_case_bad_request_category_is_kept_and_stays_an_api_error(canned):
    body = {
        "category": "BAD_REQUEST",
        "code": "missing-property",
        "message": "Property 'from' is required",
        "time": 1391514755496,
        "user": {"id": USER_ID},
        "details": [{"id": "d1", "name": "requestMethod", "value": "POST", "version": 1}],
    }
    canned.route("POST", BASE_PATH, status=400, body=body)

    with canned.client() as client:
        error = raised_by(lambda: client.create_conference(from_number=""))

    assert isinstance(error, ApiError)
    assert (error.category, error.code) == ("BAD_REQUEST", "missing-property")
    assert error.message == "Property 'from' is required"


def test_an_html_502_is_transient_and_falls_back_to_the_reason_phrase(canned):
    html = "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>"
    canned.route(
        "GET", conference_path("c1"), status=502, headers={"Content-Type": "text/html"}, body=html
    )

    with canned.client() as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, TransientError)
    assert (error.transient, error.poll_status) == (True, "unreachable")
    assert str(error) == "Catapult unreachable: Bad Gateway (HTTP 502)"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (409, {"category": "conflict", "code": "conference-update-conflict", "message": "x"}),
        (503, {"category": "unavailable", "code": "call-unavailable", "message": "later"}),
        (500, b""),
    ],
)
def test_conflicts_and_server_errors_are_transient(canned, status, body):
    canned.route("POST", conference_path("c1"), status=status, body=body)

    with canned.client() as client:
        error = raised_by(lambda: client.update_conference("c1", hold=True))

    assert isinstance(error, TransientError)
    assert error.status == status
    expected = (
        ("conflict", "Conflict") if status == 409 else ("unreachable", "Catapult unreachable")
    )
    assert (error.poll_status, error.label) == expected


def test_a_302_redirect_is_not_followed_and_is_an_api_error(canned):
    canned.route("GET", conference_path("c1"), status=302, headers={"Location": "/elsewhere"})
    canned.route("GET", "/elsewhere", body={"id": "c1"})

    with canned.client() as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, ApiError)
    assert error.status == 302
    assert [r["path"] for r in canned.requests] == [conference_path("c1")]


def test_an_unknown_status_without_reason_or_body_reads_as_http_status(canned):
    canned.route("GET", conference_path("c1"), status=499)

    with canned.client() as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, ApiError)
    assert error.message == "HTTP 499"
    assert str(error) == "API error: HTTP 499 (HTTP 499)"


def test_a_429_carries_the_reset_time_from_epoch_milliseconds(canned):
    body = {
        "category": "too-many-requests",
        "code": "rate-limit-reached",
        "details": [{"name": "rateLimitResetTime", "value": "1479308598680"}],
    }
    canned.route(
        "GET",
        conference_path("c1"),
        status=429,
        headers={"X-RateLimit-Reset": "1479308598680"},
        body=body,
    )

    with canned.client() as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, RateLimited)
    assert error.reset_at == datetime(2016, 11, 16, 15, 3, 18, 680000, tzinfo=UTC)
    assert error.message == "rate-limit-reached"
    assert str(error) == "Rate limited: rate-limit-reached (HTTP 429)"


@pytest.mark.parametrize(
    ("headers", "details", "expected"),
    [
        ({"X-RateLimit-Reset": "1479308598"}, [], datetime(2016, 11, 16, 15, 3, 18, tzinfo=UTC)),
        (
            {},
            [{"name": "rateLimitResetTime", "value": "1479308598680"}],
            datetime(2016, 11, 16, 15, 3, 18, 680000, tzinfo=UTC),
        ),
        ({"X-RateLimit-Reset": "soon"}, [], None),
        ({}, [], None),
    ],
)
def test_a_429_reset_time_falls_back_to_seconds_then_details_then_none(
    canned, headers, details, expected
):
    body = {"category": "too-many-requests", "code": "rate-limit-reached", "details": details}
    canned.route("GET", conference_path("c1"), status=429, headers=headers, body=body)

    with canned.client() as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, RateLimited)
    assert error.reset_at == expected


def test_a_retry_after_header_is_honoured(canned):
    canned.route(
        "GET",
        conference_path("c1"),
        status=429,
        headers={"Retry-After": "30", "X-RateLimit-Reset": "1479308598680"},
    )

    with canned.client() as client:
        error = raised_by(lambda: client.get_conference("c1"))

    expected = datetime.now(UTC) + timedelta(seconds=30)
    assert isinstance(error, RateLimited)
    assert abs(error.reset_at - expected) < timedelta(seconds=5)


def test_a_401_rejects_the_credentials_and_never_echoes_the_secret(canned):
    canned.route(
        "GET",
        conference_path("c1"),
        status=401,
        body={"message": f"Bad credentials {TOKEN}:{SECRET}", "code": SECRET},
    )

    with canned.client() as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, CredentialsRejected)
    for text in (str(error), repr(error), error.message, error.code):
        assert SECRET not in text
        assert TOKEN not in text


def test_a_refused_connection_is_transient_and_does_not_mention_the_secret():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = CatapultDriver(
        base_url=f"http://127.0.0.1:{port}", user_id=USER_ID, api_token=TOKEN, api_secret=SECRET
    )

    with client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, TransientError)
    assert error.status is None
    assert SECRET not in str(error)


def test_a_slow_response_past_the_read_timeout_is_transient(canned):
    canned.route("GET", conference_path("c1"), body={"id": "c1"}, delay=1.0)

    started = time.monotonic()
    with canned.client(timeout=(1.0, 0.2)) as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, TransientError)
    assert time.monotonic() - started < 0.9


def serve_once(raw_response: bytes) -> str:
    """A server that answers one connection with ``raw_response`` and closes it (an
    answer whose framing the canned server cannot send); returns its base URL."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer():
        connection, _ = listener.accept()
        with connection, listener:
            connection.recv(65536)
            try:
                connection.sendall(raw_response)
            except OSError:  # the client stopped reading
                pass

    threading.Thread(target=answer, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_body_over_the_cap_without_a_content_length_is_too_large():
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    body = json_bytes({"id": "c1", "tag": "x" * 5000})
    url = serve_once(head + body)

    with CatapultDriver(
        base_url=url, user_id=USER_ID, api_token=TOKEN, api_secret=SECRET, max_bytes=4096
    ) as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, MalformedResponse)
    assert str(error) == "Malformed response: too large (over 4096 bytes) (HTTP 200)"


def test_a_gzip_body_counts_its_decoded_size_and_a_small_one_reads_as_usual(canned):
    small = gzip.compress(json_bytes({"id": "c1", "tag": "ok"}))
    bomb = gzip.compress(json_bytes({"id": "c2", "tag": "0" * 100_000}))
    for conference_id, body in (("c1", small), ("c2", bomb)):
        canned.route(
            "GET",
            conference_path(conference_id),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            body=body,
        )

    with canned.client(max_bytes=10_000) as client:
        assert client.get_conference("c1").tag == "ok"
        error = raised_by(lambda: client.get_conference("c2"))

    assert len(bomb) < 10_000
    assert isinstance(error, MalformedResponse) and "too large" in error.message


def test_an_error_answer_over_the_cap_still_reads_as_its_status(canned):
    page = "<html>" + "Service Unavailable " * 1000 + "</html>"
    canned.route("GET", conference_path("c1"), status=503, body=page)

    with canned.client(max_bytes=4096) as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, TransientError) and error.status == 503


def test_the_total_deadline_also_bounds_the_wait_for_the_headers(canned):
    canned.route("GET", conference_path("c1"), body={"id": "c1"}, delay=1.5)

    started = time.monotonic()
    with canned.client(timeout=(1.0, 10.0), total_timeout=0.5) as client:
        error = raised_by(lambda: client.get_conference("c1"))

    assert isinstance(error, TransientError)
    assert time.monotonic() - started < 1.2


@pytest.mark.parametrize(
    "options", [{"total_timeout": 0}, {"total_timeout": -1.0}, {"max_bytes": 0}], ids=repr
)
def test_a_client_refuses_a_deadline_or_cap_that_is_not_positive(options):
    with pytest.raises(ValueError):
        CatapultDriver(
            base_url="http://127.0.0.1:9", user_id="u", api_token="t", api_secret="s", **options
        )


def test_the_error_classes_name_their_poll_outcome_and_transience():
    expected = {
        TransientError: (True, "unreachable"),
        NotFound: (False, "not_found"),
        CredentialsRejected: (False, "credentials_rejected"),
        RateLimited: (True, "rate_limited"),
        MalformedResponse: (False, "malformed"),
        ApiError: (False, "api_error"),
    }
    for cls, (transient, poll_status) in expected.items():
        assert issubclass(cls, CatapultError)
        assert (cls.transient, cls.poll_status) == (transient, poll_status)


# --------------------------------------------------------------------------- simulator

DEMO_USER, DEMO_TOKEN, DEMO_SECRET = "u-demo", "demo-token", "demo-secret"


def simulator_module():
    return pytest.importorskip("simulator.testing", reason="the simulator is not written yet")


@pytest.fixture(scope="module")
def simulator_server():
    with simulator_module().running_simulator(rate_limit=1000) as server:
        yield server


@pytest.fixture
def sim(simulator_server):
    simulator_server.reset_faults()
    simulator_server.set_rate_limit(1000)
    yield simulator_server
    simulator_server.reset_faults()
    simulator_server.set_rate_limit(1000)


def demo_client(server, **overrides) -> CatapultDriver:
    options = {
        "base_url": server.url,
        "user_id": DEMO_USER,
        "api_token": DEMO_TOKEN,
        "api_secret": DEMO_SECRET,
        "timeout": (1.0, 3.0),
    }
    return CatapultDriver(**{**options, **overrides})


def test_a_conference_lifecycle_against_the_simulator(sim):
    started = datetime.now(UTC) - timedelta(seconds=1)
    with demo_client(sim) as client:
        conference_id = client.create_conference(from_number="+19195551212", tag="lifecycle")
        created = client.get_conference(conference_id)

        first = client.add_member(conference_id, call_id="c-first", join_tone=True)
        second = client.add_member(conference_id, call_id="c-second", mute=True)
        active = client.get_conference(conference_id)

        client.update_member(conference_id, first, state="completed")
        members = client.list_members(conference_id).members
        departed = client.get_member(conference_id, first)

        client.update_conference(conference_id, mute=True, hold=False)
        muted = client.get_conference(conference_id)

        client.update_conference(conference_id, state="completed")
        completed = client.get_conference(conference_id)
        after = client.list_members(conference_id).members
        too_late = raised_by(lambda: client.update_conference(conference_id, mute=False))

    assert created.id == conference_id
    assert (created.state, created.active_members, created.tag) == ("created", 0, "lifecycle")
    assert created.from_number == "+19195551212"
    assert started <= created.created_time <= datetime.now(UTC)
    assert created.completed_time is None

    assert (active.state, active.active_members) == ("active", 2)

    by_id = {member.id: member for member in members}
    assert set(by_id) == {first, second}
    assert (by_id[first].state, by_id[first].call_id, by_id[first].join_tone) == (
        "completed",
        "c-first",
        True,
    )
    assert (by_id[second].state, by_id[second].call_id, by_id[second].mute) == (
        "active",
        "c-second",
        True,
    )
    assert by_id[second].removed_time is None
    assert departed == by_id[first]
    assert departed.removed_time >= departed.added_time - timedelta(seconds=1)

    assert (muted.mute, muted.hold, muted.active_members) == (True, False, 1)

    assert (completed.state, completed.active_members) == ("completed", 0)
    assert completed.completed_time >= created.created_time
    assert {member.state for member in after} == {"completed"}

    assert isinstance(too_late, ApiError)
    assert (too_late.status, too_late.code) == (403, "conference-error")


def test_an_unknown_conference_or_member_is_not_found(sim):
    with demo_client(sim) as client:
        missing = raised_by(lambda: client.get_conference("conf-does-not-exist"))
        conference_id = client.create_conference(from_number="+19195551212")
        missing_member = raised_by(lambda: client.get_member(conference_id, "member-nope"))

    assert isinstance(missing, NotFound)
    assert missing.code == "conference-not-found"
    assert str(missing) == (
        "Not found: Conference conf-does-not-exist not found (HTTP 404, conference-not-found)"
    )
    assert isinstance(missing_member, NotFound)
    assert missing_member.code == "conference-member-not-found"


def test_another_users_conference_is_not_found(sim):
    sim.add_user("u-other", "other-token", "other-secret")
    with demo_client(sim) as client:
        conference_id = client.create_conference(from_number="+19195551212")
    other = demo_client(sim, user_id="u-other", api_token="other-token", api_secret="other-secret")

    with other:
        error = raised_by(lambda: other.get_conference(conference_id))

    assert isinstance(error, NotFound)


def test_a_wrong_secret_is_rejected_and_the_secret_is_not_repeated(sim):
    wrong_secret = "not-the-demo-secret"
    with demo_client(sim, api_secret=wrong_secret) as client:
        error = raised_by(lambda: client.get_conference("conf-anything"))

    assert isinstance(error, CredentialsRejected)
    assert (error.transient, error.poll_status) == (False, "credentials_rejected")
    assert wrong_secret not in str(error)
    assert wrong_secret not in repr(error)


def test_a_429_from_the_simulator_carries_the_reset_time_from_epoch_milliseconds(sim):
    with demo_client(sim) as client:
        conference_id = client.create_conference(from_number="+19195551212")
        sim.set_rate_limit(1)
        errors = []
        for _ in range(3):
            try:
                client.get_conference(conference_id)
            except RateLimited as error:
                errors.append(error)

    assert errors, "three back-to-back requests at 1 request/s should hit the limit"
    error = errors[0]
    now = datetime.now(UTC)
    assert (error.status, error.code, error.message) == (429, "rate-limit-reached", error.code)
    assert (error.transient, error.poll_status) == (True, "rate_limited")
    assert now - timedelta(seconds=1) < error.reset_at < now + timedelta(seconds=2)


def test_a_rate_limited_period_reports_when_it_ends(sim):
    sim.set_faults(rate_limited_seconds=30)

    with demo_client(sim) as client:
        error = raised_by(lambda: client.get_conference("conf-anything"))

    expected = datetime.now(UTC) + timedelta(seconds=30)
    assert isinstance(error, RateLimited)
    assert abs(error.reset_at - expected) < timedelta(seconds=2)


def test_every_kind_of_malformed_body_is_a_malformed_response(sim):
    with demo_client(sim) as client:
        conference_id = client.create_conference(from_number="+19195551212")
        sim.set_faults(malformed_rate=1)
        errors = [raised_by(lambda: client.get_conference(conference_id)) for _ in range(4)]

    for error in errors:
        assert isinstance(error, MalformedResponse), error
        assert error.poll_status == "malformed"


def test_a_malformed_member_list_is_a_malformed_response_but_an_empty_list_is_not(sim):
    with demo_client(sim) as client:
        conference_id = client.create_conference(from_number="+19195551212")
        client.add_member(conference_id, call_id="c-1")
        sim.set_faults(malformed_rate=1)
        outcomes = []
        for _ in range(4):  # truncated JSON, HTML, "[]", {"state": 42} in some order
            try:
                outcomes.append(client.list_members(conference_id))
            except MalformedResponse as error:
                outcomes.append(error)

    assert sum(isinstance(outcome, MalformedResponse) for outcome in outcomes) == 3
    assert MemberList(members=(), problems=(), pages=1) in outcomes


def test_server_errors_from_the_simulator_are_transient(sim):
    with demo_client(sim) as client:
        sim.set_faults(error_rate=1)
        errors = [raised_by(lambda: client.get_conference("conf-x")) for _ in range(4)]

    for error in errors:
        assert isinstance(error, TransientError)
        assert error.status in (500, 503)
        assert (error.transient, error.poll_status) == (True, "unreachable")


def test_a_hanging_simulator_is_transient_after_the_read_timeout(sim):
    sim.set_faults(hang_rate=1, hang_seconds=2)
    started = time.monotonic()

    with demo_client(sim, timeout=(1.0, 0.3)) as client:
        error = raised_by(lambda: client.get_conference("conf-x"))

    assert isinstance(error, TransientError)
    assert error.status is None
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("time_format", ["z", "ms-z", "hour-offset", "ms-colon-offset", "mixed"])
def test_every_simulator_timestamp_form_parses_to_the_same_utc_instant(time_format):
    started = datetime.now(UTC) - timedelta(seconds=1)
    with simulator_module().running_simulator(rate_limit=1000, time_format=time_format) as server:
        with demo_client(server) as client:
            conference_id = client.create_conference(from_number="+19195551212")
            member_id = client.add_member(conference_id, call_id="c-1")
            client.update_conference(conference_id, state="completed")
            conference = client.get_conference(conference_id)
            member = client.get_member(conference_id, member_id)
    finished = datetime.now(UTC) + timedelta(seconds=1)

    for moment in (
        conference.created_time,
        conference.completed_time,
        member.added_time,
        member.removed_time,
    ):
        assert moment.utcoffset() == timedelta(0)
        assert started <= moment <= finished


def test_errors_survive_pickling_for_task_queues():
    reset_at = datetime(2016, 11, 16, 15, 3, 18, tzinfo=UTC)
    error = RateLimited("slow down", status=429, code="rate-limit-reached", reset_at=reset_at)

    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is RateLimited
    assert (copy.message, copy.status, copy.code, copy.reset_at) == (
        "slow down",
        429,
        "rate-limit-reached",
        reset_at,
    )
    assert str(copy) == str(error)
