"""Issue #21, fidelity: what Catapult documents is kept and shown (the settings a support
engineer needs, a completed conference's duration), and each documented error is named
as what it is (a conflict, a 403 by its category) and rests the account only when it is
the account's rate limit or its credentials (docs/catapult-api.md §1.2, §4.5)."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from conferences import text
from conferences.callbacks import processing, receiver
from conferences.catapult import answers
from conferences.models import Conference
from conferences.polling import results, rounds
from conferences.recording import observations
from simulator.testing import running_simulator
from tests.catapult_driver import CatapultDriver
from tests.conftest import SIM_USER, make_account, make_conference, reload, wait_for
from tests.test_catapult import BASE_PATH, SECRET, TOKEN, USER_ID, CannedServer

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


def test_a_conference_seen_by_polls_and_one_told_by_callbacks_store_the_same_values(client):
    # An API that answers with milliseconds, as its callbacks carry them.
    with running_simulator(rate_limit=50, time_format="ms-colon-offset") as simulator:
        sim_client = driver_for(simulator)
        polled_account = make_account(simulator)
        told_account = make_account(name="told")
        conference_id = sim_client.create_conference(
            from_number="+15555550100", tag="billing-team", **SETTINGS
        )
        sim_client.update_conference(conference_id, state="completed")
        # What the simulator sent to the (unreachable) callback and fallback URLs.
        wait_for(
            lambda: len(conference_events(simulator)) >= 2,
            timeout=10,
            what="the conference events",
        )
        polled = make_conference(polled_account, conference_id)
        told = make_conference(told_account, conference_id)

        poll()
        tell(client, told_account, conference_events(simulator))
        sim_client.close()

    polled, told = reload(polled), reload(told)
    shared = ["state", "created_time", "completed_time", "catapult_tag"]
    assert [getattr(told, name) for name in shared] == [getattr(polled, name) for name in shared]
    assert (polled.state, polled.catapult_tag) == ("completed", "billing-team")
    assert polled.created_time.microsecond or polled.completed_time.microsecond
    # The settings only a poll carries (Catapult's events do not) are stored from it.
    assert {name: getattr(polled, name) for name in SETTINGS} == SETTINGS
    assert polled.duration_seconds == int(
        (polled.completed_time - polled.created_time).total_seconds()
    )


def driver_for(simulator):
    user_id, token, secret = SIM_USER
    return CatapultDriver(
        base_url=simulator.url, user_id=user_id, api_token=token, api_secret=secret
    )


def tell(client, account, payloads):
    """Deliver callback events to the account's receiver and process them."""
    url = "/" + receiver.callback_url(account).split("/", 3)[3]
    for payload in payloads:
        answer = client.post(url, json.dumps(payload), content_type="application/json")
        assert answer.status_code < 300
    processing.process_waiting(account.pk)


@pytest.mark.parametrize("first", ["poll", "callback"])
def test_a_read_to_the_second_keeps_the_milliseconds_a_callback_told_whichever_came_first(
    client, simulator, sim_client, first
):
    account = make_account(simulator)
    conference_id = sim_client.create_conference(from_number="+15555550100", **SETTINGS)
    wait_for(lambda: conference_events(simulator), timeout=10, what="the created event")
    (created_event,) = conference_events(simulator)
    conference = make_conference(account, conference_id)

    if first == "poll":
        poll()
        read = reload(conference).created_time
        tell(client, account, [created_event])
    else:
        tell(client, account, [created_event])
        Conference.objects.filter(pk=conference.pk).update(next_poll_at=timezone.now())
        poll()
        read = sim_client.get_conference(conference_id).created_time

    told = answers.parse_timestamp(created_event["createdTime"])
    conference = reload(conference)
    assert read.microsecond == 0 and told.microsecond  # whole seconds; milliseconds
    assert read == told.replace(microsecond=0)
    assert conference.created_time == told
    assert reload(conference).poll_status == "ok"


