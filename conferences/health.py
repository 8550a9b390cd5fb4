"""What /health/ reports: whether the database and the broker answer, whether polling
keeps up, and how old the oldest unsent alert is. Nothing secret, nothing per customer."""

import time
from datetime import timedelta

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Q, Sum
from django.utils import timezone

from conferences.models import (
    CallbackSettings,
    Conference,
    ConferenceState,
    Delivery,
    DeliveryStatus,
)

# Seconds to wait for the broker before calling it down.
BROKER_TIMEOUT = 2.0
# Conferences counted as overdue, at most (the count is a sign, not a report).
MAX_OVERDUE_COUNTED = 1000


def overdue_after():
    """A polled conference is late once it was due this long ago: two intervals and a
    round's deadline."""
    return timedelta(
        seconds=2 * settings.CONFWATCH_POLL_INTERVAL + settings.CONFWATCH_ROUND_DEADLINE
    )


def check_database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


def check_broker():
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL,
        socket_connect_timeout=BROKER_TIMEOUT,
        socket_timeout=BROKER_TIMEOUT,
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def polling_and_alerts(now):
    """Overdue conferences (of accounts that are not resting) and the oldest unsent
    alert's age in seconds (None when none waits)."""
    overdue = (
        Conference.objects.filter(paused=False, next_poll_at__lt=now - overdue_after())
        .exclude(state=ConferenceState.COMPLETED)
        .filter(Q(account__paused_until__isnull=True) | Q(account__paused_until__lte=now))
        .values("pk")[:MAX_OVERDUE_COUNTED]
        .count()
    )
    oldest = (
        Delivery.objects.filter(status=DeliveryStatus.PENDING)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    age = None if oldest is None else round((now - oldest).total_seconds(), 1)
    return overdue, age


def callback_registrations_refused(now):
    """Callback events about untracked ids refused registration (over an account's
    hourly cap) in the accounts' current hour windows."""
    recent = CallbackSettings.objects.filter(autotrack_window_start__gt=now - timedelta(hours=1))
    return recent.aggregate(refused=Sum("autotrack_refused"))["refused"] or 0


def report():
    """(healthy, report): healthy when the database and the broker answer; polling late
    or old unsent alerts make the status "degraded" without making it unhealthy."""
    started = time.monotonic()
    database = check_database()
    broker = check_broker()
    data = {
        "database": "ok" if database else "down",
        "broker": "ok" if broker else "down",
    }
    status = "ok"
    if database:
        overdue, alert_age = polling_and_alerts(timezone.now())
        data["polling"] = {
            "overdue_conferences": overdue,
            "overdue_after_seconds": overdue_after().total_seconds(),
        }
        data["oldest_unsent_alert_seconds"] = alert_age
        data["callback_registrations_refused_this_hour"] = callback_registrations_refused(
            timezone.now()
        )
        late_alerts = alert_age is not None and alert_age > settings.CONFWATCH_HEALTH_ALERT_AGE
        if overdue or late_alerts:
            status = "degraded"
    healthy = database and broker
    data["status"] = status if healthy else "down"
    data["checked_in_ms"] = round((time.monotonic() - started) * 1000)
    return healthy, data
