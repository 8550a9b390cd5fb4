"""The callback receiver: Catapult's conference events, sent to an account's callback URL.

Receiving (`receive`, from the view) is kept fast whatever the database is doing: find
the account by the secret in the URL (its SHA-256, then a constant-time compare), check
the optional Basic credentials, cap the body, parse it (POST: JSON; GET: query
parameters, every value a string; `eventType` in any case), throttle floods per account,
record the raw event once (a dedupe key over its contents: the same event again, or via
the fallbackUrl, is the same row) and queue the processing of the account's waiting
events (one queued task per account at most). No HTTP, no observation work; the body is
read and Redis asked outside any transaction.

Processing, in a worker, is conferences/callbacks/processing.py.

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
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote, urlsplit

import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from conferences.callbacks import queue
from conferences.models import CallbackEvent, CallbackSettings
from conferences.ops import queued
from conferences.registry import crypto, tracking

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
        secret = secrets.token_urlsafe(SECRET_BYTES)
        current = current or CallbackSettings(account=account)
        current.secret_hash = hash_secret(secret)
        current.secret_encrypted = crypto.encrypt(secret)
        changed = True
    if username is not None:
        current.username = username
        current.password_encrypted = crypto.encrypt(password) if username else ""
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
    secret = crypto.decrypt(callback_settings.secret_encrypted)
    base = urlsplit(settings.CONFWATCH_BASE_URL)
    netloc = base.netloc
    if callback_settings.username:
        password = crypto.decrypt(callback_settings.password_encrypted)
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
    """Check, record and queue one callback request; return what to answer. The body is
    read and Redis asked before any transaction opens; the database work is two short
    transactions (find the account, record the event) under a statement timeout."""
    try:
        raw = read_body(method, body_stream, content_length)
        with timed_transaction():
            callback_settings = settings_for_secret(secret)
            check_credentials(callback_settings, authorization)
        account_pk = callback_settings.account_id
        payload = parse_payload(method, raw, query)
        event_type = str(payload.get("eventType") or "").strip().lower()
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
        with timed_transaction():
            event_pk, fresh = record_event(
                account_pk=account_pk,
                payload=payload,
                event_type=event_type,
                conference_id=conference_id,
            )
    except Refused as refused:
        return Receipt(refused.status, refused.message)
    except DatabaseError as error:
        logger.error("callback not recorded, the database is busy: %s", type(error).__name__)
        return Receipt(503, "busy; try again")
    if event_pk is not None:
        queue.queue_processing(event_pk, account_pk=account_pk)
    return Receipt(200, "recorded" if fresh else "already recorded", event_pk)


@contextmanager
def timed_transaction():
    """A transaction whose statements give up after STATEMENT_TIMEOUT_MS."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {int(STATEMENT_TIMEOUT_MS)}")
        yield


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
    expected = crypto.decrypt(callback_settings.password_encrypted)
    good_user = hmac.compare_digest(username.encode(), callback_settings.username.encode())
    good_password = hmac.compare_digest(password.encode(), expected.encode())
    if scheme.lower() != "basic" or not (good_user and good_password):
        raise Refused(401, "credentials required")


def read_body(method, body_stream, content_length):
    """POST: the body's bytes (at most CONFWATCH_CALLBACK_MAX_BYTES); GET: None."""
    if method == "GET":
        return None
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
    return raw


def parse_payload(method, raw, query):
    """POST: a JSON object; GET: the query parameters (every value a string)."""
    if method == "GET":
        payload = {key: query.get(key) for key in list(query.keys())[:MAX_FIELDS]}
        if not payload:
            raise Refused(400, "no event in the query")
        return payload
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


def admit(account_pk):
    """At most CONFWATCH_CALLBACK_RATE events per account and second (a Redis counter per
    second, shared by every web process). Without Redis, events are admitted."""
    key = f"confwatch:callbacks:{account_pk}:{int(timezone.now().timestamp())}"
    try:
        pipeline = queued.redis_client().pipeline()
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
            "received_at, result, awaiting_tracking) VALUES (%s, %s, %s, %s, %s, %s, '', false) "
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


def last_event_at(account):
    return (
        CallbackSettings.objects.filter(account=account)
        .values_list("last_event_at", flat=True)
        .first()
    )


def registrations(account):
    """What the account page says of the conferences callbacks registered: this hour's
    count against the cap, and the events refused past it."""
    found = CallbackSettings.objects.filter(account=account).first()
    cap = settings.CONFWATCH_CALLBACK_AUTOTRACK_PER_HOUR
    window = found and found.autotrack_window_start
    if not window or window <= timezone.now() - timedelta(hours=1):
        registered = refused = 0
    else:
        registered, refused = found.autotrack_registered, found.autotrack_refused
    total = found.autotrack_refused_total if found else 0
    return (
        f"{registered} of at most {cap} this hour; {refused} events about untracked "
        f"conferences refused this hour ({total} in all), kept until they are tracked"
    )
