"""Channels: alerts to chat and paging tools through Apprise, and confwatch's own signed
webhook (`webhook://` over HTTP, `webhooks://` over HTTPS).

A subscription's target is an email address or a channel URL. A channel URL carries
secrets (tokens, passwords): `clean_channel` checks it (Apprise's own reason when Apprise
refuses it), refuses a host that resolves to a loopback or private address unless
CONFWATCH_ALLOW_PRIVATE_WEBHOOKS, and returns it encrypted (registry/crypto.py) with the
masked label that stands for it everywhere it is shown (`json://example.com/… #3fa92c`:
scheme and host, the rest elided, and a fingerprint that tells two URLs apart).

`send(delivery)` sends one delivery of the outbox to its channel (sender.py calls it, as
it sends an email): the words are the email's (emails.alert_context and alert_text), the
title its subject without the prefix. Every call waits at most CONFWATCH_CHANNEL_TIMEOUT
to connect and as long for each read. A failure raises SendFailed: permanent for a
channel that can no longer be read or is refused, and for a 3xx or 4xx answer (except
408, 425 and 429); otherwise the sender retries it as it retries the mail server.

The signed webhook POSTs `webhook_payload` as JSON (schema "confwatch.alert/1", the README
documents it) with X-Confwatch-Signature: sha256=<hex HMAC-SHA256 of the body under the
subscription's secret>, X-Confwatch-Timestamp (Unix seconds, the body's sent_at) and
X-Confwatch-Delivery (the delivery's id, the same on every try, for deduplication).
Redirects are not followed, by the webhook nor by Apprise's plugins that honour its
`redirects` flag.
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import apprise
import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.crypto import salted_hmac

from conferences.alerting import emails, grouping
from conferences.models import Delivery, EventKind
from conferences.registry import crypto
from conferences.text import iso

logger = logging.getLogger(__name__)

SCHEMA = "confwatch.alert/1"
WEBHOOK_SCHEMES = {"webhook": "http", "webhooks": "https"}
SIGNATURE_HEADER = "X-Confwatch-Signature"
TIMESTAMP_HEADER = "X-Confwatch-Timestamp"
DELIVERY_HEADER = "X-Confwatch-Delivery"
URL_MAX = 2000
SECRET_MIN = 16
# 4xx answers that may pass: timeout, too early, too many requests.
RETRYABLE_CLIENT_ERRORS = (408, 425, 429)
REASON_MAX = 500

RULE_KINDS = (EventKind.RULE_FIRED, EventKind.RULE_RESOLVED)
# Apprise's kind of message (its colour or icon in most services), by event kind.
TROUBLE = (EventKind.POLLING_PROBLEM, EventKind.RULE_FIRED)
GOOD_NEWS = (EventKind.POLLING_RECOVERED, EventKind.RULE_RESOLVED)


class SendFailed(Exception):
    """A channel did not take the message; `permanent` when trying again cannot help."""

    def __init__(self, message, *, permanent=False):
        super().__init__(message)
        self.permanent = permanent
        self.subject = ""


def is_channel(value):
    """Whether a target (or a delivery's recipient) is a channel rather than an address."""
    return "://" in str(value or "")


# --------------------------------------------------------------------------- subscribing


@dataclass(frozen=True)
class Channel:
    """A checked channel URL, ready to store on a subscription."""

    label: str
    channel_encrypted: str
    webhook_secret_encrypted: str
    # A webhook secret confwatch made: shown once, to the one who subscribed.
    new_secret: str = ""


def clean_channel(url, *, secret=""):
    """Check a channel URL and encrypt it (and a webhook's secret, made when not given).
    Raises ValidationError saying why it is refused: Apprise's own reason for its URLs."""
    url = str(url or "").strip()
    if len(url) > URL_MAX:
        raise ValidationError(f"A channel URL is at most {URL_MAX} characters.")
    secret = str(secret or "").strip()
    new_secret = ""
    if scheme_of(url) in WEBHOOK_SCHEMES:
        host, port = webhook_host(url)
        if not secret:
            secret = new_secret = secrets.token_urlsafe(32)
        clean_secret(secret)
        refuse_private(host, resolvable=True)
    else:
        if secret:
            raise ValidationError("A secret applies to webhook:// and webhooks:// targets only.")
        plugin = apprise_plugin(url)
        host, port = plugin.host, plugin.port
        refuse_private(host)
    return Channel(
        label=label_for(url, host=host, port=port),
        channel_encrypted=crypto.encrypt(url),
        webhook_secret_encrypted=crypto.encrypt(secret) if secret else "",
        new_secret=new_secret,
    )


def clean_secret(secret):
    if len(secret) < SECRET_MIN:
        raise ValidationError(f"A webhook secret is at least {SECRET_MIN} characters.")
    return secret


def scheme_of(url):
    return url.split("://", 1)[0].strip().lower()


def webhook_host(url):
    """The host and port of a webhook:// or webhooks:// URL; ValidationError if it has none."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as error:
        raise ValidationError(f"Not a webhook URL: {error}.") from None
    if not host:
        raise ValidationError("A webhook URL needs a host: webhook://host[:port]/path.")
    return host, port


def http_url(url):
    """webhook://... as http://..., webhooks://... as https://... (without a fragment)."""
    parts = urlsplit(url)
    return urlunsplit(
        (WEBHOOK_SCHEMES[parts.scheme.lower()], parts.netloc, parts.path or "/", parts.query, "")
    )


def apprise_plugin(url):
    """Apprise's notifier for the URL; ValidationError with Apprise's reason if it has none."""
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        reason = reason_from(captured.getvalue(), url) or "it is not a URL Apprise knows"
        raise ValidationError(f"Apprise refuses this channel URL: {reason}")
    return plugin


def reason_from(log_text, url):
    """Apprise's log lines as one line, without the URL itself (it may carry secrets)."""
    text = " ".join(line.strip() for line in log_text.splitlines() if line.strip())
    return text.replace(url, "the URL")[:REASON_MAX]


def looks_like_host(host):
    """A network name or address, rather than a token in the host's place (slack://T1/...)."""
    host = str(host or "")
    return "." in host or ":" in host or host.lower() == "localhost"


def label_for(url, *, host, port):
    """How a channel is shown: scheme and host, the rest elided, and a fingerprint."""
    # A webhook's host is a host; an Apprise URL's may be a token (slack://T1/...).
    named = scheme_of(url) in WEBHOOK_SCHEMES or looks_like_host(host)
    shown = host[:200] if named else ""  # the label fits the 254 of `email`
    if shown and ":" in shown:
        shown = f"[{shown}]"
    if shown and port:
        shown += f":{port}"
    fingerprint = salted_hmac("confwatch.channel-label", url).hexdigest()[:6]
    return f"{scheme_of(url)}://{shown}/… #{fingerprint}"


def refuse_private(host, *, resolvable=False, any_name=False):
    """Raise ValidationError when the host resolves to an address that is not global
    (loopback, private, link-local, reserved), unless CONFWATCH_ALLOW_PRIVATE_WEBHOOKS.
    A host that does not resolve passes (Apprise puts tokens in the host's place), unless
    `resolvable` asks for it (a webhook's host): then it is refused even where private
    hosts are allowed."""
    allowed = settings.CONFWATCH_ALLOW_PRIVATE_WEBHOOKS
    if not host or (allowed and not resolvable):
        return
    addresses = resolve(host, any_name=any_name or resolvable)
    if not addresses and resolvable:
        raise ValidationError(f"The host {host} cannot be resolved.")
    if allowed:
        return
    for address in addresses:
        if not address.is_global:
            raise ValidationError(
                f"The host {host} resolves to {address}, a loopback or private address: "
                "alerts are not sent to internal services (CONFWATCH_ALLOW_PRIVATE_WEBHOOKS)."
            )


def resolve(host, *, any_name=False):
    """The addresses a host resolves to; a name that does not look like a host (an
    Apprise token) is not looked up unless `any_name` (a webhook's host, say "alerts")."""
    host = str(host).strip("[]")
    try:
        return [unmapped(ipaddress.ip_address(host))]
    except ValueError:
        pass
    if not (any_name or looks_like_host(host)):
        return []
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return [unmapped(ipaddress.ip_address(info[4][0].split("%")[0])) for info in found]


def unmapped(address):
    """An IPv4-mapped IPv6 address (::ffff:127.0.0.1) as the IPv4 address it is."""
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


# --------------------------------------------------------------------------- sending


def send(delivery, *, together=None):
    """Send the delivery, or the deliveries `together` (grouping.batches) as one message,
    to its subscription's channel. Returns the subject to record; raises SendFailed."""
    subscription = delivery.subscription
    if subscription is None or not subscription.is_channel:
        raise SendFailed("unsubscribed before it was sent", permanent=True)
    try:
        url = crypto.decrypt(subscription.channel_encrypted)
        secret = ""
        if subscription.webhook_secret_encrypted:
            secret = crypto.decrypt(subscription.webhook_secret_encrypted)
    except crypto.SecretUnreadable as error:
        raise SendFailed(str(error), permanent=True) from None
    try:
        context = grouping.group_context(together or [delivery], channel=True)
        if context is None:
            context = emails.alert_context(delivery, channel=True)
        if scheme_of(url) in WEBHOOK_SCHEMES:
            payload = webhook_payload(delivery, context, now=timezone.now())
        else:
            body = emails.alert_text(context)
    except Exception as error:  # a rendering bug must not stop the other deliveries
        logger.exception("could not build delivery %s", delivery.pk)
        raise SendFailed(f"could not build the message: {error}", permanent=True) from None
    try:
        if scheme_of(url) in WEBHOOK_SCHEMES:
            post_webhook(url, secret=secret, payload=payload, delivery_id=delivery.pk)
        else:
            notify(url, title=context["heading"], body=body, notify_type=notify_type(context))
    except SendFailed as error:
        error.subject = context["subject"]
        raise
    return context["subject"]


def timeout():
    return settings.CONFWATCH_CHANNEL_TIMEOUT


def notify(url, *, title, body, notify_type):
    """Send through Apprise; SendFailed with Apprise's reason when the channel did not
    take it (permanent for a 3xx or 4xx answer it names, except 408, 425 and 429)."""
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            reason = reason_from(captured.getvalue(), url)
            raise SendFailed(f"Apprise refuses this channel URL: {reason}", permanent=True)
        refuse_at_send(plugin.host)
        plugin.socket_connect_timeout = plugin.socket_read_timeout = timeout()
        plugin.redirects = False  # a redirect could lead to an internal address
        sent = plugin.notify(
            body=body, title=title, notify_type=notify_type, body_format=apprise.NotifyFormat.TEXT
        )
    if sent:
        return
    reason = reason_from(captured.getvalue(), url) or "the channel did not take the message"
    code = re.search(r"error=(\d{3})", reason)
    raise SendFailed(reason, permanent=bool(code) and permanent_status(int(code.group(1))))


def permanent_status(code):
    """A redirect (never followed) or a client error other than 408, 425 and 429."""
    return 300 <= code < 500 and code not in RETRYABLE_CLIENT_ERRORS


def refuse_at_send(host, *, any_name=False):
    try:
        refuse_private(host, any_name=any_name)
    except ValidationError as error:
        raise SendFailed(" ".join(error.messages), permanent=True) from None


def notify_type(context):
    if context["kind"] == Delivery.Kind.TEST:
        return apprise.NotifyType.INFO
    kinds = {event.kind for event in context["alert_events"]}
    if context["kind"] == Delivery.Kind.SETTLED or (kinds and kinds <= set(GOOD_NEWS)):
        return apprise.NotifyType.SUCCESS
    if kinds & set(TROUBLE) or context["kind"] == Delivery.Kind.FLAPPING:
        return apprise.NotifyType.FAILURE
    return apprise.NotifyType.WARNING


def post_webhook(url, *, secret, payload, delivery_id):
    """POST the signed body; SendFailed unless the receiver answers 2xx."""
    host, _ = webhook_host(url)
    refuse_at_send(host, any_name=True)  # a webhook's host is a host, dotted or not
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "confwatch-webhook/1",
        SIGNATURE_HEADER: signature(secret, body),
        TIMESTAMP_HEADER: str(payload["sent_at_unix"]),
        DELIVERY_HEADER: str(delivery_id),
    }
    try:
        with requests.post(
            http_url(url),
            data=body,
            headers=headers,
            timeout=(timeout(), timeout()),
            allow_redirects=False,
            stream=True,  # the answer's body is not read
        ) as response:
            status, reason = response.status_code, response.reason
    except requests.Timeout:
        raise SendFailed(f"{host} did not answer within {timeout():g} s") from None
    except requests.RequestException as error:
        # Not the error's text: it names the URL, whose path may carry a token.
        raise SendFailed(f"could not reach {host}: {type(error).__name__}") from None
    if 200 <= status < 300:
        return
    if 300 <= status < 400:
        raise SendFailed(
            f"{host} answered {status} {reason}: redirects are not followed", permanent=True
        )
    raise SendFailed(f"{host} answered {status} {reason}", permanent=permanent_status(status))


