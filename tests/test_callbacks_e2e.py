"""Callbacks end to end: the simulator posts Catapult's events to the running web server,
a real Celery worker on the real Redis processes them into Postgres (and beat sends the
polling rounds that confirm them)."""

import pytest
import requests

from conferences.callbacks import receiver
from conferences.models import CallbackEvent, CallbackSettings, Conference, Event, Member
from tests.conftest import WORKER_ARGS, make_account, make_conference, start_celery, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

AUTOTRACK_CAP = 3


@pytest.fixture
def worker(celery_env):
    celery_env["CONFWATCH_CALLBACK_AUTOTRACK_PER_HOUR"] = str(AUTOTRACK_CAP)
    processes = [start_celery(celery_env, *WORKER_ARGS), start_celery(celery_env, "beat")]
    yield processes
    for process in processes:
        process.terminate()
        process.wait(timeout=20)


def member_kinds(conference):
    return list(
        Event.objects.filter(conference=conference, kind__startswith="member_")
        .order_by("id")
        .values_list("kind", flat=True)
    )


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_conference_created_with_the_callback_url_is_tracked_and_its_members_follow(
    live_server, settings, simulator, sim_client, worker, method
):
    settings.CONFWATCH_BASE_URL = live_server.url
    account = make_account(simulator)
    url = receiver.callback_url(account)

    conference_id = sim_client.create_conference(
        from_number="+15555550100", callback_url=url, callback_http_method=method
    )
    wait_for(
        lambda: Conference.objects.filter(account=account, conference_id=conference_id).exists(),
        what="the conference event to register the conference",
    )
    conference = Conference.objects.get(account=account, conference_id=conference_id)

    member_id = sim_client.add_member(conference_id, call_id="c-caller")
    wait_for(lambda: Member.objects.filter(conference=conference).exists(), what="the member")
    sim_client.update_member(conference_id, member_id, mute=True)
    wait_for(
        lambda: Member.objects.filter(conference=conference, mute=True).exists(),
        what="the mute",
    )
    sim_client.update_member(conference_id, member_id, hold=True)
    wait_for(
        lambda: Member.objects.filter(conference=conference, hold=True).exists(),
        what="the hold",
    )
    sim_client.add_member(conference_id, call_id="c-second")
    sim_client.update_member(conference_id, member_id, state="completed")
    wait_for(
        lambda: Member.objects.filter(conference=conference, state="completed").exists(),
        what="the member to leave",
    )

    # Each change once, whichever saw it first: the callback or a members read.
    wait_for(lambda: len(member_kinds(conference)) >= 5, what="the member events")
    assert sorted(member_kinds(conference)) == [
        "member_hold_changed",
        "member_joined",
        "member_joined",
        "member_left",
        "member_mute_changed",
    ]
    sources = Event.objects.filter(conference=conference, kind__startswith="member_")
    assert "callback" in set(sources.values_list("source", flat=True))
    # The member events say nothing of the conference's state: a confirming poll does.
    wait_for(lambda: conference_polled(conference), what="a confirming poll")
    # The last callbacks may still be queued behind that poll: each is processed, soon.
    waiting = CallbackEvent.objects.filter(account=account, processed_at__isnull=True)
    wait_for(lambda: not waiting.exists(), what="every callback processed")


def conference_polled(conference):
    conference.refresh_from_db()
    return conference.last_polled_at is not None and conference.state == "active"


def test_when_the_callback_url_fails_the_fallback_url_gets_the_event_once(
    live_server, settings, simulator, sim_client, worker
):
    settings.CONFWATCH_BASE_URL = live_server.url
    account = make_account(simulator)
    url = receiver.callback_url(account)

    conference_id = sim_client.create_conference(
        from_number="+15555550100",
        callback_url=live_server.url + "/callbacks/" + "wrong" * 8 + "/",
        fallback_url=url,
    )

    wait_for(
        lambda: Conference.objects.filter(conference_id=conference_id).exists(),
        what="the fallback to deliver the event",
    )
    deliveries = simulator.callback_deliveries()
    assert [(d["fallback"], d["status"]) for d in deliveries] == [(False, 404), (True, 200)]
    assert CallbackEvent.objects.count() == 1


def test_past_the_hourly_cap_new_ids_are_answered_counted_and_kept_while_known_ones_apply(
    live_server, settings, simulator, worker
):
    settings.CONFWATCH_BASE_URL = live_server.url
    account = make_account(simulator)
    known = make_conference(account, "conf-known")
    url = receiver.callback_url(account)

    answers = [
        requests.post(
            url,
            json={
                "eventType": "conference",
                "conferenceId": f"conf-flood-{i}",
                "status": "created",
            },
            timeout=10,
        ).status_code
        for i in range(AUTOTRACK_CAP + 5)
    ]
    member = {
        "eventType": "conference-member",
        "conferenceId": "conf-known",
        "memberId": "member-1",
        "state": "active",
        "activeMembers": 1,
    }
    answers.append(requests.post(url, json=member, timeout=10).status_code)

    assert answers == [200] * (AUTOTRACK_CAP + 6)
    wait_for(
        lambda: not CallbackEvent.objects.filter(processed_at__isnull=True).exists(),
        what="the worker to process every event",
    )
    flood = Conference.objects.filter(conference_id__startswith="conf-flood-")
    assert flood.count() == AUTOTRACK_CAP
    assert CallbackEvent.objects.filter(awaiting_tracking=True).count() == 5
    assert CallbackSettings.objects.get(account=account).autotrack_refused == 5
    assert Member.objects.filter(conference=known).count() == 1
    assert live_server_health(live_server)["callback_registrations_refused_this_hour"] == 5


def live_server_health(live_server):
    return requests.get(live_server.url + "/health/", timeout=10).json()
