"""Share links: a read-only page of one conference for a support ticket, reachable
without signing in until the link expires (7 days unless said otherwise) or is revoked.

The link carries a token signed with SECRET_KEY (its own salt) naming the ShareLink row
and its random key, so a changed token, a revoked or expired link and a link to a
conference that is gone all look the same: `link_for` returns None and the page answers
the same 404, revealing nothing about whether the conference exists.
"""

import re
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from conferences.alerting import schedules
from conferences.models import ShareLink

SALT = "confwatch.share"
DEFAULT_EXPIRY_SECONDS = 7 * 86400
TOKEN_IN_URL = re.compile(r"/share/([^/]+)/?$")


def clean_expiry(text):
    """Blank for the default (7 days), or a duration such as 2h or 3d (at most 31d)."""
    text = str(text or "").strip()
    if not text:
        return DEFAULT_EXPIRY_SECONDS
    seconds = schedules.parse_duration(text, what="expiry")
    if seconds <= 0:
        raise ValidationError("A share link must last at least a second.")
    return seconds


def create_link(*, conference, user=None, expires_in=DEFAULT_EXPIRY_SECONDS, now=None):
    now = now or timezone.now()
    return ShareLink.objects.create(
        conference=conference,
        key=secrets.token_urlsafe(24),
        created_by=user,
        expires_at=now + timedelta(seconds=expires_in),
    )


def token_for(link):
    return signing.dumps({"l": link.pk, "k": link.key}, salt=SALT)


def share_url(link):
    return settings.CONFWATCH_BASE_URL + reverse("conferences:shared", args=[token_for(link)])


def find_link(token):
    """The link a token names, whatever its state, or None when the token is not one."""
    try:
        data = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("l"), int):
        return None
    link = ShareLink.objects.select_related("conference").filter(pk=data["l"]).first()
    if link is None or not secrets.compare_digest(link.key, str(data.get("k", ""))):
        return None
    return link


def link_for(token, *, now=None):
    """The link a token names while it may be used (neither expired nor revoked)."""
    now = now or timezone.now()
    link = find_link(token)
    if link is None or link.revoked_at is not None or link.expires_at <= now:
        return None
    return link


def link_for_url(url):
    """The link an absolute or relative share URL names, or None."""
    match = TOKEN_IN_URL.search(urlsplit(str(url).strip()).path)
    return find_link(match.group(1)) if match else None


def revoke(link, *, now=None):
    if link.revoked_at is None:
        link.revoked_at = now or timezone.now()
        link.save(update_fields=["revoked_at"])
    return link


def links_of(conference, *, now=None):
    """The conference's links still usable, newest first, each with its `url`."""
    now = now or timezone.now()
    links = list(
        ShareLink.objects.filter(conference=conference, revoked_at__isnull=True, expires_at__gt=now)
        .select_related("created_by")
        .order_by("-created_at", "-id")[:20]
    )
    for link in links:
        link.url = share_url(link)
    return links
