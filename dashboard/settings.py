"""confwatch settings, read from the environment.

Every value has a development default that points at the local Postgres and Redis.
Set CONFWATCH_ENV=production to require the values that must never have a default.
The helpers below refuse bad values loudly: DEBUG=maybe is an error, not False.
"""

import ipaddress
import math
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


def env_str(name, default=None):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value


def env_bool(name, default):
    value = env_str(name)
    if value is None:
        return default
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use true or false.")


def env_number(name, default, *, kind=float, minimum=None, maximum=None):
    value = env_str(name)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a {kind.__name__}.") from None
    if not math.isfinite(number):
        raise ImproperlyConfigured(f"{name}={value!r} is not a finite number.")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} must be at least {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={value!r} must be at most {maximum}.")
    return number


def env_list(name, default, *, allow_empty=False):
    """A comma-separated list; unset gives the default. Set to nothing ("" or " , "),
    it is refused (a list of keys or hosts that is empty by mistake would otherwise pass),
    unless an empty list means something (allow_empty)."""
    value = os.environ.get(name)
    if value is None:
        return default
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items and not allow_empty:
        raise ImproperlyConfigured(
            f"{name}={value!r} lists nothing; give comma-separated values, or unset it for "
            "the default."
        )
    return items


CONFWATCH_ENV = env_str("CONFWATCH_ENV", "development")
if CONFWATCH_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"CONFWATCH_ENV={CONFWATCH_ENV!r} is not known; use development or production."
    )
PRODUCTION = CONFWATCH_ENV == "production"

DEBUG = env_bool("DEBUG", not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured(
        "DEBUG=true is refused in production (CONFWATCH_ENV=production): debug pages show "
        "settings and code to anyone. Leave DEBUG unset or set it to false."
    )

SECRET_KEY = env_str("SECRET_KEY")
if SECRET_KEY is None:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. A production run (CONFWATCH_ENV=production) refuses to "
            "start without it: set SECRET_KEY to a long random string."
        )
    SECRET_KEY = "development-only-insecure-secret-key-do-not-use-in-production"
# Django's own measure of a strong key (check --deploy's W009): long and varied.
if PRODUCTION and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for production: use at least 50 characters with at least 5 "
        "different ones, e.g. from python -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )

# Keys for the Catapult API token and secret stored encrypted at rest, comma-separated:
# the first encrypts, all decrypt (rotate_keys re-encrypts with the first). Defaults to
# SECRET_KEY; set it separately so SECRET_KEY can rotate without losing them.
CONFWATCH_ENCRYPTION_KEY = env_list("CONFWATCH_ENCRYPTION_KEY", [SECRET_KEY])

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is not set; list the host names confwatch serves.")
if PRODUCTION and "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS='*' is refused in production (CONFWATCH_ENV=production): any Host "
        "header would be accepted. List the host names confwatch serves."
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [], allow_empty=True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "template_partials",
    "conferences",
    "axes",
]

MIDDLEWARE = [
    # First: every response, a redirect too, carries X-Request-ID, every log line its id.
    "conferences.web.middleware.RequestId",
    # Then: times the whole request, by the view it resolved to (/metrics).
    "conferences.ops.metrics.RequestLatency",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "conferences.web.middleware.RejectNulBytes",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "conferences.web.middleware.LoginRequired",
    "conferences.web.middleware.IdleSessionTimeout",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "conferences.web.middleware.ContentSecurityPolicy",
    # Last: answers a locked-out sign-in with the lockout page.
    "axes.middleware.AxesMiddleware",
]
# An htmx request without a session is sent to sign-in with HX-Redirect; times are shown
# in the signed-in user's time zone (after AuthenticationMiddleware).
MIDDLEWARE += ["conferences.web.middleware.UserTimeZone"]

