"""What was observed: history runs, poll errors, events."""

from django.db import models

from conferences.models.accounts import Account
from conferences.models.conference import Conference
from conferences.models.vocabulary import EventKind, PollStatus


class HistoryEntry(models.Model):
    """One run of identical observed status, first and last seen."""

    # Indexed by history_by_conference_id_idx, not an index of its own.
    conference = models.ForeignKey(
        Conference, on_delete=models.CASCADE, related_name="history", db_index=False
    )
    state = models.CharField(max_length=30, null=True, blank=True)
    active_members = models.IntegerField(null=True, blank=True)
    hold = models.BooleanField(null=True, blank=True)
    mute = models.BooleanField(null=True, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "history entries"
        indexes = [
            # The detail page and history API: one conference's runs, newest first. The
            # chart sums a range up from the index alone (charts.BUCKETS_SQL, an index-only
            # scan): the included values never change once a run is written, so moving
            # last_seen_at on every poll stays a HOT update.
            models.Index(
                fields=["conference", "-first_seen_at"],
                name="history_by_conference_idx",
                include=["state", "active_members", "hold", "mute"],
            ),
            # The admin's history list filtered by state, and its capped count:
            # WHERE state = %s ORDER BY id DESC LIMIT n (a rare state such as "created"
            # otherwise walks the whole table).
            models.Index(fields=["state", "-id"], name="history_by_state_idx"),
            # The admin's history of one conference and its capped count: WHERE
            # conference_id = %s ORDER BY id DESC LIMIT n (a busy conference's count
            # otherwise walked the whole table's primary key: 70-90 ms at 20 M rows, make
            # bench-scale); and the foreign key's own index.
            models.Index(fields=["conference", "-id"], name="history_by_conference_id_idx"),
            # retention.prune: the oldest runs first, WHERE first_seen_at < %s LIMIT n
            # (first_seen_at never changes, so the round's updates stay HOT).
            models.Index(fields=["first_seen_at"], name="history_by_age_idx"),
        ]

    def __str__(self):
        return f"{self.state} from {self.first_seen_at:%Y-%m-%d %H:%M:%S}"

    def values(self):
        return (self.state, self.active_members, self.hold, self.mute)


class PollError(models.Model):
    """One run of identical polling errors for a conference, first and last seen."""

    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="errors")
    poll_status = models.CharField(max_length=30, choices=PollStatus.choices)
    message = models.TextField()
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    occurrences = models.IntegerField(default=1)

    class Meta:
        indexes = [
            # The detail page and the round writer: one conference's newest error run.
            models.Index(fields=["conference", "-first_seen_at"], name="error_by_conference_idx"),
            # retention.prune: the oldest error runs first.
            models.Index(fields=["first_seen_at"], name="error_by_age_idx"),
        ]

    def __str__(self):
        return f"{self.poll_status}: {self.message}"


class Event(models.Model):
    """Something that happened to a conference (or an account), as recorded by the
    observation path. Alerts and the timeline read events; `handled_at` is set once the
    alert fan-out has turned the event into deliveries."""

    kind = models.CharField(max_length=30, choices=EventKind.choices)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="events")
    # None for an account's event (its credentials rejected, say). Indexed by
    # event_by_conference_id_idx, not an index of its own.
    conference = models.ForeignKey(
        Conference,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
    )
    occurred_at = models.DateTimeField(help_text="When it was observed.")
    # For a change seen by polling: the previous observation, so the change happened
    # between the two.
    previous_observed_at = models.DateTimeField(null=True, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # Anything else worth telling: the poll status and message of a problem, the
    # active members at the time, how long the previous state lasted...
    detail = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=20, default="poll")
    handled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # alerts.fan_out: SELECT ... WHERE handled_at IS NULL ORDER BY id FOR UPDATE
            # SKIP LOCKED LIMIT n (the unhandled events, oldest first).
            models.Index(
                fields=["id"],
                name="event_unhandled_idx",
                condition=models.Q(handled_at__isnull=True),
            ),
            # The conference page's timeline and flapping counts: one conference's
            # events, newest first.
            models.Index(fields=["conference", "-occurred_at"], name="event_by_conference_idx"),
            # The admin's events of one conference and its capped count (ORDER BY id
            # DESC, as history_by_conference_id_idx); and the foreign key's own index.
            models.Index(fields=["conference", "-id"], name="event_by_conference_id_idx"),
            # retention.prune: the oldest events first.
            models.Index(fields=["occurred_at"], name="event_by_age_idx"),
            # The conference page's timeline: one conference's events of the kinds it
            # shows (polling recovered), newest first, without walking its other events.
            models.Index(
                fields=["conference", "kind", "-occurred_at"], name="event_by_conference_kind_idx"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.before} -> {self.after}"
