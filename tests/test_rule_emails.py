"""What rule alerts, late starts and quiet hours summaries say."""

from datetime import UTC, datetime, timedelta

import pytest

from conferences.alerting import emails
from conferences.models import Delivery, Event, EventKind, RuleState, Subscription
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db

# 19:23:31 in Berlin (CET).
AT = datetime(2026, 11, 28, 18, 23, 31, tzinfo=UTC)


@pytest.fixture(autouse=True)
def email_settings(settings):
    settings.CONFWATCH_BASE_URL = "https://confwatch.example.com"


@pytest.fixture
def conference(db):
    return make_conference(make_account(), "conf-abc123", label="Board call")


@pytest.fixture
def subscription(db):
    return Subscription.objects.create(
        email="ops@example.com", kinds=["alone"], time_zone="Europe/Berlin"
    )


def rule_event(conference, subscription, kind, **detail):
    values = {
        "rule": "alone",
        "subscription": subscription.pk,
        "since": (AT - timedelta(minutes=10, seconds=4)).isoformat(),
        "text": "exactly one active member for 10 min",
        "clears": "a second member joins, or the conference ends",
        "state": "active",
        "active_members": 1,
    }
    values.update(detail)
    return Event.objects.create(
        kind=kind,
        account=conference.account,
        conference=conference,
        occurred_at=AT,
        after=values["rule"],
        source="rule",
        detail=values,
    )


def build(conference, subscription, events, kind=Delivery.Kind.CHANGE):
    delivery = Delivery.objects.create(
        kind=kind,
        subscription=subscription,
        email=subscription.email,
        conference=conference if kind == Delivery.Kind.CHANGE else None,
    )
    delivery.events.add(*events)
    message = emails.build_message(delivery)
    return message, message.body, message.alternatives[0][0]


def test_a_rule_alert_says_which_rule_fired_since_when_and_what_clears_it(conference, subscription):
    event = rule_event(conference, subscription, EventKind.RULE_FIRED)

    message, text, html = build(conference, subscription, [event])

    assert message.subject == (
        "[confwatch] Board call (conf-abc123): alone: exactly one active member for 10 min"
    )
    assert "Rule alone: exactly one active member for 10 min" in text
    assert "The rule alone fired." in text
    assert (
        "The condition has held since 2026-11-28 19:13:27 CET (Europe/Berlin) (10 min 4 s)." in text
    )
    assert "It clears when a second member joins, or the conference ends." in text
    assert "Now: active, 1 member." in text
    assert "Acknowledge (nothing more until the state changes): https://confwatch" in text
    assert 'href="https://confwatch.example.com/acknowledge/' in html


def test_a_late_start_report_says_how_late(conference, subscription):
    event = rule_event(
        conference,
        subscription,
        EventKind.RULE_RESOLVED,
        rule="schedule",
        text="started late by 12 minutes",
        fired_at=AT.isoformat(),
    )

    message, text, _ = build(conference, subscription, [event])

    assert message.subject == "[confwatch] Board call (conf-abc123): started late by 12 minutes"
    assert "Resolved schedule: started late by 12 minutes" in text


def test_a_quiet_hours_summary_tells_trouble_from_recovery(conference, subscription):
    other = make_conference(conference.account, "conf-other", label="Weekly")
    conference.state, conference.active_members, conference.poll_status = "active", 1, "ok"
    conference.save()
    other.state, other.active_members, other.poll_status = "active", 4, "ok"
    other.save()
    RuleState.objects.create(
        subscription=subscription,
        conference=conference,
        rule="alone",
        episode="x",
        since=AT,
        fired_at=AT,
    )
    events = [
        rule_event(conference, subscription, EventKind.RULE_FIRED),
        rule_event(other, subscription, EventKind.RULE_FIRED),
        rule_event(other, subscription, EventKind.RULE_RESOLVED, text="no longer alone"),
    ]

    message, text, html = build(conference, subscription, events, kind=Delivery.Kind.QUIET)

    assert message.subject == (
        "[confwatch] Quiet hours summary: 3 alerts about 2 conferences, 1 still in trouble"
    )
    assert "Board call (conf-abc123) <https://confwatch.example.com/conferences/" in text
    assert "Still in trouble: alone. Now active, 1 member." in text
    assert "Recovered during quiet hours." in text
    assert "Recovered during quiet hours." in html
    assert "/acknowledge/" not in text
