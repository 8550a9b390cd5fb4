"""Tracked conferences and their history.

The models, one module per role (accounts, conference, history, alerting, members,
callbacks, maintenance, tokens; vocabulary holds the TextChoices every model shares),
all importable from here: `from conferences.models import Conference`.

History is stored on change: one HistoryEntry per run of identical (state, active members,
hold, mute), with when the run was first and last seen. Polling errors live on the
conference row and in PollError runs; they never count as a change of state.
"""

from conferences.models.accounts import (
    API_URL_SCHEMES,
    BUDGET_SHARE,
    REQUEST_BUDGET_MAX,
    REQUEST_BUDGET_MIN,
    Account,
    UserPreference,
    api_host,
    validate_api_host,
    validate_request_budget,
)
from conferences.models.alerting import (
    Acknowledgement,
    Delivery,
    RuleState,
    ShareLink,
    Subscription,
)
from conferences.models.callbacks import CallbackEvent, CallbackSettings
from conferences.models.conference import (
    Conference,
    last_seen,
    polled_q,
    stale_after,
    stale_q,
)
from conferences.models.history import Event, HistoryEntry, PollError
from conferences.models.maintenance import MaintenanceWindow
from conferences.models.members import ConferenceMembersRead, Member, held_present_q
from conferences.models.tokens import ApiToken
from conferences.models.vocabulary import ConferenceState, DeliveryStatus, EventKind, PollStatus

__all__ = [
    "API_URL_SCHEMES",
    "BUDGET_SHARE",
    "Account",
    "Acknowledgement",
    "ApiToken",
    "CallbackEvent",
    "CallbackSettings",
    "Conference",
    "ConferenceMembersRead",
    "ConferenceState",
    "Delivery",
    "DeliveryStatus",
    "Event",
    "EventKind",
    "HistoryEntry",
    "MaintenanceWindow",
    "Member",
    "PollError",
    "PollStatus",
    "REQUEST_BUDGET_MAX",
    "REQUEST_BUDGET_MIN",
    "RuleState",
    "ShareLink",
    "Subscription",
    "UserPreference",
    "api_host",
    "held_present_q",
    "last_seen",
    "polled_q",
    "stale_after",
    "stale_q",
    "validate_api_host",
    "validate_request_budget",
]
