"""Alerts end to end: the simulator, the poller, the outbox and a real SMTP server."""

import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from conferences.alerting import fanout, sender
from conferences.models import Delivery, DeliveryStatus, Event, Subscription
from conferences.polling import rounds
from conferences.recording import observations
from conferences.recording.observations import Observation
from tests.conftest import (
    make_account,
    make_conference,
    process_env,
    reload,
    start_celery,
    wait_for,
)
from tests.test_settings import settings_load

pytestmark = pytest.mark.django_db


def subscribe(email, **values):
    values.setdefault("kinds", ["state"])
    conferences = values.pop("conferences", [])
    subscription = Subscription.objects.create(email=email, **values)
    subscription.conferences.set(conferences)
    return subscription


def poll():
    return rounds.poll_round(force=True)


def subjects(messages):
    return sorted(message["Subject"] for message in messages)


@pytest.fixture
def board_call(account, sim_client):
    conference_id = sim_client.create_conference(from_number="+15555550100")
    conference = make_conference(account, conference_id, label="Board call", tags=["acme"])
    poll()  # first observed: created
    return conference


def test_a_state_change_sends_one_email_per_subscribed_recipient_and_none_to_others(
    board_call, sim_client, mailsink, db
):
    subscribe("ann@example.com")
    subscribe("bob@example.com", scope="tag", tag="acme", kinds=["state", "mute"])
    subscribe("hold-only@example.com", kinds=["hold"])
    subscribe("other-tag@example.com", scope="tag", tag="globex")
    fanout.run_pass()  # the first observation alerts nobody (nobody asked for "first")

    sim_client.add_member(board_call.conference_id, call_id="c-1")
    poll()
    summary = fanout.run_pass()

    assert (summary.sent, summary.failed) == (2, 0)
    messages = mailsink.wait_for(2, timeout=5)
    assert sorted(m["To"] for m in messages) == ["ann@example.com", "bob@example.com"]
    expected = f"[confwatch] Board call ({board_call.conference_id}): created -> active"
    assert subjects(messages) == [expected, expected]
    body = messages[0].get_body(("plain",)).get_content()
    assert f"/conferences/{board_call.pk}/" in body
    assert "created" in body and "active" in body
    assert "/unsubscribe/" in body
    assert messages[0]["List-Unsubscribe"].strip().startswith("<http")
    fanout.run_pass()
    assert len(mailsink.messages()) == 2


def test_a_conference_that_stays_the_same_sends_nothing(board_call, mailsink):
    subscribe("ann@example.com", kinds=["state", "hold", "mute", "members"])
    fanout.run_pass()

    for _ in range(3):
        poll()
        fanout.run_pass()

    assert mailsink.messages() == []


def test_failing_polls_that_then_succeed_with_the_same_state_send_nothing(
    board_call, simulator, mailsink
):
    subscribe("ann@example.com", kinds=["state", "polling"])
    fanout.run_pass()

    simulator.set_faults(error_rate=1.0)
    poll()
    fanout.run_pass()
    simulator.set_faults(error_rate=0.0, hang_rate=1.0, hang_seconds=5)
    poll()
    fanout.run_pass()
    simulator.reset_faults()
    poll()
    fanout.run_pass()

    assert reload(board_call).poll_status == "ok"
    assert mailsink.messages() == []


def test_a_lasting_polling_problem_sends_one_email_then_one_on_recovery(
    board_call, simulator, mailsink, settings
):
    settings.CONFWATCH_PROBLEM_AFTER_SECONDS = 0.5
    settings.CONFWATCH_ALERT_COALESCE_SECONDS = 0
    settings.CONFWATCH_ALERT_GROUP_SECONDS = 0
    subscribe("ann@example.com", kinds=["polling"])
    simulator.set_faults(error_rate=1.0)
    poll()
    time.sleep(0.6)

    fanout.run_pass()
    poll()
    fanout.run_pass()  # the same episode: nothing more
    [problem] = mailsink.wait_for(1, timeout=5)
    simulator.reset_faults()
    poll()
    fanout.run_pass()

    messages = mailsink.wait_for(2, timeout=5)
    assert "polling problem" in problem["Subject"]
    assert "polling recovered" in messages[1]["Subject"]
    assert len(mailsink.messages()) == 2


