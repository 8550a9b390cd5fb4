"""Catapult accounts (credentials, budget, API host) and users' preferences."""

import math
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from conferences.catapult import REAL_API_BASE_URL
from conferences.models.vocabulary import PollStatus
from conferences.registry import crypto

# An account's base URL: the schemes it may use.
API_URL_SCHEMES = ("http", "https")


def api_host(url):
    """The host an account's base URL sends to, once the URL is plain: http or https,
    printable ASCII only (no whitespace, control character or backslash), no user name or
    password, no query or fragment. The host is the one urllib3 (which requests sends
    through) connects to, and urllib.parse must read the same host and port: a URL that
    parsers read differently is refused whatever host it seems to name."""
    if not isinstance(url, str) or not url:
        raise ValidationError("The base URL must be an http or https URL.")
    bad = next((char for char in url if not "!" <= char <= "~"), None)
    if bad is not None:
        raise ValidationError(
            f"The base URL must not contain {bad!r}: no whitespace, control or non-ASCII "
            "characters."
        )
    if "\\" in url:
        raise ValidationError(f"The base URL must not contain a backslash: {url!r}.")
    try:
        sent_to = parse_url(url)
        read = urlsplit(url)
        read_host, read_port = read.hostname, read.port
    except (LocationParseError, ValueError):
        raise ValidationError(f"{url!r} is not a URL confwatch can read.") from None
    if sent_to.scheme not in API_URL_SCHEMES or read.scheme.lower() not in API_URL_SCHEMES:
        raise ValidationError(f"The base URL must start with http:// or https://, not {url!r}.")
    if sent_to.auth is not None or read.username is not None or "@" in read.netloc:
        raise ValidationError(
            "The base URL must not carry a user name or password (an @ before the host); "
            "the account's credentials are set apart."
        )
    if "?" in url or "#" in url:
        raise ValidationError(f"The base URL must not have a query (?) or a fragment (#): {url!r}.")
    host = (sent_to.host or "").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # urllib3 keeps an IPv6 address's brackets, urllib.parse does not
    if host != (read_host or "") or sent_to.port != read_port:
        raise ValidationError(
            f"{url!r} names its host ambiguously: urllib3 reads {sent_to.host!r}, "
            f"urllib.parse {read_host!r}; write the URL plainly."
        )
    return host


def validate_api_host(url):
    """An account's base URL must be plain (`api_host`) and name a host of
    CONFWATCH_ALLOWED_API_HOSTS: its credentials are sent there, so it must never point at
    an arbitrary (internal) host."""
    host = api_host(url)
    if host not in settings.CONFWATCH_ALLOWED_API_HOSTS:
        allowed = ", ".join(settings.CONFWATCH_ALLOWED_API_HOSTS)
        raise ValidationError(
            f"{host or url!r} is not an allowed API host (CONFWATCH_ALLOWED_API_HOSTS: {allowed})."
        )


# An account's request budget (requests per second): a finite number within these bounds.
REQUEST_BUDGET_MIN, REQUEST_BUDGET_MAX = 0.05, 10_000.0
# Polling spends at most this share of the budget: the API counts requests as they
# arrive, and network (or a loaded machine's thread) jitter must not push two requests
# closer together than its limit. 0.9 leaves (1/0.9 - 1) s = 111 ms a second of slack,
# whatever the budget (polling/budget.py, the overview). 0.97 (31 ms) and 0.95 (52 ms)
# were both exceeded on a loaded 2-core machine: 11 arrivals in one second at a budget
# of 10, the simulator's arrival clock being late on the test's own threads.
BUDGET_SHARE = 0.9


def validate_request_budget(value):
    """Refuse a budget that is not a finite number within the documented bounds (nan,
    inf or 1e308 would stop polling)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"The request budget must be a finite number, not {value!r}.")
    if not REQUEST_BUDGET_MIN <= value <= REQUEST_BUDGET_MAX:
        raise ValidationError(
            f"The request budget must be between {REQUEST_BUDGET_MIN:g} and "
            f"{REQUEST_BUDGET_MAX:g} requests per second, not {value:g}."
        )


class Account(models.Model):
    """A Catapult user whose conferences confwatch polls, with its request budget."""

    name = models.CharField(max_length=100, unique=True)
    user_id = models.CharField(max_length=100, help_text="Catapult user id, e.g. u-abc123")
    api_token_encrypted = models.TextField(editable=False)
    api_secret_encrypted = models.TextField(editable=False)
    base_url = models.URLField(default=REAL_API_BASE_URL, validators=[validate_api_host])
    request_budget = models.FloatField(
        default=1.0,
        validators=[validate_request_budget],
        help_text=(
            "Requests per second confwatch may spend on this account "
            f"({REQUEST_BUDGET_MIN:g} to {REQUEST_BUDGET_MAX:,g})."
        ),
    )
    # Poll bookkeeping: the earliest time the next request may be sent.
    budget_next_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set after a 429 (until the reset time) or rejected credentials.
    paused_until = models.DateTimeField(null=True, blank=True)
    problem = models.CharField(max_length=30, choices=PollStatus.choices, blank=True)
    problem_message = models.TextField(blank=True)
    problem_at = models.DateTimeField(null=True, blank=True)
    # When the current problem was reported as a polling_problem event.
    problem_reported_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name

    def set_credentials(self, *, token, secret):
        self.api_token_encrypted = crypto.encrypt(token)
        self.api_secret_encrypted = crypto.encrypt(secret)

    def credentials(self):
        return (
            crypto.decrypt(self.api_token_encrypted),
            crypto.decrypt(self.api_secret_encrypted),
        )

    def is_paused(self, now=None):
        return self.paused_until is not None and self.paused_until > (now or timezone.now())

    def settings_problems(self):
        """What is wrong with the stored budget and base URL, as sentences (none when
        both are good): every entry refuses such values, but an older row, a raw SQL
        update or a narrowed CONFWATCH_ALLOWED_API_HOSTS may leave one behind."""
        problems = []
        for validate, value in (
            (validate_request_budget, self.request_budget),
            (validate_api_host, self.base_url),
        ):
            try:
                validate(value)
            except ValidationError as error:
                problems.extend(error.messages)
        return problems


class UserPreference(models.Model):
    """What one user chose for the pages: the time zone their times are shown in."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    time_zone = models.CharField(max_length=60, blank=True, help_text="Blank: the site's.")

    def __str__(self):
        return f"{self.user}: {self.time_zone or 'site time zone'}"
