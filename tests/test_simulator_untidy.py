"""The simulator as untidy as the real API, and the client read against it over a real
socket: left-out fields, every timestamp shape, paged members, 409/503/401/403, and
callbacks by POST or GET, with the fallbackUrl and Basic credentials from the URL."""

import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from conferences.catapult import answers
from simulator.testing import running_simulator
from tests.catapult_driver import CatapultDriver
from tests.conftest import SIM_USER, wait_for

USER_ID, TOKEN, SECRET = SIM_USER


def client_for(sim, *, secret=SECRET):
    return CatapultDriver(base_url=sim.url, user_id=USER_ID, api_token=TOKEN, api_secret=secret)


def test_with_omit_rate_one_responses_leave_out_every_field_at_its_default():
    with running_simulator(rate_limit=0, omit_rate=1.0) as sim, client_for(sim) as client:
        conference_id = client.create_conference(from_number="+15555550100")
        member_id = client.add_member(conference_id, call_id="c-1")
        conference = client.get_conference(conference_id)
        member = client.get_member(conference_id, member_id)

    assert {"hold", "mute", "profile"} <= conference.unknown
    assert "active_members" not in conference.unknown and conference.active_members == 1
    assert conference.state == "active" and not conference.problems
    assert {"mute", "hold", "join_tone", "leaving_tone"} <= member.unknown
    assert (member.state, member.call_id) == ("active", "c-1")
    assert "added_time" not in member.unknown


def test_a_value_that_was_set_is_never_left_out():
    with running_simulator(rate_limit=0, omit_rate=1.0) as sim, client_for(sim) as client:
        conference_id = client.create_conference(from_number="+15555550100")
        kept_id = client.add_member(conference_id, call_id="c-1")
        gone_id = client.add_member(conference_id, call_id="c-2")
        client.update_conference(conference_id, hold=True)
        client.update_member(conference_id, kept_id, mute=True, hold=True)
        client.update_member(conference_id, gone_id, state="completed")
        reads = [client.get_conference(conference_id) for _ in range(5)]
        members = client.list_members(conference_id).members

    assert all(read.hold is True and "hold" not in read.unknown for read in reads)
    kept, gone = members
    assert (kept.mute, kept.hold) == (True, True)
    assert gone.state == "completed" and gone.removed_time is not None


def test_a_share_of_responses_leave_fields_out():
    with running_simulator(rate_limit=0, omit_rate=0.5, seed=3) as sim, client_for(sim) as client:
        conference_id = client.create_conference(from_number="+15555550100")
        reads = [client.get_conference(conference_id) for _ in range(20)]

    left_out = sum("active_members" in read.unknown for read in reads)
    assert 0 < left_out < 20


def test_epoch_millisecond_timestamps_parse_to_the_same_instant():
    with running_simulator(rate_limit=0, time_format="epoch-ms") as sim:
        with client_for(sim) as client:
            conference_id = client.create_conference(from_number="+15555550100")
            raw = requests.get(
                f"{sim.url}/v1/users/{USER_ID}/conferences/{conference_id}",
                auth=(TOKEN, SECRET),
                timeout=5,
            ).json()
            conference = client.get_conference(conference_id)

    assert isinstance(raw["createdTime"], int)
    assert conference.created_time.timestamp() == pytest.approx(raw["createdTime"] / 1000)


def test_untidy_members_carry_the_documented_mixed_offsets():
    with running_simulator(rate_limit=0, time_format="untidy") as sim, client_for(sim) as client:
        conference_id = client.create_conference(from_number="+15555550100")
        ids = [client.add_member(conference_id, call_id=f"c-{i}") for i in range(9)]
        for member_id in ids:
            client.update_member(conference_id, member_id, state="completed")
        members = client.list_members(conference_id).members

    mixed = [m for m in members if m.removed_time < m.added_time]
    assert mixed
    assert all(m.added_time - m.removed_time <= timedelta(hours=1) for m in mixed)


def test_the_members_list_pages_with_a_link_header_and_the_client_follows_it():
    with (
        running_simulator(rate_limit=0, members_page_size=3) as sim,
        client_for(sim) as client,
    ):
        conference_id = client.create_conference(from_number="+15555550100")
        for i in range(7):
            client.add_member(conference_id, call_id=f"c-{i}")
        first = client.list_members_page(conference_id)
        listed = client.list_members(conference_id)

    assert len(first.members) == 3 and "page=1" in first.next_page_url
    assert listed.pages == 3
    assert [m.call_id for m in listed.members] == [f"c-{i}" for i in range(7)]