def test_changes_soon_after_an_email_go_out_together_in_the_next_one(
    board_call, sim_client, mailsink, settings
):
    settings.CONFWATCH_ALERT_COALESCE_SECONDS = 60
    subscribe("ann@example.com", kinds=["state", "members", "hold"])
    fanout.run_pass()
    sim_client.add_member(board_call.conference_id, call_id="c-1")
    poll()
    fanout.run_pass()  # a quiet conference: at once
    mailsink.wait_for(1, timeout=5)

    sim_client.add_member(board_call.conference_id, call_id="c-2")
    poll()
    sim_client.update_conference(board_call.conference_id, hold=True)
    poll()
    fanout.run_pass()
    assert len(mailsink.messages()) == 1  # held until the window closes

    fanout.run_pass(now=timezone.now() + timedelta(seconds=61))
    messages = mailsink.wait_for(2, timeout=5)
    later = messages[1]
    assert "members 1 -> 2" in later["Subject"]
    assert "hold" in later["Subject"]
    [delivery] = Delivery.objects.filter(status="sent").order_by("-sent_at")[:1]
    assert delivery.events.count() == 2


def pending_deliveries(count, conference):
    subscription = subscribe("many@example.com")
    event = Event.objects.create(
        kind="state_changed",
        account=conference.account,
        conference=conference,
        occurred_at=timezone.now(),
        before="created",
        after="active",
        handled_at=timezone.now(),
    )
    deliveries = []
    for _ in range(count):
        delivery = Delivery.objects.create(
            subscription=subscription, email=subscription.email, conference=conference
        )
        delivery.events.add(event)
        deliveries.append(delivery)
    return deliveries


