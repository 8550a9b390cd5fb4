"""The one recording path: what an observation may change, and what it returns."""

import dataclasses
import gc
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from conferences.catapult import answers
from conferences.models import Conference, Event, HistoryEntry, PollError
from conferences.recording import history, observations, problems
from conferences.recording.observations import Observation
from tests.conftest import make_account, make_conference, reload

pytestmark = pytest.mark.django_db


@pytest.fixture
def conference(db):
    return make_conference(make_account(), "conf-obs")


def status(conference, at, **seen):
    values = {"state": "active", "active_members": 2, "hold": False, "mute": False}
    values.update(seen)
    values = {name: value for name, value in values.items() if value is not ...}
    return Observation(conference.pk, at, seen=values)


def runs(conference):
    """The conference's history runs, each ending when it was last seen (for the open run,
    the conference row knows that better than the stored run)."""
    conference = reload(conference)
    return [
        (
            run.state,
            run.active_members,
            run.hold,
            run.mute,
            run.first_seen_at,
            conference.run_last_seen(run.pk, run.last_seen_at),
        )
        for run in HistoryEntry.objects.filter(conference=conference).order_by("first_seen_at")
    ]


def stored_ends(conference):
    return list(
        HistoryEntry.objects.filter(conference=conference)
        .order_by("first_seen_at")
        .values_list("last_seen_at", flat=True)
    )


def test_a_quiet_run_is_written_again_only_after_run_refresh_seconds(conference):
    at = timezone.now()
    observations.record([status(conference, at)])
    soon = at + timedelta(seconds=history.RUN_REFRESH / 2)
    later = at + timedelta(seconds=history.RUN_REFRESH + 1)

    observations.record([status(conference, soon)])
    assert stored_ends(conference) == [at]
    assert runs(conference)[0][-1] == soon

    observations.record([status(conference, later)])
    assert stored_ends(conference) == [later]


def test_an_ending_run_stores_the_last_observation_that_saw_it(conference):
    at = timezone.now()
    observations.record([status(conference, at)])
    observations.record([status(conference, at + timedelta(seconds=5))])
    observations.record([status(conference, at + timedelta(seconds=10), active_members=3)])

    assert stored_ends(conference) == [at + timedelta(seconds=5), at + timedelta(seconds=10)]


def test_a_partial_observation_does_not_stretch_the_run_it_did_not_fully_see(conference):
    at = timezone.now()
    observations.record([status(conference, at)])
    observations.record([status(conference, at + timedelta(seconds=5), hold=..., mute=...)])
    observations.record([status(conference, at + timedelta(seconds=9), active_members=4)])

    assert stored_ends(conference) == [at, at + timedelta(seconds=9)]


def test_the_first_observation_starts_a_run_and_says_it_is_the_first(conference):
    at = timezone.now()

    [outcome] = observations.record([status(conference, at)])

    assert outcome.applied and outcome.first and outcome.new_run
    assert outcome.changes["state"] == (None, "active")
    assert runs(conference) == [("active", 2, False, False, at, at)]
    conference = reload(conference)
    assert (conference.state, conference.active_members, conference.poll_status) == (
        "active",
        2,
        "ok",
    )
    assert conference.last_observed_at == at
    assert conference.state_since == at


def test_the_same_status_again_extends_the_run_and_changes_nothing(conference):
    at = timezone.now()
    observations.record([status(conference, at)])

    [outcome] = observations.record([status(conference, at + timedelta(seconds=5))])

    assert outcome.applied and not outcome.changed and not outcome.new_run
    assert runs(conference) == [("active", 2, False, False, at, at + timedelta(seconds=5))]


def test_a_change_returns_before_and_after_and_starts_a_new_run(conference):
    at = timezone.now()
    observations.record([status(conference, at)])

    [outcome] = observations.record(
        [status(conference, at + timedelta(seconds=5), active_members=3, hold=True)]
    )

    assert outcome.changes == {"active_members": (2, 3), "hold": (False, True)}
    assert len(runs(conference)) == 2
    assert reload(conference).state_since == at  # members and hold are not a state change


def test_an_older_observation_written_after_a_newer_one_changes_nothing(conference):
    now = timezone.now()
    observations.record([status(conference, now, active_members=5)])
    before = runs(conference)

    [outcome] = observations.record(
        [status(conference, now - timedelta(seconds=3), active_members=1)]
    )

    assert not outcome.applied
    assert "older" in outcome.ignored_because
    assert runs(conference) == before
    assert reload(conference).active_members == 5


