"""Chaos, the Catapult API misbehaving: what tests/test_polling.py does not cover
already (hangs, deadlines, malformed bodies, 404, 401 and a killed worker are there).

Each test runs real rounds against the simulator over a real socket, with its faults."""

import base64
import logging
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from conferences.models import Account, HistoryEntry, PollError
from conferences.polling import rounds
from tests.conftest import SIM_USER, make_account, make_conference, reload

pytestmark = pytest.mark.django_db


def start(sim_client, count):
    return [sim_client.create_conference(from_number="+15555550100") for _ in range(count)]


def poll_rounds(count):
    return [rounds.poll_round(force=True) for _ in range(count)]


def test_twenty_percent_errors_never_make_a_change_and_every_conference_keeps_its_status(
    simulator, sim_client
):
    account = make_account(simulator, request_budget=50.0)
    conferences = [make_conference(account, c) for c in start(sim_client, 10)]
    poll_rounds(1)
    history = HistoryEntry.objects.count()
    simulator.set_faults(error_rate=0.2)

    summaries = poll_rounds(6)

    outcomes = Counter()
    for summary in summaries:
        outcomes.update(summary.outcomes)
    assert set(outcomes) <= {"ok", "unreachable"} and outcomes["unreachable"] > 0
    assert sum(summary.changed for summary in summaries) == 0
    assert HistoryEntry.objects.count() == history
    assert {reload(conference).state for conference in conferences} == {"created"}


def test_after_a_burst_of_server_errors_every_conference_recovers(simulator, sim_client):
    account = make_account(simulator, request_budget=50.0)
    conferences = [
        make_conference(account, conference_id) for conference_id in start(sim_client, 5)
    ]
    simulator.set_faults(error_rate=1.0)
    poll_rounds(3)
    assert {reload(c).poll_status for c in conferences} == {"unreachable"}

    simulator.reset_faults()
    poll_rounds(1)

    for conference in conferences:
        conference = reload(conference)
        assert conference.poll_status == "ok" and conference.consecutive_failures == 0
        assert conference.state == "created"
    assert reload(account).problem == ""


def test_a_429_with_a_far_reset_pauses_the_account_no_longer_than_the_cap(
    simulator, sim_client, settings
):
    settings.CONFWATCH_MAX_BACKOFF = 60
    account = make_account(simulator)
    make_conference(account, start(sim_client, 1)[0])
    simulator.set_faults(rate_limited_seconds=7 * 24 * 3600)  # a reset a week away

    poll_rounds(1)

    account = reload(account)
    assert account.problem == "rate_limited"
    assert account.paused_until <= timezone.now() + timedelta(seconds=60)
    assert rounds.poll_round(force=False).polled == 0  # resting: nothing is sent


def test_a_403_limit_pauses_the_account_like_a_429_and_polling_resumes_after_it(
    simulator, sim_client
):
    account = make_account(simulator)
    conference = make_conference(account, start(sim_client, 1)[0])
    poll_rounds(1)
    simulator.set_faults(limit_rate=1)

    poll_rounds(1)

    account = reload(account)
    assert account.problem == "rate_limited"
    assert account.paused_until > timezone.now()
    assert reload(conference).poll_status == "rate_limited"
    assert reload(conference).history.count() == 1  # a limit is never a change
    assert rounds.poll_round(force=False).polled == 0  # resting: nothing is sent

    simulator.set_faults(limit_rate=0)
    Account.objects.filter(pk=account.pk).update(paused_until=timezone.now())
    poll_rounds(1)
    assert reload(conference).poll_status == "ok" and reload(account).problem == ""


def test_a_server_echoing_the_authorization_header_shows_no_credentials_anywhere(
    simulator, sim_client, client, admin_user, caplog
):
    caplog.set_level(logging.DEBUG)
    user_id, token, secret = SIM_USER
    basic = base64.b64encode(f"{token}:{secret}".encode()).decode()
    account = make_account(simulator)
    conference = make_conference(account, start(sim_client, 1)[0])
    simulator.set_faults(echo_authorization_rate=1.0)

    poll_rounds(2)

    client.force_login(admin_user)
    shown = [
        client.get(url).content.decode()
        for url in [
            "/",
            f"/conferences/{conference.pk}/",
            "/api/conferences/",
            f"/api/conferences/{conference.conference_id}/history/",
            "/admin/conferences/pollerror/",
            f"/admin/conferences/pollerror/{PollError.objects.get().pk}/change/",
            f"/admin/conferences/conference/{conference.pk}/change/",
        ]
    ]
    stored = [
        reload(conference).poll_error,
        PollError.objects.get().message,
        Account.objects.get().problem_message,
    ]
    assert "Authorization" in PollError.objects.get().message  # the fault did happen
    for text in shown + stored + [caplog.text]:
        assert basic not in text
        assert f"Basic {basic[:8]}" not in text
        assert secret not in text