@pytest.mark.django_db(transaction=True)
def test_two_senders_draining_the_same_outbox_send_each_delivery_exactly_once(
    simulator, mailsink, settings
):
    settings.CONFWATCH_ALERT_GROUP_SECONDS = 0  # one message per delivery
    conference = make_conference(make_account(simulator), "conf-outbox")
    deliveries = pending_deliveries(40, conference)

    def drain():
        try:
            while sender.send_pending(limit=5).sent:
                pass
        finally:
            connection.close()

    senders = [threading.Thread(target=drain) for _ in range(2)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(timeout=60)

    messages = mailsink.wait_for(40, timeout=10)
    ids = [message["Message-ID"] for message in messages]
    assert len(ids) == 40
    assert sorted(ids) == sorted(d.message_id for d in deliveries)
    assert Delivery.objects.filter(status="sent").count() == 40


@pytest.mark.django_db(transaction=True)
def test_a_sender_whose_lease_lapsed_mid_batch_leaves_what_another_took_and_nothing_goes_twice(
    simulator, mailsink, settings
):
    settings.CONFWATCH_ALERT_GROUP_SECONDS = 0  # one message per delivery
    # Each send takes 0.4 s and a claim holds 1 s: the first sender's batch of 8 (3.2 s)
    # outlasts its lease, and a second sender takes the deliveries it has not reached.
    settings.CONFWATCH_SEND_CLAIM_SECONDS = 1.0
    settings.EMAIL_TIMEOUT = 5
    mailsink.slow_down(0.4)
    conference = make_conference(make_account(simulator), "conf-lease")
    deliveries = pending_deliveries(8, conference)
    first_summary = []

    def first_sender():
        try:
            first_summary.append(sender.send_pending())
        finally:
            connection.close()

    def second_sender():
        try:
            deadline = time.monotonic() + 30
            pending = Delivery.objects.filter(status="pending")
            while pending.exists() and time.monotonic() < deadline:
                sender.send_pending()
                time.sleep(0.1)
        finally:
            connection.close()

    first = threading.Thread(target=first_sender)
    first.start()
    wait_for(lambda: Delivery.objects.exclude(claim_token=None, status="pending").exists())
    second = threading.Thread(target=second_sender)
    second.start()
    first.join(timeout=60)
    second.join(timeout=60)
    mailsink.slow_down(0)

    time.sleep(0.5)  # anything sent twice would have arrived by now
    ids = [message["Message-ID"] for message in mailsink.messages()]
    assert sorted(ids) == sorted(d.message_id for d in deliveries)  # each exactly once
    assert Delivery.objects.filter(status="sent").count() == 8
    assert 0 < first_summary[0].sent < 8  # the second sender really took some


@pytest.mark.django_db(transaction=True)
def test_a_pending_email_the_fan_out_joins_waits_for_the_fan_outs_commit_before_it_is_sent(
    simulator, mailsink, settings
):
    settings.CONFWATCH_ALERT_GROUP_SECONDS = 0
    conference = make_conference(make_account(simulator), "conf-join")
    [delivery] = pending_deliveries(1, conference)
    pair = (delivery.subscription_id, conference.pk)
    loaded, release, joined = threading.Event(), threading.Event(), []

    def fan_out_pass():
        try:
            with transaction.atomic():
                outbox = fanout.Outbox(now=timezone.now())
                outbox.load({pair}, emails={delivery.email})
                joined.append(outbox.pending.get(pair))
                loaded.set()
                release.wait(timeout=10)  # the pass adding its events
        finally:
            connection.close()

    fan_out = threading.Thread(target=fan_out_pass)
    fan_out.start()
    assert loaded.wait(timeout=10)
    during = sender.send_pending()
    release.set()
    fan_out.join(timeout=10)
    after = sender.send_pending()

    assert joined == [delivery]
    assert during.sent == 0  # the sender skipped it while the fan-out could add to it
    assert after.sent == 1
    assert reload(delivery).status == "sent"


def members_event(conference, before, after):
    return Event.objects.create(
        kind="members_changed",
        account=conference.account,
        conference=conference,
        occurred_at=timezone.now(),
        before=str(before),
        after=str(after),
    )


@pytest.mark.django_db(transaction=True)
def test_a_fan_out_pass_beside_another_waits_for_it_and_joins_its_pending_email(
    simulator, settings, monkeypatch
):
    settings.CONFWATCH_ALERT_GROUP_SECONDS = 0
    conference = make_conference(make_account(simulator), "conf-two-passes")
    subscribe("ann@example.com", kinds=["members"])
    first_event = members_event(conference, 0, 1)
    inside, release = threading.Event(), threading.Event()
    write_links = fanout.Outbox.write_links

    def held_open(outbox):
        write_links(outbox)
        if threading.current_thread().name == "first pass":
            inside.set()
            release.wait(timeout=10)  # its transaction still open

    monkeypatch.setattr(fanout.Outbox, "write_links", held_open)

    def fan_out():
        try:
            fanout.fan_out(rules_too=False)
        finally:
            connection.close()

    first = threading.Thread(target=fan_out, name="first pass")
    first.start()
    assert inside.wait(timeout=10)
    second_event = members_event(conference, 1, 2)
    second = threading.Thread(target=fan_out, name="second pass")
    second.start()
    second.join(timeout=1)
    waited = second.is_alive()
    release.set()
    first.join(timeout=10)
    second.join(timeout=10)

    assert waited  # for the first pass to commit
    [delivery] = Delivery.objects.all()
    assert set(delivery.events.all()) == {first_event, second_event}


@pytest.mark.django_db(transaction=True)
def test_a_sender_killed_mid_batch_loses_nothing_and_its_claims_are_sent_after_the_lease(
    simulator, mailsink, settings
):
    conference = make_conference(make_account(simulator), "conf-killed")
    deliveries = pending_deliveries(20, conference)
    mailsink.slow_down(0.2)  # seconds per message, so the sender is caught mid-batch
    env = process_env(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(mailsink.port),
        CONFWATCH_SEND_CLAIM_SECONDS="2",
        CONFWATCH_ALERT_GROUP_SECONDS="0",  # one message per delivery
        EMAIL_TIMEOUT="1",
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "send_alerts"], env=env, stdout=subprocess.DEVNULL
    )
    try:
        mailsink.wait_for(3, timeout=20)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        process.kill()
    mailsink.slow_down(0)
    settings.CONFWATCH_ALERT_GROUP_SECONDS = 0
    claimed = Delivery.objects.filter(status="pending", claim_token__isnull=False)
    assert claimed.exists()  # the dead sender's claims ...
    assert sender.send_pending().sent == 0  # ... are left alone while their lease runs

    time.sleep(2.1)
    sender.send_pending()

    assert Delivery.objects.filter(status="sent").count() == 20
    received = {message["Message-ID"] for message in mailsink.wait_for(20, timeout=10)}
    assert received == {d.message_id for d in deliveries}
    assert len(mailsink.messages()) <= 21  # at most the one in flight went twice


