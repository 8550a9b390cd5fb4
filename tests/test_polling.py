import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from conferences import polling
from conferences.models import HistoryEntry, PollError, StatusChange
from tests.conftest import make_account, make_conference, reload, requests_seen

pytestmark = pytest.mark.django_db


def start_conference(sim_client):
    return sim_client.create_conference(from_number="+15555550100")


def poll_all():
    return polling.poll_round(force=True)


def test_a_steady_conference_adds_no_history_rows(account, sim_client):
    conference = make_conference(account, start_conference(sim_client))

    poll_all()
    first = HistoryEntry.objects.get(conference=conference)
    poll_all()
    poll_all()

    entry = HistoryEntry.objects.get(conference=conference)
    assert entry.pk == first.pk
    assert entry.last_seen_at > first.last_seen_at
    assert entry.first_seen_at == first.first_seen_at
    assert (entry.state, entry.active_members, entry.hold, entry.mute) == (
        "created",
        0,
        False,
        False,
    )


def test_it_records_one_change_when_members_join(account, sim_client):
    conference_id = start_conference(sim_client)
    conference = make_conference(account, conference_id)
    poll_all()

    sim_client.add_member(conference_id, call_id="c-one")
    sim_client.add_member(conference_id, call_id="c-two")
    poll_all()
    poll_all()

    history = list(conference.history.order_by("first_seen_at"))
    assert [(h.state, h.active_members) for h in history] == [("created", 0), ("active", 2)]
    changes = list(StatusChange.objects.filter(conference=conference).order_by("changed_at"))
    assert [(c.from_state, c.to_state) for c in changes] == [
        (None, "created"),
        ("created", "active"),
    ]
    conference = reload(conference)
    assert conference.state == "active"
    assert conference.active_members == 2
    assert conference.poll_status == "ok"
    assert conference.last_changed_at == history[-1].first_seen_at


def test_hold_and_mute_changes_are_history_but_not_state_changes(account, sim_client):
    conference_id = start_conference(sim_client)
    conference = make_conference(account, conference_id)
    sim_client.add_member(conference_id, call_id="c-one")
    poll_all()

    sim_client.update_conference(conference_id, hold=True)
    poll_all()

    assert conference.history.count() == 2
    assert StatusChange.objects.filter(conference=conference).count() == 1
    assert reload(conference).hold is True


def test_a_completed_conference_gets_a_final_observation_and_is_not_polled_again(
    account, sim_client, simulator
):
    conference_id = start_conference(sim_client)
    conference = make_conference(account, conference_id)
    poll_all()
    sim_client.update_conference(conference_id, state="completed")
    poll_all()

    conference = reload(conference)
    assert conference.state == "completed"
    assert conference.completed_time is not None
    requests_before = requests_seen(simulator)
    summary = poll_all()
    assert summary.polled == 0
    assert requests_seen(simulator) == requests_before


def test_an_unknown_conference_shows_not_found_and_is_polled_less_often(account):
    conference = make_conference(account, "conf-doesnotexist")

    poll_all()

    conference = reload(conference)
    assert conference.poll_status == "not_found"
    assert conference.state is None
    assert "not found" in conference.poll_error.lower()
    assert conference.next_poll_at - conference.last_polled_at >= timedelta(seconds=60)
    assert conference.history.count() == 0


def test_a_malformed_response_is_recorded_and_changes_nothing_stored(
    account, sim_client, simulator
):
    conference_id = start_conference(sim_client)
    conference = make_conference(account, conference_id)
    poll_all()
    before = reload(conference)

    simulator.set_faults(malformed_rate=1.0, conference_ids=[conference_id])
    poll_all()
    poll_all()

    conference = reload(conference)
    assert conference.poll_status == "malformed"
    assert (conference.state, conference.active_members, conference.hold, conference.mute) == (
        before.state,
        before.active_members,
        before.hold,
        before.mute,
    )
    assert conference.last_changed_at == before.last_changed_at
    assert conference.history.count() == 1
    assert StatusChange.objects.filter(conference=conference).count() == 1
    errors = PollError.objects.filter(conference=conference)
    assert errors.count() >= 1
    assert sum(error.occurrences for error in errors) == 2


def test_a_repeated_error_extends_one_error_run(account):
    conference = make_conference(account, "conf-doesnotexist")

    poll_all()
    poll_all()

    run = PollError.objects.get(conference=conference)
    assert run.poll_status == "not_found"
    assert run.occurrences == 2
    assert reload(conference).consecutive_failures == 2


def test_failing_conferences_back_off_up_to_the_cap(account, settings):
    settings.CONFWATCH_MAX_BACKOFF = 100
    conference = make_conference(account, "conf-doesnotexist")
    waits = []
    for _ in range(5):
        poll_all()
        conference = reload(conference)
        waits.append((conference.next_poll_at - conference.last_polled_at).total_seconds())
    assert waits == sorted(waits)
    assert max(waits) == pytest.approx(100, abs=1)


def test_wrong_credentials_show_on_the_account_and_stop_requests(simulator, db, sim_client):
    account = make_account(simulator, secret="wrong-secret")
    make_conference(account, "conf-a")
    make_conference(account, "conf-b")

    poll_all()

    account = reload(account)
    assert account.problem == "credentials_rejected"
    assert account.paused_until > timezone.now() + timedelta(minutes=5)
    requests_before = requests_seen(simulator)
    summary = poll_all()
    assert summary.polled == 0
    assert requests_seen(simulator) == requests_before
    assert account.conferences.filter(poll_status="credentials_rejected").count() >= 1


