"""Tracked conferences, their history and status changes.

History is stored on change: one HistoryEntry per run of identical (state, active members,
hold, mute), with when the run was first and last seen. Polling errors live on the
conference row and in PollError runs; they never count as a change of state.
"""

import math
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from conferences.catapult import REAL_API_BASE_URL
from conferences.registry import crypto as secrets

# An account's base URL: the schemes it may use.
API_URL_SCHEMES = ("http", "https")


def api_host(url):
    """The host an account's base URL sends to, once the URL is plain: http or https,
    printable ASCII only (no whitespace, control character or backslash), no user name or
    password, no query or fragment. The host is the one urllib3 (which requests sends
    through) connects to, and urllib.parse must read the same host and port: a URL that
    parsers read differently is refused whatever host it seems to name."""
    if not isinstance(url, str) or not url:
        raise ValidationError("The base URL must be an http or https URL.")
    bad = next((char for char in url if not "!" <= char <= "~"), None)
    if bad is not None:
        raise ValidationError(
            f"The base URL must not contain {bad!r}: no whitespace, control or non-ASCII "
            "characters."
        )
    if "\\" in url:
        raise ValidationError(f"The base URL must not contain a backslash: {url!r}.")
    try:
        sent_to = parse_url(url)
        read = urlsplit(url)
        read_host, read_port = read.hostname, read.port
    except (LocationParseError, ValueError):
        raise ValidationError(f"{url!r} is not a URL confwatch can read.") from None
    if sent_to.scheme not in API_URL_SCHEMES or read.scheme.lower() not in API_URL_SCHEMES:
        raise ValidationError(f"The base URL must start with http:// or https://, not {url!r}.")
    if sent_to.auth is not None or read.username is not None or "@" in read.netloc:
        raise ValidationError(
            "The base URL must not carry a user name or password (an @ before the host); "
            "the account's credentials are set apart."
        )
    if "?" in url or "#" in url:
        raise ValidationError(f"The base URL must not have a query (?) or a fragment (#): {url!r}.")
    host = (sent_to.host or "").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # urllib3 keeps an IPv6 address's brackets, urllib.parse does not
    if host != (read_host or "") or sent_to.port != read_port:
        raise ValidationError(
            f"{url!r} names its host ambiguously: urllib3 reads {sent_to.host!r}, "
            f"urllib.parse {read_host!r}; write the URL plainly."
        )
    return host


def validate_api_host(url):
    """An account's base URL must be plain (`api_host`) and name a host of
    CONFWATCH_ALLOWED_API_HOSTS: its credentials are sent there, so it must never point at
    an arbitrary (internal) host."""
    host = api_host(url)
    if host not in settings.CONFWATCH_ALLOWED_API_HOSTS:
        allowed = ", ".join(settings.CONFWATCH_ALLOWED_API_HOSTS)
        raise ValidationError(
            f"{host or url!r} is not an allowed API host (CONFWATCH_ALLOWED_API_HOSTS: {allowed})."
        )


# An account's request budget (requests per second): a finite number within these bounds.
REQUEST_BUDGET_MIN, REQUEST_BUDGET_MAX = 0.05, 10_000.0


