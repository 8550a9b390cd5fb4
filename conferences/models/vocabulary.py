"""The stored vocabularies (one TextChoices each), shared by every model."""

from django.db import models


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
    # A 409: another change to the conference was in progress at Catapult (retried later).
    CONFLICT = "conflict", "conflict"
    API_ERROR = "api_error", "API error"
    MALFORMED = "malformed", "malformed response"
    # The answer was read but could not be stored (results.record_round); the round's
    # other observations are written.
    UNSTORABLE = "unstorable", "answer not storable"
    # The account itself cannot be polled (settings, credentials store, an unexpected
    # error in its share of a round); its conferences show the reason.
    ACCOUNT_ERROR = "account_error", "account cannot be polled"


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


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