# One answer in every untidy shape the reference documents (§5.3, §6): string booleans
# and numbers, an hour-only offset, milliseconds at a colon offset, upper-case state,
# unsafe characters, a blank setting, unknown keys.
UNTIDY_ANSWER = {
    "state": "COMPLETED",
    "from": "+1919\u202e5551212",
    "createdTime": "2013-07-12T15:22:47-02",
    "completedTime": "2013-07-12T16:29:32.521-02:00",
    "activeMembers": "0",
    "hold": "true",
    "mute": "False",
    "profile": "passthru_digits",
    "callbackUrl": WITH_USERINFO,
    "callbackHttpMethod": "post",
    "callbackTimeout": "2000",
    "fallbackUrl": "  ",
    "tag": "team\u200b-a",
    "somethingNew": {"nested": True},
}


def test_one_untidy_conference_polled_and_told_by_a_callback_is_stored_alike(client):
    body = {"id": "conf-untidy", **UNTIDY_ANSWER}
    event = {"eventType": "conference", "conferenceId": "conf-untidy", **UNTIDY_ANSWER}
    event["status"] = event.pop("state")
    with CannedServer() as canned:
        canned.route("GET", f"{BASE_PATH}/conf-untidy", body=body)
        canned.route("GET", f"{BASE_PATH}/conf-untidy/members", body=[])
        polled_account = make_account(
            name="polled", user_id=USER_ID, token=TOKEN, secret=SECRET, base_url=canned.url
        )
        polled = make_conference(polled_account, "conf-untidy")
        poll()
    told_account = make_account(name="told")
    told = make_conference(told_account, "conf-untidy")
    url = "/" + receiver.callback_url(told_account).split("/", 3)[3]
    assert client.post(url, json.dumps(event), content_type="application/json").status_code < 300
    processing.process_waiting(told_account.pk)

    polled, told = reload(polled), reload(told)
    assert polled.poll_status == "ok"
    stored = observations.SEEN_NAMES
    assert {name: getattr(told, name) for name in stored} == {
        name: getattr(polled, name) for name in stored
    }
    assert (polled.state, polled.hold, polled.mute, polled.active_members) == (
        "completed",
        True,
        False,
        0,
    )
    assert (polled.from_number, polled.catapult_tag) == ("+19195551212", "team-a")
    assert (polled.callback_http_method, polled.callback_timeout) == ("post", 2000)
    assert polled.fallback_url is None  # blank: no setting
    assert polled.created_time == datetime(2013, 7, 12, 17, 22, 47, tzinfo=UTC)


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


# --------------------------------------------------------------------------- every documented shape

# Every error shape docs/catapult-api.md §4 documents, as the simulator answers it with
# every untidy shape on (the full 429 details, the legacy 400, 403s with empty details):
# (name, how it is met, simulator faults, poll status, its label, poll message, whether
# the account rests). "poll": a polling round meets it reading the conference;
# "update"/"member-cap"/"completed"/"blank-from": only a write meets it (the product's
# client only reads), so the error the client raises is recorded as a poll records one.
EVERY_ERROR_SHAPE = [
    (
        "404",
        "unknown",
        {},
        "not_found",
        "not found",
        "Not found: Conference conf-nobody-made not found (HTTP 404, conference-not-found)",
        "",
    ),
    (
        "409 conflict",
        "update",
        {"conflict_rate": 1.0},
        "conflict",
        "conflict",
        "Conflict: Concurrent update, retry your operation (HTTP 409, conference-update-conflict)",
        "",
    ),
    (
        "403 forbidden, empty details",
        "completed",
        {},
        "api_error",
        "API error",
        "API error: forbidden: Conference {id} is completed (HTTP 403, conference-error)",
        "",
    ),
    (
        "403 limit, the member cap, empty details",
        "member-cap",
        {},
        "api_error",
        "API error",
        "API error: forbidden (limit): Conference {id} already has the maximum of 20 members"
        " (HTTP 403, conference-max-members)",
        "",
    ),
    (
        "403 limit, a call rate, empty details",
        "poll",
        {"limit_rate": 1.0},
        "rate_limited",
        "rate limited",
        "Rate limited: The call rate limit of this account was reached, retry later"
        " (HTTP 403, call-rate-limit-reached)",
        "rate_limited",
    ),
    (
        "429 with full details, no message",
        "poll",
        {"rate_limited_seconds": 60},
        "rate_limited",
        "rate limited",
        "Rate limited: rate-limit-reached (HTTP 429)",
        "rate_limited",
    ),
    (
        "legacy 400",
        "blank-from",
        {},
        "api_error",
        "API error",
        "API error: Property 'from' must not be blank (HTTP 400, blank-property)",
        "",
    ),
    (
        "401 HTML",
        "wrong-secret",
        {"unauthorized_body": "html"},
        "credentials_rejected",
        "credentials rejected",
        "Credentials rejected: Unauthorized (HTTP 401)",
        "credentials_rejected",
    ),
    (
        "502 HTML",
        "poll",
        {"bad_gateway_rate": 1.0},
        "unreachable",
        "unreachable",
        "Catapult unreachable: Bad Gateway (HTTP 502)",
        "",
    ),
]


