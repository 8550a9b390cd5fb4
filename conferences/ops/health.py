"""What /health/ reports: whether the database and the broker answer, whether polling
keeps up (how many conferences are stale, by the one definition in models/conference.py,
and which accounts rest, until when), how old the oldest unsent alert is and
which alerts are held for later on purpose. Nothing secret, nothing per customer (an
account is named by its number)."""

import time
from datetime import timedelta

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count, Min, Sum
from django.utils import timezone

from conferences.models import (
    Account,
    CallbackSettings,
    Conference,
    Delivery,
    DeliveryStatus,
    stale_after,
)
from conferences.ops import outages

# Seconds to wait for the broker before calling it down.
BROKER_TIMEOUT = 2.0
# Stale conferences counted, at most (the count is a sign, not a report).
MAX_STALE_COUNTED = 1000
# Resting accounts listed, at most (the soonest to end their rest first).
MAX_RESTING_LISTED = 20


def check_database():
    """Whether the database answers; the web process's outage record learns it too."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        if outages.unreachable(error):
            outages.requests.failed(error, task="/health/")
        return False
    outages.requests.answered()
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


def polling(now):
    """How many conferences are stale (resting accounts' included: a rest after a 429 or
    rejected credentials leaves them unwatched just the same), and the accounts that
    rest: until when, why, and how many of the stale are theirs."""
    stale = Conference.objects.stale(now)
    resting = list(
        Account.objects.filter(paused_until__gt=now)
        .order_by("paused_until", "pk")
        .only("pk", "paused_until", "problem")[:MAX_RESTING_LISTED]
    )
    stale_of = dict(
        stale.filter(account__in=resting)
        .values("account")
        .annotate(stale=Count("pk"))
        .values_list("account", "stale")
    )
    return {
        "stale_conferences": stale.values("pk")[:MAX_STALE_COUNTED].count(),
        "stale_after_seconds": stale_after().total_seconds(),
        "resting_accounts": [
            {
                "account": account.pk,
                "resting_until": account.paused_until.isoformat(),
                "reason": account.get_problem_display() or "paused",
                "stale_conferences": stale_of.get(account.pk, 0),
            }
            for account in resting
        ],
    }


def alerts(now):
    """The oldest unsent alert's age in seconds (None when none is due), counted from
    when it became due (its send_after, kept through retries), and the alerts held for
    later on purpose (a digest past the hourly cap, a quiet hours summary, changes in
    the coalescing window): how many and until when the first is held. Held is not
    unsent."""
    pending = Delivery.objects.filter(status=DeliveryStatus.PENDING)
    due_since = pending.filter(send_after__lte=now).aggregate(first=Min("send_after"))["first"]
    held = pending.filter(send_after__gt=now).aggregate(count=Count("pk"), until=Min("send_after"))
    return {
        "oldest_unsent_alert_seconds": (
            None if due_since is None else round((now - due_since).total_seconds(), 1)
        ),
        "held_alerts": {
            "count": held["count"],
            "held_until": held["until"].isoformat() if held["until"] else None,
        },
    }


def misconfigured_accounts():
    """How many accounts hold a budget or base URL that every entry now refuses (their
    conferences cannot be polled as they should): a count, no names."""
    accounts = Account.objects.only("request_budget", "base_url")
    return sum(1 for account in accounts if account.settings_problems())


def callback_registrations_refused(now):
    """Callback events about untracked ids refused registration (over an account's
    hourly cap) in the accounts' current hour windows."""
    recent = CallbackSettings.objects.filter(autotrack_window_start__gt=now - timedelta(hours=1))
    return recent.aggregate(refused=Sum("autotrack_refused"))["refused"] or 0


def report():
    """(healthy, report): healthy when the database and the broker answer; stale conferences,
    old unsent alerts or a misconfigured account make the status "degraded" without
    making it unhealthy."""
    started = time.monotonic()
    database = check_database()
    broker = check_broker()
    data = {
        "database": "ok" if database else "down",
        "broker": "ok" if broker else "down",
    }
    status = "ok"
    if database:
        now = timezone.now()
        data["polling"] = polling(now)
        data.update(alerts(now))
        data["misconfigured_accounts"] = misconfigured_accounts()
        alert_age = data["oldest_unsent_alert_seconds"]
        data["callback_registrations_refused_this_hour"] = callback_registrations_refused(now)
        late_alerts = alert_age is not None and alert_age > settings.CONFWATCH_HEALTH_ALERT_AGE
        if data["polling"]["stale_conferences"] or late_alerts or data["misconfigured_accounts"]:
            status = "degraded"
    healthy = database and broker
    data["status"] = status if healthy else "down"
    data["checked_in_ms"] = round((time.monotonic() - started) * 1000)
    return healthy, data