def test_an_older_error_written_after_a_newer_status_changes_nothing(conference):
    now = timezone.now()
    observations.record([status(conference, now)])

    error = answers.TransientError("timed out")
    [outcome] = observations.record(
        [Observation.of_failure(conference.pk, error, observed_at=now - timedelta(seconds=1))]
    )

    assert not outcome.applied
    assert reload(conference).poll_status == "ok"
    assert PollError.objects.count() == 0


def test_observations_of_one_batch_are_applied_oldest_first(conference):
    now = timezone.now()

    outcomes = observations.record(
        [
            status(conference, now + timedelta(seconds=2), active_members=4),
            status(conference, now, active_members=3),
        ]
    )

    assert [outcome.applied for outcome in outcomes] == [True, True]
    assert [run[1] for run in runs(conference)] == [3, 4]
    assert reload(conference).active_members == 4


def test_one_batch_can_extend_end_and_start_runs_of_one_conference(conference):
    at = timezone.now()
    observations.record([status(conference, at)])

    def later(seconds, **seen):
        return status(conference, at + timedelta(seconds=seconds), **seen)

    observations.record(
        [
            later(70),  # a minute on: the stored run's end is written
            later(80, hold=True),  # that run ends, a new one starts
            later(85, hold=True),  # the new run goes on
            later(90, hold=True, mute=True),  # and ends; another starts
        ]
    )

    seconds = [(end - at).total_seconds() for end in stored_ends(conference)]
    assert seconds == [70, 85, 90]
    newest = HistoryEntry.objects.order_by("-first_seen_at").first()
    assert (newest.hold, newest.mute) == (True, True)
    assert reload(conference).latest_history_id == newest.pk


def test_a_round_that_lost_its_claim_writes_nothing(conference):
    conference.claim_token = uuid.uuid4()
    conference.save()
    stale_round = uuid.uuid4()

    [outcome] = observations.record(
        [
            Observation(
                conference.pk, timezone.now(), seen={"state": "active"}, claim_token=stale_round
            )
        ]
    )

    assert not outcome.applied
    assert "claim" in outcome.ignored_because
    assert runs(conference) == []


def test_a_partial_observation_keeps_unseen_values_and_does_not_extend_the_run(conference):
    at = timezone.now()
    observations.record([status(conference, at)])

    # Same state and members, hold not seen: the run is not extended on a guess.
    [same] = observations.record([status(conference, at + timedelta(seconds=5), hold=...)])
    # Members changed, hold still not seen: a new run carries the last known hold.
    [changed] = observations.record(
        [status(conference, at + timedelta(seconds=9), active_members=3, hold=...)]
    )

    assert same.applied and not same.changed
    assert changed.changes == {"active_members": (2, 3)}
    assert runs(conference) == [
        ("active", 2, False, False, at, at),
        ("active", 3, False, False, at + timedelta(seconds=9), at + timedelta(seconds=9)),
    ]


def test_a_value_the_api_never_sends_does_not_stop_runs_from_being_extended(conference):
    at = timezone.now()
    observations.record([status(conference, at, hold=..., mute=...)])

    observations.record([status(conference, at + timedelta(seconds=5), hold=..., mute=...)])

    assert runs(conference) == [("active", 2, None, None, at, at + timedelta(seconds=5))]


def test_an_unreadable_field_is_unknown_and_named_in_the_poll_message(conference):
    result = answers.parse_conference(
        {"id": "conf-obs", "state": "active", "activeMembers": 2, "hold": "yes", "mute": False}
    )

    observations.record(
        [Observation.of_conference(conference.pk, result, observed_at=timezone.now())]
    )

    conference = reload(conference)
    assert (conference.state, conference.active_members, conference.hold) == ("active", 2, None)
    assert conference.poll_status == "ok"
    assert "hold" in conference.poll_error


def test_a_poll_error_never_changes_the_stored_status(conference):
    at = timezone.now()
    observations.record([status(conference, at)])
    error = answers.MalformedResponse("body is not JSON")

    [outcome] = observations.record(
        [Observation.of_failure(conference.pk, error, observed_at=at + timedelta(seconds=1))]
    )

    assert outcome.applied and not outcome.changed
    assert (outcome.poll_status_before, outcome.poll_status_after) == ("ok", "malformed")
    conference = reload(conference)
    assert conference.state == "active"
    assert conference.last_observed_at == at
    assert runs(conference) == [("active", 2, False, False, at, at)]