def test_a_claim_shorter_than_two_email_timeouts_is_refused_at_startup():
    result = settings_load(CONFWATCH_SEND_CLAIM_SECONDS="15", EMAIL_TIMEOUT="10")

    assert result.returncode != 0
    assert "CONFWATCH_SEND_CLAIM_SECONDS=15 must be at least twice EMAIL_TIMEOUT" in result.stderr
    assert settings_load(CONFWATCH_SEND_CLAIM_SECONDS="20", EMAIL_TIMEOUT="10").returncode == 0


def waiting_for_a_lock():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_fan_out_and_recording_lock_conferences_in_one_order_and_never_deadlock(account):
    first, second = make_conference(account, "conf-a"), make_conference(account, "conf-b")
    subscribe("ann@example.com")
    for conference in (second, first):  # events in the other order than the rows
        Event.objects.create(
            kind="state_changed",
            account=account,
            conference=conference,
            occurred_at=timezone.now(),
            before="created",
            after="active",
        )
    first_locked, errors = threading.Event(), []

    def recording():
        # As recording does (observations.lock_conferences, pk order): the first row,
        # then, once fan-out waits for it, the second.
        try:
            with transaction.atomic():
                observations.lock_conferences([first.pk])
                first_locked.set()
                wait_for(waiting_for_a_lock, timeout=10, what="fan-out to wait")
                observations.lock_conferences([second.pk])
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    writer = threading.Thread(target=recording)
    writer.start()
    first_locked.wait(timeout=10)
    try:
        summary = fanout.fan_out()
    except Exception as error:
        errors.append(error)
        summary = None
    writer.join(timeout=30)

    assert errors == []
    assert summary.events == 2 and summary.deliveries == 2


def test_a_permanent_refusal_is_recorded_with_the_servers_answer_and_not_retried(
    board_call, sim_client, mailsink
):
    subscribe("nobody@example.com")
    mailsink.refuse("nobody@example.com", code=550, message="5.1.1 no such user")
    sim_client.add_member(board_call.conference_id, call_id="c-1")
    poll()

    summary = fanout.run_pass()
    fanout.run_pass(now=timezone.now() + timedelta(hours=1))

    assert summary.failed == 1
    delivery = Delivery.objects.get()
    assert delivery.status == "failed"
    assert "550" in delivery.last_error and "no such user" in delivery.last_error
    assert delivery.attempts == 1


def test_a_temporary_failure_is_retried_later(board_call, sim_client, mailsink):
    subscribe("ann@example.com")
    mailsink.fail_next(1, code=451)
    sim_client.add_member(board_call.conference_id, call_id="c-1")
    poll()

    first = fanout.run_pass()
    delivery = Delivery.objects.get()
    assert (first.sent, delivery.status, delivery.attempts) == (0, "pending", 1)
    assert "451" in delivery.last_error
    assert fanout.run_pass().sent == 0  # not before its backoff

    later = fanout.run_pass(now=timezone.now() + timedelta(seconds=31))

    assert later.sent == 1
    assert reload(delivery).status == "sent"
    assert len(mailsink.wait_for(1, timeout=5)) == 1


def test_a_conference_flapping_for_ten_minutes_sends_at_most_two_flapping_emails(
    account, mailsink, settings
):
    settings.CONFWATCH_ALERT_COALESCE_SECONDS = 0
    settings.CONFWATCH_FLAP_CHANGES = 4
    settings.CONFWATCH_FLAP_WINDOW_SECONDS = 120
    conference = make_conference(account, "conf-flap", label="Flappy")
    subscribe("ann@example.com", kinds=["state", "hold"])
    start_at = timezone.now() - timedelta(minutes=30)
    observations.record([Observation(conference.pk, start_at, seen={"state": "active"})])
    fanout.run_pass(now=start_at)

    # Ten simulated minutes: hold toggles every 15 seconds.
    for step in range(1, 41):
        at = start_at + timedelta(seconds=15 * step)
        observations.record(
            [Observation(conference.pk, at, seen={"state": "active", "hold": step % 2 == 1})]
        )
        fanout.run_pass(now=at)
    # Then quiet for longer than the window.
    fanout.run_pass(now=start_at + timedelta(seconds=15 * 40 + 121))

    messages = mailsink.wait_for(1, timeout=5)
    messages = mailsink.messages()
    flapping = [m for m in messages if "flapping" in m["Subject"]]
    settled = [m for m in messages if "settled" in m["Subject"]]
    assert len(flapping) == 1 and len(settled) == 1
    assert len(messages) <= settings.CONFWATCH_FLAP_CHANGES + 2
    assert reload(conference).flapping_since is None


