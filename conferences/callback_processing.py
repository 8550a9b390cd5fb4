"""Processing Catapult's callback events (`process`, in a worker), received and stored by
conferences/callbacks.py.

`process` claims the event with a conditional UPDATE, turns it into a partial
observation through `observations.record` (a `conference` event carries the state; a
`conference-member` event the member, and the conference's active members only where it
says so), registers a conference it does not know yet when the account allows it, and
asks for a confirming poll of that conference within the budget (`confirm`, at most
once per CONFWATCH_CALLBACK_CONFIRM_SECONDS per conference).
"""

import logging
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from conferences import catapult, observations, polling, tracking
from conferences.callbacks import (
    CONFERENCE_EVENT,
    MEMBER_EVENT,
    STATES,
    redis_client,
)
from conferences.models import CallbackEvent, CallbackSettings, Conference

logger = logging.getLogger(__name__)


@dataclass
class Processed:
    conference_pk: int | None = None
    events: int = 0
    message: str = ""


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
            CallbackEvent.objects.filter(pk=event_pk).update(result=result.message[:500])
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
    if conference is None and event.event_type == CONFERENCE_EVENT:
        if not register_unknown(account):
            return Processed(message="untracked conference; registering is off")
        tracking.track_conferences(account=account, conference_ids=[event.conference_id])
        conference = Conference.objects.get(account=account, conference_id=event.conference_id)
        logger.info("callback registered conference %s on %s", event.conference_id, account)
    if conference is None:
        return Processed(message="untracked conference; ignored")
    observation = observation_for(event, conference.pk)
    if observation is None:
        return Processed(conference.pk, message=f"{event.event_type} noted")
    (outcome,) = observations.record([observation])
    message = "applied" if outcome.applied else f"not applied: {outcome.ignored_because}"
    return Processed(conference.pk, events=len(outcome.events), message=message)


def register_unknown(account):
    return (
        CallbackSettings.objects.filter(account=account)
        .values_list("register_unknown", flat=True)
        .first()
        is not False
    )


def observation_for(event, conference_pk):
    """The partial observation an event makes, or None (playback and speak events)."""
    payload = event.payload
    at = event_time(payload.get("time"), received_at=event.received_at)
    if event.event_type == CONFERENCE_EVENT:
        seen = {}
        status = str(payload.get("status") or "").lower()
        if status in STATES:
            seen["state"] = status
        for key, name in (("createdTime", "created_time"), ("completedTime", "completed_time")):
            parsed = timestamp(payload.get(key))
            if parsed is not None:
                seen[name] = parsed
        if not seen:
            return None
        return observations.Observation(conference_pk, at, seen=seen, source="callback")
    if event.event_type == MEMBER_EVENT:
        member = member_from(payload)
        if member is None:
            return None
        seen = {}
        active = integer(payload.get("activeMembers"))
        if active is not None:
            seen["active_members"] = active
        return observations.Observation(
            conference_pk, at, seen=seen, members=(member,), source="callback"
        )
    return None


def member_from(payload):
    member_id = str(payload.get("memberId") or "")
    if not member_id or len(member_id) > 100:
        return None
    values = {
        "state": str(payload.get("state") or "").lower() or None,
        "hold": boolean(payload.get("hold")),
        "mute": boolean(payload.get("mute")),
        "call_id": (str(payload.get("callId") or "") or None),
    }
    if values["state"] not in (*STATES, None):
        values["state"] = None
    if values["call_id"] is not None and len(values["call_id"]) > 200:
        values["call_id"] = None
    unknown = {name for name, value in values.items() if value is None}
    unknown |= {"added_time", "removed_time", "join_tone", "leaving_tone", "call_url"}
    return catapult.Member(id=member_id, **values, unknown=frozenset(unknown))


def event_time(value, *, received_at):
    """The event's own time, never later than when it arrived."""
    parsed = timestamp(value)
    if parsed is None or parsed > received_at:
        return received_at
    return parsed


def timestamp(value):
    try:
        return catapult.parse_timestamp(value)
    except catapult.MalformedResponse:
        return None


def boolean(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def integer(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 7:
        return int(value.strip())
    return None


def confirm(conference_pk):
    """Poll the conference now, within its account's budget, unless a confirming poll of
    it started less than CONFWATCH_CALLBACK_CONFIRM_SECONDS ago: then one more poll is
    queued for when that time is over (one, however many events come meanwhile), so the
    last event of a burst is confirmed too. Returns the round's summary, or None."""
    seconds = settings.CONFWATCH_CALLBACK_CONFIRM_SECONDS
    milliseconds = int(seconds * 1000)
    if milliseconds:
        try:
            client = redis_client()
            if not client.set(f"confwatch:confirm:{conference_pk}", "1", nx=True, px=milliseconds):
                trailing = f"confwatch:confirm-later:{conference_pk}"
                if client.set(trailing, "1", nx=True, px=milliseconds):
                    queue_confirmation(conference_pk, countdown=seconds)
                return None
        except redis.RedisError as error:
            logger.warning("confirm debounce unavailable: %s", type(error).__name__)
    return polling.poll_round(force=True, conference_pks=[conference_pk])


def queue_confirmation(conference_pk, *, countdown):
    from conferences import tasks

    tasks.confirm_callback.apply_async(
        (conference_pk,), countdown=countdown, expires=countdown + 60
    )
