"""/health/: for load balancers and monitors, open to anonymous requests, nothing secret."""

from datetime import datetime, timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from conferences.alerting import fanout, sender
from conferences.models import Conference, Delivery, Subscription
from conferences.ops import outages
from conferences.polling import rounds
from conferences.recording import observations
from conferences.recording.observations import Observation
from tests.conftest import make_account, make_conference, reload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_outage_record(monkeypatch):
    monkeypatch.setattr(outages, "requests", outages.Outage("database"))


def test_health_answers_anonymous_requests_with_what_it_checked(client):
    account = make_account(name="acme-secret-name", token="tok-hidden", secret="sec-hidden")
    make_conference(account, "conf-hidden")

    response = client.get("/health/")

    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok"
    assert data["database"] == "ok" and data["broker"] == "ok"
    assert data["polling"]["stale_conferences"] == 0
    assert data["polling"]["stale_after_seconds"] == 20.0  # twice the poll interval
    assert data["oldest_unsent_alert_seconds"] is None
    text = response.content.decode()
    for hidden in ["acme-secret-name", "tok-hidden", "sec-hidden", "conf-hidden", "redis://"]:
        assert hidden not in text
    assert client.head("/health/").status_code == 200


def test_health_is_503_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens there

    response = client.get("/health/")

    assert response.status_code == 503
    assert response.json()["broker"] == "down" and response.json()["status"] == "down"


def test_health_is_503_when_the_database_is_down(client):
    def refuse(execute, sql, params, many, context):
        raise OperationalError("connection refused")

    with connection.execute_wrapper(refuse):
        response = client.get("/health/")

    assert response.status_code == 503
    assert response.json()["database"] == "down" and response.json()["broker"] == "ok"


def test_health_says_degraded_when_a_conference_is_stale_or_an_alert_waits_long(client, settings):
    now = timezone.now()
    long_ago = now - timedelta(minutes=5)
    account = make_account()
    make_conference(account, "conf-stale", last_observed_at=long_ago)
    make_conference(account, "conf-paused", paused=True, last_observed_at=long_ago)
    make_conference(account, "conf-not-found", last_observed_at=long_ago, poll_status="not_found")
    make_conference(account, "conf-fresh", last_observed_at=now, next_poll_at=long_ago)
    delivery = Delivery.objects.create(email="ann@example.com", subject="x")
    ten_minutes_ago = now - timedelta(minutes=10)
    Delivery.objects.filter(pk=delivery.pk).update(
        created_at=ten_minutes_ago, send_after=ten_minutes_ago
    )

    response = client.get("/health/")

    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "degraded"
    assert data["polling"]["stale_conferences"] == 1
    assert 590 < data["oldest_unsent_alert_seconds"] < 700


def test_a_resting_account_is_listed_until_when_and_its_stale_conferences_count(
    client, simulator, sim_client
):
    account = make_account(simulator)
    conference_id = sim_client.create_conference(from_number="+15555550100")
    conference = make_conference(account, conference_id)
    simulator.set_faults(rate_limited_seconds=900)  # a 429 with a far reset
    rounds.poll_round(force=True)
    account.refresh_from_db()
    assert account.is_paused()
    assert client.get("/health/").json()["polling"]["stale_conferences"] == 0  # not yet
    # Five minutes of the rest later: the conference was never observed since.
    Conference.objects.filter(pk=conference.pk).update(
        tracked_at=timezone.now() - timedelta(minutes=5)
    )

    data = client.get("/health/").json()

    assert data["status"] == "degraded"
    assert data["polling"]["stale_conferences"] == 1
    [resting] = data["polling"]["resting_accounts"]
    assert resting == {
        "account": account.pk,
        "resting_until": account.paused_until.isoformat(),
        "reason": "rate limited",
        "stale_conferences": 1,
    }
    assert timedelta(minutes=14) < account.paused_until - timezone.now() <= timedelta(minutes=15)


def start_conference(conference, at):
    """Observed created, then active a second later: one state change."""
    observations.record([Observation(conference.pk, at, seen={"state": "created"})])
    later = at + timedelta(seconds=1)
    observations.record([Observation(conference.pk, later, seen={"state": "active"})])


def test_a_digest_held_by_the_hourly_cap_is_held_not_unsent(client, account, mailsink, settings):
    settings.CONFWATCH_ALERT_COALESCE_SECONDS = 0
    settings.CONFWATCH_ALERT_GROUP_SECONDS = 0  # one message per conference
    settings.CONFWATCH_ALERT_HOURLY_CAP = 1
    Subscription.objects.create(email="ann@example.com", kinds=["state"])
    now = timezone.now()
    for index in range(3):
        conference = make_conference(account, f"conf-cap-{index}")
        start_conference(conference, now)
    assert fanout.run_pass().sent == 1
    digest = Delivery.objects.get(kind="digest", status="pending")
    # 55 minutes into the hour of the cap.
    Delivery.objects.filter(pk=digest.pk).update(
        created_at=now - timedelta(minutes=55), send_after=now + timedelta(minutes=5)
    )

    data = client.get("/health/").json()

    assert data["status"] == "ok"
    assert data["oldest_unsent_alert_seconds"] is None
    held_until = datetime.fromisoformat(data["held_alerts"]["held_until"])
    assert data["held_alerts"]["count"] == 1
    assert held_until == reload(digest).send_after


def test_an_alert_the_mail_server_keeps_refusing_stays_unsent_from_when_it_was_due(
    client, account, mailsink, settings
):
    settings.CONFWATCH_ALERT_COALESCE_SECONDS = 0
    Subscription.objects.create(email="ann@example.com", kinds=["state"])
    conference = make_conference(account, "conf-refused")
    start_conference(conference, timezone.now())
    fanout.fan_out()
    ten_minutes_ago = timezone.now() - timedelta(minutes=10)
    Delivery.objects.update(created_at=ten_minutes_ago, send_after=ten_minutes_ago)
    mailsink.fail_next(1, code=451)

    assert sender.send_pending().retrying == 1

    data = client.get("/health/").json()
    assert data["status"] == "degraded"
    assert 590 < data["oldest_unsent_alert_seconds"] < 700  # not reset by the retry
    assert data["held_alerts"] == {"count": 0, "held_until": None}


def test_health_answers_plain_http_when_everything_else_is_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/health/").status_code == 200
    assert client.get("/accounts/login/")["Location"].startswith("https://")
