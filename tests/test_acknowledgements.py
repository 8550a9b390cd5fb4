"""Acknowledging alerts: from the email's signed link without signing in, or from the
conference page; silence until the next state change or the expiry."""

import re
import threading
import time
from datetime import timedelta

import pytest
from django.core import signing
from django.db import connection
from django.utils import timezone

from conferences.alerting import acknowledgements, fanout
from conferences.models import Acknowledgement, Delivery, Event, EventKind, Subscription
from conferences.polling import rounds
from conferences.recording.observations import Observation, record
from conferences.registry import roles
from tests.conftest import make_account, make_conference, reload

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(db):
    """A support admin (conftest's plain user, overridden): acknowledging from the page
    is an admin's action; tests/test_roles.py shows a viewer's 403."""
    return roles.create_user(username="staff", role="admin", password="correct horse battery")


ACK_LINK = re.compile(r"https?://\S+(/acknowledge/[^/\s]+/)")


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


def body(message):
    return message.get_body(("plain",)).get_content()


@pytest.fixture
def bridge(account, sim_client):
    conference_id = sim_client.create_conference(from_number="+15555550100")
    conference = make_conference(account, conference_id, label="Bridge")
    poll()
    Subscription.objects.create(email="ops@example.com", kinds=["state", "hold", "members"])
    return conference


def test_the_emails_link_acknowledges_without_signing_in_until_the_state_changes(
    bridge, sim_client, mailsink, client, settings
):
    settings.CONFWATCH_ALERT_GROUP_SECONDS = 0  # each change mailed at once
    sim_client.add_member(bridge.conference_id, call_id="c-1")
    poll()
    fanout.run_pass()
    [first] = mailsink.wait_for(1, timeout=5)
    path = ACK_LINK.search(body(first)).group(1)

    asked = client.get(path)
    assert asked.status_code == 200
    assert b"Acknowledge this alert?" in asked.content
    assert not Acknowledgement.objects.exists()  # following the link acknowledges nothing
    done = client.post(path, {"reason": "calling the customer", "expires": ""})

    assert done.status_code == 200
    assert b"Acknowledged" in done.content
    acknowledgement = Acknowledgement.objects.get()
    assert acknowledgement.by == "ops@example.com"
    assert acknowledgement.what == first["Subject"]
    assert acknowledgement.reason == "calling the customer"
    assert Event.objects.filter(kind=EventKind.ACKNOWLEDGED, conference=bridge).exists()

    sim_client.update_conference(bridge.conference_id, hold=True)
    sim_client.add_member(bridge.conference_id, call_id="c-2")
    poll()
    fanout.run_pass()
    assert len(settle(mailsink)) == 1  # silenced

    sim_client.update_conference(bridge.conference_id, state="completed")
    poll()
    fanout.run_pass()
    messages = mailsink.wait_for(2, timeout=5)
    assert "active -> completed" in messages[1]["Subject"]
    acknowledgement = reload(acknowledgement)
    assert acknowledgement.ended_because == "the state changed to completed"
    assert len(settle(mailsink)) == 2


def test_an_acknowledgement_with_an_expiry_silences_only_until_it_expires(
    bridge, sim_client, mailsink, signed_in
):
    sim_client.add_member(bridge.conference_id, call_id="c-1")
    poll()
    response = signed_in.post(
        f"/conferences/{bridge.pk}/acknowledge/", {"reason": "known", "expires": "1m"}
    )
    assert response.status_code == 302
    fanout.run_pass()  # the change to active came before: silenced too
    sim_client.update_conference(bridge.conference_id, hold=True)
    poll()
    fanout.run_pass()
    assert settle(mailsink) == []

    sim_client.update_conference(bridge.conference_id, hold=False)
    poll()
    fanout.run_pass(now=later(61))

    [message] = mailsink.wait_for(1, timeout=5)
    assert "hold off" in message["Subject"]


def test_an_acknowledgement_silences_rule_alerts_too(bridge, sim_client, mailsink, signed_in):
    Subscription.objects.create(email="rules@example.com", kinds=["alone"], rule_after_seconds=5)
    sim_client.add_member(bridge.conference_id, call_id="c-1")
    poll()
    signed_in.post(f"/conferences/{bridge.pk}/acknowledge/", {"reason": "", "expires": ""})

    fanout.run_pass(now=later(6))
    fanout.run_pass(now=later(20))

    assert settle(mailsink) == []
    assert Event.objects.filter(kind=EventKind.RULE_FIRED).count() == 1


