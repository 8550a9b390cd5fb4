"""Tracked conferences, their history and status changes.

History is stored on change: one HistoryEntry per run of identical (state, active members,
hold, mute), with when the run was first and last seen. Polling errors live on the
conference row and in PollError runs; they never count as a change of state.
"""

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from conferences import secrets
from conferences.catapult import REAL_API_BASE_URL


class ConferenceState(models.TextChoices):
    CREATED = "created"
    ACTIVE = "active"
    COMPLETED = "completed"


class PollStatus(models.TextChoices):
    PENDING = "pending", "pending (never polled)"
    OK = "ok", "OK"
    NOT_FOUND = "not_found", "not found"
    CREDENTIALS_REJECTED = "credentials_rejected", "credentials rejected"
    RATE_LIMITED = "rate_limited", "rate limited"
    UNREACHABLE = "unreachable"
    API_ERROR = "api_error", "API error"
    MALFORMED = "malformed", "malformed response"


class Account(models.Model):
    """A Catapult user whose conferences confwatch polls, with its request budget."""

    name = models.CharField(max_length=100, unique=True)
    user_id = models.CharField(max_length=100, help_text="Catapult user id, e.g. u-abc123")
    api_token_encrypted = models.TextField(editable=False)
    api_secret_encrypted = models.TextField(editable=False)
    base_url = models.URLField(default=REAL_API_BASE_URL)
    request_budget = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.01)],
        help_text="Requests per second confwatch may spend on this account.",
    )
    # Poll bookkeeping: the earliest time the next request may be sent.
    budget_next_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set after a 429 (until the reset time) or rejected credentials.
    paused_until = models.DateTimeField(null=True, blank=True)
    problem = models.CharField(max_length=30, choices=PollStatus.choices, blank=True)
    problem_message = models.TextField(blank=True)
    problem_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name

    def set_credentials(self, *, token, secret):
        self.api_token_encrypted = secrets.encrypt(token)
        self.api_secret_encrypted = secrets.encrypt(secret)

    def credentials(self):
        return (
            secrets.decrypt(self.api_token_encrypted),
            secrets.decrypt(self.api_secret_encrypted),
        )

    def is_paused(self, now=None):
        return self.paused_until is not None and self.paused_until > (now or timezone.now())


class Conference(models.Model):
    """A Catapult conference id confwatch tracks, with its last observed status."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="conferences")
    conference_id = models.CharField(max_length=100)
    label = models.CharField(max_length=200, blank=True)
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    paused = models.BooleanField(default=False, help_text="Paused conferences are not polled.")

    # Last observed status. None means never observed or not sent by the API.
    state = models.CharField(max_length=30, null=True, blank=True)
    active_members = models.IntegerField(null=True, blank=True)
    hold = models.BooleanField(null=True, blank=True)
    mute = models.BooleanField(null=True, blank=True)
    from_number = models.CharField(max_length=50, null=True, blank=True)
    created_time = models.DateTimeField(null=True, blank=True)
    completed_time = models.DateTimeField(null=True, blank=True)
    last_changed_at = models.DateTimeField(null=True, blank=True)

    # Poll bookkeeping.
    poll_status = models.CharField(
        max_length=30, choices=PollStatus.choices, default=PollStatus.PENDING
    )
    poll_error = models.TextField(blank=True)
    consecutive_failures = models.IntegerField(default=0)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    # When the newest applied observation was made; an older one changes nothing.
    last_observed_at = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(default=timezone.now)
    # A polling round holds the conference while it polls it: only the round with this
    # token may write its result or release it; a dead round's claim lapses at
    # claimed_until (after its deadline and the request timeouts).
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    latest_history = models.ForeignKey(
        "HistoryEntry", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tracked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "conference_id"], name="conference_unique_per_account"
            )
        ]
        indexes = [
            # polling.claim_due_conferences: due, unpaused, not completed, per account.
            models.Index(
                fields=["account", "next_poll_at"],
                name="conference_due_idx",
                condition=models.Q(paused=False) & ~models.Q(state="completed"),
            ),
            # Lookups by Catapult id (API, commands, search).
            models.Index(fields=["conference_id"], name="conference_catapult_id_idx"),
        ]

    def __str__(self):
        return self.label or self.conference_id

    @property
    def is_completed(self):
        return self.state == ConferenceState.COMPLETED

    @property
    def is_polled(self):
        return not self.paused and not self.is_completed


class HistoryEntry(models.Model):
    """One run of identical observed status, first and last seen."""

    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="history")
    state = models.CharField(max_length=30, null=True, blank=True)
    active_members = models.IntegerField(null=True, blank=True)
    hold = models.BooleanField(null=True, blank=True)
    mute = models.BooleanField(null=True, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "history entries"
        indexes = [
            # The detail page and history API: one conference's runs, newest first.
            models.Index(fields=["conference", "-first_seen_at"], name="history_by_conference_idx")
        ]

    def __str__(self):
        return f"{self.state} from {self.first_seen_at:%Y-%m-%d %H:%M:%S}"

    def values(self):
        return (self.state, self.active_members, self.hold, self.mute)


class StatusChange(models.Model):
    """The conference's state changed (created, active, completed) between two polls."""

    conference = models.ForeignKey(
        Conference, on_delete=models.CASCADE, related_name="status_changes"
    )
    from_state = models.CharField(max_length=30, null=True, blank=True)
    to_state = models.CharField(max_length=30, null=True, blank=True)
    changed_at = models.DateTimeField()

    class Meta:
        indexes = [
            # Alerts and the detail page: one conference's changes, newest first.
            models.Index(fields=["conference", "-changed_at"], name="change_by_conference_idx")
        ]

    def __str__(self):
        return f"{self.from_state or 'unknown'} -> {self.to_state}"


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
            models.Index(fields=["conference", "-first_seen_at"], name="error_by_conference_idx")
        ]

    def __str__(self):
        return f"{self.poll_status}: {self.message}"