def test_no_collector_pass_runs_while_the_rows_are_locked(conference, monkeypatch):
    locked_with_collector = []
    lock = observations.lock_conferences

    def noting(pks):
        locked_with_collector.append(gc.isenabled())
        return lock(pks)

    monkeypatch.setattr(observations, "lock_conferences", noting)
    observations.record([status(conference, timezone.now())])
    assert locked_with_collector == [False]
    assert gc.isenabled()

    gc.disable()
    try:
        observations.record([status(conference, timezone.now())])
        assert not gc.isenabled(), "a pause inside a pause turned the collector back on"
    finally:
        gc.enable()


def kinds(conference):
    return [
        (event.kind, event.before, event.after)
        for event in Event.objects.filter(conference=conference).order_by("occurred_at", "pk")
    ]


def test_it_stores_an_event_for_each_thing_that_changed(conference):
    at = timezone.now()
    observations.record([status(conference, at, state="created", active_members=0)])
    [outcome] = observations.record(
        [status(conference, at + timedelta(seconds=5), state="active", active_members=2)]
    )

    assert kinds(conference) == [
        ("first_observed", None, "created"),
        ("state_changed", "created", "active"),
        ("members_changed", 0, 2),
    ]
    state_event = Event.objects.get(kind="state_changed")
    assert state_event.previous_observed_at == at
    assert state_event.detail["previous_state_since"] == at.isoformat()
    assert state_event.detail["active_members"] == 2
    assert [e.kind for e in outcome.events] == ["state_changed", "members_changed"]


def test_each_state_change_of_a_batch_says_since_when_the_previous_state_held(db):
    account = make_account()
    first, second = (make_conference(account, f"conf-{n}") for n in (1, 2))
    at = timezone.now()
    observations.record([status(first, at, state="created"), status(second, at, state="active")])

    observations.record(
        [
            status(first, at + timedelta(seconds=5), state="active"),
            status(second, at + timedelta(seconds=6), state="completed"),
            status(first, at + timedelta(seconds=9), state="completed"),
        ]
    )

    since = {
        (event.conference_id, event.after): event.detail["previous_state_since"]
        for event in Event.objects.filter(kind="state_changed")
    }
    assert since == {
        (first.pk, "active"): at.isoformat(),
        (second.pk, "completed"): at.isoformat(),
        # The first conference's earlier change in the same batch.
        (first.pk, "completed"): (at + timedelta(seconds=5)).isoformat(),
    }


def test_a_poll_error_stores_no_event_until_the_problem_lasts(conference, settings):
    settings.CONFWATCH_PROBLEM_AFTER_SECONDS = 60
    at = timezone.now() - timedelta(minutes=5)
    observations.record([status(conference, at)])
    error = answers.TransientError("timed out")
    for seconds in (10, 20, 90):
        observations.record(
            [
                Observation.of_failure(
                    conference.pk, error, observed_at=at + timedelta(seconds=seconds)
                )
            ]
        )
    assert [k for k, _, _ in kinds(conference)] == ["first_observed"]

    reported = problems.report_lasting_problems(now=at + timedelta(seconds=100))
    again = problems.report_lasting_problems(now=at + timedelta(seconds=110))
    observations.record([status(conference, at + timedelta(seconds=120))])

    assert [e.kind for e in reported] == ["polling_problem"] and again == []
    assert [k for k, _, _ in kinds(conference)] == [
        "first_observed",
        "polling_problem",
        "polling_recovered",
    ]
    assert reload(conference).problem_since is None


def test_a_short_problem_stores_no_event_at_all(conference, settings):
    settings.CONFWATCH_PROBLEM_AFTER_SECONDS = 120
    at = timezone.now()
    observations.record([status(conference, at)])
    error = answers.TransientError("timed out")
    observations.record(
        [Observation.of_failure(conference.pk, error, observed_at=at + timedelta(seconds=1))]
    )

    problems.report_lasting_problems(now=at + timedelta(seconds=30))
    observations.record([status(conference, at + timedelta(seconds=40))])

    assert [k for k, _, _ in kinds(conference)] == ["first_observed"]


def test_the_tag_and_callback_url_the_api_sends_are_kept_on_the_conference(conference):
    result = answers.parse_conference(
        {
            "id": "conf-obs",
            "state": "active",
            "activeMembers": 2,
            "tag": "customer-42",
            "callbackUrl": "https://example.com/catapult/events",
        }
    )
    observations.record(
        [Observation.of_conference(conference.pk, result, observed_at=timezone.now())]
    )
    left_out = answers.parse_conference({"id": "conf-obs", "state": "active", "activeMembers": 3})
    observations.record(
        [Observation.of_conference(conference.pk, left_out, observed_at=timezone.now())]
    )

    conference = reload(conference)
    assert conference.catapult_tag == "customer-42"
    assert conference.callback_url == "https://example.com/catapult/events"
    assert conference.active_members == 3


