import bisect
import gc
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from conferences.models import BUDGET_SHARE, REQUEST_BUDGET_MAX, HistoryEntry, PollError
from conferences.polling import budget, claims, dispatch, rounds
from tests.conftest import make_account, make_conference, process_env, reload, requests_seen

pytestmark = pytest.mark.django_db


def start_conference(sim_client):
    return sim_client.create_conference(from_number="+15555550100")


def poll_all():
    return rounds.poll_round(force=True)


def claim(account, *, horizon, force=False):
    return claims.claim_due_conferences(
        account_pk=account.pk,
        token=uuid.uuid4(),
        horizon=horizon,
        deadline=time.time() + 10,
        force=force,
    )


def test_a_steady_conference_adds_no_history_rows(account, sim_client):
    conference = make_conference(account, start_conference(sim_client))

    poll_all()
    first = HistoryEntry.objects.get(conference=conference)
    poll_all()
    poll_all()

    entry = HistoryEntry.objects.get(conference=conference)
    assert entry.pk == first.pk
    assert reload(conference).run_last_seen(entry.pk, entry.last_seen_at) > first.last_seen_at
    assert entry.first_seen_at == first.first_seen_at
    assert (entry.state, entry.active_members, entry.hold, entry.mute) == (
        "created",
        0,
        False,
        False,
    )


def test_a_round_fetches_and_writes_with_the_collector_paused_and_turns_it_back_on(
    account, sim_client, monkeypatch
):
    make_conference(account, start_conference(sim_client))
    collector_on = []
    fetch = dispatch.fetch_plans

    def noting(plans):
        collector_on.append(gc.isenabled())
        return fetch(plans)

    monkeypatch.setattr(dispatch, "fetch_plans", noting)
    summary = poll_all()

    assert summary.polled == 1
    assert collector_on == [False]
    assert gc.isenabled()


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
    conference = reload(conference)
    assert conference.state_since == history[-1].first_seen_at
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
    assert (
        reload(conference).state_since == conference.history.earliest("first_seen_at").first_seen_at
    )
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
    assert conference.state_since == before.state_since
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
    # The account's pause holds the conference back, not a schedule of its own: it is
    # due as soon as the account is unpaused.
    assert conference.next_poll_at <= timezone.now()
    assert rounds.poll_round().polled == 0


def test_a_good_poll_clears_the_account_problem(account, sim_client):
    conference = make_conference(account, start_conference(sim_client))
    account.problem = "rate_limited"
    account.problem_message = "Rate limited"
    account.save()

    poll_all()

    assert reload(account).problem == ""
    assert reload(conference).poll_status == "ok"


def test_active_conferences_come_first_and_created_ones_keep_their_share(simulator, db):
    # 2 requests/s (1.8 usable) over a round and a quarter (claims.ROUND_OVERLAP: 2.5 s):
    # 5 slots, a quarter of them (1) kept for created conferences.
    account = make_account(simulator, request_budget=2.0)
    created = [make_conference(account, f"conf-c{i}", state="created") for i in range(3)]
    active = [make_conference(account, f"conf-a{i}", state="active") for i in range(5)]

    plan = claim(account, horizon=2.0)

    claimed = [job.conference.pk for job in plan.jobs]
    assert claimed == [c.pk for c in active[:4]] + [created[0].pk]


def test_due_conferences_are_claimed_once_within_the_budget(simulator, db):
    account = make_account(simulator, request_budget=2.0)
    for index in range(10):
        make_conference(account, f"conf-{index}")

    first = claim(account, horizon=2.0)
    second = claim(account, horizon=2.0)

    # 2 requests/s at 90% of the budget, 0.556 s apart: 5 slots start within a round and
    # a quarter (claims.ROUND_OVERLAP: 2.5 s), none are left.
    assert len(first.jobs) == 5
    assert second is None
    assert first.spacing >= 0.5
    assert first.window_end - first.window_start == pytest.approx(5 * first.spacing)
    assert reload(account).budget_next_at.timestamp() >= first.window_end


