"""Tracked conferences, their history and status changes.

History is stored on change: one HistoryEntry per run of identical (state, active members,
hold, mute), with when the run was first and last seen. Polling errors live on the
conference row and in PollError runs; they never count as a change of state.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from conferences import secrets
from conferences.catapult import REAL_API_BASE_URL


def validate_api_host(url):
    """An account's base URL must name a host of CONFWATCH_ALLOWED_API_HOSTS: its
    credentials are sent there, so it must never point at an arbitrary (internal) host."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        host = ""
    if host not in settings.CONFWATCH_ALLOWED_API_HOSTS:
        allowed = ", ".join(settings.CONFWATCH_ALLOWED_API_HOSTS)
        raise ValidationError(
            f"{host or url!r} is not an allowed API host (CONFWATCH_ALLOWED_API_HOSTS: {allowed})."
        )


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
    UNREACHABLE = "unreachable", "unreachable"
    API_ERROR = "api_error", "API error"
    MALFORMED = "malformed", "malformed response"


class Account(models.Model):
    """A Catapult user whose conferences confwatch polls, with its request budget."""

    name = models.CharField(max_length=100, unique=True)
    user_id = models.CharField(max_length=100, help_text="Catapult user id, e.g. u-abc123")
    api_token_encrypted = models.TextField(editable=False)
    api_secret_encrypted = models.TextField(editable=False)
    base_url = models.URLField(default=REAL_API_BASE_URL, validators=[validate_api_host])
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
    # When the current problem was reported as a polling_problem event.
    problem_reported_at = models.DateTimeField(null=True, blank=True)
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
    # Since when polling has been failing (None while it works), and when that episode
    # was reported as a polling_problem event (it is, once it lasted long enough).
    problem_since = models.DateTimeField(null=True, blank=True)
    problem_reported_at = models.DateTimeField(null=True, blank=True)
    # Since when the conference flaps (too many changes in a short time): alerts then
    # say so once, and once more when it settles, instead of one email per change.
    flapping_since = models.DateTimeField(null=True, blank=True)
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
            models.Index(fields=["conference", "-first_seen_at"], name="history_by_conference_idx"),
            # The admin's history list filtered by state, and its capped count:
            # WHERE state = %s ORDER BY id DESC LIMIT n (a rare state such as "created"
            # otherwise walks the whole table).
            models.Index(fields=["state", "-id"], name="history_by_state_idx"),
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


class EventKind(models.TextChoices):
    FIRST_OBSERVED = "first_observed", "first observed"
    STATE_CHANGED = "state_changed", "state changed"
    HOLD_CHANGED = "hold_changed", "hold changed"
    MUTE_CHANGED = "mute_changed", "mute changed"
    MEMBERS_CHANGED = "members_changed", "active members changed"
    POLLING_PROBLEM = "polling_problem", "polling problem"
    POLLING_RECOVERED = "polling_recovered", "polling recovered"


class Event(models.Model):
    """Something that happened to a conference (or an account), as recorded by the
    observation path. Alerts and the timeline read events; `handled_at` is set once the
    alert fan-out has turned the event into deliveries."""

    kind = models.CharField(max_length=30, choices=EventKind.choices)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="events")
    # None for an account's event (its credentials rejected, say).
    conference = models.ForeignKey(
        Conference, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
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
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.before} -> {self.after}"


class Subscription(models.Model):
    """Who wants which alerts about which conferences."""

    class Scope(models.TextChoices):
        ALL = "all", "every conference"
        ACCOUNT = "account", "an account"
        TAG = "tag", "a tag"
        CONFERENCES = "conferences", "chosen conferences"

    # The kinds a subscription can ask for, as the `subscribe` command spells them.
    KINDS = {
        "state": [EventKind.STATE_CHANGED],
        "hold": [EventKind.HOLD_CHANGED],
        "mute": [EventKind.MUTE_CHANGED],
        "members": [EventKind.MEMBERS_CHANGED],
        "polling": [EventKind.POLLING_PROBLEM, EventKind.POLLING_RECOVERED],
        "first": [EventKind.FIRST_OBSERVED],
    }

    email = models.EmailField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="subscriptions",
    )
    scope = models.CharField(max_length=20, choices=Scope.choices, default=Scope.ALL)
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.CASCADE)
    tag = models.CharField(max_length=50, blank=True)
    conferences = models.ManyToManyField(Conference, blank=True, related_name="subscriptions")
    kinds = ArrayField(models.CharField(max_length=20), default=list)
    # Members changes alert only when the count drops to `members_at_most` or below, or
    # rises above `members_above` (when either is set); otherwise on every change.
    members_at_most = models.IntegerField(null=True, blank=True)
    members_above = models.IntegerField(null=True, blank=True)
    time_zone = models.CharField(max_length=60, blank=True, help_text="Blank: the site's.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # Fan-out and the Alerts page: subscriptions by recipient.
            models.Index(fields=["email"], name="subscription_email_idx"),
        ]

    def __str__(self):
        return f"{self.email}: {', '.join(self.kinds)} ({self.describe_scope()})"

    def describe_scope(self):
        if self.scope == self.Scope.ACCOUNT:
            return f"account {self.account}"
        if self.scope == self.Scope.TAG:
            return f"tag {self.tag}"
        if self.scope == self.Scope.CONFERENCES:
            return "chosen conferences"
        return "every conference"

    def event_kinds(self):
        return {kind for name in self.kinds for kind in self.KINDS.get(name, [])}


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Delivery(models.Model):
    """One email to one recipient, about one or more events (the outbox)."""

    class Kind(models.TextChoices):
        CHANGE = "change"
        FLAPPING = "flapping"
        SETTLED = "settled"
        DIGEST = "digest"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CHANGE)
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    email = models.EmailField()
    conference = models.ForeignKey(
        Conference, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    events = models.ManyToManyField(Event, related_name="deliveries")
    status = models.CharField(
        max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    send_after = models.DateTimeField(default=timezone.now)
    # A sender holds the delivery while it sends it; a dead sender's claim lapses.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)
    subject = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            # alerts.send_pending: pending deliveries due now, oldest first, claimed with
            # FOR UPDATE SKIP LOCKED.
            models.Index(
                fields=["send_after"],
                name="delivery_pending_idx",
                condition=models.Q(status="pending"),
            ),
            # The conference page: one conference's deliveries, newest first.
            models.Index(fields=["conference", "-created_at"], name="delivery_by_conference_idx"),
            # The hourly cap: what one recipient was sent lately.
            models.Index(fields=["email", "-sent_at"], name="delivery_by_recipient_idx"),
        ]

    def __str__(self):
        return f"{self.kind} to {self.email} ({self.status})"

    @property
    def message_id(self):
        """Stable across retries, so a rare duplicate is recognisable as one."""
        return f"<confwatch.delivery.{self.pk}@{settings.CONFWATCH_MAIL_DOMAIN}>"


class UserPreference(models.Model):
    """What one user chose for the pages: the time zone their times are shown in."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    time_zone = models.CharField(max_length=60, blank=True, help_text="Blank: the site's.")

    def __str__(self):
        return f"{self.user}: {self.time_zone or 'site time zone'}"
