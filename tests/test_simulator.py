"""The Catapult simulator, exercised over real HTTP on a free local port (no Django)."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from simulator.scenario import build_plan
from simulator.testing import running_simulator

USER_ID = "u-test"
AUTH = ("test-token", "test-secret")
USERS = [(USER_ID, *AUTH)]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def sim():
    with running_simulator(users=USERS, rate_limit=0) as simulator:
        yield simulator


def api(sim, method, path, *, auth=AUTH, user_id=USER_ID, **kwargs):
    kwargs.setdefault("timeout", 5)
    url = f"{sim.url}/v1/users/{user_id}{path}"
    return requests.request(method, url, auth=auth, **kwargs)


def control(sim, method, path, **kwargs):
    return requests.request(method, f"{sim.url}/_sim/{path}", timeout=5, **kwargs)


def make_conference(sim, **fields):
    body = {"from": "+19195551234", **fields}
    response = api(sim, "POST", "/conferences", json=body)
    assert response.status_code == 201, response.text
    return response.headers["Location"].rsplit("/", 1)[-1]


def add_member(sim, conference_id, call_id="c-caller", **fields):
    body = {"callId": call_id, **fields}
    response = api(sim, "POST", f"/conferences/{conference_id}/members", json=body)
    assert response.status_code == 201, response.text
    return response.headers["Location"].rsplit("/", 1)[-1]


def get_conference(sim, conference_id):
    response = api(sim, "GET", f"/conferences/{conference_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_until(predicate, *, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


class CallbackReceiver:
    """A local http.server that records every request and answers ``status``."""

    def __init__(self, status=200):
        self.status = status
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.record()

            def do_POST(self):
                self.record()

            def record(self):
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                receiver.requests.append(
                    {
                        "method": self.command,
                        "path": parts.path,
                        "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length) if length else b"",
                    }
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count, timeout=5.0):
        wait_until(lambda: len(self.requests) >= count, timeout=timeout)
        return list(self.requests)


@contextmanager
def callback_receiver(status=200):
    receiver = CallbackReceiver(status)
    thread = threading.Thread(
        target=receiver.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


# --- conference lifecycle ------------------------------------------------------------------


def test_it_creates_a_conference_with_201_an_empty_body_and_a_relative_location(sim):
    response = api(sim, "POST", "/conferences", json={"from": "+19195551234"})

    assert response.status_code == 201
    assert response.content == b""
    location = response.headers["Location"]
    assert re.fullmatch(rf"/v1/users/{USER_ID}/conferences/conf-[a-z0-9]{{18}}", location)


def test_a_new_conference_is_created_with_only_the_keys_that_have_values(sim):
    conference_id = make_conference(sim)

    conference = get_conference(sim, conference_id)

    assert conference == {
        "id": conference_id,
        "state": "created",
        "from": "+19195551234",
        "createdTime": conference["createdTime"],
        "activeMembers": 0,
        "hold": False,
        "mute": False,
        "profile": "interpret_digits",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", conference["createdTime"])


def test_it_accepts_strings_for_booleans_and_integers_and_treats_null_as_absent(sim):
    conference_id = make_conference(
        sim, callbackTimeout="2000", callbackUrl=None, tag=None, profile="passthru_digits"
    )

    response = api(
        sim,
        "POST",
        f"/conferences/{conference_id}",
        json={"mute": "true", "hold": "false", "state": None, "callbackUrl": None, "tag": "t1"},
    )

    assert response.status_code == 200
    assert response.content == b""
    conference = get_conference(sim, conference_id)
    assert conference["mute"] is True
    assert conference["hold"] is False
    assert conference["callbackTimeout"] == 2000
    assert conference["tag"] == "t1"
    assert conference["profile"] == "passthru_digits"
    assert conference["state"] == "created"
    assert "callbackUrl" not in conference


def test_it_makes_a_conference_active_when_the_first_member_joins(sim):
    conference_id = make_conference(sim)

    member_id = add_member(sim, conference_id, call_id="c-abc", mute="false", joinTone="true")

    assert re.fullmatch(r"member-[a-z0-9]{12}", member_id)
    conference = get_conference(sim, conference_id)
    assert conference["state"] == "active"
    assert conference["activeMembers"] == 1
    member = api(sim, "GET", f"/conferences/{conference_id}/members/{member_id}").json()
    assert member["state"] == "active"
    assert member["joinTone"] is True
    assert member["call"] == f"{sim.url}/v1/users/{USER_ID}/calls/c-abc"
    assert "removedTime" not in member


def test_it_completes_a_conference_when_its_last_member_leaves(sim):
    conference_id = make_conference(sim)
    first = add_member(sim, conference_id, call_id="c-1")
    second = add_member(sim, conference_id, call_id="c-2")

    for member_id in (first, second):
        response = api(
            sim,
            "POST",
            f"/conferences/{conference_id}/members/{member_id}",
            json={"state": "completed"},
        )
        assert response.status_code == 200

    conference = get_conference(sim, conference_id)
    assert conference["state"] == "completed"
    assert conference["activeMembers"] == 0
    assert "completedTime" in conference


def test_the_members_list_keeps_departed_members_with_their_removed_time(sim):
    conference_id = make_conference(sim)
    leaving = add_member(sim, conference_id, call_id="c-1")
    staying = add_member(sim, conference_id, call_id="c-2")
    api(sim, "POST", f"/conferences/{conference_id}/members/{leaving}", json={"state": "completed"})

    members = api(sim, "GET", f"/conferences/{conference_id}/members").json()

    by_id = {member["id"]: member for member in members}
    assert set(by_id) == {leaving, staying}
    assert by_id[leaving]["state"] == "completed"
    assert "removedTime" in by_id[leaving]
    assert by_id[staying]["state"] == "active"
    assert get_conference(sim, conference_id)["activeMembers"] == 1


def test_terminating_a_conference_completes_it_and_every_member(sim):
    conference_id = make_conference(sim)
    add_member(sim, conference_id, call_id="c-1")
    add_member(sim, conference_id, call_id="c-2")

    response = api(sim, "POST", f"/conferences/{conference_id}", json={"state": "completed"})

    assert response.status_code == 200
    assert get_conference(sim, conference_id)["state"] == "completed"
    members = api(sim, "GET", f"/conferences/{conference_id}/members").json()
    assert [member["state"] for member in members] == ["completed", "completed"]


def test_a_conference_without_members_can_be_terminated_from_created(sim):
    conference_id = make_conference(sim)

    api(sim, "POST", f"/conferences/{conference_id}", json={"state": "completed"})

    assert get_conference(sim, conference_id)["state"] == "completed"


def test_updating_a_completed_conference_is_forbidden(sim):
    conference_id = make_conference(sim)
    api(sim, "POST", f"/conferences/{conference_id}", json={"state": "completed"})

    response = api(sim, "POST", f"/conferences/{conference_id}", json={"mute": True})

    assert response.status_code == 403
    assert response.json()["category"] == "forbidden"
    assert response.json()["code"] == "conference-error"


def test_it_refuses_a_twenty_first_active_member(sim):
    conference_id = make_conference(sim)
    for number in range(20):
        add_member(sim, conference_id, call_id=f"c-{number}")

    response = api(sim, "POST", f"/conferences/{conference_id}/members", json={"callId": "c-x"})

    assert response.status_code == 403
    assert response.json()["category"] == "limit"
    assert response.json()["code"] == "conference-max-members"
    assert get_conference(sim, conference_id)["activeMembers"] == 20


def test_concurrent_joins_never_exceed_twenty_active_members(sim):
    conference_id = make_conference(sim)
    statuses = []

    def join(number):
        path = f"/conferences/{conference_id}/members"
        statuses.append(api(sim, "POST", path, json={"callId": f"c-{number}"}).status_code)

    threads = [threading.Thread(target=join, args=(number,)) for number in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201] * 20 + [403] * 10
    assert get_conference(sim, conference_id)["activeMembers"] == 20


def test_member_updates_change_mute_hold_and_tones(sim):
    conference_id = make_conference(sim)
    member_id = add_member(sim, conference_id)
    path = f"/conferences/{conference_id}/members/{member_id}"

    response = api(sim, "POST", path, json={"mute": "true", "hold": True, "leavingTone": "true"})

    assert response.status_code == 200
    member = api(sim, "GET", path).json()
    assert (member["mute"], member["hold"], member["leavingTone"]) == (True, True, True)


def test_audio_is_accepted_with_a_sentence_or_a_file_url_and_refused_without(sim):
    conference_id = make_conference(sim)
    member_id = add_member(sim, conference_id)

    spoken = api(sim, "POST", f"/conferences/{conference_id}/audio", json={"sentence": "Hi"})
    played = api(
        sim,
        "POST",
        f"/conferences/{conference_id}/members/{member_id}/audio",
        json={"fileUrl": "http://example.com/a.wav"},
    )
    neither = api(sim, "POST", f"/conferences/{conference_id}/audio", json={"voice": "Kate"})

    assert (spoken.status_code, played.status_code) == (200, 200)
    assert neither.status_code == 400


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/conferences", {}, "missing-property"),
        ("/conferences", {"from": "+1", "callbackTimeout": 20000}, "validation-error"),
        ("/conferences", {"from": "+1", "callbackTimeout": "soon"}, "validation-error"),
        ("/conferences", {"from": "+1", "profile": "loud"}, "validation-error"),
        ("/conferences", {"from": "+1", "callbackUrl": "not a url"}, "callback-invalid-url"),
        ("/conferences", {"from": "+1", "callbackHttpMethod": "PUT"}, "validation-error"),
        ("/conferences/{conference}", {"mute": "maybe"}, "validation-error"),
        ("/conferences/{conference}", {"state": "active"}, "validation-error"),
        ("/conferences/{conference}", {"profile": "passthru_digits"}, "validation-error"),
        ("/conferences/{conference}/members", {"joinTone": True}, "missing-property"),
        ("/conferences/{conference}/members", {"callId": "c-1", "hold": 3}, "validation-error"),
    ],
)
def test_it_answers_400_to_bad_values(sim, path, body, code):
    conference_id = make_conference(sim)

    response = api(sim, "POST", path.format(conference=conference_id), json=body)

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["category"] == "bad-request"
    assert response.json()["code"] == code
    assert response.json()["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_it_answers_400_to_a_body_that_is_not_a_json_object(sim, raw):
    headers = {"Content-Type": "application/json"}

    response = api(sim, "POST", "/conferences", data=raw, headers=headers)

    assert response.status_code == 400
    assert response.json()["category"] == "bad-request"


# --- auth and not-found -------------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, ("test-token", "wrong"), ("nobody", "test-secret")])
def test_missing_or_wrong_credentials_get_401_unauthorized(sim, auth):
    response = api(sim, "GET", "/conferences/conf-x", auth=auth)

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["category"] == "authorization"
    assert response.json()["code"] == "unauthorized"
    assert response.json()["message"]


def test_valid_credentials_for_another_user_get_user_access_denied(sim):
    sim.add_user("u-other", "other-token", "other-secret")

    response = api(sim, "GET", "/conferences/conf-x", user_id="u-other")

    assert response.status_code == 401
    assert response.json()["code"] == "user-access-denied"
    assert (
        response.json()["message"] == "User u-test does not have permission to access user u-other"
    )


def test_another_users_conference_is_not_found(sim):
    sim.add_user("u-other", "other-token", "other-secret")
    conference_id = make_conference(sim)

    response = api(
        sim,
        "GET",
        f"/conferences/{conference_id}",
        user_id="u-other",
        auth=("other-token", "other-secret"),
    )

    assert response.status_code == 404


def test_an_unknown_conference_gets_the_documented_404_body(sim):
    response = api(sim, "GET", "/conferences/conf-x")

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "category": "not-found",
        "code": "conference-not-found",
        "message": "Conference conf-x not found",
        "details": [
            {"name": "requestPath", "value": f"users/{USER_ID}/conferences/conf-x"},
            {"name": "requestMethod", "value": "GET"},
        ],
    }


def test_an_unknown_member_gets_conference_member_not_found(sim):
    conference_id = make_conference(sim)

    response = api(sim, "POST", f"/conferences/{conference_id}/members/member-x", json={})

    assert response.status_code == 404
    assert response.json()["code"] == "conference-member-not-found"


@pytest.mark.parametrize("path", ["/v1/nothing", f"/v1/users/{USER_ID}/calls/c-1"])
def test_an_unknown_route_gets_resource_not_found(sim, path):
    response = requests.get(f"{sim.url}{path}", auth=AUTH, timeout=5)

    assert response.status_code == 404
    assert response.json()["code"] == "resource-not-found"


def test_there_is_no_list_conferences_endpoint(sim):
    response = api(sim, "GET", "/conferences")

    assert response.status_code == 405


# --- ids and timestamps -------------------------------------------------------------------


def test_ids_are_the_same_for_the_same_seed():
    def first_ids(seed):
        with running_simulator(users=USERS, rate_limit=0, seed=seed) as simulator:
            conference_id = make_conference(simulator)
            return conference_id, add_member(simulator, conference_id)

    assert first_ids(42) == first_ids(42)
    assert first_ids(42) != first_ids(43)


@pytest.mark.parametrize(
    ("time_format", "pattern"),
    [
        ("z", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"),
        ("ms-z", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"),
        ("hour-offset", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-02"),
        ("ms-colon-offset", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-02:00"),
    ],
)
def test_timestamps_come_in_the_chosen_shape_and_mean_the_same_instant(time_format, pattern):
    with running_simulator(users=USERS, rate_limit=0, time_format=time_format) as simulator:
        before = datetime.now().astimezone()
        created = get_conference(simulator, make_conference(simulator))["createdTime"]

    assert re.fullmatch(pattern, created)
    assert abs((datetime.fromisoformat(created) - before).total_seconds()) < 5


def test_the_mixed_time_format_uses_several_shapes():
    with running_simulator(users=USERS, rate_limit=0, time_format="mixed") as simulator:
        times = [
            get_conference(simulator, make_conference(simulator))["createdTime"] for _ in range(12)
        ]

    shapes = {re.sub(r"\d", "0", value) for value in times}
    assert len(shapes) > 1
    assert all(datetime.fromisoformat(value).tzinfo is not None for value in times)


# --- rate limit ---------------------------------------------------------------------------


def test_a_request_over_the_budget_gets_the_documented_429():
    with running_simulator(users=USERS, rate_limit=2) as simulator:
        statuses = [api(simulator, "GET", "/conferences/conf-x").status_code for _ in range(2)]
        response = api(simulator, "GET", "/conferences/conf-x")
        stats = simulator.stats()["users"][USER_ID]

    assert statuses == [404, 404]
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    reset = response.headers["X-RateLimit-Reset"]
    assert re.fullmatch(r"\d{13}", reset)
    assert 0 < int(reset) - time.time() * 1000 <= 1000
    assert response.json() == {
        "category": "too-many-requests",
        "code": "rate-limit-reached",
        "details": [
            {"name": "rateLimitResetTime", "value": reset},
            {"name": "requestPath", "value": f"users/{USER_ID}/conferences/conf-x"},
        ],
    }
    assert stats["requests"] == 3
    assert stats["rate_limited"] == 1
    assert stats["max_accepted_per_second"] == 2


def test_a_client_that_paces_itself_is_never_limited():
    with running_simulator(users=USERS, rate_limit=20) as simulator:
        for _ in range(30):
            assert api(simulator, "GET", "/conferences/conf-x").status_code == 404
            time.sleep(0.055)
        stats = simulator.stats(include_arrivals=True)["users"][USER_ID]

    assert stats["rate_limited"] == 0
    assert stats["max_accepted_per_second"] <= 20
    assert len(stats["arrivals"]) == 30


def test_the_rate_limit_can_be_changed_live_and_auth_failures_are_not_counted():
    with running_simulator(users=USERS, rate_limit=1) as simulator:
        api(simulator, "GET", "/conferences/conf-x", auth=None)
        assert api(simulator, "GET", "/conferences/conf-x").status_code == 404
        assert api(simulator, "GET", "/conferences/conf-x").status_code == 429
        changed = control(simulator, "POST", "rate-limit", json={"rate": 0})
        assert api(simulator, "GET", "/conferences/conf-x").status_code == 404
        stats = control(simulator, "GET", "stats").json()

    assert changed.json() == {"rate": 0.0}
    assert stats["rate_limit"] == 0.0
    assert stats["users"][USER_ID]["requests"] == 3


# --- faults -------------------------------------------------------------------------------


def test_latency_is_added_to_every_response(sim):
    sim.set_faults(latency_ms=300)

    started = time.monotonic()
    response = api(sim, "GET", "/conferences/conf-x")

    assert response.status_code == 404
    assert time.monotonic() - started >= 0.3


def test_a_client_that_gives_up_before_the_answer_leaves_no_traceback(sim, capfd):
    sim.set_faults(latency_ms=400)

    with pytest.raises(requests.Timeout):
        api(sim, "GET", "/conferences/conf-x", timeout=(1, 0.1))
    time.sleep(0.6)  # the answer is written to the closed connection meanwhile

    assert "Traceback" not in capfd.readouterr().err


def test_the_error_fault_answers_500_or_503_and_changes_nothing(sim):
    sim.set_faults(error_rate=1)

    responses = [api(sim, "POST", "/conferences", json={"from": "+1"}) for _ in range(8)]

    assert {response.status_code for response in responses} == {500, 503}
    for response in responses:
        body = response.json()
        expected = {500: "backend", 503: "unavailable"}[response.status_code]
        assert body["category"] == expected
        assert body["message"]
    assert sim.conference_ids() == []


def test_the_malformed_fault_rotates_through_broken_bodies(sim):
    conference_id = make_conference(sim)
    sim.set_faults(malformed_rate=1)

    responses = [api(sim, "GET", f"/conferences/{conference_id}") for _ in range(4)]

    assert [response.status_code for response in responses] == [200] * 4
    with pytest.raises(ValueError):
        responses[0].json()
    assert responses[1].headers["Content-Type"].startswith("text/html")
    assert responses[2].json() == []
    assert responses[3].json() == {"state": 42}


def test_the_hang_fault_keeps_the_client_waiting(sim):
    sim.set_faults(hang_rate=1, hang_seconds=1)

    with pytest.raises(requests.exceptions.ReadTimeout):
        api(sim, "GET", "/conferences/conf-x", timeout=0.3)


def test_the_hang_fault_closes_the_connection_without_a_response(sim):
    sim.set_faults(hang_rate=1, hang_seconds=0.2)

    with pytest.raises(requests.exceptions.ConnectionError):
        api(sim, "GET", "/conferences/conf-x", timeout=3)


def test_the_rate_limited_period_answers_429_until_it_ends(sim):
    sim.set_faults(rate_limited_seconds=2)

    response = api(sim, "GET", "/conferences/conf-x")

    assert response.status_code == 429
    reset_in_ms = int(response.headers["X-RateLimit-Reset"]) - time.time() * 1000
    assert 1000 < reset_in_ms <= 2000
    assert sim.stats()["users"][USER_ID]["rate_limited"] == 1


def test_faults_can_be_restricted_to_some_conferences(sim):
    faulty = make_conference(sim)
    healthy = make_conference(sim)
    sim.set_faults(error_rate=1, conference_ids=[faulty])

    assert api(sim, "GET", f"/conferences/{faulty}").status_code in (500, 503)
    assert api(sim, "GET", f"/conferences/{healthy}").status_code == 200
    assert api(sim, "POST", "/conferences", json={"from": "+1"}).status_code == 201


def test_faults_are_set_read_and_reset_through_the_control_endpoint(sim):
    updated = control(sim, "POST", "faults", json={"error_rate": 1, "latency_ms": 5})
    assert updated.json()["error_rate"] == 1
    assert control(sim, "GET", "health").json() == {"ok": True}
    assert api(sim, "GET", "/conferences/conf-x").status_code in (500, 503)

    reset = control(sim, "POST", "faults/reset")

    assert reset.json()["error_rate"] == 0
    assert reset.json()["latency_ms"] == 0
    assert api(sim, "GET", "/conferences/conf-x").status_code == 404
    assert control(sim, "POST", "faults", json={"error_rate": 2}).status_code == 400
    assert control(sim, "POST", "faults", json={"typo": 1}).status_code == 400


# --- callbacks ----------------------------------------------------------------------------


def test_it_posts_conference_and_member_events_to_the_callback_url(sim):
    with callback_receiver() as receiver:
        conference_id = make_conference(sim, callbackUrl=f"{receiver.url}/events", tag="t-9")
        member_id = add_member(sim, conference_id, call_id="c-77")
        api(
            sim,
            "POST",
            f"/conferences/{conference_id}/members/{member_id}",
            json={"state": "completed"},
        )
        received = receiver.wait_for(4)

    assert [request["method"] for request in received] == ["POST"] * 4
    assert received[0]["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert received[0]["headers"]["User-Agent"].startswith("BandwidthAPI/v1")
    events = [json.loads(request["body"]) for request in received]
    assert [(event["eventType"], event.get("status", event.get("state"))) for event in events] == [
        ("conference", "created"),
        ("conference-member", "active"),
        ("conference-member", "completed"),
        ("conference", "completed"),
    ]
    assert events[0]["conferenceId"] == conference_id
    assert events[0]["conferenceUri"] == f"{sim.url}/v1/users/{USER_ID}/conferences/{conference_id}"
    assert events[0]["tag"] == "t-9"
    assert events[1]["memberId"] == member_id
    assert events[1]["callId"] == "c-77"
    assert events[1]["activeMembers"] == 1
    assert events[1]["mute"] is False
    assert "completedTime" in events[3]


def test_it_sends_events_as_query_strings_when_the_method_is_get(sim):
    with callback_receiver() as receiver:
        conference_id = make_conference(sim)
        api(
            sim,
            "POST",
            f"/conferences/{conference_id}",
            json={"callbackUrl": f"{receiver.url}/cb?source=sim", "callbackHttpMethod": "get"},
        )
        member_id = add_member(sim, conference_id)
        api(sim, "POST", f"/conferences/{conference_id}/members/{member_id}", json={"hold": True})
        received = receiver.wait_for(2)

    assert [request["method"] for request in received] == ["GET", "GET"]
    assert received[0]["body"] == b""
    query = received[1]["query"]
    assert query["source"] == "sim"
    assert query["eventType"] == "conference-member"
    assert (query["hold"], query["mute"], query["activeMembers"]) == ("true", "false", "1")


def test_it_sends_to_the_fallback_url_when_the_callback_url_fails(sim):
    with callback_receiver(status=500) as failing, callback_receiver() as fallback:
        make_conference(sim, callbackUrl=failing.url, fallbackUrl=fallback.url)
        received = fallback.wait_for(1)
        wait_until(lambda: len(sim.callback_deliveries()) >= 2)

    assert len(failing.requests) == 1
    assert json.loads(received[0]["body"])["status"] == "created"
    deliveries = control(sim, "GET", "callbacks").json()
    assert [(d["fallback"], d["ok"], d["status"]) for d in deliveries] == [
        (False, False, 500),
        (True, True, 200),
    ]


def test_conference_audio_sends_started_and_done_events(sim):
    with callback_receiver() as receiver:
        conference_id = make_conference(sim, callbackUrl=receiver.url)
        api(sim, "POST", f"/conferences/{conference_id}/audio", json={"sentence": "Hello"})
        received = receiver.wait_for(3)

    events = [json.loads(request["body"]) for request in received[1:]]
    assert [(event["eventType"], event["status"]) for event in events] == [
        ("conference-speak", "started"),
        ("conference-speak", "done"),
    ]


# --- scenario -----------------------------------------------------------------------------


def test_the_scenario_plan_is_the_same_for_the_same_seed():
    assert build_plan(seed=5, count=10) == build_plan(seed=5, count=10)
    assert build_plan(seed=5, count=10) != build_plan(seed=6, count=10)


def test_the_scenario_plan_has_idle_bridge_and_normal_conferences_with_sensible_timing():
    plan = build_plan(seed=3, count=16)

    assert set(plan.kinds) == {"idle", "bridge", "normal"}
    for index, kind in enumerate(plan.kinds):
        steps = [step for step in plan.steps if step.conference == index]
        if kind == "idle":
            assert [step.action for step in steps] in ([], ["terminate"])
        else:
            assert steps[0].action == "join"
            assert 5 <= steps[0].at <= 30


def test_the_scenario_creates_the_same_conferences_for_the_same_seed():
    def scenario_ids(seed):
        with running_simulator(users=USERS, rate_limit=0, scenario=6, seed=seed) as simulator:
            return control(simulator, "GET", "conferences").json()

    first, second = scenario_ids(7), scenario_ids(7)

    assert [item["id"] for item in first] == [item["id"] for item in second]
    assert len(first) == 6
    assert {item["user_id"] for item in first} == {USER_ID}


def test_a_fast_scenario_moves_conferences_through_their_lifecycle():
    options = {"users": USERS, "rate_limit": 0, "scenario": 8, "seed": 11, "speed": 2000}
    with running_simulator(**options) as simulator:
        seen = set()

        def states_seen():
            seen.update(item["state"] for item in simulator.conferences())
            return {"active", "completed"} <= seen

        assert wait_until(states_seen, timeout=8)
        progress = control(simulator, "GET", "scenario").json()

    assert progress["applied_steps"] > 0
    assert len(progress["conference_ids"]) == 8


# --- control endpoints and CLI ------------------------------------------------------------


def test_the_control_endpoint_lists_conferences_and_registers_users(sim):
    conference_id = make_conference(sim)
    add_member(sim, conference_id)

    listed = control(sim, "GET", "conferences").json()
    registered = control(
        sim, "POST", "users", json={"user_id": "u-new", "token": "new-t", "secret": "new-s"}
    )
    as_new_user = api(sim, "GET", "/conferences/conf-x", user_id="u-new", auth=("new-t", "new-s"))

    assert listed == [
        {"user_id": USER_ID, "id": conference_id, "state": "active", "active_members": 1}
    ]
    assert registered.status_code == 201
    assert as_new_user.status_code == 404
    assert control(sim, "GET", "nothing").status_code == 404
    assert sim.conference_ids() == [conference_id]


def test_the_command_line_serves_until_sigterm_without_printing_secrets():
    command = [sys.executable, "-m", "simulator", "--port", "0", "--user", "u-cli:cli-t:cli-s"]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        health = requests.get(f"{url}/_sim/health", timeout=5).json()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)

    assert health == {"ok": True}
    assert "u-cli" in line and "cli-t" in line
    assert "cli-s" not in line
    assert process.returncode == 0


def test_the_command_line_help_documents_every_flag():
    result = subprocess.run(
        [sys.executable, "-m", "simulator", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=True,
    )

    for flag in (
        "--host",
        "--port",
        "--user",
        "--rate-limit",
        "--seed",
        "--scenario",
        "--speed",
        "--time-format",
        "--latency-ms",
        "--error-rate",
        "--malformed-rate",
        "--hang-rate",
        "--hang-seconds",
        "--untidy",
        "--full-429-details",
        "--legacy-400",
        "--empty-403-details",
        "--relative-links",
        "--first-links",
    ):
        assert flag in result.stdout