def record_while_another_writer_holds_the_row(conference, first, second):
    """Record `first` in a transaction that keeps the conference row locked until
    `second`'s recording (in another thread and connection) waits for it, then commit."""
    from django.db import connection, transaction

    waiting = threading.Event()
    done = []

    def second_writer():
        try:
            observations.record([second])
            done.append(True)
        finally:
            connection.close()

    with transaction.atomic():
        observations.record([first])
        writer = threading.Thread(target=second_writer)
        writer.start()
        with connection.cursor() as cursor:
            for _ in range(500):  # until the other connection waits for our row lock
                cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                if cursor.fetchone()[0]:
                    waiting.set()
                    break
                time.sleep(0.01)
    assert waiting.is_set(), "the second writer never waited for the row"
    writer.join(timeout=10)
    assert done == [True]


@pytest.mark.django_db(transaction=True)
def test_two_writers_of_a_first_observation_make_one_first_observed_event_and_one_run():
    conference = make_conference(make_account(), "conf-race-first")
    at = timezone.now()

    record_while_another_writer_holds_the_row(
        conference, status(conference, at), status(conference, at + timedelta(seconds=1))
    )

    # The second writer read the row after the first one's commit, its latest run too:
    # not a second first observation of a conference that already had one.
    assert kinds(conference) == [("first_observed", None, "active")]
    assert len(runs(conference)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_writer_that_waited_for_the_row_compares_with_the_run_written_meanwhile():
    conference = make_conference(make_account(), "conf-race-change")
    at = timezone.now()
    observations.record([status(conference, at, active_members=2)])

    record_while_another_writer_holds_the_row(
        conference,
        status(conference, at + timedelta(seconds=1), active_members=3),
        status(conference, at + timedelta(seconds=2), active_members=3),
    )

    # One change 2 -> 3, not a second one compared with the run before it.
    assert kinds(conference) == [
        ("first_observed", None, "active"),
        ("members_changed", 2, 3),
    ]
    assert [run[1] for run in runs(conference)] == [2, 3]


def claimed(conference):
    """Claim the conference for a round, as claims.py does; return the round's token."""
    token = uuid.uuid4()
    until = timezone.now() + timedelta(seconds=30)
    Conference.objects.filter(pk=conference.pk).update(claim_token=token, claimed_until=until)
    return token


def test_a_poll_read_a_callback_overtook_counts_as_a_poll_without_undoing_the_callback(
    conference,
):
    at = timezone.now()
    observations.record([status(conference, at, state="created", active_members=0)])
    callback = Observation(conference.pk, at + timedelta(seconds=2), seen={"active_members": 2})
    observations.record([dataclasses.replace(callback, source="callback")])
    token = claimed(conference)

    # Sent before the callback's member joined, recorded after it.
    [outcome] = observations.record(
        [
            Observation(
                conference.pk,
                at + timedelta(seconds=1),
                seen={"state": "active", "active_members": 1, "hold": True, "mute": False},
                claim_token=token,
            )
        ]
    )

    assert outcome.applied
    conference = reload(conference)
    # What only a poll tells is taken, as of the callback's time; the callback's newer
    # member count stays; the poll is a poll (fresh, its claim released).
    assert (conference.state, conference.active_members, conference.hold) == ("active", 2, True)
    assert conference.last_polled_at == at + timedelta(seconds=2)
    assert conference.claim_token is None
    assert kinds(conference)[-2:] == [
        ("state_changed", "created", "active"),
        ("hold_changed", False, True),
    ]


def test_a_poll_read_a_callback_overtook_never_takes_a_completed_conference_back(conference):
    at = timezone.now()
    observations.record([status(conference, at)])
    completed = Observation(
        conference.pk, at + timedelta(seconds=2), seen={"state": "completed"}, source="callback"
    )
    observations.record([completed])
    token = claimed(conference)

    read = status(conference, at + timedelta(seconds=1))
    [outcome] = observations.record([dataclasses.replace(read, claim_token=token)])

    conference = reload(conference)
    assert conference.state == "completed"
    assert conference.claim_token is None
    assert [kind for kind, _, _ in kinds(conference)] == ["first_observed", "state_changed"]


def test_a_read_older_than_the_last_poll_is_ignored_and_gives_back_its_claim(conference):
    at = timezone.now()
    observations.record([status(conference, at, active_members=5)])
    token = claimed(conference)

    read = status(conference, at - timedelta(seconds=1), active_members=1)
    [outcome] = observations.record([dataclasses.replace(read, claim_token=token)])

    assert not outcome.applied
    conference = reload(conference)
    assert conference.active_members == 5
    assert conference.claim_token is None
