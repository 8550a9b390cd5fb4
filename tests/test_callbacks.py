"""The callback receiver: bad input, idempotence, throttling, and what events do."""

import json
import logging
import threading
import time
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from conferences.callbacks import processing, queue, receiver
from conferences.catapult import answers
from conferences.models import CallbackEvent, CallbackSettings, Conference, Event, Member
from conferences.ops import queued
from conferences.polling import rounds
from tests.conftest import make_account, make_conference, reload

pytestmark = pytest.mark.django_db

REAL_QUEUE_PROCESSING = queue.queue_processing


@pytest.fixture
def acme(db):
    return make_account()


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    """The receiver queues each event for a worker; here the tests process them."""
    queued = []
    monkeypatch.setattr(queue, "queue_processing", lambda pk, **_: queued.append(pk))
    return queued


def url_of(account):
    return "/" + receiver.callback_url(account).split("/", 3)[3]


def post(client, url, payload, **extra):
    return client.post(url, json.dumps(payload), content_type="application/json", **extra)


def member_event(conference_id, **overrides):
    payload = {
        "eventType": "conference-member",
        "conferenceId": conference_id,
        "memberId": "member-1",
        "callId": "c-caller",
        "state": "active",
        "hold": False,
        "mute": True,
        "activeMembers": 1,
        "time": "2026-01-01T10:00:00.000Z",
    }
    payload.update(overrides)
    return payload


def test_the_callback_url_is_absolute_and_its_secret_is_stored_hashed_and_encrypted(acme, settings):
    settings.CONFWATCH_BASE_URL = "https://confwatch.example.com"
    url = receiver.callback_url(acme)

    assert url.startswith("https://confwatch.example.com/callbacks/")
    secret = url.rstrip("/").rsplit("/", 1)[1]
    assert len(secret) * 6 >= 128
    stored = CallbackSettings.objects.get(account=acme)
    assert secret not in (stored.secret_hash, stored.secret_encrypted)
    assert receiver.callback_url(acme) == url


def test_the_callback_url_command_prints_it(acme, settings):
    settings.CONFWATCH_BASE_URL = "http://127.0.0.1:8000"
    out = StringIO()
    call_command("callback_url", "acme", stdout=out)
    assert out.getvalue().strip() == receiver.callback_url(acme)


def test_a_wrong_secret_is_404_and_nothing_is_written(client, acme):
    receiver.set_up(acme)
    response = post(client, "/callbacks/" + "x" * 32 + "/", member_event("conf-1"))

    assert response.status_code == 404
    assert CallbackEvent.objects.count() == 0
    assert Conference.objects.count() == 0


def test_an_oversized_body_is_413(client, acme, settings):
    settings.CONFWATCH_CALLBACK_MAX_BYTES = 1024
    response = post(client, url_of(acme), member_event("conf-1", tag="x" * 2000))

    assert response.status_code == 413
    assert CallbackEvent.objects.count() == 0


