"""Quiet hours: alerts in them are held for one summary at their end (or dropped)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from conferences.alerting import fanout, schedules
from conferences.models import Delivery, Subscription
from conferences.polling import rounds
from conferences.recording.observations import Observation, record
from tests.conftest import make_conference

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(autouse=True)
def one_email_per_alert(settings):
    settings.CONFWATCH_ALERT_COALESCE_SECONDS = 0


def poll():
    return rounds.poll_round(force=True)


def later(seconds):
    return timezone.now() + timedelta(seconds=seconds)


def settle(mailsink):
    """What the sink holds now: a pass sends synchronously, so nothing more is coming."""
    return mailsink.messages()


def quiet_now(**values):
    """A subscription whose quiet hours (in Berlin) began an hour ago and end in an hour;
    returns it and when they end."""
    local = timezone.now().astimezone(BERLIN)
    start = (local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (local + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    subscription = Subscription.objects.create(
        email="ops@example.com",
        kinds=["state", "alone"],
        rule_after_seconds=5,
        time_zone="Europe/Berlin",
        quiet_start=start,
        quiet_end=end,
        **values,
    )
    return subscription, schedules.window_end(start, end, timezone.now(), BERLIN)


def test_alerts_in_quiet_hours_are_held_and_summarised_when_they_end(account, sim_client, mailsink):
    troubled_id = sim_client.create_conference(from_number="+15555550100")
    recovered_id = sim_client.create_conference(from_number="+15555550101")
    make_conference(account, troubled_id, label="Still alone")
    make_conference(account, recovered_id, label="Joined later")
    poll()
    subscription, ends = quiet_now()
    sim_client.add_member(troubled_id, call_id="c-1")
    sim_client.add_member(recovered_id, call_id="c-2")
    poll()
    fanout.run_pass(now=later(6))  # both alone: the rule fires for both
    sim_client.add_member(recovered_id, call_id="c-3")
    poll()
    fanout.run_pass(now=later(10))  # one resolves
    assert settle(mailsink) == []

    fanout.run_pass(now=ends - timedelta(seconds=1))
    assert settle(mailsink) == []
    fanout.run_pass(now=ends + timedelta(seconds=1))

    [summary] = mailsink.wait_for(1, timeout=5)
    assert summary["Subject"] == (
        "[confwatch] Quiet hours summary: 5 alerts about 2 conferences, 1 still in trouble"
    )
    text = summary.get_body(("plain",)).get_content()
    still = text.index(f"Still alone ({troubled_id})")
    recovered = text.index(f"Joined later ({recovered_id})")
    assert "Still in trouble: alone. Now active, 1 member." in text[still:]
    assert "Recovered during quiet hours." in text[recovered:]
    assert Delivery.objects.get().kind == Delivery.Kind.QUIET
    fanout.run_pass(now=ends + timedelta(seconds=30))
    assert len(settle(mailsink)) == 1


def test_alerts_after_quiet_hours_go_out_as_usual(account, sim_client, mailsink):
    conference_id = sim_client.create_conference(from_number="+15555550100")
    make_conference(account, conference_id, label="Bridge")
    poll()
    _, ends = quiet_now()
    fanout.run_pass(now=ends + timedelta(seconds=1))
    sim_client.add_member(conference_id, call_id="c-1")
    sim_client.add_member(conference_id, call_id="c-2")
    poll()

    fanout.run_pass(now=ends + timedelta(seconds=2))

    [message] = mailsink.wait_for(1, timeout=5)
    assert "created -> active" in message["Subject"]


def test_a_subscription_that_drops_alerts_in_quiet_hours_never_gets_them(
    account, sim_client, mailsink
):
    conference_id = sim_client.create_conference(from_number="+15555550100")
    make_conference(account, conference_id, label="Bridge")
    poll()
    _, ends = quiet_now(quiet_drop=True)
    sim_client.add_member(conference_id, call_id="c-1")
    poll()
    fanout.run_pass(now=later(6))

    fanout.run_pass(now=ends + timedelta(seconds=1))

    assert settle(mailsink) == []
    assert not Delivery.objects.exists()


def test_quiet_hours_may_wrap_past_midnight_in_the_subscriptions_zone():
    start, end = schedules.parse_quiet_hours("22:00-07:00")
    # 22:30 in Berlin (21:30 UTC) is quiet; they end at 07:00 Berlin the next day.
    evening = datetime(2026, 11, 28, 21, 30, tzinfo=UTC)
    assert schedules.in_window(start, end, evening, BERLIN)
    assert schedules.window_end(start, end, evening, BERLIN) == datetime(
        2026, 11, 29, 6, 0, tzinfo=UTC
    )
    assert not schedules.in_window(start, end, datetime(2026, 11, 29, 6, 0, tzinfo=UTC), BERLIN)
    assert schedules.in_window(start, end, datetime(2026, 11, 29, 5, 59, tzinfo=UTC), BERLIN)


def test_a_conference_flapping_in_quiet_hours_is_in_the_summary_not_in_its_own_email(
    account, mailsink, settings
):
    settings.CONFWATCH_FLAP_CHANGES = 2
    settings.CONFWATCH_FLAP_WINDOW_SECONDS = 3 * 3600  # still flapping when they end
    conference = make_conference(account, "conf-flap", label="Flappy")
    _, ends = quiet_now()
    Subscription.objects.filter().update(kinds=["hold"])
    start = timezone.now() - timedelta(seconds=30)
    for step in range(5):
        seen = {"state": "active", "active_members": 2, "hold": step % 2 == 1}
        record([Observation(conference.pk, start + timedelta(seconds=step), seen=seen)])
    fanout.run_pass()
    assert settle(mailsink) == []

    fanout.run_pass(now=ends + timedelta(seconds=1))

    [summary] = mailsink.wait_for(1, timeout=5)
    assert summary["Subject"].startswith("[confwatch] Quiet hours summary: 4 alerts")
    assert not Delivery.objects.filter(kind=Delivery.Kind.FLAPPING).exists()
