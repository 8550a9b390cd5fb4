"""Rules end to end: the simulator, the poller, the alert passes and a real SMTP server.

Durations are seconds; instead of waiting, a pass is run at a later `now` (the history it
reads was observed at the real time of each poll)."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from conferences.alerting import fanout, rules, schedules
from conferences.models import Event, EventKind, RuleState, Subscription
from conferences.polling import rounds
from conferences.recording.observations import Observation, record
from tests.conftest import (
    WORKER_ARGS,
    make_account,
    make_conference,
    reload,
    start_celery,
    wait_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def one_email_per_alert(settings):
    settings.CONFWATCH_ALERT_COALESCE_SECONDS = 0


def poll():
    return rounds.poll_round(force=True)


def subscribe(email="ops@example.com", **values):
    values.setdefault("notify_resolved", True)
    return Subscription.objects.create(email=email, **values)


def later(seconds):
    return timezone.now() + timedelta(seconds=seconds)


def settle(mailsink):
    """What the sink holds now: a pass sends synchronously, so nothing more is coming."""
    return mailsink.messages()


def body(message):
    return message.get_body(("plain",)).get_content()


@pytest.fixture
def bridge(account, sim_client):
    conference_id = sim_client.create_conference(from_number="+15555550100")
    conference = make_conference(account, conference_id, label="Bridge")
    poll()
    return conference


def test_alone_fires_once_after_its_duration_not_before_not_again_and_resolves_once(
    bridge, sim_client, mailsink
):
    subscribe(kinds=["alone"], rule_after_seconds=30)
    sim_client.add_member(bridge.conference_id, call_id="c-1")
    poll()

    fanout.run_pass(now=later(10))
    assert settle(mailsink) == []  # held 10 s of 30: not yet

    fanout.run_pass(now=later(31))
    [fired] = mailsink.wait_for(1, timeout=5)
    assert fired["Subject"].startswith(f"[confwatch] Bridge ({bridge.conference_id}): alone")
    text = body(fired)
    assert "The rule alone fired." in text
    assert "exactly one active member for 30 s" in text
    assert "The condition has held since" in text
    assert "It clears when a second member joins, or the conference ends." in text
    assert "/acknowledge/" in text

    for seconds in (40, 120, 600):  # still alone: nothing more
        poll()
        fanout.run_pass(now=later(seconds))
    assert len(settle(mailsink)) == 1

    sim_client.add_member(bridge.conference_id, call_id="c-2")
    poll()
    fanout.run_pass(now=later(601))
    resolved = mailsink.wait_for(2, timeout=5)[1]
    assert "resolved: alone" in resolved["Subject"]
    assert "The condition held from" in body(resolved)
    for seconds in (602, 700):
        poll()
        fanout.run_pass(now=later(seconds))
    assert len(settle(mailsink)) == 2


def test_not_started_fires_once_when_still_created_and_resolves_when_it_starts(
    bridge, sim_client, mailsink
):
    subscribe(kinds=["not_started"], rule_after_seconds=20)

    fanout.run_pass(now=later(5))
    assert settle(mailsink) == []
    fanout.run_pass(now=later(21))
    fanout.run_pass(now=later(50))
    [fired] = mailsink.wait_for(1, timeout=5)
    assert "not started: still created 20 s after it was first observed" in fired["Subject"]
    assert "It clears when the conference becomes active" in body(fired)

    sim_client.add_member(bridge.conference_id, call_id="c-1")
    poll()
    fanout.run_pass(now=later(60))
    fanout.run_pass(now=later(70))
    messages = mailsink.wait_for(2, timeout=5)
    assert "resolved: not started" in messages[1]["Subject"]
    assert len(settle(mailsink)) == 2


@pytest.mark.parametrize(
    "rule, switch, words", [("all_held", "hold", "on hold"), ("all_muted", "mute", "muted")]
)
def test_all_held_and_all_muted_fire_once_and_resolve_once(
    bridge, sim_client, mailsink, rule, switch, words
):
    subscribe(kinds=[rule], rule_after_seconds=15)
    sim_client.add_member(bridge.conference_id, call_id="c-1")
    sim_client.add_member(bridge.conference_id, call_id="c-2")
    sim_client.update_conference(bridge.conference_id, **{switch: True})
    poll()

    fanout.run_pass(now=later(14))
    assert settle(mailsink) == []
    fanout.run_pass(now=later(16))
    fanout.run_pass(now=later(30))
    [fired] = mailsink.wait_for(1, timeout=5)
    assert f"the whole conference {words} for 15 s" in fired["Subject"]

    sim_client.update_conference(bridge.conference_id, **{switch: False})
    poll()
    fanout.run_pass(now=later(40))
    fanout.run_pass(now=later(50))
    messages = mailsink.wait_for(2, timeout=5)
    assert f"resolved: {rule.replace('_', ' ')}" in messages[1]["Subject"]
    assert len(settle(mailsink)) == 2


def test_members_drop_fires_once_while_the_conference_stays_active_and_resolves_once(
    bridge, sim_client, mailsink
):
    subscribe(kinds=["members_drop"], drop_percent=50, rule_after_seconds=5)
    members = [sim_client.add_member(bridge.conference_id, call_id=f"c-{n}") for n in range(4)]
    poll()
    fanout.run_pass()
    for member_id in members[:2]:
        sim_client.update_member(bridge.conference_id, member_id, state="completed")
    poll()

    fanout.run_pass()  # held 0 s of 5
    assert settle(mailsink) == []
    fanout.run_pass(now=later(6))
    fanout.run_pass(now=later(20))
    [fired] = mailsink.wait_for(1, timeout=5)
    assert "members drop: active members fell from 4 to 2 within a minute" in fired["Subject"]
    assert "more than 2 members are active again" in body(fired)

    sim_client.add_member(bridge.conference_id, call_id="c-back")
    poll()
    fanout.run_pass(now=later(30))
    fanout.run_pass(now=later(40))
    messages = mailsink.wait_for(2, timeout=5)
    assert "resolved: members drop" in messages[1]["Subject"]
    assert len(settle(mailsink)) == 2


def test_a_slow_decline_or_everyone_leaving_is_no_members_drop(account, mailsink):
    subscribe(kinds=["members_drop"], drop_percent=50)
    conference = make_conference(account, "conf-slow")
    start = timezone.now() - timedelta(minutes=10)
    for minute, (state, members) in enumerate(
        [("active", 4), ("active", 3), ("active", 2), ("completed", 0)]
    ):
        at = start + timedelta(minutes=2 * minute)
        record([Observation(conference.pk, at, seen={"state": state, "active_members": members})])
        fanout.run_pass(now=at + timedelta(seconds=1))

    assert settle(mailsink) == []
    assert not Event.objects.filter(kind=EventKind.RULE_FIRED).exists()


def schedule_starting(minutes_ago, zone="Europe/Berlin"):
    """A schedule whose expected start today was `minutes_ago` minutes ago."""
    expected = (timezone.now() - timedelta(minutes=minutes_ago)).astimezone(
        schedules.parse_zone(zone)
    )
    day = schedules.DAY_NAMES[expected.weekday()].title()
    return f"{day} {expected:%H:%M} {zone}", expected.replace(second=0, microsecond=0)


def test_a_late_conference_alerts_once_and_then_reports_its_late_start(
    bridge, sim_client, mailsink
):
    expect, expected = schedule_starting(3)
    subscribe(kinds=["schedule"], expect_schedule=expect, grace_seconds=60)

    fanout.run_pass(now=expected + timedelta(seconds=59))  # within the grace period
    assert settle(mailsink) == []
    fanout.run_pass()
    fanout.run_pass(now=later(30))
    [late] = mailsink.wait_for(1, timeout=5)
    assert "expected schedule" not in late["Subject"]
    assert f"schedule: expected active at {expected:%H:%M} Europe/Berlin" in late["Subject"]
    assert "It clears when the conference becomes active." in body(late)

    sim_client.add_member(bridge.conference_id, call_id="c-1")
    poll()
    fanout.run_pass()
    fanout.run_pass(now=later(30))
    messages = mailsink.wait_for(2, timeout=5)
    started = messages[1]["Subject"]
    late_by = round((timezone.now() - expected).total_seconds() / 60)
    assert f"started late by {late_by} minutes" in started or (
        f"started late by {late_by - 1} minutes" in started
    )
    assert len(settle(mailsink)) == 2


def test_a_conference_active_by_its_expected_start_sends_nothing(account, mailsink):
    conference = make_conference(account, "conf-on-time")
    expect, expected = schedule_starting(2)
    subscribe(kinds=["schedule"], expect_schedule=expect, grace_seconds=30)
    early = expected - timedelta(minutes=1)
    record([Observation(conference.pk, early, seen={"state": "active", "active_members": 2})])
    now = timezone.now()
    record([Observation(conference.pk, now, seen={"state": "active", "active_members": 2})])

    fanout.run_pass()
    fanout.run_pass(now=later(60))

    assert settle(mailsink) == []


def test_a_late_start_seen_before_any_late_alert_is_still_reported_once(account, mailsink):
    conference = make_conference(account, "conf-late")
    expect, expected = schedule_starting(20)
    subscribe(kinds=["schedule"], expect_schedule=expect, grace_seconds=300)
    at = expected + timedelta(minutes=12)
    record([Observation(conference.pk, at, seen={"state": "created", "active_members": 0})])
    record([Observation(conference.pk, at + timedelta(seconds=1), seen={"state": "active"})])

    fanout.run_pass()
    fanout.run_pass(now=later(10))

    [report] = mailsink.wait_for(1, timeout=5)
    assert "started late by 12 minutes" in report["Subject"]
    assert len(settle(mailsink)) == 1


def test_no_resolved_email_unless_the_subscription_asked(bridge, sim_client, mailsink):
    subscribe(kinds=["alone"], rule_after_seconds=5, notify_resolved=False)
    sim_client.add_member(bridge.conference_id, call_id="c-1")
    poll()
    fanout.run_pass(now=later(6))
    mailsink.wait_for(1, timeout=5)

    sim_client.add_member(bridge.conference_id, call_id="c-2")
    poll()
    fanout.run_pass(now=later(10))

    assert len(settle(mailsink)) == 1
    assert RuleState.objects.get().resolved_at is not None


def test_a_rule_fires_only_for_its_own_subscription_and_scope(bridge, sim_client, mailsink):
    subscribe("slow@example.com", kinds=["alone"], rule_after_seconds=600)
    subscribe("fast@example.com", kinds=["alone"], rule_after_seconds=5)
    subscribe("other@example.com", kinds=["alone"], rule_after_seconds=5, scope="tag", tag="x")
    sim_client.add_member(bridge.conference_id, call_id="c-1")
    poll()

    fanout.run_pass(now=later(6))

    [message] = mailsink.wait_for(1, timeout=5)
    assert message["To"] == "fast@example.com"
    assert len(settle(mailsink)) == 1


def test_the_rule_state_is_stored_so_a_new_evaluator_does_not_fire_again(bridge, sim_client):
    subscription = subscribe(kinds=["alone"], rule_after_seconds=5)
    sim_client.add_member(bridge.conference_id, call_id="c-1")
    poll()

    first = rules.evaluate(now=later(6))
    again = rules.evaluate(now=later(60))  # as a restarted worker would: state from the DB

    assert [event.kind for event in first] == [EventKind.RULE_FIRED]
    assert again == []
    state = RuleState.objects.get()
    assert (state.subscription, state.rule, state.resolved_at) == (subscription, "alone", None)


def test_the_latest_expected_start_follows_the_zone_and_weekdays():
    schedule = schedules.parse_schedule("Mon,Wed 09:00 Europe/Berlin")
    # Thursday 2026-11-26 12:00 UTC: the latest is Wednesday 09:00 CET = 08:00 UTC.
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert schedule.latest_start(now) == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    # Monday 07:59 UTC is 08:59 in Berlin: the latest is last Wednesday.
    now = datetime(2026, 11, 30, 7, 59, tzinfo=UTC)
    assert schedule.latest_start(now) == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert schedules.parse_schedule("mon-fri 9:30 UTC").days == frozenset(range(5))


@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400), (" 5M ", 300)]
)
def test_durations_read_seconds_minutes_hours_and_days(text, seconds):
    assert schedules.parse_duration(text) == seconds


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_fires_a_rule_once_across_a_restart_and_resolves_it_once(
    simulator, sim_client, mailsink, celery_env
):
    celery_env.update(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(mailsink.port),
        CONFWATCH_ALERT_SECONDS="1",
        CONFWATCH_RULE_SECONDS="1",
        CONFWATCH_ALERT_COALESCE_SECONDS="0",
    )
    account = make_account(simulator)
    conference_id = sim_client.create_conference(from_number="+15555550100")
    conference = make_conference(account, conference_id, label="Helpdesk")
    subscribe(kinds=["alone"], rule_after_seconds=2)
    sim_client.add_member(conference_id, call_id="c-1")
    beat = start_celery(celery_env, "beat")
    worker = start_celery(celery_env, *WORKER_ARGS)
    try:
        [fired] = mailsink.wait_for(1, timeout=40)
        assert fired["Subject"] == (
            f"[confwatch] Helpdesk ({conference_id}): alone: exactly one active member for 2 s"
        )
        worker.terminate()
        worker.wait(timeout=20)
        worker = start_celery(celery_env, *WORKER_ARGS)
        wait_for(
            lambda: reload(conference).last_polled_at > timezone.now() - timedelta(seconds=1),
            what="the new worker polling",
        )
        time.sleep(3)  # several passes of the new worker while still alone
        assert len(mailsink.messages()) == 1

        sim_client.add_member(conference_id, call_id="c-2")
        resolved = mailsink.wait_for(2, timeout=40)[1]
        assert resolved["Subject"] == f"[confwatch] Helpdesk ({conference_id}): resolved: alone"
        time.sleep(3)
        assert len(mailsink.messages()) == 2
    finally:
        for process in (beat, worker):
            process.terminate()
            process.wait(timeout=20)


def test_a_conference_first_seen_long_after_its_expected_start_is_not_late(account, mailsink):
    conference = make_conference(account, "conf-next-week")
    expect, expected = schedule_starting(13 * 60)
    subscribe(kinds=["schedule"], expect_schedule=expect, grace_seconds=60)
    record([Observation(conference.pk, timezone.now(), seen={"state": "created"})])

    fanout.run_pass()

    assert settle(mailsink) == []


def test_beat_evaluates_the_rules_on_their_own_cadence_not_in_every_alert_pass(
    bridge, sim_client, mailsink, settings
):
    from conferences import tasks
    from dashboard.celery import app

    app.finalize()
    entries = {entry["task"]: entry for entry in app.conf.beat_schedule.values()}
    entry = entries["conferences.tasks.evaluate_rules"]
    assert entry["schedule"] == settings.CONFWATCH_RULE_SECONDS
    assert entry["options"]["expires"] == settings.CONFWATCH_RULE_SECONDS
    subscribe(kinds=["alone"], rule_after_seconds=0)
    sim_client.add_member(bridge.conference_id, call_id="c-1")
    poll()
    fanout.run_pass(rules_too=False)  # beat's alert pass: the change, no rule
    changes = len(settle(mailsink))

    tasks.evaluate_rules()

    assert Event.objects.filter(kind=EventKind.RULE_FIRED).count() == 1
    fanout.run_pass(rules_too=False)
    [fired] = mailsink.wait_for(changes + 1, timeout=5)[changes:]
    assert "alone" in fired["Subject"]