if PRODUCTION:
    # Serves collected static files (the release step runs collectstatic).
    security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware")
    MIDDLEWARE.insert(security + 1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # {{ url|without_userinfo }} in every template, the admin's too.
            "builtins": ["conferences.templatetags.confwatch_redact"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/confwatch"),
        conn_max_age=env_number("DATABASE_CONN_MAX_AGE", 60, kind=int, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...).")
# Postgres' JIT compiles a query whose estimated cost is high; confwatch's queries are
# short and indexed, and the overview's row query at 2 M history rows spent 27 of its
# 36 ms compiling (make bench-scale). Options given in DATABASE_URL (?options=...) stay.
_options = DATABASES["default"].setdefault("OPTIONS", {})
_options["options"] = " ".join(filter(None, [_options.get("options"), "-c jit=off"]))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "conferences:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
# The admin and any datetime Django writes itself name the zone, as the pages do.
FORMAT_MODULE_PATH = "dashboard.formats"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION

# Celery: Redis as broker, no result backend (tasks write their results to Postgres).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = False
CELERY_BEAT_SCHEDULE_FILENAME = env_str("CELERY_BEAT_SCHEDULE_FILENAME", "celerybeat-schedule")
# Celery's Django fixup closes the database connection before and after every task
# unless told to reuse it: each callback batch, alert pass and round then opened a new
# Postgres connection (a backend started, its catalog caches read again). Tasks keep
# their process's connection instead, as requests do, and dashboard/celery.py closes it
# when Django would (CONN_MAX_AGE, or unusable after an error).
CELERY_DB_REUSE_MAX = 1_000_000
# Polling has a queue of its own, so that a round never waits behind alert passes and
# callback batches (make bench-desk: on one queue, rounds queued behind them and the p99
# staleness was 1.7 times the best the budgets allow). The Procfile's `poller` consumes
# it and its `worker` the rest; a worker started without -Q consumes both.
POLLING_QUEUE = "polling"
CELERY_TASK_QUEUES = (
    Queue("celery", routing_key="celery"),
    Queue(POLLING_QUEUE, routing_key=POLLING_QUEUE),
)
CELERY_TASK_ROUTES = {
    "conferences.tasks.poll_round": {"queue": POLLING_QUEUE},
    "conferences.tasks.poll_now": {"queue": POLLING_QUEUE},
}

# Email (alerts).
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_number("EMAIL_PORT", 25, kind=int, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_number("EMAIL_TIMEOUT", 10, kind=int, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "confwatch@localhost")

# Hosts an account's base URL may name (its credentials are sent there): the real API's,
# plus loopback only where a deployment says so (the demo and the tests do).
CONFWATCH_ALLOWED_API_HOSTS = [
    host.lower() for host in env_list("CONFWATCH_ALLOWED_API_HOSTS", ["api.catapult.inetwork.com"])
]

# Alerts.
# Absolute address of the dashboard, for links in emails (no trailing slash needed).
CONFWATCH_BASE_URL = env_str("CONFWATCH_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Right-hand side of the alerts' Message-IDs.
CONFWATCH_MAIL_DOMAIN = env_str("CONFWATCH_MAIL_DOMAIN", "confwatch.localhost")
# Changes of one conference for one recipient within this many seconds after an email go
# out together in the next one; 0 sends one email per change.
CONFWATCH_ALERT_COALESCE_SECONDS = env_number("CONFWATCH_ALERT_COALESCE_SECONDS", 60.0, minimum=0)
# Alerts for one target within this many seconds after a message to it go out together,
# one message listing every conference (alerting/grouping.py); 0 sends one message per
# conference, as without grouping.
CONFWATCH_ALERT_GROUP_SECONDS = env_number("CONFWATCH_ALERT_GROUP_SECONDS", 30.0, minimum=0)
# A polling problem is reported once it lasted this long (seconds).
CONFWATCH_PROBLEM_AFTER_SECONDS = env_number("CONFWATCH_PROBLEM_AFTER_SECONDS", 120.0, minimum=0)
# More than this many state, hold or mute changes of one conference within the window
# (seconds) is flapping: reported once, and once when it settles (a window without any).
CONFWATCH_FLAP_CHANGES = env_number("CONFWATCH_FLAP_CHANGES", 6, kind=int, minimum=2)
CONFWATCH_FLAP_WINDOW_SECONDS = env_number("CONFWATCH_FLAP_WINDOW_SECONDS", 600.0, minimum=10)
# At most this many alert emails per recipient per hour; the rest go out as one digest.
CONFWATCH_ALERT_HOURLY_CAP = env_number("CONFWATCH_ALERT_HOURLY_CAP", 30, kind=int, minimum=1)
# Beat runs the fan-out and the sender this often (seconds).
CONFWATCH_ALERT_SECONDS = env_number("CONFWATCH_ALERT_SECONDS", 3.0, minimum=0.5)
# Beat evaluates the alert rules this often (seconds): a rule fires at most this long
# after its duration. Every alert pass used to evaluate them, and at a busy hour (alert
# passes back to back) that took most of a worker.
CONFWATCH_RULE_SECONDS = env_number("CONFWATCH_RULE_SECONDS", 10.0, minimum=0.5)
# A sender holds what it claimed this long (seconds); a dead sender's claims are retried
# after it.
CONFWATCH_SEND_CLAIM_SECONDS = env_number("CONFWATCH_SEND_CLAIM_SECONDS", 120.0, minimum=1)
# The sender renews the claim before each send, which must end within it: opening the
# connection and the message's slowest answer take up to EMAIL_TIMEOUT each.
if CONFWATCH_SEND_CLAIM_SECONDS < 2 * EMAIL_TIMEOUT:
    raise ImproperlyConfigured(
        f"CONFWATCH_SEND_CLAIM_SECONDS={CONFWATCH_SEND_CLAIM_SECONDS:g} must be at least "
        f"twice EMAIL_TIMEOUT ({EMAIL_TIMEOUT}), so that one send ends within its claim."
    )
# Channels (Apprise and confwatch's signed webhook): each connect and each read of one
# channel call waits at most this long (seconds; EMAIL_TIMEOUT unless set); the claim
# covers both.
CONFWATCH_CHANNEL_TIMEOUT = env_number("CONFWATCH_CHANNEL_TIMEOUT", EMAIL_TIMEOUT, minimum=0.1)
if CONFWATCH_SEND_CLAIM_SECONDS < 2 * CONFWATCH_CHANNEL_TIMEOUT:
    raise ImproperlyConfigured(
        f"CONFWATCH_SEND_CLAIM_SECONDS={CONFWATCH_SEND_CLAIM_SECONDS:g} must be at least "
        f"twice CONFWATCH_CHANNEL_TIMEOUT ({CONFWATCH_CHANNEL_TIMEOUT:g}), so that one "
        "channel call ends within its claim."
    )
# Channel and webhook hosts resolving to loopback, private, link-local or reserved
# addresses are refused (when subscribing and when sending) unless this is true, so the
# alert sender cannot reach internal services. Development allows them.
CONFWATCH_ALLOW_PRIVATE_WEBHOOKS = env_bool("CONFWATCH_ALLOW_PRIVATE_WEBHOOKS", not PRODUCTION)
# Longest wait (seconds) between two tries of a delivery the mail server refused for now.
CONFWATCH_SEND_MAX_BACKOFF = env_number("CONFWATCH_SEND_MAX_BACKOFF", 900.0, minimum=1)
# An alert email's acknowledge link works once, for this many days after the email.
CONFWATCH_ACK_LINK_DAYS = env_number("CONFWATCH_ACK_LINK_DAYS", 7, kind=int, minimum=1)

# Polling.
# How often each active or created conference is polled at most, in seconds.
CONFWATCH_POLL_INTERVAL = env_number("CONFWATCH_POLL_INTERVAL", 10.0, minimum=1)
# How often beat starts a round, in seconds; a round spends about this much budget, a
# quarter round more (polling/claims.ROUND_OVERLAP), so that a late next round leaves no gap.
CONFWATCH_ROUND_SECONDS = env_number("CONFWATCH_ROUND_SECONDS", 1.0, minimum=0.5)
# A round's requests must be answered within this many seconds of its start; what is
# still unanswered then is abandoned and recorded as such. Claims outlive it by the
# request timeouts, so no other round polls an abandoned conference meanwhile.
CONFWATCH_ROUND_DEADLINE = env_number("CONFWATCH_ROUND_DEADLINE", 10.0, minimum=1)
# Share of every round's budget kept for created and never-observed conferences (when
# they are due), so that they are polled within a bounded time however busy the
# active ones keep the budget.
CONFWATCH_BACKGROUND_SHARE = env_number(
    "CONFWATCH_BACKGROUND_SHARE", 0.25, minimum=0.0, maximum=1.0
)
# Requests of one account in flight at once (also its HTTP connection pool size); 0 sizes
# it from the account's budget and the latency seen lately (2 to 64).
CONFWATCH_POLL_CONCURRENCY = env_number("CONFWATCH_POLL_CONCURRENCY", 0, kind=int, minimum=0)
# Longest wait between polls of a failing or missing conference, in seconds.
CONFWATCH_MAX_BACKOFF = env_number("CONFWATCH_MAX_BACKOFF", 900.0, minimum=1)
# Pause after the API rejects an account's credentials, in seconds.
CONFWATCH_CREDENTIALS_PAUSE = env_number("CONFWATCH_CREDENTIALS_PAUSE", 600.0, minimum=1)
CONFWATCH_HTTP_TIMEOUT = (
    env_number("CONFWATCH_HTTP_CONNECT_TIMEOUT", 3.05, minimum=0.1),
    env_number("CONFWATCH_HTTP_READ_TIMEOUT", 10.0, minimum=0.1),
)
# Longest a Catapult request may take in all (connect, headers and the whole body), in
# seconds, and the largest answer read (bytes): a bigger one is a malformed answer.
CONFWATCH_HTTP_TOTAL_TIMEOUT = env_number("CONFWATCH_HTTP_TOTAL_TIMEOUT", 15.0, minimum=0.1)
CONFWATCH_HTTP_MAX_BYTES = env_number("CONFWATCH_HTTP_MAX_BYTES", 1_048_576, kind=int, minimum=1024)
# How often the pages ask for fresh status, in seconds.
CONFWATCH_PAGE_REFRESH = env_number("CONFWATCH_PAGE_REFRESH", 2, kind=int, minimum=1)

# Members and callbacks (conferences/recording/members.py, conferences/callbacks/receiver.py).
# How often the members list of an active conference is read, at most (seconds); members
# reads share what the conference reads leave of the budget.
CONFWATCH_MEMBERS_INTERVAL = env_number("CONFWATCH_MEMBERS_INTERVAL", 30.0, minimum=1)
# Most pages of one conference's members list read in one go; the rest is left unread.
CONFWATCH_MEMBERS_MAX_PAGES = env_number("CONFWATCH_MEMBERS_MAX_PAGES", 50, kind=int, minimum=1)
# Share of each round's budget kept for members reads when they are due (the rest of
# them share what the conference reads leave).
CONFWATCH_MEMBERS_SHARE = env_number("CONFWATCH_MEMBERS_SHARE", 0.1, minimum=0.0, maximum=1.0)
# Largest callback body accepted (bytes); a bigger one is answered 413.
CONFWATCH_CALLBACK_MAX_BYTES = env_number(
    "CONFWATCH_CALLBACK_MAX_BYTES", 65536, kind=int, minimum=1024
)
# Callback events accepted per account and second; more is answered 429.
CONFWATCH_CALLBACK_RATE = env_number("CONFWATCH_CALLBACK_RATE", 50, kind=int, minimum=1)
# A callback about a conference makes it due (for the budgeted rounds' confirming read)
# at most this often (seconds).
CONFWATCH_CALLBACK_CONFIRM_SECONDS = env_number(
    "CONFWATCH_CALLBACK_CONFIRM_SECONDS", 1.0, minimum=0
)
# Conferences that callback events may register per account and hour; events about
# further unknown ids are kept (applied if the id is tracked later) and counted.
CONFWATCH_CALLBACK_AUTOTRACK_PER_HOUR = env_number(
    "CONFWATCH_CALLBACK_AUTOTRACK_PER_HOUR", 100, kind=int, minimum=0
)

# LOG_FORMAT=json: one JSON object per line for a log pipeline, with the request id,
# account and conference where known (conferences/ops/logs.py); text, for people, is the
# default. A Celery worker then keeps this configuration instead of its own.
LOG_FORMAT = env_str("LOG_FORMAT", "text")
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} is not known; use text or json.")
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT == "text"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "conferences.ops.logs.JsonLines"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        },
        "null": {"class": "logging.NullHandler"},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "urllib3": {"level": "WARNING"},
        # Apprise's lines may quote a channel URL's secrets: conferences/alerting/channels.py
        # captures them (without the URL) into the delivery's last error instead.
        "apprise": {"handlers": ["null"], "propagate": False},
    },
}