def test_past_the_hourly_cap_a_recipient_gets_one_digest(account, mailsink, settings):
    settings.CONFWATCH_ALERT_COALESCE_SECONDS = 0
    settings.CONFWATCH_ALERT_GROUP_SECONDS = 0
    settings.CONFWATCH_ALERT_HOURLY_CAP = 3
    subscribe("ann@example.com")
    now = timezone.now()
    for index in range(8):
        conference = make_conference(account, f"conf-cap-{index}")
        observations.record([Observation(conference.pk, now, seen={"state": "created"})])
        observations.record(
            [Observation(conference.pk, now + timedelta(seconds=1), seen={"state": "active"})]
        )

    fanout.run_pass()
    mailsink.wait_for(3, timeout=5)
    assert len(mailsink.messages()) == 3
    fanout.run_pass(now=timezone.now() + timedelta(hours=1, seconds=5))

    messages = mailsink.wait_for(4, timeout=5)
    [digest] = [m for m in messages if "Digest" in m["Subject"]]
    assert "5" in digest["Subject"]
    assert Delivery.objects.get(kind="digest").events.count() == 5


def test_the_hourly_cap_is_counted_for_each_recipient_of_one_pass_on_its_own(
    account, mailsink, settings
):
    settings.CONFWATCH_ALERT_COALESCE_SECONDS = 0
    settings.CONFWATCH_ALERT_HOURLY_CAP = 2
    ann = subscribe("ann@example.com")
    subscribe("bob@example.com")
    now = timezone.now()
    for minutes in (10, 20):  # ann had her two messages this hour, bob none
        Delivery.objects.create(
            subscription=ann,
            email=ann.email,
            status=DeliveryStatus.SENT,
            sent_at=now - timedelta(minutes=minutes),
        )
    conference = make_conference(account, "conf-cap-each")
    observations.record([Observation(conference.pk, now, seen={"state": "created"})])
    later = now + timedelta(seconds=1)
    observations.record([Observation(conference.pk, later, seen={"state": "active"})])

    fanout.run_pass()

    [message] = mailsink.wait_for(1, timeout=5)
    assert message["To"] == "bob@example.com"
    pending = Delivery.objects.filter(status=DeliveryStatus.PENDING)
    assert [(d.email, d.kind) for d in pending] == [("ann@example.com", "digest")]


def test_send_alerts_prints_a_one_line_summary(board_call, sim_client, mailsink, capsys):
    subscribe("ann@example.com")
    sim_client.add_member(board_call.conference_id, call_id="c-1")
    poll()

    call_command("send_alerts")

    line = capsys.readouterr().out.strip()
    assert "1 deliveries" in line and "1 sent" in line and "0 failed" in line


@pytest.mark.django_db(transaction=True)
def test_a_change_on_the_simulator_reaches_the_smtp_server_through_a_real_worker(
    simulator, sim_client, mailsink, celery_env
):
    celery_env.update(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(mailsink.port),
        CONFWATCH_ALERT_SECONDS="1",
    )
    worker = start_celery(
        celery_env, "worker", "--pool=solo", "--without-mingle", "--without-gossip"
    )
    beat = start_celery(celery_env, "beat")
    try:
        account = make_account(simulator)
        conference_id = sim_client.create_conference(from_number="+15555550100")
        conference = make_conference(account, conference_id, label="Weekly")
        subscribe("ann@example.com")
        wait_for(lambda: reload(conference).state == "created", what="the first observation")

        sim_client.add_member(conference_id, call_id="c-joiner")

        [message] = mailsink.wait_for(1, timeout=30)
        assert message["Subject"] == f"[confwatch] Weekly ({conference_id}): created -> active"
    finally:
        for process in (beat, worker):
            process.terminate()
            process.wait(timeout=20)