def validate_request_budget(value):
    """Refuse a budget that is not a finite number within the documented bounds (nan,
    inf or 1e308 would stop polling)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"The request budget must be a finite number, not {value!r}.")
    if not REQUEST_BUDGET_MIN <= value <= REQUEST_BUDGET_MAX:
        raise ValidationError(
            f"The request budget must be between {REQUEST_BUDGET_MIN:g} and "
            f"{REQUEST_BUDGET_MAX:g} requests per second, not {value:g}."
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
    # The answer was read but could not be stored (polling.record_round); the round's
    # other observations are written.
    UNSTORABLE = "unstorable", "answer not storable"
    # The account itself cannot be polled (settings, credentials store, an unexpected
    # error in its share of a round); its conferences show the reason.
    ACCOUNT_ERROR = "account_error", "account cannot be polled"


class Account(models.Model):
    """A Catapult user whose conferences confwatch polls, with its request budget."""

    name = models.CharField(max_length=100, unique=True)
    user_id = models.CharField(max_length=100, help_text="Catapult user id, e.g. u-abc123")
    api_token_encrypted = models.TextField(editable=False)
    api_secret_encrypted = models.TextField(editable=False)
    base_url = models.URLField(default=REAL_API_BASE_URL, validators=[validate_api_host])
    request_budget = models.FloatField(
        default=1.0,
        validators=[validate_request_budget],
        help_text=(
            "Requests per second confwatch may spend on this account "
            f"({REQUEST_BUDGET_MIN:g} to {REQUEST_BUDGET_MAX:,g})."
        ),
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

    def settings_problems(self):
        """What is wrong with the stored budget and base URL, as sentences (none when
        both are good): every entry refuses such values, but an older row, a raw SQL
        update or a narrowed CONFWATCH_ALLOWED_API_HOSTS may leave one behind."""
        problems = []
        for validate, value in (
            (validate_request_budget, self.request_budget),
            (validate_api_host, self.base_url),
        ):
            try:
                validate(value)
            except ValidationError as error:
                problems.extend(error.messages)
        return problems


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
    # The conference's own settings at Catapult, as last observed (Catapult's `tag` is
    # one free text set by the customer's app, unlike confwatch's `tags`).
    callback_url = models.TextField(null=True, blank=True)
    catapult_tag = models.TextField(null=True, blank=True)
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
    # The newest full observation that confirmed the open history run (latest_history).
    # That run's own last_seen_at is brought up to it at most every RUN_REFRESH seconds
    # and when the run ends, so that a quiet conference costs no history write per poll;
    # read an open run's end with `run_last_seen`.
    run_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
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
        # No index holds a column every poll writes (next_poll_at, the observation
        # times, the claim): each poll's UPDATE then stays a HOT update, which writes no
        # index entry, in pages kept partly free for it (fillfactor, migration 0007).
        # Claiming due conferences scans the account's rows through its foreign key index.
        indexes = [
            # Lookups by Catapult id (API, commands, search).
            models.Index(fields=["conference_id"], name="conference_catapult_id_idx"),
        ]

    def __str__(self):
        return self.label or self.conference_id

    def run_last_seen(self, run_pk, last_seen_at):
        """When the history run `run_pk` (stored last_seen_at) was last seen: for the
        open run, the conference row's newer run_seen_at where it has one."""
        if run_pk == self.latest_history_id and self.run_seen_at is not None:
            return max(self.run_seen_at, last_seen_at)
        return last_seen_at

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
            # retention.prune: the oldest runs first, WHERE first_seen_at < %s LIMIT n
            # (first_seen_at never changes, so the round's updates stay HOT).
            models.Index(fields=["first_seen_at"], name="history_by_age_idx"),
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
            models.Index(fields=["conference", "-changed_at"], name="change_by_conference_idx"),
            # retention.prune: the oldest changes first.
            models.Index(fields=["changed_at"], name="change_by_age_idx"),
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
            models.Index(fields=["conference", "-first_seen_at"], name="error_by_conference_idx"),
            # retention.prune: the oldest error runs first.
            models.Index(fields=["first_seen_at"], name="error_by_age_idx"),
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
    # Rules (conferences/alerting/rules.py): a condition held for its duration, then cleared.
    RULE_FIRED = "rule_fired", "rule fired"
    RULE_RESOLVED = "rule_resolved", "rule resolved"
    # Someone acknowledged the conference's alerts (conferences/alerting/acknowledgements.py).
    ACKNOWLEDGED = "acknowledged", "acknowledged"
    # Members (conferences/recording/members.py).
    MEMBER_JOINED = "member_joined", "member joined"
    MEMBER_LEFT = "member_left", "member left"
    MEMBER_HOLD_CHANGED = "member_hold_changed", "member hold changed"
    MEMBER_MUTE_CHANGED = "member_mute_changed", "member mute changed"


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
        QUIET = "quiet", "quiet hours summary"

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
            # retention.prune: the oldest deliveries first.
            models.Index(fields=["created_at"], name="delivery_by_age_idx"),
        ]

    def __str__(self):
        return f"{self.kind} to {self.email} ({self.status})"

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


# --------------------------------------------------------------------------- members and
# callbacks (conferences/recording/members.py, conferences/callbacks/receiver.py)


class ConferenceMembersRead(models.Model):
    """When a conference's members list is read next, and where that read resumes (the
    `Link: rel="next"` page of a list read page by page, one request per round slot)."""

    conference = models.OneToOneField(
        Conference, on_delete=models.CASCADE, primary_key=True, related_name="members_read"
    )
    # None: no read planned (never active, or the final read after completion is done).
    due_at = models.DateTimeField(null=True, blank=True)
    next_page_url = models.TextField(blank=True)
    # The conference completed: this read is its last one.
    final = models.BooleanField(default=False)
    read_at = models.DateTimeField(null=True, blank=True)
    pages = models.IntegerField(default=0)

    class Meta:
        indexes = [
            # polling.choose_members_reads: the reads due, most overdue first.
            models.Index(
                fields=["due_at"],
                name="members_read_due_idx",
                condition=models.Q(due_at__isnull=False),
            )
        ]

    def __str__(self):
        return f"members read of {self.conference_id}"


class Member(models.Model):
    """A conference member as last observed; departed members stay (state completed).
    Times are as the API gave them (addedTime, removedTime)."""

    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="members")
    member_id = models.CharField(max_length=100)
    call_id = models.CharField(max_length=200, null=True, blank=True)
    state = models.CharField(max_length=30, null=True, blank=True)
    hold = models.BooleanField(null=True, blank=True)
    mute = models.BooleanField(null=True, blank=True)
    joined_at = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    last_changed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conference", "member_id"], name="member_unique_per_conference"
            )
        ]
        indexes = [
            # Search by call id across conferences (members.calls_by_call_id).
            models.Index(fields=["call_id"], name="member_by_call_idx"),
        ]

    def __str__(self):
        return self.member_id

    @property
    def present(self):
        return self.state != ConferenceState.COMPLETED

    @property
    def stayed(self):
        """How long a departed member stayed; None when unknown (a time is missing, or
        the API's mixed offsets put the leave before the join: never negative)."""
        if self.joined_at is None or self.left_at is None or self.left_at < self.joined_at:
            return None
        return self.left_at - self.joined_at


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


class UserPreference(models.Model):
    """What one user chose for the pages: the time zone their times are shown in."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    time_zone = models.CharField(max_length=60, blank=True, help_text="Blank: the site's.")

    def __str__(self):
        return f"{self.user}: {self.time_zone or 'site time zone'}"