def test_the_conference_page_acknowledges_and_shows_who_acknowledged_what_and_when(
    bridge, signed_in, user
):
    response = signed_in.post(
        f"/conferences/{bridge.pk}/acknowledge/", {"reason": "vendor ticket 42", "expires": "2h"}
    )
    assert response.status_code == 302

    [acknowledgement] = acknowledgements.for_conference(bridge)
    assert acknowledgement.by == "staff" and acknowledgement.user == user
    assert acknowledgement.what == "the conference's alerts"
    assert acknowledgement.in_force
    assert acknowledgement.status == "in force until it expires or the state changes"
    page = signed_in.get(f"/conferences/{bridge.pk}/").content.decode()
    assert "vendor ticket 42" in page
    assert 'class="entry entry-acknowledged' in page and "Acknowledged by staff" in page


@pytest.mark.parametrize(
    "values, message",
    [({"expires": "soon"}, "is not a valid expiry"), ({"reason": "x" * 501}, "at most 500")],
)
def test_a_bad_expiry_or_reason_is_a_400_and_acknowledges_nothing(
    bridge, signed_in, values, message
):
    response = signed_in.post(f"/conferences/{bridge.pk}/acknowledge/", values)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Acknowledgement.objects.exists()


def test_a_refused_acknowledgement_shows_the_conference_page_again_with_what_was_typed(
    bridge, signed_in
):
    response = signed_in.post(
        f"/conferences/{bridge.pk}/acknowledge/", {"reason": "vendor ticket 42", "expires": "soon"}
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "<h1>Bridge</h1>" in page and 'id="status-card"' in page  # the conference page
    panel = page[page.index('id="acknowledgements"') :]
    assert "Nothing was acknowledged: correct the form and send it again." in panel
    assert 'value="vendor ticket 42"' in panel and 'value="soon"' in panel
    assert "is not a valid expiry" in panel and 'aria-invalid="true"' in panel
    # The page's links still lead to the conference page, not to the form's address.
    assert f'href="/conferences/{bridge.pk}/?range=1h#chart"' in page
    assert not Acknowledgement.objects.exists()


def test_acknowledging_from_the_page_needs_a_signed_in_user(bridge, client):
    response = client.post(f"/conferences/{bridge.pk}/acknowledge/", {})

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not Acknowledgement.objects.exists()


def delivery_of(conference, email="ops@example.com"):
    return Delivery.objects.create(
        email=email, conference=conference, subject="[confwatch] Bridge: created -> active"
    )


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_forged_or_changed_link_is_a_plain_404_and_acknowledges_nothing(
    bridge, account, client, method
):
    other = make_conference(account, "conf-other")
    delivery = delivery_of(bridge)
    token = acknowledgements.token_for(delivery)
    forged = [
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        signing.dumps({"d": delivery.pk, "c": other.pk, "e": delivery.email}, salt="other"),
        signing.dumps({"d": delivery.pk, "c": other.pk, "e": delivery.email}, salt="x" * 3),
        "not-a-token",
    ]
    for bad in forged:
        response = getattr(client, method)(f"/acknowledge/{bad}/")
        assert response.status_code == 404
    assert not Acknowledgement.objects.exists()


def test_a_link_names_its_own_alert_only(bridge, account, client):
    other = make_conference(account, "conf-other")
    mine = delivery_of(bridge)
    theirs = delivery_of(other, email="someone@example.com")

    client.post(f"/acknowledge/{acknowledgements.token_for(mine)}/", {})

    [acknowledgement] = Acknowledgement.objects.all()
    assert acknowledgement.conference == bridge and acknowledgement.delivery == mine
    assert acknowledgements.read_link(acknowledgements.token_for(theirs)).delivery == theirs
    theirs.delete()
    gone = client.get(f"/acknowledge/{acknowledgements.token_for(theirs)}/")
    assert gone.status_code == 404


def test_a_state_change_nobody_asked_for_still_ends_the_acknowledgement(account, mailsink):
    conference = make_conference(account, "conf-hold-only", label="Hold only")
    Subscription.objects.create(email="hold@example.com", kinds=["hold"])
    start = timezone.now() - timedelta(minutes=5)
    record([Observation(conference.pk, start, seen={"state": "created", "hold": False})])
    fanout.run_pass()
    acknowledgement = acknowledgements.acknowledge(
        conference=conference, by="ann", now=start + timedelta(seconds=1)
    )
    seen = {"state": "active", "active_members": 2, "hold": False}
    record([Observation(conference.pk, start + timedelta(seconds=2), seen=seen)])
    fanout.run_pass()
    assert reload(acknowledgement).ended_because == "the state changed to active"

    seen = {"state": "active", "active_members": 2, "hold": True}
    record([Observation(conference.pk, start + timedelta(seconds=3), seen=seen)])
    fanout.run_pass()

    [message] = mailsink.wait_for(1, timeout=5)
    assert "hold on" in message["Subject"]


# An email's link acts once and expires.


def token_made(delivery, *, days_ago, monkeypatch):
    """The delivery's link as an email made `days_ago` days ago carried it."""
    then = time.time() - days_ago * 86400
    with monkeypatch.context() as patched:
        patched.setattr(signing.time, "time", lambda: then)
        return acknowledgements.token_for(delivery)


def test_an_emails_link_acknowledges_once_and_then_shows_who_did_it_and_when(bridge, client):
    delivery = delivery_of(bridge)
    path = f"/acknowledge/{acknowledgements.token_for(delivery)}/"

    first = client.post(path, {"reason": "on it", "expires": ""})
    replays = [client.post(path, {"reason": "again", "expires": "30d"}) for _ in range(2)]
    opened = client.get(path)

    assert first.status_code == 200 and b"Acknowledged" in first.content
    acknowledgement = Acknowledgement.objects.get()
    assert acknowledgement.reason == "on it" and acknowledgement.expires_at is None
    assert Event.objects.filter(kind=EventKind.ACKNOWLEDGED).count() == 1
    for again in [*replays, opened]:
        page = again.content.decode()
        assert again.status_code == 200
        assert "Already acknowledged" in page
        assert "[confwatch] Bridge: created -&gt; active" in page
        assert "Acknowledged by ops@example.com at " in page and ": on it" in page
        assert f"{acknowledgement.created_at:%Y-%m-%d %H:%M:%S}" in page
        assert "<form" not in page


def test_an_emails_link_used_again_after_the_state_changed_says_it_ended(bridge, client):
    delivery = delivery_of(bridge)
    path = f"/acknowledge/{acknowledgements.token_for(delivery)}/"
    client.post(path, {"reason": "", "expires": ""})
    Acknowledgement.objects.update(
        ended_at=timezone.now(), ended_because="the state changed to completed"
    )

    again = client.post(path, {"reason": "", "expires": ""}).content.decode()

    assert "Already acknowledged" in again and "the state changed to completed" in again
    assert "nothing more is sent" not in again
    assert Acknowledgement.objects.count() == 1


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_emails_link_expires_seven_days_after_the_email(bridge, client, monkeypatch, method):
    delivery = delivery_of(bridge)
    fresh = token_made(delivery, days_ago=6.9, monkeypatch=monkeypatch)
    stale = token_made(delivery, days_ago=7.1, monkeypatch=monkeypatch)

    expired = getattr(client, method)(f"/acknowledge/{stale}/", {"reason": "", "expires": ""})

    page = expired.content.decode()
    assert expired.status_code == 410
    assert "This link has expired" in page and "work for 7 days after their email" in page
    assert "Nothing was acknowledged" in page
    assert not Acknowledgement.objects.exists()
    assert not Event.objects.filter(kind=EventKind.ACKNOWLEDGED).exists()
    assert client.get(f"/acknowledge/{fresh}/").status_code == 200


def test_the_link_lifetime_is_a_setting(bridge, client, monkeypatch, settings):
    settings.CONFWATCH_ACK_LINK_DAYS = 1
    delivery = delivery_of(bridge)
    token = token_made(delivery, days_ago=2, monkeypatch=monkeypatch)

    response = client.post(f"/acknowledge/{token}/", {"reason": "", "expires": ""})

    assert response.status_code == 410 and b"work for 1 day after" in response.content
    assert not Acknowledgement.objects.exists()


def test_two_clicks_at_the_same_moment_make_one_acknowledgement(transactional_db):
    conference = make_conference(make_account(), "conf-race", label="Race")
    delivery = delivery_of(conference)
    start = threading.Barrier(2)
    results = []

    def click():
        start.wait()
        try:
            results.append(acknowledgements.acknowledge_alert(delivery=delivery, by="ops"))
        finally:
            connection.close()

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join(timeout=10)

    assert sorted(made for _, made in results) == [False, True]
    assert Acknowledgement.objects.count() == 1
    assert results[0][0].pk == results[1][0].pk
