"""Processing Catapult's callback events (in a worker), received and stored by
conferences/callbacks/receiver.py.

`process_waiting` applies an account's waiting events oldest first: the receiver queues
one task per account at most, however many events arrive. `process` claims one event
with a conditional UPDATE and turns it into a partial observation through
`observations.record` (a `conference` event carries the state and the conference's
`tag`; a `conference-member` event the member, and the conference's active members only
where it says so). The order rule is observations': an observation older than the newest
successful one of the conference changes nothing, and a completed conference never goes
back to created or active (such an event is logged "out of order").

An event never polls: it marks its conference due (`mark_due`), and the normal budgeted
rounds read it. A conference never observed or created is read within the rounds'
background share (claims.choose), so events cannot delay anyone's scheduled polls.

An event about an untracked id (conference or member event) registers it while the
account's hourly cap allows (CONFWATCH_CALLBACK_AUTOTRACK_PER_HOUR). Past the cap, or
with registering off, the event is kept (`awaiting_tracking`) and applied once the id is
tracked (tracking.track_conferences); refusals past the cap are counted on the account's
CallbackSettings (the account page in the admin, /health/).
"""

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.utils import timezone

from conferences.callbacks import queue
from conferences.callbacks.receiver import CONFERENCE_EVENT, MEMBER_EVENT, STATES
from conferences.catapult import answers
from conferences.models import CallbackEvent, CallbackSettings, Conference, ConferenceState
from conferences.recording import observations
from conferences.registry import tracking

logger = logging.getLogger(__name__)

# A task processes an account's events for at most TIME_BOX seconds (and BATCH events),
# then leaves the rest to the account's next task, which starts REST seconds later: a
# backlog holds a worker process a fifth of the time at most, and a polling round never
# waits long for it (measured by `make bench-flood`).
TIME_BOX = 0.25
REST = 1.0
BATCH = 200


@dataclass
class Processed:
    conference_pk: int | None = None
    events: int = 0
    message: str = ""
    awaiting_tracking: bool = False


def process_waiting(account_pk):
    """Process the account's waiting events, oldest first, for at most TIME_BOX seconds
    (and BATCH events); the rest go to one more task. Events about untracked ids that
    cannot be registered are kept in one statement first. One event that fails does not
    stop the others (it stays waiting); a database error is raised after the batch, so
    that the task is retried."""
    queue.processing_started(account_pk)
    results = [Processed(message=message) for message in keep_unregistrable(account_pk)]
    waiting = CallbackEvent.objects.filter(account_id=account_pk, processed_at__isnull=True)
    pks = list(waiting.order_by("received_at", "id").values_list("pk", flat=True)[:BATCH])
    stop_at = time.monotonic() + TIME_BOX
    done, database_error = 0, None
    for pk in pks:
        if done and time.monotonic() > stop_at:
            break
        done += 1
        try:
            results.append(process(pk))
        except DatabaseError as error:
            database_error = error
        except Exception:
            logger.exception("callback event %s not processed", pk)
    if done < len(pks) or len(pks) == BATCH:
        queue.queue_processing(pks[-1], account_pk=account_pk, countdown=REST)
    if database_error is not None:
        raise database_error
    return results


def keep_unregistrable(account_pk):
    """While the account may register no more conferences (registering is off, or its
    hourly cap is used up), keep its waiting events about untracked ids in one statement
    (a refusal by the cap is counted): a flood of new ids costs a few statements per
    task, not a transaction per event. Returns the message of each event kept."""
    open_window(account_pk, now=timezone.now())
    found = CallbackSettings.objects.filter(account_id=account_pk).first()
    if found is None:
        return []
    refusal = registration_refusal(found)
    if not refusal:
        return []
    tracked = Conference.objects.filter(
        account_id=OuterRef("account_id"), conference_id=OuterRef("conference_id")
    )
    untracked = CallbackEvent.objects.filter(
        account_id=account_pk,
        processed_at__isnull=True,
        event_type__in=(CONFERENCE_EVENT, MEMBER_EVENT),
    ).filter(~Exists(tracked))
    message = kept_because(refusal)
    with transaction.atomic():
        newest = untracked.aggregate(newest=Max("received_at"))["newest"]
        kept = untracked.update(processed_at=timezone.now(), awaiting_tracking=True, result=message)
        rows = CallbackSettings.objects.filter(account_id=account_pk)
        if kept and found.register_unknown:
            rows.update(
                autotrack_refused=F("autotrack_refused") + kept,
                autotrack_refused_total=F("autotrack_refused_total") + kept,
            )
        if kept:
            rows.filter(Q(last_event_at__isnull=True) | Q(last_event_at__lt=newest)).update(
                last_event_at=newest
            )
    return [message] * kept


