import pytest
from django.utils import timezone

from conferences.alerting import subscriptions
from conferences.models import Conference, Delivery, Event, Subscription
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", password="correct horse battery")
    client.force_login(user)
    return client


@pytest.fixture
def records(db):
    account = make_account(name="acme")
    conference = make_conference(account, "conf-alpha", label="Board call")
    subscription, _ = subscriptions.subscribe(
        email="ann@example.com", tag="vip", kinds=["state", "hold"], time_zone="Europe/Berlin"
    )
    event = Event.objects.create(
        kind="state_changed",
        account=account,
        conference=conference,
        occurred_at=timezone.now(),
        before="created",
        after="active",
    )
    delivery = Delivery.objects.create(
        subscription=subscription,
        email=subscription.email,
        conference=conference,
        subject="Board call is active",
        last_error="SMTP 451 try later",
    )
    delivery.events.add(event)
    return subscription, event, delivery


def test_the_subscription_changelist_lists_and_finds_subscriptions(admin, records):
    subscriptions.subscribe(email="bob@example.com", kinds=["polling"])

    page = admin.get("/admin/conferences/subscription/")
    by_email = admin.get("/admin/conferences/subscription/?q=ann@").content.decode()
    by_kind = admin.get("/admin/conferences/subscription/?kind=polling").content.decode()
    by_scope = admin.get("/admin/conferences/subscription/?scope__exact=tag").content.decode()

    assert page.status_code == 200
    assert "ann@example.com" in page.content.decode()
    assert "Europe/Berlin" in page.content.decode()
    assert "ann@example.com" in by_email and "bob@example.com" not in by_email
    assert "bob@example.com" in by_kind and "ann@example.com" not in by_kind
    assert "ann@example.com" in by_scope and "bob@example.com" not in by_scope


def test_a_subscription_edited_in_the_admin_is_checked_like_the_command(admin, records):
    subscription, _, _ = records
    response = admin.post(
        f"/admin/conferences/subscription/{subscription.pk}/change/",
        {
            "email": "ann@example.com",
            "scope": "tag",
            "tag": "vip",
            "kinds": "state,exploded",
            "time_zone": "Mars/Olympus",
        },
    )

    text = response.content.decode()
    assert response.status_code == 200
    assert "Unknown kind" in text and "is not a time zone" in text
    assert Subscription.objects.get().kinds == ["state", "hold"]


@pytest.mark.parametrize("model", ["event", "delivery"])
def test_events_and_deliveries_are_listed_read_only(admin, records, model):
    _, event, delivery = records
    record = {"event": event, "delivery": delivery}[model]

    page = admin.get(f"/admin/conferences/{model}/")
    found = admin.get(f"/admin/conferences/{model}/?q=conf-alpha")
    detail = admin.get(f"/admin/conferences/{model}/{record.pk}/change/")

    assert page.status_code == 200
    assert "Board call" in page.content.decode()
    assert "Board call" in found.content.decode()
    assert f"/admin/conferences/{model}/add/" not in page.content.decode()
    assert 'value="delete_selected"' not in page.content.decode()
    assert detail.status_code == 200
    assert f"/{record.pk}/delete/" not in detail.content.decode()
    assert admin.get(f"/admin/conferences/{model}/add/").status_code == 403
    assert admin.post(f"/admin/conferences/{model}/{record.pk}/delete/").status_code == 403
    assert type(record).objects.filter(pk=record.pk).exists()


def test_the_event_and_delivery_changelists_filter_as_support_staff_look(admin, records):
    problems = admin.get("/admin/conferences/event/?kind__exact=polling_problem").content.decode()
    changes = admin.get("/admin/conferences/event/?kind__exact=state_changed").content.decode()
    sent = admin.get("/admin/conferences/delivery/?status__exact=sent").content.decode()
    pending = admin.get("/admin/conferences/delivery/?status__exact=pending").content.decode()

    assert "Board call" not in problems and "Board call" in changes
    assert "Board call is active" not in sent
    assert "Board call is active" in pending and "SMTP 451 try later" in pending


def test_deleting_a_conference_in_the_admin_takes_its_events_and_emails_along(admin, records):
    _, event, _ = records
    conference = event.conference

    page = admin.get(f"/admin/conferences/conference/{conference.pk}/delete/")
    response = admin.post(f"/admin/conferences/conference/{conference.pk}/delete/", {"post": "yes"})

    assert "permission to delete" not in page.content.decode()
    assert response.status_code == 302
    assert not Conference.objects.exists()
    assert not Event.objects.exists() and not Delivery.objects.exists()
    assert Subscription.objects.exists()
