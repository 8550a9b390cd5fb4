"""The callback receiver: Catapult's conference events, sent to an account's callback URL.

Receiving (`receive`, from the view) is kept fast whatever the database is doing: find
the account by the secret in the URL (its SHA-256, then a constant-time compare), check
the optional Basic credentials, cap the body, parse it (POST: JSON; GET: query
parameters, every value a string), throttle floods per account, record the raw event
once (a dedupe key over its contents: the same event again, or via the fallbackUrl, is
the same row) and queue its processing. No HTTP, no observation work.

Processing (`process`, in a worker) claims the event with a conditional UPDATE, turns it
into a partial observation through `observations.record` (a `conference` event carries
the state; a `conference-member` event the member, and the conference's active members
only where it says so), registers a conference it does not know yet when the account
allows it, and asks for a confirming poll of that conference within the budget
(`confirm`, at most once per CONFWATCH_CALLBACK_CONFIRM_SECONDS per conference).

The secret is never logged: the URL is only ever built for the account page, the admin
and the `callback_url` command.
"""

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets as random_secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from conferences import catapult, observations, polling, secrets, tracking
from conferences.models import CallbackEvent, CallbackSettings, Conference

logger = logging.getLogger(__name__)

SECRET_BYTES = 24  # 192 bits
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,100}")
CONFERENCE_EVENT = "conference"
MEMBER_EVENT = "conference-member"
AUDIO_EVENTS = ("conference-playback", "conference-speak", "playback", "speak")
KNOWN_EVENTS = (CONFERENCE_EVENT, MEMBER_EVENT, *AUDIO_EVENTS)
STATES = ("created", "active", "completed")
MAX_FIELDS = 100


# --------------------------------------------------------------------------- settings


