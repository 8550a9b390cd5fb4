"""Alerting: subscriptions, deliveries (the outbox), rule states, acknowledgements,
share links."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from conferences.models.accounts import Account
from conferences.models.conference import Conference
from conferences.models.history import Event
from conferences.models.vocabulary import DeliveryStatus, EventKind
from conferences.text import parse_time


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
        # Rules (conferences/alerting/rules.py): each fires and resolves for its subscription only.
        "not_started": [EventKind.RULE_FIRED, EventKind.RULE_RESOLVED],
        "alone": [EventKind.RULE_FIRED, EventKind.RULE_RESOLVED],
        "all_held": [EventKind.RULE_FIRED, EventKind.RULE_RESOLVED],
        "all_muted": [EventKind.RULE_FIRED, EventKind.RULE_RESOLVED],
        "members_drop": [EventKind.RULE_FIRED, EventKind.RULE_RESOLVED],
        "schedule": [EventKind.RULE_FIRED, EventKind.RULE_RESOLVED],
    }

    # The recipient: an email address, or a channel's masked label (channels.label_for),
    # the channel URL itself being stored encrypted below.
    email = models.CharField(max_length=254, verbose_name="to")
    # A channel (conferences/alerting/channels.py): its URL and, for webhook:// targets, the
    # signing secret, both encrypted (registry/crypto.py) and never shown back.
    channel_encrypted = models.TextField(blank=True, editable=False)
    webhook_secret_encrypted = models.TextField(blank=True, editable=False)
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
    # Rules (conferences/alerting/rules.py). How long a rule's condition must hold before it fires.
    rule_after_seconds = models.IntegerField(null=True, blank=True)
    # members_drop: the drop, in percent of the active members, within a minute.
    drop_percent = models.IntegerField(null=True, blank=True)
    # schedule: "Mon,Wed 09:00 Europe/Berlin", and how late it may start.
    expect_schedule = models.CharField(max_length=100, blank=True)
    grace_seconds = models.IntegerField(null=True, blank=True)
    # One "resolved" email when a fired rule's condition clears.
    notify_resolved = models.BooleanField(default=True)
    # Quiet hours in the subscription's time zone: alerts are held for one summary at
    # their end, or dropped.
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    quiet_drop = models.BooleanField(default=False)

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

    @property
    def is_channel(self):
        return bool(self.channel_encrypted)

    def event_kinds(self):
        return {kind for name in self.kinds for kind in self.KINDS.get(name, [])}


class Delivery(models.Model):
    """One email or channel message to one recipient, about one or more events (the
    outbox)."""

    class Kind(models.TextChoices):
        CHANGE = "change"
        FLAPPING = "flapping"
        SETTLED = "settled"
        DIGEST = "digest"
        QUIET = "quiet", "quiet hours summary"
        TEST = "test", "test message"
        MAINTENANCE = "maintenance", "maintenance summary"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CHANGE)
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    # The subscription's recipient when it was made: an address or a channel's label.
    email = models.CharField(max_length=254, verbose_name="to")
    conference = models.ForeignKey(
        Conference, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    events = models.ManyToManyField(Event, related_name="deliveries")
    # A maintenance summary's window (alerting/maintenance.py).
    maintenance = models.ForeignKey(
        "MaintenanceWindow",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    status = models.CharField(
        max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    send_after = models.DateTimeField(default=timezone.now)
    # A sender holds the delivery while it sends it; a dead sender's claim lapses.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)
    # Every try, oldest first: {"at": ISO time, "result": "sent" | "retry" | "failed",
    # "error": its error}, appended by the sender (sender.record_results).
    attempt_log = models.JSONField(default=list, blank=True, editable=False)
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
            # retention.prune: the oldest deliveries first.
            models.Index(fields=["created_at"], name="delivery_by_age_idx"),
        ]

    def __str__(self):
        return f"{self.kind} to {self.email} ({self.status})"

    @property
    def tries(self):
        """The attempt log with its times read back (for the pages)."""
        return [
            {**entry, "at": parse_time(entry.get("at"))}
            for entry in self.attempt_log
            if isinstance(entry, dict)
        ]

    @property
    def message_id(self):
        """Stable across retries, so a rare duplicate is recognisable as one."""
        return f"<confwatch.delivery.{self.pk}@{settings.CONFWATCH_MAIL_DOMAIN}>"


class RuleState(models.Model):
    """A rule that fired for one subscription and conference: while `resolved_at` is
    empty it does not fire again, and a restart does not fire it twice. `episode` names
    the condition's run (when it began; for a schedule, the expected start)."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="rule_states"
    )
    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="rule_states")
    rule = models.CharField(max_length=20)
    episode = models.CharField(max_length=40)
    since = models.DateTimeField()
    fired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "conference", "rule"], name="rule_state_unique"
            )
        ]

    def __str__(self):
        return f"{self.rule} since {self.since:%Y-%m-%d %H:%M:%S}"


class Acknowledgement(models.Model):
    """Someone acknowledged a conference's alerts: nothing more is sent about it until its
    state changes or `expires_at` passes (`ended_at` says when it stopped)."""

    conference = models.ForeignKey(
        Conference, on_delete=models.CASCADE, related_name="acknowledgements"
    )
    delivery = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Who: the user's name, or the address the acknowledged email went to.
    by = models.CharField(max_length=254)
    # What: the acknowledged alert's subject, or "the conference's alerts".
    what = models.CharField(max_length=300)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_because = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = [
            # Fan-out and the conference page: a conference's acknowledgements, newest first.
            models.Index(fields=["conference", "-created_at"], name="ack_by_conference_idx"),
        ]

    def __str__(self):
        return f"{self.what} by {self.by}"


class ShareLink(models.Model):
    """A read-only page of one conference for whoever holds its link, until it expires
    or is revoked. The link carries a signed (id, key); the key is random."""

    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="share_links")
    key = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"share link {self.pk} of {self.conference}"