def test_a_rate_limited_account_pauses_until_the_reset_time(account, sim_client, simulator):
    conference_id = start_conference(sim_client)
    conference = make_conference(account, conference_id)
    simulator.set_faults(rate_limited_seconds=30)

    poll_all()

    account = reload(account)
    conference = reload(conference)
    assert conference.poll_status == "rate_limited"
    assert account.problem == "rate_limited"
    assert timedelta(seconds=20) < account.paused_until - timezone.now() <= timedelta(seconds=31)
    assert conference.next_poll_at == account.paused_until


def test_a_good_poll_clears_the_account_problem(account, sim_client):
    conference = make_conference(account, start_conference(sim_client))
    account.problem = "rate_limited"
    account.problem_message = "Rate limited"
    account.save()

    poll_all()

    assert reload(account).problem == ""
    assert reload(conference).poll_status == "ok"


def test_active_conferences_are_polled_before_created_ones(simulator, db, sim_client):
    account = make_account(simulator, request_budget=1.0)
    created = make_conference(account, start_conference(sim_client), state="created")
    active_id = start_conference(sim_client)
    sim_client.add_member(active_id, call_id="c-1")
    active = make_conference(account, active_id, state="active")

    plan = polling.claim_due_conferences(account_pk=account.pk, now=timezone.now(), horizon=1.0)

    assert [job.conference.pk for job in plan.jobs] == [active.pk]
    assert reload(created).next_poll_at <= timezone.now()


def test_due_conferences_are_claimed_once_within_the_budget(simulator, db):
    account = make_account(simulator, request_budget=2.0)
    for index in range(10):
        make_conference(account, f"conf-{index}")
    now = timezone.now()

    first = polling.claim_due_conferences(account_pk=account.pk, now=now, horizon=2.0)
    second = polling.claim_due_conferences(account_pk=account.pk, now=now, horizon=2.0)

    # 2 requests/s at 95% of the budget: 4 slots fit in 2 seconds, none are left.
    assert len(first.jobs) == 4
    assert second is None
    slots = [job.send_at for job in first.jobs]
    gaps = [(b - a).total_seconds() for a, b in zip(slots, slots[1:], strict=False)]
    assert all(gap >= 0.5 for gap in gaps)


@pytest.mark.django_db(transaction=True)
def test_concurrent_rounds_never_exceed_the_budget_nor_poll_a_conference_twice(simulator):
    simulator.set_rate_limit(5)
    account = make_account(simulator, request_budget=5.0)
    for index in range(12):
        make_conference(account, f"conf-{index}")

    def one_round():
        try:
            polling.poll_round(horizon=1.5)
        finally:
            connection.close()

    rounds = [threading.Thread(target=one_round) for _ in range(3)]
    for thread in rounds:
        thread.start()
    for thread in rounds:
        thread.join(timeout=30)

    stats = simulator.stats()["users"]["u-demo"]
    assert stats["rate_limited"] == 0
    assert stats["max_accepted_per_second"] <= 5
    polled = account.conferences.exclude(last_polled_at=None).count()
    assert stats["requests"] == polled
    assert 7 <= polled <= 8


def test_an_account_whose_secret_cannot_be_decrypted_shows_why_and_rests(
    account, sim_client, settings, simulator
):
    make_conference(account, start_conference(sim_client))
    settings.CONFWATCH_ENCRYPTION_KEY = "a key that changed since the secret was saved"

    summary = poll_all()

    account = reload(account)
    assert summary.polled == 0
    assert account.problem == "credentials_rejected"
    assert "cannot be decrypted" in account.problem_message
    assert requests_seen(simulator) == 1  # only the create_conference call above


def test_a_server_error_shows_as_unreachable_and_keeps_the_last_status(
    account, sim_client, simulator
):
    conference_id = start_conference(sim_client)
    conference = make_conference(account, conference_id)
    poll_all()
    simulator.set_faults(error_rate=1.0)

    poll_all()

    conference = reload(conference)
    assert conference.poll_status == "unreachable"
    assert conference.state == "created"
    assert conference.consecutive_failures == 1
    assert conference.history.count() == 1


def test_a_hanging_api_is_cut_off_by_the_read_timeout(account, sim_client, simulator, settings):
    settings.CONFWATCH_HTTP_TIMEOUT = (1.0, 0.5)
    conference = make_conference(account, start_conference(sim_client))
    simulator.set_faults(hang_rate=1.0, hang_seconds=3)

    poll_all()

    assert reload(conference).poll_status == "unreachable"


def test_a_request_that_missed_its_slot_takes_a_fresh_one_instead_of_leaving_late(account):
    conference = make_conference(account, "conf-late")
    now = timezone.now()
    account.budget_next_at = now + timedelta(seconds=0.3)
    account.save()
    plan = polling.Plan(account=account, spacing=0.1)
    job = polling.Job(conference, send_at=now - timedelta(seconds=5))

    assert polling.wait_for_slot(plan, job) is True

    assert job.send_at >= account.budget_next_at
    assert reload(account).budget_next_at == job.send_at + timedelta(seconds=0.1)
