"""Issue #21, fidelity: what Catapult documents is kept and shown (the settings a support
engineer needs, a completed conference's duration), and each documented error is named
as what it is (a conflict, a 403 by its category) and rests the account only when it is
the account's rate limit or its credentials (docs/catapult-api.md §1.2, §4.5)."""

import csv
import io
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from conferences.callbacks import processing, receiver
from conferences.catapult import answers
from conferences.models import Conference
from conferences.polling import results, rounds
from conferences.recording import observations
from tests.conftest import make_account, make_conference, reload, wait_for

pytestmark = pytest.mark.django_db

SETTINGS = {
    "callback_url": "http://127.0.0.1:9/hooks/primary",
    "callback_http_method": "POST",
    "callback_timeout": 2500,
    "fallback_url": "http://127.0.0.1:9/hooks/fallback",
    "profile": "passthru_digits",
}
WITH_USERINFO = "https://ops:s3cret@hooks.example.com/catapult?x=1"
MASKED = "https://***@hooks.example.com/catapult?x=1"


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    """The receiver queues each event for a worker; here the test processes them."""
    monkeypatch.setattr(processing.queue, "queue_processing", lambda pk, **_: None)


def poll():
    return rounds.poll_round(force=True)


# --------------------------------------------------------------------------- polls and callbacks


def test_a_conference_seen_by_polls_and_one_told_by_callbacks_store_the_same_values(
    client, simulator, sim_client
):
    polled_account = make_account(simulator)
    told_account = make_account(name="told")
    conference_id = sim_client.create_conference(
        from_number="+15555550100", tag="billing-team", **SETTINGS
    )
    sim_client.update_conference(conference_id, state="completed")
    # What the simulator sent to the (unreachable) callback and fallback URLs.
    wait_for(
        lambda: len(conference_events(simulator)) >= 2, timeout=10, what="the conference events"
    )
    polled = make_conference(polled_account, conference_id)
    told = make_conference(told_account, conference_id)

    poll()
    url = "/" + receiver.callback_url(told_account).split("/", 3)[3]
    for payload in conference_events(simulator):
        answer = client.post(url, json.dumps(payload), content_type="application/json")
        assert answer.status_code < 300
    processing.process_waiting(told_account.pk)

    polled, told = reload(polled), reload(told)
    shared = ["state", "created_time", "completed_time", "catapult_tag"]
    assert [getattr(told, name) for name in shared] == [getattr(polled, name) for name in shared]
    assert (polled.state, polled.catapult_tag) == ("completed", "billing-team")
    # The settings only a poll carries (Catapult's events do not) are stored from it.
    assert {name: getattr(polled, name) for name in SETTINGS} == SETTINGS
    assert polled.duration_seconds == int(
        (polled.completed_time - polled.created_time).total_seconds()
    )


def conference_events(simulator):
    """The conference events the simulator sent, first attempts only (not fallbacks)."""
    return [
        delivery["payload"]
        for delivery in simulator.callback_deliveries()
        if delivery["event_type"] == "conference" and not delivery["fallback"]
    ]


def test_a_callback_carrying_the_settings_stores_them_cleaned_as_answers_are(client):
    account = make_account()
    conference = make_conference(account, "conf-settings")
    payload = {
        "eventType": "conference",
        "conferenceId": "conf-settings",
        "status": "created",
        "profile": "passthru\u202e_digits",
        "callbackUrl": WITH_USERINFO,
        "callbackHttpMethod": "x" * 500,
        "callbackTimeout": "2000",
        "fallbackUrl": "   ",
    }
    url = "/" + receiver.callback_url(account).split("/", 3)[3]
    client.post(url, json.dumps(payload), content_type="application/json")
    processing.process_waiting(account.pk)

    conference = reload(conference)
    assert conference.profile == "passthru_digits"
    assert conference.callback_url == WITH_USERINFO
    assert len(conference.callback_http_method) == answers.WORD_LIMIT
    assert conference.callback_http_method.endswith(answers.CUT_MARK)
    assert conference.callback_timeout == 2000
    assert conference.fallback_url is None


# --------------------------------------------------------------------------- errors by polling

POLLED_SHAPES = [
    # (faults, poll_status, start of poll_error, account problem)
    ({"error_rate": 1.0}, "unreachable", "Catapult unreachable: ", ""),
    ({"malformed_rate": 1.0}, "malformed", "Malformed response: ", ""),
    ({"limit_rate": 1.0}, "rate_limited", "Rate limited: The call rate limit", "rate_limited"),
    (
        {"limit_rate": 1.0, "empty_403_details": True},
        "rate_limited",
        "Rate limited: The call rate limit",
        "rate_limited",
    ),
    ({"rate_limited_seconds": 1}, "rate_limited", "Rate limited: ", "rate_limited"),
]


@pytest.mark.parametrize(("faults", "status", "error", "problem"), POLLED_SHAPES)
def test_each_error_a_poll_meets_is_labelled_for_what_it_is(
    simulator, sim_client, faults, status, error, problem
):
    account = make_account(simulator)
    conference = make_conference(account, sim_client.create_conference(from_number="+1555"))
    simulator.set_faults(**faults)

    poll()

    conference, account = reload(conference), reload(account)
    assert conference.poll_status == status
    assert conference.poll_error.startswith(error)
    assert account.problem == problem
    assert (account.paused_until is not None) == bool(problem)