def test_a_next_page_on_another_host_is_refused():
    with running_simulator(rate_limit=0) as sim, client_for(sim) as client:
        conference_id = client.create_conference(from_number="+15555550100")
        with pytest.raises(ValueError):
            client.list_members_page(conference_id, page_url="http://elsewhere.example/x")


@pytest.mark.parametrize("body", ["json", "empty", "html"])
def test_a_401_is_credentials_rejected_whatever_its_body(body):
    with (
        running_simulator(rate_limit=0, unauthorized_body=body) as sim,
        client_for(sim, secret="wrong") as client,
    ):
        with pytest.raises(answers.CredentialsRejected) as raised:
            client.get_conference("conf-x")

    assert raised.value.status == 401
    assert "wrong" not in str(raised.value)


def test_update_conflicts_and_unavailable_calls_are_transient():
    with running_simulator(rate_limit=0) as sim, client_for(sim) as client:
        conference_id = client.create_conference(from_number="+15555550100")
        member_id = client.add_member(conference_id, call_id="c-1")
        sim.set_faults(conflict_rate=1.0)
        with pytest.raises(answers.TransientError) as conflict:
            client.update_member(conference_id, member_id, mute=True)
        sim.set_faults(conflict_rate=0.0, call_unavailable_rate=1.0)
        with pytest.raises(answers.TransientError) as unavailable:
            client.get_member(conference_id, member_id)
        conference = client.get_conference(conference_id)  # not about a member: served

    assert (conflict.value.status, conflict.value.code) == (
        409,
        "conference-member-update-conflict",
    )
    assert (unavailable.value.status, unavailable.value.code) == (503, "call-unavailable")
    assert conference.state == "active"


def test_adding_an_unknown_or_already_joined_call_answers_403():
    with running_simulator(rate_limit=0) as sim, client_for(sim) as client:
        conference_id = client.create_conference(from_number="+15555550100")
        client.add_member(conference_id, call_id="c-1")
        with pytest.raises(answers.ApiError) as unknown:
            client.add_member(conference_id, call_id="not-a-call")
        with pytest.raises(answers.ApiError) as joined:
            client.add_member(conference_id, call_id="c-1")

    assert (unknown.value.status, unknown.value.code) == (403, "call-id-not-found")
    assert (joined.value.status, joined.value.code) == (403, "call-invalid-state")


