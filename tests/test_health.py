"""/health/: for load balancers and monitors, open to anonymous requests, nothing secret."""

from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from conferences.models import Delivery
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db


def test_health_answers_anonymous_requests_with_what_it_checked(client):
    account = make_account(name="acme-secret-name", token="tok-hidden", secret="sec-hidden")
    make_conference(account, "conf-hidden")

    response = client.get("/health/")

    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok"
    assert data["database"] == "ok" and data["broker"] == "ok"
    assert data["polling"]["overdue_conferences"] == 0
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


def test_health_says_degraded_when_polling_is_late_or_an_alert_waits_long(client, settings):
    now = timezone.now()
    account = make_account()
    make_conference(account, "conf-late", next_poll_at=now - timedelta(minutes=5))
    make_conference(account, "conf-paused", paused=True, next_poll_at=now - timedelta(hours=1))
    delivery = Delivery.objects.create(email="ann@example.com", subject="x")
    Delivery.objects.filter(pk=delivery.pk).update(created_at=now - timedelta(minutes=10))

    response = client.get("/health/")

    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "degraded"
    assert data["polling"]["overdue_conferences"] == 1
    assert 590 < data["oldest_unsent_alert_seconds"] < 700


def test_a_resting_accounts_conferences_are_not_late(client):
    now = timezone.now()
    account = make_account()
    account.paused_until = now + timedelta(minutes=5)
    account.save()
    make_conference(account, "conf-resting", next_poll_at=now - timedelta(minutes=5))

    assert client.get("/health/").json()["status"] == "ok"


def test_health_answers_plain_http_when_everything_else_is_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/health/").status_code == 200
    assert client.get("/accounts/login/")["Location"].startswith("https://")
