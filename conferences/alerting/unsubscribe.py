"""One-click unsubscribe links: a signed token naming one subscription, no login needed.

The token is signed with SECRET_KEY (django.core.signing, its own salt), so it cannot be
forged for another subscription, and it names the recipient too, so a token stays
useless once its subscription was deleted and its id reused. A genuine link whose
subscription is gone (it was used, or the subscription deleted) says "already
unsubscribed"; only a forged or damaged one is "not valid".
"""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

from conferences.models import Subscription

SALT = "confwatch.unsubscribe"


def token_for(subscription):
    return signing.dumps({"s": subscription.pk, "e": subscription.email}, salt=SALT)


def unsubscribe_url(subscription):
    """The absolute link for the subscription's emails (and their List-Unsubscribe)."""
    path = reverse("conferences:unsubscribe", args=[token_for(subscription)])
    return settings.CONFWATCH_BASE_URL + path


@dataclass(frozen=True)
class Link:
    """A genuine unsubscribe link: the address it was sent to, and its subscription
    (None once it is gone)."""

    email: str
    subscription: Subscription | None


def read_link(token):
    """The Link a token names, or None when the token is forged or damaged."""
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("s"), int)
        or not isinstance(data.get("e"), str)
    ):
        return None
    subscription = Subscription.objects.filter(pk=data["s"], email=data["e"]).first()
    return Link(email=data["e"], subscription=subscription)
