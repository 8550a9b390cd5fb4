"""Retention: history, status changes, events, poll errors and sent or failed alert
deliveries older than their configured age are deleted, oldest first, in small batches.

Each batch is one short DELETE of at most BATCH rows chosen through an index on the age
column, in its own transaction, so no lock is held long and polling goes on meanwhile;
a run deletes at most MAX_BATCHES batches per kind and the next run (beat, hourly)
carries on. What a page needs to say since when a conference is in its current state is
never deleted, however old: its current history run, its latest status change (the
pages' "active for ...") and its latest state_changed event. Only rows a later one of the
same conference superseded go.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from conferences.models import (
    Conference,
    Delivery,
    DeliveryStatus,
    Event,
    EventKind,
    HistoryEntry,
    PollError,
    StatusChange,
)

BATCH = 1000
MAX_BATCHES = 50


@dataclass
class Pruned:
    deleted: dict = field(default_factory=dict)
    unfinished: list = field(default_factory=list)

    def line(self):
        counts = ", ".join(f"{count} {name}" for name, count in self.deleted.items())
        more = (
            f"; more left for the next run: {', '.join(self.unfinished)}" if self.unfinished else ""
        )
        return f"pruned {counts}{more}"


def superseded(rows, time_column, **same):
    """Those of `rows` that a later row of the same conference (and `same` values)
    follows, later by time, then by pk: the latest of each conference is what its current
    state started with."""
    later = rows.model.objects.filter(conference_id=OuterRef("conference_id"), **same).filter(
        Q(**{f"{time_column}__gt": OuterRef(time_column)})
        | Q(**{time_column: OuterRef(time_column), "pk__gt": OuterRef("pk")})
    )
    return rows.filter(Exists(later))


def old_rows(now):
    """(name, rows that may go, their age column), oldest first."""
    days = settings.CONFWATCH_RETENTION_DAYS
    history_cutoff = now - timedelta(days=days["history"])
    current_runs = Conference.objects.filter(latest_history__isnull=False).values(
        "latest_history_id"
    )
    return [
        (
            "history entries",
            HistoryEntry.objects.filter(
                first_seen_at__lt=history_cutoff, last_seen_at__lt=history_cutoff
            ).exclude(pk__in=current_runs),
            "first_seen_at",
        ),
        (
            "status changes",
            superseded(StatusChange.objects.filter(changed_at__lt=history_cutoff), "changed_at"),
            "changed_at",
        ),
        ("events", old_events(now - timedelta(days=days["events"])), "occurred_at"),
        (
            "poll errors",
            PollError.objects.filter(
                first_seen_at__lt=now - timedelta(days=days["poll_errors"]),
                last_seen_at__lt=now - timedelta(days=days["poll_errors"]),
            ),
            "first_seen_at",
        ),
        (
            "deliveries",
            Delivery.objects.filter(
                created_at__lt=now - timedelta(days=days["deliveries"]),
                status__in=[DeliveryStatus.SENT, DeliveryStatus.FAILED],
            ),
            "created_at",
        ),
    ]


def old_events(cutoff):
    """Events before the cutoff, but for each conference's latest state change."""
    old = Event.objects.filter(occurred_at__lt=cutoff)
    state_changes = superseded(
        old.filter(kind=EventKind.STATE_CHANGED), "occurred_at", kind=EventKind.STATE_CHANGED
    )
    return old.exclude(kind=EventKind.STATE_CHANGED) | state_changes


def delete_batch(rows, age_column):
    """Delete up to BATCH of the oldest rows; how many went."""
    with transaction.atomic():
        pks = list(rows.order_by(age_column).values_list("pk", flat=True)[:BATCH])
        if not pks:
            return 0
        rows.model.objects.filter(pk__in=pks).delete()
        return len(pks)


def prune(*, now=None, max_batches=MAX_BATCHES):
    now = now or timezone.now()
    result = Pruned()
    for name, rows, age_column in old_rows(now):
        deleted = 0
        for _ in range(max_batches):
            count = delete_batch(rows, age_column)
            deleted += count
            if count < BATCH:
                break
        else:
            result.unfinished.append(name)
        result.deleted[name] = deleted
    return result