def test_rejected_credentials_and_an_unknown_conference_are_labelled_as_such(simulator):
    wrong = make_account(simulator, name="wrong", token="not-the-token")
    right = make_account(simulator, name="right")
    rejected = make_conference(wrong, "conf-any")
    unknown = make_conference(right, "conf-nobody-made")

    poll()

    rejected, unknown = reload(rejected), reload(unknown)
    assert (rejected.poll_status, reload(wrong).problem) == (
        "credentials_rejected",
        "credentials_rejected",
    )
    assert rejected.poll_error.startswith("Credentials rejected: ")
    assert (unknown.poll_status, reload(right).problem) == ("not_found", "")
    assert unknown.poll_error.startswith("Not found: ")


# --------------------------------------------------------------------------- errors on updates


def raised(call):
    try:
        call()
    except answers.CatapultError as error:
        return error
    raise AssertionError("no error raised")


def record_as_poll(conference, error):
    """Record an error the simulator answered as a poll of the conference would."""
    observations.record([observations.Observation(conference.pk, timezone.now(), error=error)])
    return reload(conference)


def test_a_conflict_is_named_a_conflict_and_retried_not_unreachable(simulator, sim_client):
    account = make_account(simulator)
    conference_id = sim_client.create_conference(from_number="+1555")
    conference = make_conference(account, conference_id)
    simulator.set_faults(conflict_rate=1.0)

    error = raised(lambda: sim_client.update_conference(conference_id, hold=True))

    assert isinstance(error, answers.Conflict)
    assert error.transient and not answers.rests_account(error)
    conference = record_as_poll(conference, error)
    assert conference.poll_status == "conflict"
    assert conference.get_poll_status_display() == "conflict"
    assert conference.poll_error == (
        "Conflict: Concurrent update, retry your operation (HTTP 409, conference-update-conflict)"
    )
    assert (
        results.reschedule(
            conference, observation(conference, error), interval=timedelta(seconds=5)
        )
        > timezone.now()
    )


def observation(conference, error):
    return observations.Observation(conference.pk, timezone.now(), error=error)


def test_the_member_cap_is_a_forbidden_limit_that_pauses_nothing(simulator, sim_client):
    account = make_account(simulator)
    conference_id = sim_client.create_conference(from_number="+1555")
    conference = make_conference(account, conference_id)
    for number in range(20):
        sim_client.add_member(conference_id, call_id=f"c-{number}")

    error = raised(lambda: sim_client.add_member(conference_id, call_id="c-twenty-first"))

    assert isinstance(error, answers.Forbidden)
    assert not error.transient and not answers.rests_account(error)
    conference = record_as_poll(conference, error)
    assert conference.poll_status == "api_error"
    assert conference.poll_error.startswith("API error: forbidden (limit): Conference ")
    assert "(HTTP 403, conference-max-members)" in conference.poll_error
    assert reload(account).problem == ""


def test_a_403_about_the_conference_state_is_a_plain_forbidden_api_error(simulator, sim_client):
    make_account(simulator)
    conference_id = sim_client.create_conference(from_number="+1555")
    sim_client.update_conference(conference_id, state="completed")

    error = raised(lambda: sim_client.add_member(conference_id, call_id="c-late"))

    assert isinstance(error, answers.Forbidden)
    assert not answers.rests_account(error)
    assert str(error).startswith("API error: forbidden: Conference ")
    assert str(error).endswith("(HTTP 403, conference-error)")


# --------------------------------------------------------------------------- shown and exported


@pytest.fixture
def completed(db):
    created = timezone.now() - timedelta(hours=2)
    return make_conference(
        make_account(),
        "conf-done",
        state="completed",
        created_time=created,
        completed_time=created + timedelta(minutes=12, seconds=5),
        profile="interpret_digits",
        callback_url=WITH_USERINFO,
        callback_http_method="post",
        callback_timeout=2000,
        fallback_url="http://user@fallback.example.com/x",
        poll_status="ok",
    )


def test_a_completed_conferences_page_shows_its_duration_and_callback_settings(
    signed_in, completed
):
    text = signed_in.get(reverse("conferences:detail", args=[completed.pk])).content.decode()

    assert '<dd class="duration">12 min 5 s</dd>' in text
    assert MASKED in text and "s3cret" not in text
    assert "http://***@fallback.example.com/x" in text
    assert "post, 2000 ms" in text
    assert "interpret_digits" in text


def test_a_conference_not_completed_shows_no_duration(signed_in, completed):
    Conference.objects.filter(pk=completed.pk).update(state="active", completed_time=None)

    text = signed_in.get(reverse("conferences:detail", args=[completed.pk])).content.decode()

    assert 'class="duration"' not in text


EXPECTED_DATA = {
    "duration_seconds": 725,
    "profile": "interpret_digits",
    "callback_url": MASKED,
    "callback_http_method": "post",
    "callback_timeout": 2000,
    "fallback_url": "http://***@fallback.example.com/x",
}


def test_the_json_api_and_the_status_command_carry_the_settings_masked(signed_in, completed):
    listed = signed_in.get(reverse("conferences:api-list")).json()["conferences"][0]
    history = signed_in.get(reverse("conferences:api-history", args=["conf-done"])).json()
    out = StringIO()
    call_command("conference_status", "conf-done", "--json", stdout=out)
    printed = json.loads(out.getvalue())

    for data in (listed, history, printed):
        assert {name: data[name] for name in EXPECTED_DATA} == EXPECTED_DATA


def test_the_csv_export_carries_the_settings_masked(client, django_user_model, completed):
    boss = django_user_model.objects.create_superuser("boss", password="correct horse battery")
    client.force_login(boss)

    response = client.post(
        "/admin/conferences/conference/",
        {"action": "export_csv", "_selected_action": [completed.pk]},
    )

    [row] = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {name: row[name] for name in EXPECTED_DATA} == {
        name: str(value) for name, value in EXPECTED_DATA.items()
    }
    assert "s3cret" not in response.content.decode()
