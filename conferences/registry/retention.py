"""Retention: history, events, poll errors and sent or failed alert
deliveries older than their configured age are deleted, oldest first, in small batches.

Each batch is one short DELETE statement of at most BATCH rows chosen through an index on
the age column (what points at them unlinked first, one statement each), in its own
transaction, so no lock is held long and polling goes
on meanwhile;
a run deletes at most MAX_BATCHES batches per kind and the next run (beat, hourly)
carries on. A conference's current history run is never deleted, however old; since
when it is in its state lives on its row (state_since), which retention never touches.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, models, transaction
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
    """Delete up to BATCH of the oldest rows, in one transaction: their ids are read, the
    rows pointing at them unlinked (`dependents`: what Django's delete() would do), then
    the rows deleted, each one statement; how many went. (Django's delete() would read
    each batch back as objects and delete it a hundred rows at a time.)"""
    model = rows.model
    with transaction.atomic():
        pks = list(rows.order_by(age_column).values_list("pk", flat=True)[:BATCH])
        if not pks:
            return 0
        with connection.cursor() as cursor:
            for statement in dependents(model):
                cursor.execute(statement, [pks])
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE id = ANY(%s)", [pks])
            return cursor.rowcount


def dependents(model):
    """The statements that unlink the rows pointing at some rows of `model` (their ids the
    one parameter), read from the models' keys, hidden ones (related_name "+") too: links
    in a many-to-many table are deleted, SET_NULL keys set to NULL (a conference's latest
    history run, an acknowledgement's delivery). Any other kind of key is refused, so
    that a new one cannot be skipped silently."""
    statements = []
    for relation in model._meta.get_fields(include_hidden=True):
        if not relation.auto_created or relation.concrete or relation.many_to_many:
            continue  # not a key pointing here (a many-to-many's is its table's)
        table = relation.related_model._meta.db_table
        column = relation.field.column
        if relation.on_delete is models.CASCADE and relation.related_model._meta.auto_created:
            statements.append(f"DELETE FROM {table} WHERE {column} = ANY(%s)")
        elif relation.on_delete is models.SET_NULL:
            statements.append(f"UPDATE {table} SET {column} = NULL WHERE {column} = ANY(%s)")
        else:
            raise ValueError(
                f"retention cannot delete {model.__name__} rows: "
                f"{relation.related_model.__name__}.{relation.field.name} points at them "
                f"with {relation.on_delete.__name__}"
            )
    return statements


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
