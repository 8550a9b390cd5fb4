"""Catapult's callbacks: each account's settings and the events received."""

from django.db import models

from conferences.models.accounts import Account


class CallbackSettings(models.Model):
    """An account's callback receiver: the secret in its URL (hashed, to find the account,
    and encrypted, to show the URL again), optional Basic credentials, and whether a
    `conference` event about an unknown id starts tracking it."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, primary_key=True, related_name="callback_settings"
    )
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    secret_encrypted = models.TextField(editable=False)
    username = models.CharField(max_length=100, blank=True)
    password_encrypted = models.TextField(blank=True, editable=False)
    register_unknown = models.BooleanField(
        default=True, help_text="A conference event about an untracked id starts tracking it."
    )
    last_event_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Conferences registered by events in the current hour (the window began at
    # autotrack_window_start), at most CONFWATCH_CALLBACK_AUTOTRACK_PER_HOUR; events about
    # untracked ids past it are kept, not registered, and counted here and in all.
    autotrack_window_start = models.DateTimeField(null=True, blank=True, editable=False)
    autotrack_registered = models.IntegerField(default=0, editable=False)
    autotrack_refused = models.IntegerField(default=0, editable=False)
    autotrack_refused_total = models.BigIntegerField(default=0, editable=False)

    class Meta:
        verbose_name_plural = "callback settings"

    def __str__(self):
        return f"callbacks of {self.account}"


class CallbackEvent(models.Model):
    """One event Catapult sent to an account's callback URL, as received (deduplicated:
    the same event again, or via the fallbackUrl, is one row)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="callback_events")
    dedupe_key = models.CharField(max_length=64)
    event_type = models.CharField(max_length=50)
    conference_id = models.CharField(max_length=100, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    result = models.TextField(blank=True)
    # About a conference that was not tracked (registering was off or over its cap): kept,
    # and applied once the conference is tracked (tracking.track_conferences).
    awaiting_tracking = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "dedupe_key"], name="callback_event_unique_per_account"
            )
        ]
        indexes = [
            # The admin and the account page: an account's latest events.
            models.Index(fields=["account", "-received_at"], name="callback_by_account_idx"),
            # callback_processing.process_waiting: an account's events waiting, oldest first.
            models.Index(
                fields=["account", "received_at", "id"],
                condition=models.Q(processed_at__isnull=True),
                name="callback_waiting_idx",
            ),
            # tracking.track_conferences: the kept events of the conferences just tracked.
            models.Index(
                fields=["account", "conference_id"],
                condition=models.Q(awaiting_tracking=True),
                name="callback_untracked_idx",
            ),
        ]

    def __str__(self):
        return f"{self.event_type} {self.conference_id}"