@pytest.mark.parametrize(
    ("how", "faults", "status", "label", "message", "problem"),
    [shape[1:] for shape in EVERY_ERROR_SHAPE],
    ids=[shape[0] for shape in EVERY_ERROR_SHAPE],
)
def test_every_documented_error_shape_is_stored_and_shown_with_its_own_label(
    signed_in, how, faults, status, label, message, problem
):
    with running_simulator(untidy=True, rate_limit=0) as sim:
        driver = CatapultDriver(
            base_url=sim.url, user_id=SIM_USER[0], api_token=SIM_USER[1], api_secret=SIM_USER[2]
        )
        conference_id = driver.create_conference(from_number="+15555550100")
        account = make_account(sim, token="not-the-token" if how == "wrong-secret" else SIM_USER[1])
        if how == "unknown":
            conference_id = "conf-nobody-made"
        conference = make_conference(account, conference_id)
        if how == "member-cap":
            for number in range(20):
                driver.add_member(conference_id, call_id=f"c-{number}")
        if how == "completed":
            driver.update_conference(conference_id, state="completed")
        sim.set_faults(**faults)
        if how == "update":
            conference = record_as_poll(
                conference, raised(lambda: driver.update_conference(conference_id, hold=True))
            )
        elif how == "member-cap" or how == "completed":
            conference = record_as_poll(
                conference, raised(lambda: driver.add_member(conference_id, call_id="c-late"))
            )
        elif how == "blank-from":
            conference = record_as_poll(
                conference, raised(lambda: driver.create_conference(from_number=""))
            )
        else:
            poll()
        driver.close()

    conference, account = reload(conference), reload(account)
    message = message.format(id=conference_id)
    assert (conference.poll_status, conference.get_poll_status_display()) == (status, label)
    assert conference.poll_error == message
    assert account.problem == problem
    page = signed_in.get(reverse("conferences:detail", args=[conference.pk])).content.decode()
    assert f">{label}" in page and escape(message) in page


# --------------------------------------------------------------------------- shown and exported


@pytest.fixture
def completed(db):
    # Catapult's times carry milliseconds (a callback's do).
    created = (timezone.now() - timedelta(hours=2)).replace(microsecond=521_000)
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
    assert "post, timeout 2000 ms" in text
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


def test_exports_and_the_page_keep_the_milliseconds_catapult_gave(
    signed_in, client, django_user_model, completed
):
    created = completed.created_time.astimezone(UTC)
    written = f"{created:%Y-%m-%dT%H:%M:%S}.521+00:00"
    listed = signed_in.get(reverse("conferences:api-list")).json()["conferences"][0]
    out = StringIO()
    call_command("conference_status", "conf-done", "--json", stdout=out)
    page = signed_in.get(reverse("conferences:detail", args=[completed.pk])).content.decode()
    boss = django_user_model.objects.create_superuser("boss", password="correct horse battery")
    client.force_login(boss)
    exported = client.post(
        "/admin/conferences/conference/",
        {"action": "export_csv", "_selected_action": [completed.pk]},
    )

    assert listed["created_time"] == written
    assert json.loads(out.getvalue())["created_time"] == written
    [row] = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert row["created_time"] == written
    # Shown to the second, exact (milliseconds too) on hover.
    exact = text.exact_text(completed.created_time)
    assert ".521 " in exact
    assert f'title="{exact}">{text.local_text(completed.created_time)}</time>' in page