def signature(secret, body):
    """The X-Confwatch-Signature header's value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_payload(delivery, context, *, now):
    """The webhook's JSON body (schema confwatch.alert/1; the README documents it)."""
    grouped = context["kind"] == "group"
    conference = None
    if not grouped:
        conference = delivery.conference or emails.first_conference(context["alert_events"])
    return {
        "schema": SCHEMA,
        "delivery": delivery.pk,
        "event": context["kind"],
        "title": context["heading"],
        "sent_at": iso(now),
        "sent_at_unix": int(now.timestamp()),
        "conference": conference_json(conference),
        "changes": [change_json(event) for event in context["alert_events"]],
        "links": {
            "conference": emails.conference_url(conference) or None,
            "acknowledge": context["acknowledge_url"] or None,
        },
    }


def conference_json(conference):
    if conference is None:
        return None
    return {
        "id": conference.conference_id,
        "label": conference.label,
        "account": conference.account.name,
        "tags": list(conference.tags),
        "status": {
            "state": conference.state,
            "state_since": iso(conference.state_since),
            "active_members": conference.active_members,
            "hold": conference.hold,
            "mute": conference.mute,
            "poll_status": conference.poll_status,
        },
    }


def change_json(event):
    detail = event.detail if isinstance(event.detail, dict) else {}
    rule = None
    if event.kind in RULE_KINDS:
        rule = {"name": detail.get("rule", ""), "text": str(detail.get("text", ""))}
    return {
        "kind": event.kind,
        "text": emails.short_change(event),
        "previous": event.before,
        "current": event.after,
        "occurred_at": iso(event.occurred_at),
        "conference": event.conference.conference_id if event.conference else None,
        "account": event.account.name if event.account else None,
        "rule": rule,
    }


# --------------------------------------------------------------------------- test messages


def queue_test_message(subscription):
    """A test message to the subscription's target, through the outbox like any alert:
    the next send pass sends it, and the deliveries log shows how it went."""
    return Delivery.objects.create(
        kind=Delivery.Kind.TEST,
        subscription=subscription,
        email=subscription.email,
        send_after=timezone.now(),
    )