def hash_secret(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def set_up(account, *, username=None, password="", rotate=False):
    """The account's callback settings, made (with a new secret) if missing or when
    rotating; Basic credentials set when a username is given ("" clears them)."""
    current = CallbackSettings.objects.filter(account=account).first()
    changed = False
    if current is None or rotate:
        secret = random_secrets.token_urlsafe(SECRET_BYTES)
        current = current or CallbackSettings(account=account)
        current.secret_hash = hash_secret(secret)
        current.secret_encrypted = secrets.encrypt(secret)
        changed = True
    if username is not None:
        current.username = username
        current.password_encrypted = secrets.encrypt(password) if username else ""
        changed = True
    if changed:
        current.save()
    return current


def callback_url(account, *, create=True):
    """The absolute URL to give Catapult as the conferences' callbackUrl (with the Basic
    credentials in it when the account has some); made on first use, unless create is
    False (a page that only shows it): then None while there is none."""
    if create:
        callback_settings = set_up(account, username=None)
    else:
        callback_settings = CallbackSettings.objects.filter(account=account).first()
        if callback_settings is None:
            return None
    secret = secrets.decrypt(callback_settings.secret_encrypted)
    base = urlsplit(settings.CONFWATCH_BASE_URL)
    netloc = base.netloc
    if callback_settings.username:
        password = secrets.decrypt(callback_settings.password_encrypted)
        netloc = f"{quote(callback_settings.username, safe='')}:{quote(password, safe='')}@{netloc}"
    return f"{base.scheme}://{netloc}{base.path.rstrip('/')}/callbacks/{secret}/"


# --------------------------------------------------------------------------- receiving


@dataclass(frozen=True)
class Receipt:
    status: int
    message: str
    event_pk: int | None = None


class Refused(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


# The receiver's statements give up after this long (milliseconds): Catapult waits at
# most 10 s for an answer, and a 503 sends it to the fallbackUrl instead.
STATEMENT_TIMEOUT_MS = 2000


def receive(*, secret, method, body_stream, content_length, query, authorization):
    """Check, record and queue one callback request; return what to answer."""
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {int(STATEMENT_TIMEOUT_MS)}")
            receipt = check_and_record(
                secret=secret,
                method=method,
                body_stream=body_stream,
                content_length=content_length,
                query=query,
                authorization=authorization,
            )
    except Refused as refused:
        return Receipt(refused.status, refused.message)
    except DatabaseError as error:
        logger.error("callback not recorded, the database is busy: %s", type(error).__name__)
        return Receipt(503, "busy; try again")
    if receipt.event_pk is not None:
        queue_processing(receipt.event_pk)
    return receipt


def check_and_record(*, secret, method, body_stream, content_length, query, authorization):
    callback_settings = settings_for_secret(secret)
    check_credentials(callback_settings, authorization)
    payload = read_payload(method, body_stream, content_length, query)
    account_pk = callback_settings.account_id
    event_type = str(payload.get("eventType") or "")
    if event_type not in KNOWN_EVENTS:
        logger.warning(
            "callback for account %s: unknown event type %r acknowledged, not processed",
            account_pk,
            event_type[:50],
        )
        return Receipt(200, "unknown event type; acknowledged")
    conference_id = str(payload.get("conferenceId") or "")
    if not tracking.CONFERENCE_ID_PATTERN.fullmatch(conference_id):
        raise Refused(400, "conferenceId is missing or not a conference id")
    if not admit(account_pk):
        raise Refused(429, "too many callback events; slow down")
    event_pk, fresh = record_event(
        account_pk=account_pk,
        payload=payload,
        event_type=event_type,
        conference_id=conference_id,
    )
    return Receipt(200, "recorded" if fresh else "already recorded", event_pk)


def settings_for_secret(secret):
    if not isinstance(secret, str) or not SECRET_PATTERN.fullmatch(secret):
        raise Refused(404, "not found")
    found = CallbackSettings.objects.filter(secret_hash=hash_secret(secret)).first()
    # The hash found the row; the compare is constant time all the same.
    if found is None or not hmac.compare_digest(found.secret_hash, hash_secret(secret)):
        raise Refused(404, "not found")
    return found


def check_credentials(callback_settings, authorization):
    if not callback_settings.username:
        return
    scheme, _, encoded = (authorization or "").partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    username, _, password = decoded.partition(":")
    expected = secrets.decrypt(callback_settings.password_encrypted)
    good_user = hmac.compare_digest(username.encode(), callback_settings.username.encode())
    good_password = hmac.compare_digest(password.encode(), expected.encode())
    if scheme.lower() != "basic" or not (good_user and good_password):
        raise Refused(401, "credentials required")


def read_payload(method, body_stream, content_length, query):
    """POST: a JSON object (at most CONFWATCH_CALLBACK_MAX_BYTES); GET: the query."""
    if method == "GET":
        payload = {key: query.get(key) for key in list(query.keys())[:MAX_FIELDS]}
        if not payload:
            raise Refused(400, "no event in the query")
        return payload
    cap = settings.CONFWATCH_CALLBACK_MAX_BYTES
    try:
        declared = int(content_length or 0)
    except ValueError:
        raise Refused(400, "bad Content-Length") from None
    if declared > cap:
        raise Refused(413, f"body larger than {cap} bytes")
    raw = body_stream.read(cap + 1)
    if len(raw) > cap:
        raise Refused(413, f"body larger than {cap} bytes")
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        raise Refused(400, "body is not JSON") from None
    if not isinstance(payload, dict):
        raise Refused(400, "body is not a JSON object")
    if len(payload) > MAX_FIELDS:
        raise Refused(400, "too many fields")
    if "\\u0000" in json.dumps(payload):
        raise Refused(400, "a NUL character in the body")  # Postgres cannot store it
    return payload


def dedupe_key(payload):
    """The same event, sent again, by POST or GET (all strings), has the same key."""
    canonical = sorted((str(key), as_text(value)) for key, value in payload.items())
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


def as_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


_redis = None


def redis_client():
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_timeout=0.5, socket_connect_timeout=0.5
        )
    return _redis


def admit(account_pk):
    """At most CONFWATCH_CALLBACK_RATE events per account and second (a Redis counter per
    second, shared by every web process). Without Redis, events are admitted."""
    key = f"confwatch:callbacks:{account_pk}:{int(timezone.now().timestamp())}"
    try:
        pipeline = redis_client().pipeline()
        pipeline.incr(key)
        pipeline.expire(key, 5)
        count, _ = pipeline.execute()
    except redis.RedisError as error:
        logger.warning("callback throttle unavailable: %s", type(error).__name__)
        return True
    return count <= settings.CONFWATCH_CALLBACK_RATE


def record_event(*, account_pk, payload, event_type, conference_id):
    """Insert the raw event once; return (pk to process or None, whether it is new). An
    event already recorded is queued again only while it waits for processing."""
    key = dedupe_key(payload)
    table = CallbackEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (account_id, dedupe_key, event_type, conference_id, payload, "
            "received_at, result) VALUES (%s, %s, %s, %s, %s, %s, '') "
            "ON CONFLICT (account_id, dedupe_key) DO NOTHING RETURNING id",
            [account_pk, key, event_type, conference_id, json.dumps(payload), timezone.now()],
        )
        row = cursor.fetchone()
    if row is not None:
        return row[0], True
    waiting = CallbackEvent.objects.filter(
        account_id=account_pk, dedupe_key=key, processed_at__isnull=True
    ).values_list("pk", flat=True)
    return waiting.first(), False


def queue_processing(event_pk):
    from conferences import tasks

    try:
        tasks.process_callback.delay(event_pk)
    except Exception as error:  # noqa: BLE001 - the event is stored; a later copy requeues it
        logger.error("callback event %s not queued: %s", event_pk, type(error).__name__)


# --------------------------------------------------------------------------- processing


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


def last_event_at(account):
    return (
        CallbackSettings.objects.filter(account=account)
        .values_list("last_event_at", flat=True)
        .first()
    )