class Receiver:
    """A tiny callback receiver: records what arrives and when (``arrived``, monotonic
    seconds); the path /fail answers 500, a path starting /slow waits ``slow_seconds``
    before answering."""

    def __init__(self, *, slow_seconds=2.0):
        self.received = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.answer()

            def do_POST(self):
                self.answer()

            def answer(self):
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                receiver.received.append(
                    {
                        "method": self.command,
                        "path": parts.path,
                        "query": dict(parse_qsl(parts.query)),
                        "body": json.loads(body) if body else None,
                        "authorization": self.headers.get("Authorization"),
                        "arrived": arrived,
                    }
                )
                if parts.path.startswith("/slow"):
                    time.sleep(slow_seconds)
                self.send_response(500 if parts.path == "/fail" else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def test_callbacks_go_by_get_with_string_values_and_basic_credentials_from_the_url(receiver):
    host = receiver.url.removeprefix("http://")
    with running_simulator(rate_limit=0) as sim, client_for(sim) as client:
        conference_id = client.create_conference(
            from_number="+15555550100",
            callback_url=f"http://user:p%40ss@{host}/events",
            callback_http_method="GET",
        )
        client.add_member(conference_id, call_id="c-1")
        wait_for(lambda: len(receiver.received) >= 2, timeout=10, what="the callbacks")

    member = receiver.received[1]
    assert member["method"] == "GET" and member["body"] is None
    assert member["query"]["eventType"] == "conference-member"
    assert member["query"]["mute"] == "false" and member["query"]["activeMembers"] == "1"
    assert member["authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()


def test_a_failed_callback_goes_to_the_fallback_url(receiver):
    with running_simulator(rate_limit=0) as sim, client_for(sim) as client:
        client.create_conference(
            from_number="+15555550100",
            callback_url=receiver.url + "/fail",
            fallback_url=receiver.url + "/fallback",
        )
        wait_for(lambda: len(receiver.received) >= 2, timeout=10, what="the fallback")

    assert [r["path"] for r in receiver.received] == ["/fail", "/fallback"]
    assert receiver.received[0]["body"] == receiver.received[1]["body"]


def test_playback_started_and_done_carry_distinct_times(receiver):
    with running_simulator(rate_limit=0) as sim, client_for(sim) as client:
        conference_id = client.create_conference(
            from_number="+15555550100", callback_url=receiver.url + "/events"
        )
        client.add_member(conference_id, call_id="c-1")
        requests.post(
            f"{sim.url}/v1/users/{USER_ID}/conferences/{conference_id}/audio",
            json={"sentence": "Welcome to the conference"},
            auth=(TOKEN, SECRET),
            timeout=5,
        ).raise_for_status()
        wait_for(lambda: len(receiver.received) >= 4, timeout=10, what="the speak events")

    speak = [r["body"] for r in receiver.received if r["body"]["eventType"] == "conference-speak"]
    assert [event["status"] for event in speak] == ["started", "done"]
    started, done = (answers.parse_timestamp(event["time"]) for event in speak)
    assert done > started


# --- the client against the whole untidy mode (every omission, every shape) -----------


def test_a_conference_lifecycle_reads_right_against_the_untidy_mode():
    started = datetime.now(UTC) - timedelta(seconds=1)
    with running_simulator(rate_limit=0, untidy=True) as sim, client_for(sim) as client:
        conference_id = client.create_conference(from_number="+19195551212", tag="lifecycle")
        created = client.get_conference(conference_id)
        first = client.add_member(conference_id, call_id="c-first", join_tone=True)
        second = client.add_member(conference_id, call_id="c-second", mute=True)
        for i in range(3):
            client.add_member(conference_id, call_id=f"c-{i}")
        active = client.get_conference(conference_id)
        client.update_member(conference_id, first, state="completed")
        listed = client.list_members(conference_id)
        departed = client.get_member(conference_id, first)
        client.update_conference(conference_id, mute=True, hold=False)
        muted = client.get_conference(conference_id)
        client.update_conference(conference_id, state="completed")
        completed = client.get_conference(conference_id)
        with pytest.raises(answers.ApiError) as too_late:
            client.update_conference(conference_id, mute=False)

    assert (created.id, created.state, created.tag) == (conference_id, "created", "lifecycle")
    assert created.active_members is None and "active_members" in created.unknown  # 0: left out
    assert started <= created.created_time <= datetime.now(UTC)
    assert (active.state, active.active_members) == ("active", 5)
    assert listed.pages == 2 and not listed.problems
    by_id = {member.id: member for member in listed.members}
    assert len(by_id) == 5
    assert (by_id[first].state, by_id[first].call_id, by_id[first].join_tone) == (
        "completed",
        "c-first",
        True,
    )
    assert (by_id[second].state, by_id[second].mute) == ("active", True)
    assert departed.removed_time is not None and departed.state == "completed"
    assert (muted.mute, muted.active_members) == (True, 4)
    assert muted.hold is None  # false is the default: left out, read as unknown
    assert (completed.state, completed.completed_time is not None) == ("completed", True)
    assert (too_late.value.status, too_late.value.code) == (403, "conference-error")


def test_not_found_rate_limits_and_server_errors_read_right_against_the_untidy_mode():
    with running_simulator(rate_limit=0, untidy=True) as sim, client_for(sim) as client:
        with pytest.raises(answers.NotFound) as missing:
            client.get_conference("conf-does-not-exist")
        sim.set_faults(error_rate=1.0)
        with pytest.raises(answers.TransientError) as broken:
            client.get_conference("conf-x")
        sim.set_faults(error_rate=0.0)
        sim.set_rate_limit(1)
        limited = []
        for _ in range(3):
            try:
                client.get_conference("conf-x")
            except answers.RateLimited as error:
                limited.append(error)
            except answers.NotFound:
                pass

    assert missing.value.code == "conference-not-found"
    assert broken.value.status in (500, 503)
    assert limited and limited[0].code == "rate-limit-reached"
    now = datetime.now(UTC)
    assert now - timedelta(seconds=1) < limited[0].reset_at < now + timedelta(seconds=2)
