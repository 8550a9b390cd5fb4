"""Grouped alerts end to end: the simulator, the poller, the outbox, a real SMTP server."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conferences.alerting import acknowledgements, fanout
from conferences.models import Account, Delivery, Event, EventKind, Subscription
from conferences.polling import rounds
from conferences.recording import observations
from conferences.recording.observations import Observation
from tests.conftest import make_conference, reload

pytestmark = pytest.mark.django_db


def subscribe(email, **values):
    values.setdefault("kinds", ["state"])
    return Subscription.objects.create(email=email, **values)


def poll():
    return rounds.poll_round(force=True)


def body(message):
    return message.get_body(("plain",)).get_content()


@pytest.fixture
def thirty(account, sim_client):
    conferences = []
    for index in range(30):
        conference_id = sim_client.create_conference(from_number="+15555550100")
        conferences.append(
            make_conference(account, conference_id, label=f"Call {index:02}", tags=["acme"])
        )
    poll()  # first observed: created
    return conferences


def test_thirty_conferences_changing_in_one_round_make_one_message_per_target(
    thirty, sim_client, mailsink
):
    subscribe("ann@example.com")
    subscribe("bob@example.com", scope=Subscription.Scope.TAG, tag="acme")
    subscribe("cat@example.com", scope=Subscription.Scope.TAG, tag="other")
    for conference in thirty:
        sim_client.add_member(conference.conference_id, call_id=f"c-{conference.pk}")
    poll()

    fanout.run_pass()

    messages = mailsink.wait_for(2, timeout=10)
    assert sorted(m["To"] for m in messages) == ["ann@example.com", "bob@example.com"]
    for message in messages:
        assert message["Subject"] == "[confwatch] 30 alerts about 30 conferences"
        text = body(message)
        for conference in thirty:
            assert f"{conference.label} ({conference.conference_id})" in text
        assert text.count("created -> active") == 30
        assert text.count("Acknowledge: http") == 30
    deliveries = Delivery.objects.all()
    assert deliveries.count() == 60  # one per conference and target, each in the log
    assert set(deliveries.values_list("status", flat=True)) == {"sent"}
    assert len({m["Message-ID"] for m in messages}) == 2
    fanout.run_pass()
    assert len(mailsink.messages()) == 2  # nothing twice


def test_a_change_soon_after_a_message_waits_for_the_group_window_and_joins_the_next(
    thirty, sim_client, mailsink, settings
):
    settings.CONFWATCH_ALERT_GROUP_SECONDS = 30
    subscribe("ann@example.com")
    first, second, third = thirty[:3]
    sim_client.add_member(first.conference_id, call_id="c-1")
    poll()
    fanout.run_pass()
    [alone] = mailsink.wait_for(1, timeout=5)
    sim_client.add_member(second.conference_id, call_id="c-2")
    poll()
    fanout.run_pass()
    sim_client.add_member(third.conference_id, call_id="c-3")
    poll()
    fanout.run_pass()
    assert len(mailsink.messages()) == 1  # held for the window

    fanout.run_pass(now=timezone.now() + timedelta(seconds=31))

    messages = mailsink.wait_for(2, timeout=5)
    assert first.label in alone["Subject"]
    assert messages[1]["Subject"] == "[confwatch] 2 alerts about 2 conferences"
    assert second.label in body(messages[1]) and third.label in body(messages[1])


def test_rejected_credentials_give_one_message_about_the_account_and_one_on_recovery(
    thirty, account, mailsink, settings
):
    settings.CONFWATCH_PROBLEM_AFTER_SECONDS = 0
    subscribe("ann@example.com", kinds=["polling"])
    token, secret = account.credentials()
    account.set_credentials(token=token, secret="wrong")
    account.save()
    poll()
    poll()

    fanout.run_pass()

    [problem] = mailsink.wait_for(1, timeout=5)
    assert problem["Subject"] == (
        "[confwatch] account acme: credentials rejected for 30 conferences"
    )
    text = body(problem)
    assert "alerts about" not in text  # the account's headline says it
    assert "Conferences: Call 00 (" in text and "and 25 more" in text
    assert text.count("Call ") == 5
    fanout.run_pass()
    assert len(mailsink.messages()) == 1

    account = reload(account)
    account.set_credentials(token=token, secret=secret)
    account.save()
    Account.objects.filter(pk=account.pk).update(paused_until=timezone.now())  # pause over
    poll()
    # After the coalescing and group windows since the problem's message.
    fanout.run_pass(now=timezone.now() + timedelta(minutes=2))

    messages = mailsink.wait_for(2, timeout=5)
    assert len(messages) == 2
    assert messages[1]["Subject"] == (
        "[confwatch] account acme: polling recovered (credentials rejected is over) "
        "for 30 conferences"
    )
    assert {c.poll_status for c in thirty if reload(c)} == {"ok"}


def test_the_hourly_cap_counts_messages_so_a_grouped_message_takes_one(account, mailsink, settings):
    settings.CONFWATCH_ALERT_HOURLY_CAP = 2
    subscribe("ann@example.com")
    now = timezone.now()
    for index in range(8):
        conference = make_conference(account, f"conf-cap-{index}")
        observations.record([Observation(conference.pk, now, seen={"state": "created"})])
        later = now + timedelta(seconds=1)
        observations.record([Observation(conference.pk, later, seen={"state": "active"})])

    fanout.run_pass()

    [message] = mailsink.wait_for(1, timeout=5)
    assert message["Subject"] == "[confwatch] 8 alerts about 8 conferences"
    assert not Delivery.objects.filter(kind=Delivery.Kind.DIGEST).exists()


def test_an_acknowledged_conference_stays_out_of_a_grouped_message(thirty, sim_client, mailsink):
    subscribe("ann@example.com", kinds=["hold"])
    quiet, *others = thirty[:3]
    acknowledgements.acknowledge(conference=quiet, by="ann@example.com")
    for conference in thirty[:3]:
        sim_client.update_conference(conference.conference_id, hold=True)
    poll()

    fanout.run_pass()

    [message] = mailsink.wait_for(1, timeout=5)
    assert message["Subject"] == "[confwatch] 2 alerts about 2 conferences"
    text = body(message)
    assert all(conference.label in text for conference in others)
    assert quiet.label not in text


def test_an_accounts_events_of_two_passes_join_its_one_pending_email(account):
    subscription = subscribe("ann@example.com", kinds=["polling"])

    def recovered():
        return Event.objects.create(
            kind=EventKind.POLLING_RECOVERED,
            account=account,
            occurred_at=timezone.now(),
            before="credentials_rejected",
            after="ok",
            detail={"poll_status": "credentials_rejected", "since": None},
        )

    first = recovered()
    fanout.fan_out()
    second = recovered()
    fanout.fan_out()

    [delivery] = Delivery.objects.filter(subscription=subscription)
    assert delivery.conference_id is None
    assert set(delivery.events.all()) == {first, second}
