"""Read-only API tokens: made by `manage.py api_token` or the admin, presented by scripts
as `Authorization: Bearer cw_...` to the JSON API (conferences/web/auth.py).

A token is `cw_` and 43 random URL-safe characters; it is shown once. The database keeps
its SHA-256 hash and its first characters (`prefix`, shown in lists, so not secret): a
request's token is found by its prefix (an indexed lookup, one query with its user) and
then compared by hash in constant time (`hmac.compare_digest`), so the time an answer
takes tells a guesser at most whether a prefix exists, never how much of the rest of a
guess was right.
"""

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from conferences.alerting import schedules
from conferences.models import ApiToken

SCHEME = "cw_"
SHAPE = re.compile(r"^cw_[A-Za-z0-9_-]{43}$")
PREFIX_LENGTH = len(SCHEME) + 8
# An expiry is at most a year away (blank: the token does not expire).
LONGEST_EXPIRY_DAYS = 366
# last_used_at moves on at most this often per token (one write a minute, not a request).
LAST_USED_EVERY = timedelta(minutes=1)


class Refused(Exception):
    """A token that cannot be used: its message says why, without telling apart an unknown
    token from a wrong one."""


def hash_of(text):
    return hashlib.sha256(text.encode()).hexdigest()


def clean_expiry(text):
    """Seconds until a new token expires: blank for never, else 90d, 12h..."""
    text = str(text or "").strip()
    if not text:
        return None
    seconds = schedules.parse_duration(text, what="expiry", longest_days=LONGEST_EXPIRY_DAYS)
    if seconds <= 0:
        raise ValidationError("A token must last at least a second.")
    return seconds


def find_user(username):
    User = get_user_model()
    try:
        return User.objects.get(username=username)
    except User.DoesNotExist:
        raise ValidationError(f"There is no user named {username!r}.") from None


def issue(token, *, expires_in=None, now=None):
    """Give an unsaved token (its name and user set) a new random text, and return that
    text: the row keeps only its hash and prefix."""
    now = now or timezone.now()
    text = SCHEME + secrets.token_urlsafe(32)
    token.token_hash = hash_of(text)
    token.prefix = text[:PREFIX_LENGTH]
    token.created_at = now
    token.expires_at = now + timedelta(seconds=expires_in) if expires_in else None
    return text


def clean_name(name):
    name = str(name or "").strip()
    longest = ApiToken._meta.get_field("name").max_length
    if not name or len(name) > longest:
        raise ValidationError(f"Give the token a name of 1 to {longest} characters.")
    if ApiToken.objects.filter(name=name).exists():
        raise ValidationError(f"A token named {name!r} exists already.")
    return name


def clean_user(user):
    if not user.is_active:
        raise ValidationError(f"User {user.username!r} is inactive; a token could not sign in.")
    return user


def create_token(*, name, user, expires_in=None, now=None):
    """A new token (the row, and its text: shown once, stored nowhere). Raises
    ValidationError for a blank or taken name or an inactive user."""
    token = ApiToken(name=clean_name(name), user=clean_user(user))
    text = issue(token, expires_in=expires_in, now=now)
    try:
        with transaction.atomic():
            token.save()
    except IntegrityError:  # the same name, saved a moment ago
        raise ValidationError(f"A token named {token.name!r} exists already.") from None
    return token, text


def revoke_token(name, *, now=None):
    """Revoke the named token (once: revoking again keeps the first time)."""
    try:
        token = ApiToken.objects.get(name=name)
    except ApiToken.DoesNotExist:
        raise ValidationError(f"There is no token named {name!r}.") from None
    if token.revoked_at is None:
        token.revoked_at = now or timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def authenticate(text, *, now=None):
    """The user a presented token reads as. Raises Refused for a malformed, unknown,
    wrong, revoked or expired token, or one whose user is inactive. One query (none for
    a malformed token), and one more at most once a minute to note its use."""
    if not SHAPE.match(text):
        raise Refused("That is not an API token.")
    digest = hash_of(text)
    now = now or timezone.now()
    found = None
    for token in ApiToken.objects.filter(prefix=text[:PREFIX_LENGTH]).select_related("user"):
        if hmac.compare_digest(token.token_hash, digest):
            found = token
    if found is None:
        raise Refused("Unknown API token.")
    if found.revoked_at is not None:
        raise Refused("This API token was revoked.")
    if not found.usable_at(now):
        raise Refused("This API token has expired.")
    if not found.user.is_active:
        raise Refused("This API token's user is inactive.")
    if found.last_used_at is None or now - found.last_used_at >= LAST_USED_EVERY:
        # Conditional: several workers seeing the same token write it once.
        ApiToken.objects.filter(pk=found.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_EVERY)
        ).update(last_used_at=now)
    return found.user
