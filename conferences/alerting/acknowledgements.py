"""Acknowledgements: someone says "I am on it" about a conference's alerts.

An alert is acknowledged from the signed link in its email (no sign-in: the token names
the delivery, its conference and its recipient, signed with SECRET_KEY under its own
salt, so it cannot be forged for another alert) or from the conference page. While an
acknowledgement is in force the fan-out sends nothing more about the conference; it ends
at the conference's next state change (that change is sent) or when it expires.

An email's link acts once: the acknowledgement it made names its delivery, and using the
link again shows that acknowledgement and changes nothing. It works for
CONFWATCH_ACK_LINK_DAYS days after its email (the signature says when it was made), so
an old email cannot silence a conference.

Each acknowledgement is stored with who, what, why, when and until when, and recorded as
an `acknowledged` event (never alerted), so the timeline shows it with the rest.
`for_conference` returns them for a page.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from conferences.alerting import schedules
from conferences.models import Acknowledgement, Delivery, Event, EventKind

SALT = "confwatch.acknowledge"
MAX_REASON = 500
WHOLE_CONFERENCE = "the conference's alerts"


def token_for(delivery):
    return signing.dumps(
        {"d": delivery.pk, "c": delivery.conference_id, "e": delivery.email}, salt=SALT
    )


def acknowledge_url(delivery):
    """The absolute link in an alert email about a conference ("" for other emails)."""
    if delivery.conference_id is None:
        return ""
    path = reverse("conferences:acknowledge-alert", args=[token_for(delivery)])
    return settings.CONFWATCH_BASE_URL + path


@dataclass(frozen=True)
class Link:
    """An acknowledge link that is genuine: the delivery it names, and whether it is
    older than CONFWATCH_ACK_LINK_DAYS."""

    delivery: Delivery
    expired: bool


def link_days():
    return settings.CONFWATCH_ACK_LINK_DAYS


def read_link(token):
    """The Link a token names, or None when the token is forged, damaged or names a
    delivery that is gone."""
    try:
        data = signing.loads(token, salt=SALT, max_age=timedelta(days=link_days()))
        expired = False
    except signing.SignatureExpired:
        data = signing.loads(token, salt=SALT)  # genuine, only too old
        expired = True
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("d"), int):
        return None
    delivery = (
        Delivery.objects.select_related("conference")
        .filter(pk=data["d"], conference_id=data.get("c"), email=data.get("e"))
        .exclude(conference=None)
        .first()
    )
    return None if delivery is None else Link(delivery=delivery, expired=expired)


def made_by_link(delivery):
    """The acknowledgement the delivery's link made, or None while it is unused."""
    return Acknowledgement.objects.filter(delivery=delivery).order_by("created_at", "id").first()


def acknowledge_alert(*, delivery, by, user=None, reason="", expires_in=None, now=None):
    """Acknowledge from the alert's link, once: (the acknowledgement, True), or (the one
    the link made before, False) when it was used already (then nothing changes). Two
    uses at the same moment wait for each other on the delivery's row."""
    with transaction.atomic():
        Delivery.objects.select_for_update().filter(pk=delivery.pk).values_list("pk").first()
        earlier = made_by_link(delivery)
        if earlier is not None:
            return earlier, False
        acknowledgement = acknowledge(
            conference=delivery.conference,
            by=by,
            user=user,
            delivery=delivery,
            reason=reason,
            expires_in=expires_in,
            now=now,
        )
        return acknowledgement, True


def clean_reason(text):
    text = " ".join(str(text or "").split())
    if len(text) > MAX_REASON:
        raise ValidationError(f"The reason is longer than {MAX_REASON} characters.")
    return text


def clean_expiry(text):
    """Blank (until the state changes) or a duration such as 30m or 2h, in seconds."""
    text = str(text or "").strip()
    if not text:
        return None
    return schedules.parse_duration(text, what="expiry")


def acknowledge(*, conference, by, user=None, delivery=None, reason="", expires_in=None, now=None):
    """Acknowledge the conference's alerts; return the Acknowledgement."""
    now = now or timezone.now()
    what = (delivery.subject if delivery is not None else "") or WHOLE_CONFERENCE
    expires_at = now + timedelta(seconds=expires_in) if expires_in else None
    with transaction.atomic():
        acknowledgement = Acknowledgement.objects.create(
            conference=conference,
            delivery=delivery,
            user=user,
            by=by[:254],
            what=what[:300],
            reason=reason,
            created_at=now,
            expires_at=expires_at,
        )
        Event.objects.create(
            kind=EventKind.ACKNOWLEDGED,
            account_id=conference.account_id,
            conference=conference,
            occurred_at=now,
            after=by[:254],
            source="user",
            handled_at=now,
            detail={
                "by": by,
                "what": what,
                "reason": reason,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return acknowledgement


def in_force(acknowledgement, now):
    if acknowledgement.ended_at is not None:
        return False
    return acknowledgement.expires_at is None or acknowledgement.expires_at > now


def for_conference(conference, *, now=None, limit=50):
    """The conference's acknowledgements, newest first, each with `in_force` and
    `status` ("in force until ...", "ended: the state changed", "expired") set."""
    now = now or timezone.now()
    found = list(
        Acknowledgement.objects.filter(conference=conference)
        .select_related("user")
        .order_by("-created_at", "-id")[:limit]
    )
    for acknowledgement in found:
        acknowledgement.in_force = in_force(acknowledgement, now)
        if acknowledgement.ended_at is not None:
            acknowledgement.status = f"ended: {acknowledgement.ended_because}"
        elif not acknowledgement.in_force:
            acknowledgement.status = "expired"
        elif acknowledgement.expires_at is not None:
            acknowledgement.status = "in force until it expires or the state changes"
        else:
            acknowledgement.status = "in force until the state changes"
    return found


class Silencer:
    """Within the fan-out: which events acknowledgements silence. A state change that
    happened after an acknowledgement ends it and is sent."""

    def __init__(self, events, *, now):
        pks = {event.conference_id for event in events if event.conference_id is not None}
        self.open = {}
        acknowledgements = Acknowledgement.objects.filter(
            conference_id__in=pks, ended_at__isnull=True
        ).order_by("created_at")
        for acknowledgement in acknowledgements:
            if in_force(acknowledgement, now):
                self.open.setdefault(acknowledgement.conference_id, []).append(acknowledgement)
        self.silenced = 0

    def silences(self, event):
        acknowledgements = self.open.get(event.conference_id)
        if not acknowledgements:
            return False
        if event.kind == EventKind.STATE_CHANGED:
            ended = [a for a in acknowledgements if event.occurred_at >= a.created_at]
            if ended:
                Acknowledgement.objects.filter(pk__in=[a.pk for a in ended]).update(
                    ended_at=event.occurred_at,
                    ended_because=f"the state changed to {event.after}",
                )
                acknowledgements = [a for a in acknowledgements if a not in ended]
                self.open[event.conference_id] = acknowledgements
                if not acknowledgements:
                    return False
        self.silenced += 1
        return True