def open_window(account_pk, *, now):
    """Start a new hour of registrations on the account when its last one is over."""
    CallbackSettings.objects.filter(account_id=account_pk).filter(
        Q(autotrack_window_start__isnull=True)
        | Q(autotrack_window_start__lte=now - timedelta(hours=1))
    ).update(autotrack_window_start=now, autotrack_registered=0, autotrack_refused=0)


def registration_refusal(callback_settings):
    """Why the account may register no conference in its current hour, or ""."""
    if not callback_settings.register_unknown:
        return "registering is off"
    cap = settings.CONFWATCH_CALLBACK_AUTOTRACK_PER_HOUR
    if callback_settings.autotrack_registered >= cap:
        return over_the_cap(cap)
    return ""


def over_the_cap(cap):
    return f"over the cap of {cap} conferences registered by callbacks per hour"


def kept_because(refusal):
    return f"untracked conference; kept until it is tracked ({refusal})"


def process(event_pk):
    """Apply one received event (once, whoever else tries): returns what it did. Marking
    it processed and applying it are one transaction, so a worker that stops in between
    leaves the event waiting, not marked processed and never applied; whoever tries the
    same event meanwhile waits for that transaction and finds it processed."""
    event = CallbackEvent.objects.filter(pk=event_pk).only("account_id", "received_at").first()
    if event is None:
        return Processed(message="no such event")
    CallbackSettings.objects.filter(account_id=event.account_id).filter(
        Q(last_event_at__isnull=True) | Q(last_event_at__lt=event.received_at)
    ).update(last_event_at=event.received_at)
    try:
        with transaction.atomic():
            claimed = CallbackEvent.objects.filter(pk=event_pk, processed_at__isnull=True)
            if not claimed.update(processed_at=timezone.now()):
                return Processed(message="already processed")
            event = CallbackEvent.objects.select_related("account").get(pk=event_pk)
            result = apply_event(event)
            CallbackEvent.objects.filter(pk=event_pk).update(
                result=result.message[:500], awaiting_tracking=result.awaiting_tracking
            )
    except Exception as error:
        # Rolled back, so still waiting: a retry of the task (or a copy of the event) may
        # try once more.
        CallbackEvent.objects.filter(pk=event_pk, processed_at__isnull=True).update(
            result=f"failed: {type(error).__name__}"
        )
        raise
    return result


def apply_event(event):
    account = event.account
    conference = Conference.objects.filter(
        account=account, conference_id=event.conference_id
    ).first()
    if conference is None and event.event_type in (CONFERENCE_EVENT, MEMBER_EVENT):
        refused = register(account, event.conference_id)
        if refused:
            return Processed(message=kept_because(refused), awaiting_tracking=True)
        conference = Conference.objects.get(account=account, conference_id=event.conference_id)
        logger.info("callback registered conference %s on %s", event.conference_id, account)
    if conference is None:
        return Processed(message="untracked conference; ignored")
    observation = observation_for(event, conference.pk)
    if observation is None:
        return Processed(conference.pk, message=f"{event.event_type} noted")
    (outcome,) = observations.record([observation])
    if outcome.ignored_because == observations.OUT_OF_ORDER:
        return Processed(conference.pk, message=f"out of order: {outcome.ignored_because}")
    if not outcome.applied:
        return Processed(conference.pk, message=f"not applied: {outcome.ignored_because}")
    mark_due(conference.pk)
    return Processed(conference.pk, events=len(outcome.events), message="applied")


