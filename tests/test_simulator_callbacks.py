"""The simulator's callbacks as the real API sends them: each conference in its own lane
(a slow receiver delays only its own conference), events at the time they happen, and
audio to one member answered with call ``playback`` / ``speak`` events (reference §3)."""

import time

import pytest
import requests

from conferences.catapult import answers
from simulator.callbacks import CallbackEvent, CallbackSender
from simulator.testing import running_simulator
from tests.catapult_driver import CatapultDriver
from tests.conftest import SIM_USER, wait_for
from tests.test_simulator_untidy import Receiver

USER_ID, TOKEN, SECRET = SIM_USER


@pytest.fixture
def receiver():
    server = Receiver(slow_seconds=1.2)
    yield server
    server.close()


def client_for(sim):
    return CatapultDriver(base_url=sim.url, user_id=USER_ID, api_token=TOKEN, api_secret=SECRET)


def arrivals(receiver, path):
    return [r for r in list(receiver.received) if r["path"] == path]


def play(sim, path, **body):
    url = f"{sim.url}/v1/users/{USER_ID}/conferences/{path}/audio"
    requests.post(url, json=body, auth=(TOKEN, SECRET), timeout=5).raise_for_status()


def test_a_slow_receiver_delays_only_its_own_conference(receiver):
    with running_simulator(rate_limit=0) as sim, client_for(sim) as client:
        slow_id = client.create_conference(
            from_number="+15555550100", callback_url=receiver.url + "/slow"
        )
        client.add_member(slow_id, call_id="c-1")
        wait_for(lambda: arrivals(receiver, "/slow"), timeout=5, what="the slow receiver")
        asked = time.monotonic()
        fast_id = client.create_conference(
            from_number="+15555550101", callback_url=receiver.url + "/fast"
        )
        client.add_member(fast_id, call_id="c-2")
        wait_for(lambda: len(arrivals(receiver, "/fast")) >= 2, timeout=5, what="fast events")
        wait_for(lambda: len(arrivals(receiver, "/slow")) >= 2, timeout=10, what="slow events")

    fast = arrivals(receiver, "/fast")
    slow = arrivals(receiver, "/slow")
    assert fast[1]["arrived"] - asked < 0.6  # not behind the slow receiver's 1.2 s
    # The slow conference's own events wait their turn, in order.
    assert slow[1]["arrived"] - slow[0]["arrived"] >= 1.1
    assert [event["body"]["eventType"] for event in slow] == ["conference", "conference-member"]


def test_a_done_event_arrives_when_the_speech_ends_carrying_that_time(receiver):
    sentence = "Welcome to the conference"  # about 1.7 s
    with running_simulator(rate_limit=0) as sim, client_for(sim) as client:
        conference_id = client.create_conference(
            from_number="+15555550100", callback_url=receiver.url + "/events"
        )
        client.add_member(conference_id, call_id="c-1")
        play(sim, conference_id, sentence=sentence)
        asked = time.time()
        wait_for(
            lambda: any(
                r["body"]["eventType"] == "conference-speak" and r["body"]["status"] == "done"
                for r in list(receiver.received)
            ),
            timeout=10,
            what="the done event",
        )
        arrived = time.time()

    speak = [r["body"] for r in receiver.received if r["body"]["eventType"] == "conference-speak"]
    assert [event["status"] for event in speak] == ["started", "done"]
    started, done = (answers.parse_timestamp(event["time"]).timestamp() for event in speak)
    assert done - started == pytest.approx(len(sentence) / 15, abs=0.05)
    assert arrived - asked >= 1.5  # not at once
    assert done <= arrived + 0.05  # its time is not in the future when it arrives


def test_stopping_speech_sends_done_at_once_and_forgets_the_pending_one(receiver):
    with running_simulator(rate_limit=0) as sim, client_for(sim) as client:
        conference_id = client.create_conference(
            from_number="+15555550100", callback_url=receiver.url + "/events"
        )
        play(sim, conference_id, sentence="A short announcement")  # about 1.3 s
        play(sim, conference_id, sentence="")
        wait_for(lambda: len(receiver.received) >= 3, timeout=5, what="started and done")
        time.sleep(1.5)  # past the time the first sentence would have ended

    speak = [r["body"] for r in receiver.received if r["body"]["eventType"] == "conference-speak"]
    assert [event["status"] for event in speak] == ["started", "done"]


def test_audio_to_one_member_sends_call_playback_and_speak_events(receiver):
    with running_simulator(rate_limit=0) as sim, client_for(sim) as client:
        conference_id = client.create_conference(
            from_number="+15555550100", callback_url=receiver.url + "/events"
        )
        member_id = client.add_member(conference_id, call_id="c-7")
        play(sim, f"{conference_id}/members/{member_id}", sentence="Hello", tag="greet")
        play(sim, f"{conference_id}/members/{member_id}", fileUrl="http://x.example/a.wav")
        wait_for(lambda: len(receiver.received) >= 6, timeout=10, what="the call events")

    events = [r["body"] for r in receiver.received[2:]]
    speak = [e for e in events if e["eventType"] == "speak"]
    playback = [e for e in events if e["eventType"] == "playback"]
    assert [(e["status"], e["state"]) for e in speak] == [
        ("started", "PLAYBACK_START"),
        ("done", "PLAYBACK_STOP"),
    ]
    assert [e["status"] for e in playback] == ["started", "done"]
    assert all(e["callId"] == "c-7" and e["callUri"].endswith("/calls/c-7") for e in events)
    assert all("conferenceId" not in e for e in events)
    assert speak[0]["tag"] == "greet"


def test_lanes_are_bounded_and_a_shared_lane_still_delivers_every_event_in_order(receiver):
    sender = CallbackSender(max_lanes=2)
    sender.start()
    try:
        for number in range(6):
            for conference in ("conf-a", "conf-b", "conf-c"):
                sender.submit(
                    CallbackEvent(
                        url=f"{receiver.url}/{conference}",
                        method="POST",
                        timeout_ms=5000,
                        fallback_url=None,
                        payload={"conferenceId": conference, "n": number},
                        key=conference,
                    )
                )
        most_lanes = sender.lane_count()
        wait_for(lambda: len(receiver.received) >= 18, timeout=10, what="every event")
    finally:
        sender.stop()

    assert most_lanes == 2
    for conference in ("conf-a", "conf-b", "conf-c"):
        numbers = [
            r["body"]["n"] for r in receiver.received if r["body"]["conferenceId"] == conference
        ]
        assert numbers == list(range(6))
