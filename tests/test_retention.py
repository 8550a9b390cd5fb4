"""Retention: old history, status changes, events, poll errors and deliveries are pruned
in small bounded batches; recent ones, pending alerts and current status stay."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conferences import tasks
from conferences.models import (
    Acknowledgement,
    Delivery,
    Event,
    HistoryEntry,
    PollError,
)
from conferences.registry import retention
from dashboard.celery import app
from tests.conftest import (
    make_account,
    make_conference,
    reload,
    start_celery,
    wait_for,
)

pytestmark = pytest.mark.django_db


def aged(model, days, **values):
    """A row made `days` ago (auto_now_add columns set after the insert)."""
    when = timezone.now() - timedelta(days=days)
    names = {field.name for field in model._meta.fields}
    times = ("created_at", "first_seen_at", "last_seen_at", "changed_at", "occurred_at")
    columns = {name: when for name in times if name in names}
    row = model.objects.create(**values, **columns)
    model.objects.filter(pk=row.pk).update(**columns)
    return row


@pytest.fixture
def conference(db):
    return make_conference(make_account(), "conf-old")


def history(conference, days):
    when = timezone.now() - timedelta(days=days)
    return HistoryEntry.objects.create(
        conference=conference, state="active", first_seen_at=when, last_seen_at=when
    )


def test_records_past_their_age_are_pruned_and_recent_ones_kept(settings, conference):
    settings.CONFWATCH_RETENTION_DAYS = {
        "history": 30,
        "events": 30,
        "poll_errors": 7,
        "deliveries": 14,
    }
    old_history, new_history = history(conference, 40), history(conference, 20)
    event_values = {"kind": "state_changed", "account": conference.account}
    old_event = aged(Event, 40, conference=conference, **event_values)
    new_event = aged(Event, 20, conference=conference, **event_values)
    error_values = {"conference": conference, "poll_status": "unreachable", "message": "x"}
    old_error, new_error = aged(PollError, 8, **error_values), aged(PollError, 6, **error_values)
    old_sent = aged(Delivery, 20, email="a@example.com", status="sent")
    old_pending = aged(Delivery, 20, email="a@example.com", status="pending")
    new_sent = aged(Delivery, 10, email="a@example.com", status="sent")
    # The links go with whichever end is pruned: the old event's from a delivery that
    # stays, the old delivery's to an event that stays.
    old_sent.events.add(old_event, new_event)
    new_sent.events.add(old_event, new_event)

    result = retention.prune()

    assert result.deleted == {
        "history entries": 1,
        "events": 1,
        "poll errors": 1,
        "deliveries": 1,
    }
    assert list(HistoryEntry.objects.all()) == [new_history]
    assert list(Event.objects.all()) == [new_event]
    assert list(PollError.objects.all()) == [new_error]
    assert set(Delivery.objects.all()) == {old_pending, new_sent}
    assert list(new_sent.events.all()) == [new_event]
    assert list(Delivery.events.through.objects.values_list("delivery", "event")) == [
        (new_sent.pk, new_event.pk)
    ]
    assert not HistoryEntry.objects.filter(pk=old_history.pk).exists()
    assert not PollError.objects.filter(pk=old_error.pk).exists()


@pytest.mark.django_db(transaction=True)  # keys are checked at commit
def test_an_acknowledged_alert_is_pruned_and_its_acknowledgement_stays(settings, conference):
    settings.CONFWATCH_RETENTION_DAYS["deliveries"] = 14
    delivery = aged(Delivery, 20, email="a@example.com", status="sent", conference=conference)
    acknowledgement = Acknowledgement.objects.create(
        conference=conference,
        delivery=delivery,
        by="a@example.com",
        what="the alert",
        created_at=timezone.now() - timedelta(days=20),
    )

    retention.prune()

    assert not Delivery.objects.filter(pk=delivery.pk).exists()
    assert reload(acknowledgement).delivery is None
    assert reload(acknowledgement).by == "a@example.com"


def test_a_conferences_current_history_run_is_never_pruned(settings, conference):
    settings.CONFWATCH_RETENTION_DAYS["history"] = 30
    current = history(conference, 400)
    conference.latest_history = current
    conference.save()

    retention.prune()

    assert reload(conference).latest_history == current


def test_a_conference_active_for_longer_than_retention_still_says_since_when(
    settings, signed_in, conference
):
    settings.CONFWATCH_RETENTION_DAYS["history"] = 30
    settings.CONFWATCH_RETENTION_DAYS["events"] = 30
    conference.state = "active"
    conference.state_since = timezone.now() - timedelta(days=40)
    conference.save()
    event_values = {"kind": "state_changed", "account": conference.account}
    first_event = aged(Event, 45, conference=conference, after="created", **event_values)
    start_event = aged(Event, 40, conference=conference, after="active", **event_values)
    old_problem = aged(
        Event, 40, conference=conference, account=conference.account, kind="polling_problem"
    )

    result = retention.prune()

    assert result.deleted["events"] == 3  # since when lives on the row, not in events
    assert not Event.objects.filter(
        pk__in=[first_event.pk, start_event.pk, old_problem.pk]
    ).exists()
    page = signed_in.get(f"/conferences/{conference.pk}/").content.decode()
    assert "for 40 d" in page
    overview = signed_in.get("/").content.decode()
    assert "40 d" in overview


def test_a_run_deletes_in_bounded_batches_and_says_what_is_left(monkeypatch, conference):
    monkeypatch.setattr(retention, "BATCH", 2)
    for _ in range(5):
        history(conference, 1000)

    first = retention.prune(max_batches=2)
    second = retention.prune(max_batches=2)

    assert first.deleted["history entries"] == 4 and first.unfinished == ["history entries"]
    assert "more left for the next run: history entries" in first.line()
    assert second.deleted["history entries"] == 1 and second.unfinished == []
    assert not HistoryEntry.objects.exists()


def test_beat_schedules_pruning_with_an_expiry(settings):
    app.finalize()
    entries = {entry["task"]: entry for entry in app.conf.beat_schedule.values()}

    entry = entries["conferences.tasks.prune_old_records"]

    assert entry["schedule"] == settings.CONFWATCH_RETENTION_SECONDS
    assert entry["options"]["expires"] == settings.CONFWATCH_RETENTION_SECONDS


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_prunes_old_records(celery_env, conference):
    history(conference, 1000)
    worker = start_celery(
        celery_env, "worker", "--pool=solo", "--without-mingle", "--without-gossip"
    )
    try:
        tasks.prune_old_records.delay()
        wait_for(lambda: not HistoryEntry.objects.exists(), what="the pruning task")
    finally:
        worker.terminate()
        worker.wait(timeout=20)
