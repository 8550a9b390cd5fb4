"""Rules and quiet hours on the Alerts page and in the admin; acknowledgements and share
links in the admin."""

import pytest

from conferences.alerting import acknowledgements, sharing, subscriptions
from conferences.models import Acknowledgement, Conference, ShareLink, Subscription
from conferences.registry import roles
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db

ALERTS = "/alerts/"


@pytest.fixture
def staff(signed_in, user):
    user.email = "staff@example.com"
    user.save()
    return signed_in


def add(staff, **fields):
    data = {"email": "staff@example.com", "scope": "all", "kinds": ["state"]}
    data.update(fields)
    return staff.post(ALERTS, data, follow=True)


def test_the_alerts_page_offers_the_rules_and_quiet_hours(staff):
    text = staff.get(ALERTS).content.decode()

    assert "rule: exactly one active member for the duration" in text
    assert 'name="rule_after"' in text and 'name="expect"' in text
    assert 'name="quiet_hours"' in text and 'name="drop_percent"' in text


def test_the_alerts_page_adds_rules_with_their_parameters_and_quiet_hours(staff):
    response = add(
        staff,
        kinds=["alone", "schedule"],
        rule_after="10m",
        expect="Mon-Fri 09:00 Europe/Berlin",
        grace="5m",
        notify_resolved="on",
        quiet_hours="22:00-07:00",
        time_zone="Europe/Berlin",
    )

    text = response.content.decode()
    subscription = Subscription.objects.get()
    assert subscription.kinds == ["alone", "schedule"]
    assert subscription.rule_after_seconds == 600 and subscription.grace_seconds == 300
    assert subscription.expect_schedule == "Mon,Tue,Wed,Thu,Fri 09:00 Europe/Berlin"
    assert "alone after 10 min" in text
    assert "22:00-07:00 (summarised)" in text


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"kinds": ["alone"]}, "The rule alone needs a duration"),
        ({"kinds": ["alone"], "rule_after": "10 minutes"}, "is not a valid duration"),
        ({"kinds": ["schedule"], "expect": "someday"}, "is not a schedule"),
        ({"quiet_hours": "night"}, "is not a time window"),
    ],
)
def test_bad_rule_parameters_are_refused_next_to_their_fields(staff, fields, message):
    response = add(staff, **fields)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Subscription.objects.exists()


@pytest.fixture
def admin(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", password="correct horse battery")
    client.force_login(user)
    return client


def test_rules_edited_in_the_admin_are_checked_like_the_command(admin):
    subscription, _ = subscriptions.subscribe(email="ann@example.com")
    url = f"/admin/conferences/subscription/{subscription.pk}/change/"
    base = {"email": "ann@example.com", "scope": "all", "time_zone": "", "notify_resolved": "on"}

    refused = admin.post(url, {**base, "kinds": "alone,members_drop"})
    saved = admin.post(url, {**base, "kinds": "alone", "rule_after_seconds": "90"})

    text = refused.content.decode()
    assert "The rule alone needs a duration" in text and "needs the drop in percent" in text
    assert saved.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.kinds, subscription.rule_after_seconds) == (["alone"], 90)
    assert (
        "alone after 1 min 30 s" in admin.get("/admin/conferences/subscription/").content.decode()
    )


def test_acknowledgements_and_share_links_are_in_the_admin(admin):
    conference = make_conference(make_account(), "conf-alpha", label="Board call")
    acknowledgements.acknowledge(conference=conference, by="ann", reason="on it")
    link = sharing.create_link(conference=conference)

    acks = admin.get("/admin/conferences/acknowledgement/").content.decode()
    links = admin.get("/admin/conferences/sharelink/").content.decode()
    revoked = admin.post(
        "/admin/conferences/sharelink/",
        {"action": "revoke", "_selected_action": [link.pk]},
    )

    assert "on it" in acks and "Board call" in links
    assert revoked.status_code == 302
    assert ShareLink.objects.get().revoked_at is not None


def test_a_support_admin_deletes_a_conference_with_its_acknowledgements_and_links(
    client, django_user_model
):
    user = django_user_model.objects.create_user("lead", password="x", is_staff=True)
    user.groups.add(roles.ensure_groups()[roles.ADMIN])
    client.force_login(user)
    conference = make_conference(make_account(), "conf-alpha")
    acknowledgements.acknowledge(conference=conference, by="ann")
    sharing.create_link(conference=conference)

    url = f"/admin/conferences/conference/{conference.pk}/delete/"
    assert "permission to delete" not in client.get(url).content.decode()
    client.post(url, {"post": "yes"})

    assert not Conference.objects.exists()
    assert not Acknowledgement.objects.exists() and not ShareLink.objects.exists()
