"""Retention: history, events, poll errors and sent or failed alert
deliveries older than their configured age are deleted, oldest first, in small batches.

Each batch is one short DELETE statement of at most BATCH rows chosen through an index on
the age column (with the alert deliveries' links to them, in the same statement: no row
comes back to Python), in its own transaction, so no lock is held long and polling goes
on meanwhile;
a run deletes at most MAX_BATCHES batches per kind and the next run (beat, hourly)
carries on. A conference's current history run is never deleted, however old; since
when it is in its state lives on its row (state_since), which retention never touches.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from conferences.models import (
    Conference,
    Delivery,
    DeliveryStatus,
    Event,
    HistoryEntry,
    PollError,
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
            "events",
            Event.objects.filter(occurred_at__lt=now - timedelta(days=days["events"])),
            "occurred_at",
        ),
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


def delete_batch(rows, age_column):
    """Delete up to BATCH of the oldest rows, and the delivery links that point at them,
    in one statement; how many went. (Django's delete() would read each batch back into
    Python and delete it a hundred rows at a time.) Nothing else points at these rows:
    a conference's latest_history is never among them."""
    oldest, params = rows.order_by(age_column).values("pk")[:BATCH].query.sql_with_params()
    table = rows.model._meta.db_table
    links = Delivery.events.through._meta.db_table
    link_column = {Event: "event_id", Delivery: "delivery_id"}.get(rows.model)
    unlink = (
        f", unlinked AS (DELETE FROM {links} WHERE {link_column} IN (SELECT * FROM oldest))"
        if link_column
        else ""
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH oldest AS ({oldest}){unlink} "
            f"DELETE FROM {table} WHERE id IN (SELECT * FROM oldest)",
            params,
        )
        return cursor.rowcount


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