# Security: sign-in throttling, cookies, sessions, HTTPS, CSP, retention.
# Sign-in throttling (django-axes): after CONFWATCH_LOGIN_FAILURES wrong passwords for one
# user name from one address, that user name is refused from that address for
# CONFWATCH_LOGIN_LOCKOUT_SECONDS. Locking the pair, not the name alone or the address
# alone, keeps a stranger from locking a real user out (by guessing their name from
# elsewhere) or everyone behind a shared address (by failing under other names).
AUTHENTICATION_BACKENDS = [
    "conferences.web.auth.LoginThrottle",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_number("CONFWATCH_LOGIN_FAILURES", 5, kind=int, minimum=1)
AXES_COOLOFF_TIME = timedelta(
    seconds=env_number("CONFWATCH_LOGIN_LOCKOUT_SECONDS", 900, kind=int, minimum=1)
)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# No row per successful sign-in (that table would only grow); failed attempts are kept
# while they count, and reset by a successful sign-in or the lockout's end.
AXES_DISABLE_ACCESS_LOG = True
# The client's address: REMOTE_ADDR, or behind CONFWATCH_PROXY_COUNT proxies (a TLS
# proxy, a load balancer) the X-Forwarded-For entry that many hops from the end.
CONFWATCH_PROXY_COUNT = env_number("CONFWATCH_PROXY_COUNT", 0, kind=int, minimum=0)
if CONFWATCH_PROXY_COUNT:
    AXES_IPWARE_PROXY_COUNT = CONFWATCH_PROXY_COUNT
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# Sessions end after this many seconds without a page view (htmx's live updates do not
# count as activity).
SESSION_COOKIE_AGE = env_number("CONFWATCH_SESSION_IDLE_SECONDS", 3600, kind=int, minimum=60)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # the pages send the token from the template, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# HTTPS in production. Behind a TLS proxy that sets X-Forwarded-Proto, set
# CONFWATCH_TLS_PROXY=true so a request it forwarded counts as secure.
if env_bool("CONFWATCH_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
# Load balancers probe and Prometheus scrapes over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_number(
    "SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0, kind=int, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Preloading commits the whole domain to HTTPS in browsers for good: the operator's
# choice (SECURE_HSTS_PRELOAD=true), not a default, so check --deploy does not ask for it.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Django's password reset needs mail to staff addresses; it is switched off (an admin
# sets a new password in the admin, or `manage.py changepassword`).

# /health/ calls alerts late (status "degraded") when one waited longer than this (s).
CONFWATCH_HEALTH_ALERT_AGE = env_number("CONFWATCH_HEALTH_ALERT_AGE", 300.0, minimum=1)

# Retention: records older than this many days are deleted, in small batches, by a task
# beat sends every CONFWATCH_RETENTION_SECONDS. A conference's current status is kept.
CONFWATCH_RETENTION_DAYS = {
    "history": env_number("CONFWATCH_KEEP_HISTORY_DAYS", 180, kind=int, minimum=1),
    "events": env_number("CONFWATCH_KEEP_EVENTS_DAYS", 180, kind=int, minimum=1),
    "poll_errors": env_number("CONFWATCH_KEEP_POLL_ERRORS_DAYS", 30, kind=int, minimum=1),
    "deliveries": env_number("CONFWATCH_KEEP_DELIVERIES_DAYS", 90, kind=int, minimum=1),
}
CONFWATCH_RETENTION_SECONDS = env_number("CONFWATCH_RETENTION_SECONDS", 3600.0, minimum=60)
# Beat's scheduler logs a broker outage once, not a traceback per task it could not send.
CELERY_BEAT_SCHEDULER = "conferences.ops.outages:BeatScheduler"
# The development server logs every request's path, django.request the path of a 404:
# the keys of callback URLs, share, acknowledge and unsubscribe links are masked ("…") by a
# filter on the handler every logger writes through.
LOGGING["filters"] = {"redact": {"()": "conferences.redact.RedactRequestSecrets"}}
# A refused request (4xx) is one line: method, path without its query, status and user
# (conferences.ops.request_lines), masked by "redact" after it.
LOGGING["filters"]["request_lines"] = {
    "()": "conferences.ops.request_lines.OneLinePerRefusedRequest"
}
LOGGING["filters"]["context"] = {"()": "conferences.ops.logs.LogContext"}
LOGGING["handlers"]["console"]["filters"] = ["request_lines", "redact", "context"]
# Django's own console handler on "django" (its DEFAULT_LOGGING, in development) would
# print a 404's path before the filter ran: "django" keeps only its mail to ADMINS (in
# production) and otherwise writes through the console handler.
LOGGING["filters"]["require_debug_false"] = {"()": "django.utils.log.RequireDebugFalse"}
LOGGING["handlers"]["mail_admins"] = {
    "level": "ERROR",
    "filters": ["require_debug_false", "redact"],
    "class": "django.utils.log.AdminEmailHandler",
}
LOGGING["loggers"]["django"] = {"handlers": ["mail_admins"], "level": "INFO"}
LOGGING["loggers"]["django.server"] = {"handlers": ["console"], "propagate": False}
# A database outage is one line per web process when it starts and one when it ends, not
# a traceback per request (conferences.ops.outages).
LOGGING["filters"]["database_outage"] = {"()": "conferences.ops.outages.RequestsDuringOutage"}
LOGGING["loggers"]["django.request"] = {"filters": ["database_outage"]}
# A client's error (403, a wrong Host header...) is one warning line, not a traceback
# (or an ERROR mailed to the admins).
LOGGING["loggers"]["django.request"]["filters"].append("request_lines")
LOGGING["loggers"]["django.security.DisallowedHost"] = {"filters": ["request_lines"]}
LOGGING["loggers"]["django.server"]["filters"] = ["database_outage"]
# The development server's request lines follow LOG_LEVEL too (the demo runs at WARNING:
# only failed requests are shown).
LOGGING["loggers"]["django.server"]["level"] = env_str("LOG_LEVEL", "INFO")

# Metrics (/metrics, conferences/ops/metrics.py): a scrape needs the bearer token
# CONFWATCH_METRICS_TOKEN or a client address within CONFWATCH_METRICS_ALLOWED_IPS
# (CIDRs, the address read as the sign-in throttle reads it); with neither, development
# allows loopback and production nobody.
CONFWATCH_METRICS_TOKEN = env_str("CONFWATCH_METRICS_TOKEN")
if CONFWATCH_METRICS_TOKEN is not None and (
    len(CONFWATCH_METRICS_TOKEN) < 16
    or not CONFWATCH_METRICS_TOKEN.isascii()
    or not CONFWATCH_METRICS_TOKEN.isprintable()
    or " " in CONFWATCH_METRICS_TOKEN
):
    raise ImproperlyConfigured(
        "CONFWATCH_METRICS_TOKEN must be at least 16 printable ASCII characters without "
        "spaces, e.g. from python -c 'import secrets; print(secrets.token_urlsafe(32))'."
    )


def env_networks(name):
    networks = []
    for item in env_list(name, []):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not an address or a network (CIDR, e.g. 10.0.0.0/8)."
            ) from None
    return networks


CONFWATCH_METRICS_ALLOWED_IPS = env_networks("CONFWATCH_METRICS_ALLOWED_IPS")
# In prometheus_client's multiprocess mode (the Procfile sets PROMETHEUS_MULTIPROC_DIR for
# web and worker, and its release step empties it), each process writes its counters
# there from its first import of conferences/ops/metrics.py: the directory must exist.
if env_str("PROMETHEUS_MULTIPROC_DIR"):
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
# The version /metrics reports (confwatch_build_info), set by the deployment.
CONFWATCH_VERSION = env_str("CONFWATCH_VERSION", "unknown")