def register(account, conference_id):
    """Track the id, within the account's hourly cap: "" when it is tracked, else why
    not (a refusal past the cap is counted)."""
    rows = CallbackSettings.objects.filter(account=account)
    if rows.values_list("register_unknown", flat=True).first() is False:
        return "registering is off"
    cap = settings.CONFWATCH_CALLBACK_AUTOTRACK_PER_HOUR
    open_window(account.pk, now=timezone.now())
    if not rows.filter(autotrack_registered__lt=cap).update(
        autotrack_registered=F("autotrack_registered") + 1
    ):
        rows.update(
            autotrack_refused=F("autotrack_refused") + 1,
            autotrack_refused_total=F("autotrack_refused_total") + 1,
        )
        return over_the_cap(cap)
    tracking.track_conferences(account=account, conference_ids=[conference_id])
    return ""


def mark_due(conference_pk):
    """Have the budgeted rounds read the conference soon (the confirming read): due now,
    unless it is due sooner already, completed, or was read less than
    CONFWATCH_CALLBACK_CONFIRM_SECONDS ago (its next scheduled read confirms it then).
    Many events make one read."""
    now = timezone.now()
    recently = now - timedelta(seconds=settings.CONFWATCH_CALLBACK_CONFIRM_SECONDS)
    Conference.objects.filter(pk=conference_pk, next_poll_at__gt=now).exclude(
        state=ConferenceState.COMPLETED
    ).exclude(last_polled_at__gt=recently).update(next_poll_at=now)


def observation_for(event, conference_pk):
    """The partial observation an event makes, or None (playback and speak events, or an
    event that says nothing of its conference or member). The event is read by the very
    reader a poll's answer is (answers.parse_conference, parse_member), so what
    it tells is stored as a poll would store it."""
    payload = event.payload
    if event.event_type not in (CONFERENCE_EVENT, MEMBER_EVENT):
        return None
    at = event_time(payload.get("time"), received_at=event.received_at)
    seen = conference_seen(payload, conference_pk)
    if event.event_type == CONFERENCE_EVENT:
        if not seen:
            return None
        return observations.Observation(conference_pk, at, seen=seen, source="callback")
    # A member event's state, hold and mute are its member's, not the conference's.
    seen = {name: value for name, value in seen.items() if name not in MEMBERS_OWN}
    member = member_from(payload)
    if member is None:
        return None
    return observations.Observation(
        conference_pk, at, seen=seen, members=(member,), source="callback"
    )


MEMBERS_OWN = ("state", "hold", "mute")


def conference_seen(payload, conference_pk):
    """The conference's fields the event carries, as a poll's observation holds them: its
    state (`status`), times and `tag` (docs/catapult-api.md §3), and any other field of an
    answer an event may carry (activeMembers, the callback settings). An unreadable value
    is left out, and so is an undocumented state: a callback only hints, and a state no
    poll confirmed would record a change."""
    try:
        told = answers.parse_conference(payload, id_key="conferenceId", state_key="status")
    except answers.MalformedResponse:  # the receiver checked the id: not expected
        return {}
    seen = observations.Observation.of_conference(conference_pk, told, observed_at=None).seen
    if seen.get("state") not in STATES:
        seen.pop("state", None)
    return seen


def member_from(payload):
    """The member a `conference-member` event tells of (read by answers.parse_member),
    with its `callId`; None without a usable `memberId`. An undocumented state is left
    unknown, as the conference's is."""
    try:
        member = answers.parse_member(payload, id_key="memberId")
    except answers.MalformedResponse:
        return None
    unknown = set(member.unknown)
    call_id = text(payload, "callId", limit=answers.CALL_ID_LIMIT)
    if call_id is not None:
        unknown.discard("call_id")
    state = member.state if member.state in STATES else None
    if state is None:
        unknown.add("state")
    return dataclasses.replace(
        member, state=state, state_raw=None, call_id=call_id, unknown=frozenset(unknown)
    )


def text(payload, key, *, limit):
    """The text value of `key` in the payload, or None (missing, blank or not text),
    made safe by the rule every text from Catapult follows (answers.clean_text: no
    control or invisible characters, cut to `limit` with the cut shown)."""
    value = payload.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = answers.clean_text(value, limit=limit)
    return value if value.strip() else None


def event_time(value, *, received_at):
    """The event's own time, never later than when it arrived."""
    parsed = timestamp(value)
    if parsed is None or parsed > received_at:
        return received_at
    return parsed


def timestamp(value):
    try:
        return answers.parse_timestamp(value)
    except answers.MalformedResponse:
        return None