def test_malformed_json_is_400(client, acme):
    response = client.post(url_of(acme), b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert client.post(url_of(acme), b"[1, 2]", content_type="application/json").status_code == 400
    assert CallbackEvent.objects.count() == 0


def test_an_unknown_event_type_is_acknowledged_and_logged(client, acme, caplog):
    with caplog.at_level(logging.WARNING, logger="conferences.callbacks.receiver"):
        response = post(client, url_of(acme), {"eventType": "gather", "conferenceId": "c"})

    assert response.status_code == 200
    assert "unknown event type 'gather'" in caplog.text
    assert CallbackEvent.objects.count() == 0


def test_the_secret_never_appears_in_the_logs(client, acme, caplog):
    url = url_of(acme)
    with caplog.at_level(logging.DEBUG):
        client.post(url, b"{not json", content_type="application/json")
        post(client, url, {"eventType": "gather"})
    secret = url.strip("/").rsplit("/", 1)[1]
    assert secret not in caplog.text


def test_a_replayed_event_is_acknowledged_and_changes_nothing_twice(client, acme, no_queue):
    conference = make_conference(acme, "conf-1")
    event = member_event("conf-1")

    first = post(client, url_of(acme), event)
    # The fallbackUrl, or a GET callback, sends the same event again.
    second = client.get(url_of(acme), {k: json.dumps(v).strip('"') for k, v in event.items()})
    assert (first.status_code, second.status_code) == (200, 200)
    assert CallbackEvent.objects.count() == 1
    for pk in no_queue:
        processing.process(pk)

    assert Member.objects.filter(conference=conference).count() == 1
    assert Event.objects.filter(conference=conference, kind="member_joined").count() == 1


def test_get_callbacks_carry_the_event_in_query_parameters(client, acme, no_queue):
    conference = make_conference(acme, "conf-get")
    response = client.get(
        url_of(acme),
        {
            "eventType": "conference-member",
            "conferenceId": "conf-get",
            "memberId": "member-9",
            "callId": "c-nine",
            "state": "active",
            "hold": "true",
            "mute": "false",
            "activeMembers": "4",
        },
    )
    assert response.status_code == 200
    processing.process(no_queue[0])

    member = Member.objects.get(conference=conference)
    assert (member.call_id, member.hold, member.mute) == ("c-nine", True, False)
    assert reload(conference).active_members == 4


def test_basic_credentials_are_required_when_set(client, acme):
    receiver.set_up(acme, username="catapult", password="s3cret pass")
    url = url_of(acme)
    assert "catapult:s3cret%20pass@" in receiver.callback_url(acme)

    assert post(client, url, member_event("conf-1")).status_code == 401
    wrong = "Basic " + __import__("base64").b64encode(b"catapult:nope").decode()
    assert post(client, url, member_event("conf-1"), HTTP_AUTHORIZATION=wrong).status_code == 401
    good = "Basic " + __import__("base64").b64encode(b"catapult:s3cret pass").decode()
    assert post(client, url, member_event("conf-1"), HTTP_AUTHORIZATION=good).status_code == 200
    assert CallbackEvent.objects.count() == 1


def test_a_flood_of_events_is_throttled_per_account(client, acme, settings):
    # One a second: six posts spread over up to four seconds on a loaded machine still
    # meet at least two refusals.
    settings.CONFWATCH_CALLBACK_RATE = 1
    other = make_account(name="other")
    queued.redis_client().flushdb()
    statuses = [
        post(client, url_of(acme), member_event("conf-1", memberId=f"m-{i}")).status_code
        for i in range(6)
    ]
    assert statuses.count(429) >= 2
    assert post(client, url_of(other), member_event("conf-1")).status_code == 200


def test_a_member_event_updates_the_member_and_active_members_only_when_it_says_so(
    acme, no_queue, client
):
    conference = make_conference(acme, "conf-m", active_members=5)
    payload = member_event("conf-m")
    del payload["activeMembers"]
    post(client, url_of(acme), payload)
    processing.process(no_queue[0])

    assert reload(conference).active_members == 5
    member = Member.objects.get(conference=conference)
    assert (member.state, member.mute, member.call_id) == ("active", True, "c-caller")
    assert member.joined_at is not None  # the event's time
    event = Event.objects.get(conference=conference, kind="member_joined")
    assert event.source == "callback"


def test_a_conference_event_for_an_unknown_id_registers_it(acme, no_queue, client):
    post(
        client,
        url_of(acme),
        {"eventType": "conference", "conferenceId": "conf-new", "status": "created"},
    )
    processing.process(no_queue[0])

    conference = Conference.objects.get(account=acme, conference_id="conf-new")
    assert conference.state == "created"
    assert Event.objects.get(conference=conference).source == "callback"
    assert CallbackSettings.objects.get(account=acme).last_event_at is not None


def test_registering_unknown_conferences_can_be_turned_off(acme, no_queue, client):
    url = url_of(acme)
    CallbackSettings.objects.filter(account=acme).update(register_unknown=False)
    post(client, url, {"eventType": "conference", "conferenceId": "conf-no", "status": "active"})
    processed = processing.process(no_queue[0])

    assert "registering is off" in processed.message
    assert not Conference.objects.filter(conference_id="conf-no").exists()


def test_an_event_is_processed_once_whoever_tries(acme, no_queue, client):
    make_conference(acme, "conf-1")
    post(client, url_of(acme), member_event("conf-1"))
    assert processing.process(no_queue[0]).message == "applied"
    assert processing.process(no_queue[0]).message == "already processed"


def test_playback_events_are_noted(acme, no_queue, client):
    make_conference(acme, "conf-1")
    payload = {"eventType": "conference-playback", "conferenceId": "conf-1", "status": "done"}
    assert post(client, url_of(acme), payload).status_code == 200
    assert "noted" in processing.process(no_queue[0]).message


def test_a_nul_character_in_the_body_is_400_not_500(client, acme):
    response = post(client, url_of(acme), member_event("conf-1", memberId="m\x00"))
    assert response.status_code == 400
    assert CallbackEvent.objects.count() == 0


def test_a_missing_or_bad_conference_id_is_400(client, acme):
    response = post(client, url_of(acme), member_event("../etc"))
    assert response.status_code == 400
    assert CallbackEvent.objects.count() == 0


def test_the_account_admin_shows_the_callback_url_and_the_last_event(
    client, acme, django_user_model, settings
):
    from conferences.registry import roles

    settings.CONFWATCH_BASE_URL = "https://confwatch.example.com"
    admin = django_user_model.objects.create_user("boss", password="x", is_staff=True)
    admin.groups.add(roles.ensure_groups()[roles.ADMIN])
    viewer = django_user_model.objects.create_user("looker", password="x", is_staff=True)
    viewer.groups.add(roles.ensure_groups()[roles.VIEWER])
    page = f"/admin/conferences/account/{acme.pk}/change/"

    client.force_login(admin)
    assert "save this account" in client.get(page).content.decode()
    url = receiver.callback_url(acme)  # made once (saving the account in the admin does)
    shown = client.get(page).content.decode()
    assert url in shown
    assert "Last callback event" in shown and "none yet" in shown

    client.force_login(viewer)
    seen = client.get(page).content.decode()
    assert "/callbacks/" not in seen
    assert "Last callback event" in seen


def test_while_the_database_is_stuck_the_receiver_answers_503_in_time(client, acme, monkeypatch):
    import psycopg
    from django.db import connection

    url = url_of(acme)
    monkeypatch.setattr(receiver, "STATEMENT_TIMEOUT_MS", 300)
    database = connection.settings_dict
    blocker = psycopg.connect(
        host=database["HOST"],
        port=database["PORT"],
        user=database["USER"],
        dbname=database["NAME"],
    )
    try:
        blocker.execute("LOCK TABLE conferences_callbackevent IN ACCESS EXCLUSIVE MODE")
        response = post(client, url, member_event("conf-1"))
    finally:
        blocker.rollback()
        blocker.close()

    assert response.status_code == 503
    assert post(client, url, member_event("conf-1")).status_code == 200


def test_log_lines_never_carry_a_callback_secret():
    from conferences.redact import RedactRequestSecrets

    record = logging.LogRecord(
        "django.server",
        logging.INFO,
        "",
        0,
        '"%s" %s',
        ("POST /callbacks/abcDEF123_-x/ HTTP/1.1", 404),
        None,
    )
    RedactRequestSecrets().filter(record)
    assert record.getMessage() == '"POST /callbacks/…/ HTTP/1.1" 404'


def test_other_methods_are_refused(client, acme):
    assert client.put(url_of(acme), b"{}").status_code == 405
    assert CallbackEvent.objects.count() == 0


def test_the_call_api_needs_a_signed_in_user(client):
    assert client.get("/api/calls/c-1/").status_code == 401


def test_an_event_whose_processing_failed_can_be_processed_again(
    acme, no_queue, client, monkeypatch
):
    make_conference(acme, "conf-1")
    post(client, url_of(acme), member_event("conf-1"))

    def broken(event):
        raise RuntimeError("boom")

    monkeypatch.setattr(processing, "apply_event", broken)
    with pytest.raises(RuntimeError):
        processing.process(no_queue[0])
    assert CallbackEvent.objects.get().result == "failed: RuntimeError"
    monkeypatch.undo()
    assert processing.process(no_queue[0]).message == "applied"


def test_an_event_interrupted_while_applied_is_left_waiting_not_marked_processed(
    acme, no_queue, client, monkeypatch
):
    make_conference(acme, "conf-1")
    post(client, url_of(acme), member_event("conf-1"))

    def interrupted(event):
        raise KeyboardInterrupt  # as when the worker is stopped in the middle of the task

    monkeypatch.setattr(processing, "apply_event", interrupted)
    with pytest.raises(KeyboardInterrupt):
        processing.process(no_queue[0])

    assert CallbackEvent.objects.get().processed_at is None
    monkeypatch.undo()
    assert processing.process(no_queue[0]).message == "applied"


# --------------------------------------------------------------------------- blast radius


def conference_event(conference_id, status="created", **overrides):
    payload = {"eventType": "conference", "conferenceId": conference_id, "status": status}
    payload.update(overrides)
    return payload


def process_all(account):
    """What the account's queued task would do: its waiting events, oldest first."""
    return [result.message for result in processing.process_waiting(account.pk)]


def test_events_about_new_ids_past_the_hourly_cap_are_kept_and_counted_not_tracked(
    acme, client, settings
):
    settings.CONFWATCH_CALLBACK_AUTOTRACK_PER_HOUR = 2
    known = make_conference(acme, "conf-known")
    statuses = [
        post(client, url_of(acme), conference_event(f"conf-new-{i}")).status_code for i in range(5)
    ]
    statuses.append(post(client, url_of(acme), member_event("conf-known")).status_code)

    messages = process_all(acme)

    assert statuses == [200] * 6
    assert Conference.objects.filter(conference_id__startswith="conf-new").count() == 2
    assert sum("over the cap of 2" in message for message in messages) == 3
    assert CallbackEvent.objects.filter(awaiting_tracking=True).count() == 3
    assert Member.objects.filter(conference=known).count() == 1  # a known one: applied
    stored = CallbackSettings.objects.get(account=acme)
    assert (stored.autotrack_registered, stored.autotrack_refused) == (2, 3)
    assert "2 of at most 2 this hour; 3 events" in receiver.registrations(acme)


def test_health_counts_the_registrations_refused_this_hour(acme, client, settings):
    settings.CONFWATCH_CALLBACK_AUTOTRACK_PER_HOUR = 0
    post(client, url_of(acme), conference_event("conf-a"))
    post(client, url_of(acme), member_event("conf-b"))
    process_all(acme)

    assert client.get("/health/").json()["callback_registrations_refused_this_hour"] == 2


def test_the_account_admin_says_how_many_registrations_were_refused(
    client, acme, django_user_model, settings
):
    from conferences.registry import roles

    settings.CONFWATCH_CALLBACK_AUTOTRACK_PER_HOUR = 1
    for conference_id in ("conf-a", "conf-b", "conf-c"):
        post(client, url_of(acme), conference_event(conference_id))
    process_all(acme)
    viewer = django_user_model.objects.create_user("looker", password="x", is_staff=True)
    viewer.groups.add(roles.ensure_groups()[roles.VIEWER])
    client.force_login(viewer)

    page = client.get(f"/admin/conferences/account/{acme.pk}/change/").content.decode()
    assert "Conferences registered by callbacks" in page
    assert "1 of at most 1 this hour; 2 events about untracked conferences refused" in page


def test_a_late_created_after_completion_changes_nothing_and_is_logged_out_of_order(acme, client):
    conference = make_conference(acme, "conf-done")
    post(client, url_of(acme), conference_event("conf-done", "active", time="2026-01-01T10:00:00Z"))
    post(
        client,
        url_of(acme),
        conference_event("conf-done", "completed", time="2026-01-01T10:05:00Z"),
    )
    process_all(acme)
    events_before = Event.objects.filter(conference=conference).count()

    late = conference_event("conf-done", "created", time="2026-01-01T10:06:00Z")
    post(client, url_of(acme), late)
    again = conference_event("conf-done", "ACTIVE", time="2026-01-01T10:07:00Z")
    post(client, url_of(acme), again)
    messages = process_all(acme)

    assert all(message.startswith("out of order") for message in messages)
    assert len(messages) == 2
    assert reload(conference).state == "completed"
    assert Event.objects.filter(conference=conference).count() == events_before
    logged = CallbackEvent.objects.filter(conference_id="conf-done").order_by("-id")[0]
    assert logged.result.startswith("out of order")


def test_a_member_leave_is_applied_while_polls_of_the_conference_fail(acme, client):
    from datetime import timedelta

    from conferences.recording import observations

    conference = make_conference(acme, "conf-m")
    joined = timezone_at("2026-01-01T10:00:00Z")
    observations.record(
        [
            observations.Observation(
                conference.pk, joined, seen={"state": "active", "active_members": 2}
            )
        ]
    )
    # The API errors from then on: each failed poll moves last_polled_at, not what is known.
    failure = answers.TransientError("HTTP 500")
    for seconds in (10, 20, 30):
        observations.record(
            [
                observations.Observation.of_failure(
                    conference.pk, failure, observed_at=joined + timedelta(seconds=seconds)
                )
            ]
        )
    leave = member_event("conf-m", state="completed", activeMembers=1, time="2026-01-01T10:00:15Z")
    post(client, url_of(acme), leave)

    assert process_all(acme) == ["applied"]
    conference = reload(conference)
    assert conference.active_members == 1
    # The callback says nothing of polling: the failures stand.
    assert (conference.poll_status, conference.consecutive_failures) == ("unreachable", 3)
    assert Member.objects.get(conference=conference).state == "completed"


def timezone_at(text):

    return answers.parse_timestamp(text)


def test_a_member_event_kept_while_untracked_is_applied_when_the_id_is_tracked(
    acme, client, django_capture_on_commit_callbacks, no_queue
):
    from conferences.registry import tracking

    receiver.set_up(acme)
    CallbackSettings.objects.filter(account=acme).update(register_unknown=False)
    event = member_event("conf-later")
    post(client, url_of(acme), event)
    assert process_all(acme) == [
        "untracked conference; kept until it is tracked (registering is off)"
    ]
    # Replayed while still untracked: already recorded, kept.
    assert post(client, url_of(acme), event).content.decode().find("already recorded") >= 0

    with django_capture_on_commit_callbacks(execute=True):
        tracking.track_conferences(account=acme, conference_ids=["conf-later"])
    assert len(no_queue) == 2  # tracking it queued the kept event
    assert process_all(acme) == ["applied"]

    conference = Conference.objects.get(conference_id="conf-later")
    assert Member.objects.filter(conference=conference).count() == 1
    assert Event.objects.filter(conference=conference, kind="member_joined").count() == 1


def test_a_member_event_replayed_after_its_conference_is_tracked_is_applied(acme, client):
    from conferences.registry import tracking

    receiver.set_up(acme)
    CallbackSettings.objects.filter(account=acme).update(register_unknown=False)
    event = member_event("conf-replay")
    post(client, url_of(acme), event)
    process_all(acme)
    # Tracked by hand (the kept event waits again), then Catapult sends it again.
    tracking.track_conferences(account=acme, conference_ids=["conf-replay"])
    replay = post(client, url_of(acme), event)

    assert replay.status_code == 200
    assert process_all(acme) == ["applied"]
    conference = Conference.objects.get(conference_id="conf-replay")
    assert Member.objects.filter(conference=conference).count() == 1


def test_a_member_event_for_an_unknown_id_registers_it_within_the_cap(acme, client):
    post(client, url_of(acme), member_event("conf-by-member"))

    assert process_all(acme) == ["applied"]
    conference = Conference.objects.get(conference_id="conf-by-member")
    assert reload(conference).active_members == 1


@pytest.mark.parametrize("event_type", ["CONFERENCE", "Conference", "conference"])
def test_the_event_type_is_read_in_any_case(acme, client, event_type):
    response = post(client, url_of(acme), conference_event("conf-case", eventType=event_type))

    assert response.status_code == 200
    assert process_all(acme) == ["applied"]
    assert Conference.objects.get(conference_id="conf-case").state == "created"
    assert CallbackEvent.objects.get().event_type == "conference"


def test_the_tag_of_a_callback_is_stored_on_the_conference(acme, client):
    conference = make_conference(acme, "conf-tag")
    post(client, url_of(acme), conference_event("conf-tag", "active", tag="billing-team"))
    process_all(acme)

    assert reload(conference).catapult_tag == "billing-team"


def test_an_event_marks_its_conference_due_and_polls_nothing(acme, client, settings):
    from datetime import timedelta

    from django.utils import timezone

    later = timezone.now() + timedelta(seconds=60)
    conference = make_conference(acme, "conf-due", next_poll_at=later)
    post(client, url_of(acme), member_event("conf-due"))
    process_all(acme)  # the account's API is unreachable: a poll would record an error

    conference = reload(conference)
    assert conference.next_poll_at <= timezone.now()
    assert conference.last_polled_at is None and conference.poll_status == "pending"


def test_a_conference_read_a_moment_ago_is_not_made_due_again(acme, client, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.CONFWATCH_CALLBACK_CONFIRM_SECONDS = 30
    later = timezone.now() + timedelta(seconds=60)
    conference = make_conference(
        acme, "conf-read", next_poll_at=later, last_polled_at=timezone.now()
    )
    post(client, url_of(acme), member_event("conf-read"))
    process_all(acme)

    assert reload(conference).next_poll_at == later


def test_a_flood_of_events_queues_one_processing_task_per_account(acme, client, monkeypatch):
    monkeypatch.setattr(queue, "queue_processing", REAL_QUEUE_PROCESSING)
    broker = queued.redis_client()
    broker.flushdb()
    other = make_account(name="other")
    for i in range(20):
        assert post(client, url_of(acme), conference_event(f"conf-{i}")).status_code == 200
    post(client, url_of(other), conference_event("conf-x"))

    assert broker.llen("celery") == 2
    broker.flushdb()


def test_a_task_past_its_time_leaves_the_rest_to_one_more_task(acme, client, monkeypatch, no_queue):
    make_conference(acme, "conf-1")
    for index in range(3):
        post(client, url_of(acme), member_event("conf-1", memberId=f"m-{index}"))
    no_queue.clear()
    monkeypatch.setattr(processing, "TIME_BOX", 0)

    assert process_all(acme) == ["applied"]
    assert len(no_queue) == 1  # the account's next task
    assert process_all(acme) == ["applied"]
    assert process_all(acme) == ["applied"]
    assert Member.objects.filter(conference__conference_id="conf-1").count() == 3


def test_the_body_is_read_and_redis_asked_outside_any_transaction(acme, client, monkeypatch):
    from django.db import connection

    url = url_of(acme)
    depth_in_test = len(connection.savepoint_ids)  # the test's own transaction
    depths = []
    read_body, admit = receiver.read_body, receiver.admit

    def reading(*args):
        depths.append(len(connection.savepoint_ids))
        return read_body(*args)

    def asking(account_pk):
        depths.append(len(connection.savepoint_ids))
        return admit(account_pk)

    monkeypatch.setattr(receiver, "read_body", reading)
    monkeypatch.setattr(receiver, "admit", asking)
    assert post(client, url, member_event("conf-1")).status_code == 200

    assert depths == [depth_in_test, depth_in_test]


def test_callback_text_is_made_safe_by_the_rules_answers_follow(acme, client):
    conference = make_conference(acme, "conf-safe")
    post(
        client,
        url_of(acme),
        member_event("conf-safe", callId="c-\u202e\u200b" + "9" * 300, tag="team\u202e-a"),
    )
    post(client, url_of(acme), member_event("conf-safe", memberId="member-\u202e2"))
    process_all(acme)

    conference = reload(conference)
    assert conference.catapult_tag == "team-a"
    (member,) = Member.objects.filter(conference=conference)
    assert member.member_id == "member-1"  # an id with unsafe characters is no id
    assert len(member.call_id) == answers.CALL_ID_LIMIT and member.call_id.endswith("…")
    assert member.call_id.startswith("c-999")


@pytest.mark.django_db(transaction=True)
def test_a_poll_answer_read_before_a_callbacks_change_does_not_undo_it(
    simulator, sim_client, client
):
    account = make_account(simulator)
    conference_id = sim_client.create_conference(from_number="+15555550100")
    conference = make_conference(account, conference_id)
    rounds.poll_round(force=True)
    assert reload(conference).active_members == 0
    simulator.set_faults(latency_ms=1500)  # the answer reads the state, then waits
    in_flight = threading.Thread(target=poll_and_close)
    in_flight.start()
    time.sleep(0.5)

    # A member joins while the poll's answer (0 members) is on its way back.
    joined = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    event = member_event(conference_id, activeMembers=1, time=joined)
    assert post(client, url_of(account), event).status_code == 200
    processing.process_waiting(account.pk)
    in_flight.join(timeout=30)

    conference = reload(conference)
    assert conference.active_members == 1
    changes = Event.objects.filter(conference=conference, kind="members_changed")
    assert [(e.before, e.after) for e in changes.order_by("id")] == [(0, 1)]


def poll_and_close():
    try:
        rounds.poll_round(force=True)
    finally:
        connection.close()