@pytest.mark.django_db(transaction=True)
def test_concurrent_rounds_never_exceed_the_budget_nor_poll_a_conference_twice(simulator):
    simulator.set_rate_limit(5)
    account = make_account(simulator, request_budget=5.0)
    for index in range(12):
        make_conference(account, f"conf-{index}")

    def one_round():
        try:
            rounds.poll_round(horizon=1.5)
        finally:
            connection.close()

    threads = [threading.Thread(target=one_round) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    stats = simulator.stats()["users"]["u-demo"]
    assert stats["rate_limited"] == 0
    assert stats["max_accepted_per_second"] <= 5
    polled = account.conferences.exclude(last_polled_at=None).count()
    assert stats["requests"] == polled
    # 4.5 requests/s usable over a round and a quarter (1.875 s) from the first claim.
    assert 8 <= polled <= 9


def test_an_account_whose_secret_cannot_be_decrypted_shows_why_and_claims_nothing(
    account, sim_client, settings, simulator
):
    conference = make_conference(account, start_conference(sim_client))
    settings.CONFWATCH_ENCRYPTION_KEY = "a key that changed since the secret was saved"

    summary = poll_all()

    account = reload(account)
    assert summary.polled == 0
    assert account.problem == "account_error"
    assert "cannot be decrypted" in account.problem_message
    assert requests_seen(simulator) == 1  # only the create_conference call above
    conference = reload(conference)
    assert conference.claim_token is None
    assert conference.next_poll_at <= timezone.now()


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


def overlapping(intervals):
    """Pairs of (start, end) intervals, sorted by start, where one starts before the
    previous one ended."""
    intervals = sorted(intervals)
    return [(a, b) for a, b in zip(intervals, intervals[1:], strict=False) if b[0] < a[1]]


@pytest.mark.django_db(transaction=True)
def test_a_round_slower_than_its_claim_polls_no_conference_twice_and_stores_no_duplicate_runs(
    simulator, sim_client, settings
):
    # Answers take longer than the poll interval (the old claim) and rounds overlap.
    settings.CONFWATCH_POLL_INTERVAL = 1.0
    settings.CONFWATCH_ROUND_DEADLINE = 2.5
    settings.CONFWATCH_HTTP_TIMEOUT = (1.0, 3.0)
    account = make_account(simulator, request_budget=20.0)
    ids = [start_conference(sim_client) for _ in range(6)]
    conferences = [make_conference(account, conference_id) for conference_id in ids]
    simulator.reset_stats()
    simulator.set_faults(latency_ms=1500)
    stop = threading.Event()

    def keep_polling():
        try:
            while not stop.is_set():
                rounds.poll_round(horizon=0.5)
                stop.wait(0.2)
        finally:
            connection.close()

    workers = [threading.Thread(target=keep_polling) for _ in range(3)]
    for worker in workers:
        worker.start()
    time.sleep(2.5)
    sim_client.add_member(ids[0], call_id="c-join")  # a change while rounds overlap
    time.sleep(4.5)
    stop.set()
    for worker in workers:
        worker.join(timeout=30)

    requests = [r for r in simulator.requests() if r[0] == "GET"]
    for conference_id in ids:
        asked = [(r[2], r[3]) for r in requests if r[1].endswith("/" + conference_id)]
        assert len(asked) >= 2, conference_id
        assert overlapping(asked) == [], f"{conference_id} was polled twice at once"
    for conference in conferences:
        history = list(conference.history.order_by("first_seen_at"))
        spans = [(run.first_seen_at, run.last_seen_at) for run in history]
        assert overlapping(spans) == []
        values = [run.values() for run in history]
        assert all(a != b for a, b in zip(values, values[1:], strict=False)), values
    assert [run.values() for run in conferences[0].history.order_by("first_seen_at")] == [
        ("created", 0, False, False),
        ("active", 1, False, False),
    ]


def test_requests_unanswered_by_the_deadline_are_abandoned_and_recorded_as_such(
    account, sim_client, simulator, settings
):
    settings.CONFWATCH_ROUND_DEADLINE = 1.0
    settings.CONFWATCH_HTTP_TIMEOUT = (1.0, 5.0)
    conference = make_conference(account, start_conference(sim_client))
    poll_all()
    simulator.set_faults(latency_ms=3000)

    summary = poll_all()

    assert summary.abandoned == 1
    conference = reload(conference)
    assert conference.poll_status == "unreachable"
    assert "abandoned" in conference.poll_error
    assert conference.history.count() == 1  # never a change
    # Its request may still be in flight: the claim is kept until it lapses.
    assert conference.claim_token is not None
    assert conference.claimed_until > timezone.now() + timedelta(seconds=3)
    assert rounds.poll_round(force=True).polled == 0


def poll_threads():
    return {thread.ident for thread in threading.enumerate() if thread.name.startswith("poll")}


def test_rounds_reuse_their_request_threads_but_not_one_an_abandoned_request_holds(
    account, sim_client, simulator, settings
):
    settings.CONFWATCH_ROUND_DEADLINE = 1.0
    settings.CONFWATCH_HTTP_TIMEOUT = (1.0, 5.0)
    make_conference(account, start_conference(sim_client))
    poll_all()
    threads = poll_threads()
    poll_all()
    assert poll_threads() == threads

    simulator.set_faults(latency_ms=3000)
    assert poll_all().abandoned == 1
    simulator.set_faults(latency_ms=0)
    make_conference(account, start_conference(sim_client))
    assert poll_all().polled == 1

    assert poll_threads() - threads, "a new pool served the round after the abandoned one"


@pytest.mark.django_db(transaction=True)
def test_a_killed_workers_claims_come_back_after_they_lapse(simulator, sim_client, settings):
    settings.CONFWATCH_ROUND_DEADLINE = 1.0
    settings.CONFWATCH_HTTP_TIMEOUT = (0.5, 1.0)
    account = make_account(simulator, request_budget=20.0)
    ids = [start_conference(sim_client) for _ in range(3)]
    for conference_id in ids:
        make_conference(account, conference_id)
    simulator.set_faults(hang_rate=1.0, hang_seconds=30)
    env = process_env(
        CONFWATCH_ROUND_DEADLINE="1",
        CONFWATCH_HTTP_CONNECT_TIMEOUT="0.5",
        CONFWATCH_HTTP_READ_TIMEOUT="1",
    )
    code = (
        "import django; django.setup(); from conferences.polling import rounds; rounds.poll_round()"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 20
        while account.conferences.filter(claim_token__isnull=False).count() < 3:
            assert time.monotonic() < deadline, "the worker never claimed the conferences"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        worker.kill()
    simulator.reset_faults()

    # Claimed by a dead round: nobody polls them until the claim lapses ...
    assert rounds.poll_round(force=True).polled == 0
    lapse = max(c.claimed_until for c in account.conferences.all())
    time.sleep(max(0.0, (lapse - timezone.now()).total_seconds()) + 0.1)
    # ... then they come back.
    assert rounds.poll_round(force=True).polled == 3
    assert account.conferences.filter(state="created", claim_token__isnull=True).count() == 3


def test_new_credentials_make_the_accounts_conferences_due_at_once(simulator, db, sim_client):
    account = make_account(simulator, secret="wrong-secret")
    conferences = [make_conference(account, start_conference(sim_client)) for _ in range(4)]
    rounds.poll_round()
    assert reload(account).is_paused()

    make_account(simulator)  # the same account, with the right secret

    summary = rounds.poll_round()
    assert summary.polled == 4
    assert all(reload(c).poll_status == "ok" for c in conferences)


def test_clearing_a_rate_limit_pause_in_the_admin_polls_the_conferences_at_once(
    account, sim_client, simulator, admin_client
):
    conference = make_conference(account, start_conference(sim_client))
    simulator.set_faults(rate_limited_seconds=600)
    rounds.poll_round()
    account = reload(account)
    assert account.is_paused()
    simulator.reset_faults()

    response = admin_client.post(
        f"/admin/conferences/account/{account.pk}/change/",
        {
            "name": account.name,
            "user_id": account.user_id,
            "base_url": account.base_url,
            "request_budget": account.request_budget,
            "paused_until_0": "",
            "paused_until_1": "",
        },
    )
    assert response.status_code == 302

    assert rounds.poll_round().polled == 1
    assert reload(conference).poll_status == "ok"


def test_a_rate_limit_pause_running_out_makes_the_conferences_due_at_once(
    account, sim_client, simulator
):
    conference = make_conference(account, start_conference(sim_client))
    simulator.set_faults(rate_limited_seconds=1)
    rounds.poll_round()
    paused_until = reload(account).paused_until
    assert rounds.poll_round().polled == 0

    time.sleep(max(0.0, (paused_until - timezone.now()).total_seconds()) + 0.05)

    assert rounds.poll_round().polled == 1
    assert reload(conference).poll_status == "ok"


@pytest.mark.django_db(transaction=True)
def test_created_conferences_are_polled_within_the_bound_while_active_ones_get_most_requests(
    simulator, sim_client, settings
):
    # 20 active conferences due every second ask for twice the budget of 10 requests/s.
    settings.CONFWATCH_POLL_INTERVAL = 1.0
    account = make_account(simulator, request_budget=10.0)
    active = []
    for index in range(20):
        conference_id = start_conference(sim_client)
        sim_client.add_member(conference_id, call_id=f"c-{index}")
        active.append(make_conference(account, conference_id, state="active"))
    created = [make_conference(account, start_conference(sim_client)) for _ in range(10)]
    rounds.poll_round(force=True, conference_ids=[c.conference_id for c in active])
    simulator.set_rate_limit(10)
    simulator.reset_stats()

    # Rounds until every created conference was polled (the README's bound: created
    # conferences / (share x budget) = 10 / 2.5 = 4 s, plus a round), at most 20 s.
    started = time.monotonic()
    try:
        while time.monotonic() - started < 20 and not all(
            reload(c).last_polled_at is not None for c in created
        ):
            rounds.poll_round(horizon=0.5)
    finally:
        connection.close()

    assert all(reload(c).last_polled_at is not None for c in created)
    # Counted in requests, which a loaded machine does not stretch: each created one was
    # first read within 10 / 0.25 = 40 requests, the members lists' tenth of the budget
    # (40 / 0.9 = 45) and one round (at most 6 slots of 0.625 s).
    paths = [r[1] for r in simulator.requests()]
    firsts = [
        min(i for i, path in enumerate(paths) if path.endswith("/" + c.conference_id))
        for c in created
    ]
    assert max(firsts) < 51, firsts
    requests = [path.rsplit("/", 1)[1] for path in paths]
    active_ids = {c.conference_id for c in active}
    assert sum(cid in active_ids for cid in requests) >= 0.6 * len(requests)
    stats = simulator.stats()["users"]["u-demo"]
    assert stats["rate_limited"] == 0
    assert stats["max_accepted_per_second"] <= 10


def test_a_conference_due_within_the_rounds_stretch_is_claimed_so_it_is_not_a_round_late(
    simulator, db
):
    account = make_account(simulator, request_budget=5.0)
    soon = make_conference(account, "conf-soon", next_poll_at=timezone.now() + timedelta(seconds=1))
    later = make_conference(
        account, "conf-later", next_poll_at=timezone.now() + timedelta(seconds=5)
    )

    plan = claim(account, horizon=2.0)

    assert [job.conference.pk for job in plan.jobs] == [soon.pk]
    assert reload(later).claim_token is None


@pytest.mark.django_db(transaction=True)
def test_two_workers_split_a_round_without_polling_a_conference_twice(simulator, sim_client):
    simulator.set_rate_limit(10)
    account = make_account(simulator, request_budget=10.0)
    ids = [f"conf-split-{index}" for index in range(30)]
    for conference_id in ids:
        make_conference(account, conference_id)
    simulator.reset_stats()
    summaries = []

    def worker():
        try:
            summaries.append(rounds.poll_round(horizon=1.5))
        finally:
            connection.close()

    # Beat starts rounds a little apart; the second comes while the first still polls
    # and takes the next stretch of budget.
    workers = [threading.Thread(target=worker) for _ in range(2)]
    for thread in workers:
        thread.start()
        time.sleep(1.0)
    for thread in workers:
        thread.join(timeout=30)

    # Each round took the share its stretch of budget holds: both worked, none twice.
    assert sorted(summary.polled > 0 for summary in summaries) == [True, True]
    asked = [r[1].rsplit("/", 1)[1] for r in simulator.requests()]
    assert len(asked) == len(set(asked)) == sum(s.polled for s in summaries)
    stats = simulator.stats()["users"]["u-demo"]
    assert stats["rate_limited"] == 0
    assert stats["max_accepted_per_second"] <= 10


def test_concurrency_follows_the_budget_and_the_latency_seen(simulator, db, settings):
    settings.CONFWATCH_POLL_CONCURRENCY = 0
    slow = make_account(simulator, name="slow", request_budget=1.0)
    busy = make_account(simulator, name="busy", request_budget=400.0)
    dispatch.note_latency(busy.pk, 0.05)

    assert dispatch.concurrency_for(slow) == 2
    assert dispatch.concurrency_for(busy) == 64  # 2 x 400/s x 50 ms = 40, a power of two up
    settings.CONFWATCH_POLL_CONCURRENCY = 5
    assert dispatch.concurrency_for(busy) == 5


@pytest.mark.django_db(transaction=True)
def test_an_account_never_opens_more_connections_than_its_pool(simulator, sim_client, settings):
    settings.CONFWATCH_POLL_CONCURRENCY = 4
    simulator.set_rate_limit(0)
    simulator.set_faults(latency_ms=50)
    account = make_account(simulator, request_budget=1000.0)
    for index in range(40):
        make_conference(account, f"conf-pool-{index}")
    simulator.reset_stats()

    try:
        summary = rounds.poll_round(force=True)
    finally:
        connection.close()

    assert summary.polled == 40
    ports = {r[5] for r in simulator.requests()}
    assert 1 <= len(ports) <= 4


@pytest.mark.django_db(transaction=True)
def test_a_budget_higher_than_the_dispatcher_can_spend_still_polls_everything(
    simulator, sim_client, settings, monkeypatch
):
    settings.CONFWATCH_ROUND_DEADLINE = 20.0
    simulator.set_rate_limit(0)
    first = make_account(simulator, name="one", request_budget=REQUEST_BUDGET_MAX)
    second = make_account(simulator, name="two", request_budget=REQUEST_BUDGET_MAX)
    for index in range(150):
        make_conference(first, f"conf-a{index}")
        make_conference(second, f"conf-b{index}")
    windows = []
    reserve = budget.reserve_window
    monkeypatch.setattr(
        budget, "reserve_window", lambda plan, now: windows.append(now) or reserve(plan, now=now)
    )

    try:
        summary = rounds.poll_round(force=True)
    finally:
        connection.close()

    assert summary.polled == 300
    assert len(windows) < 50  # a window per ~100 ms of sending, not one per request


def test_a_reserved_share_of_a_few_slots_is_exact_over_every_run_of_rounds():
    key = ("background", "test-share")

    slots = [claims.share_of_slots(key, 0.25, 2) for _ in range(8)]

    # A quarter of two slots: one slot every other round, never two rounds without.
    assert slots == [0, 1, 0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize("request_budget", [1.0, 2.0, 5.0, 20.0, 200.0])
def test_requests_sent_late_catch_up_with_their_slots_without_bunching_past_the_budget(
    request_budget,
):
    spacing = 1.0 / (request_budget * BUDGET_SHARE)
    plan = claims.Plan(
        account=None, spacing=spacing, window_start=100.0, window_end=1e9, deadline=1e9
    )
    rng = random.Random(7)
    sent = []
    for index in range(2000):
        # A loaded machine: now and then a send leaves up to two spacings late.
        late = 2 * spacing * rng.random() if index % 50 == 0 else 0.0
        now = dispatch.next_send_time(plan) + late
        plan.next_index += 1
        plan.last_sent_at = now
        sent.append(now)

    # Each late send was made up for: the last one left in its own slot.
    assert sent[-1] == pytest.approx(100.0 + 1999 * spacing)
    # And no second held more requests than the budget, however they caught up.
    most_in_one_second = max(
        bisect.bisect_left(sent, at + 1.0) - index for index, at in enumerate(sent)
    )
    assert most_in_one_second <= request_budget
