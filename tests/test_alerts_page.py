import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from conferences.alerting import subscriptions, unsubscribe
from conferences.models import Delivery, Subscription
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db

ALERTS = "/alerts/"


@pytest.fixture
def staff(signed_in, user):
    user.email = "staff@example.com"
    user.save()
    return signed_in


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("other", email="other@example.com")


def add(staff, **fields):
    data = {"email": "staff@example.com", "scope": "all", "kinds": ["state"]}
    data.update(fields)
    return staff.post(ALERTS, data, follow=True)


def unsubscribe_path(subscription):
    return reverse("conferences:unsubscribe", args=[unsubscribe.token_for(subscription)])


def test_the_alerts_url_is_named_and_linked_from_the_nav(staff):
    assert reverse("conferences:alerts") == ALERTS
    assert f'href="{ALERTS}"' in staff.get("/").content.decode()


def test_anonymous_user_is_sent_to_login(client):
    response = client.get(ALERTS)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_form_offers_the_users_email_labelled_kinds_and_zone_names(staff):
    text = staff.get(ALERTS).content.decode()
    assert 'value="staff@example.com"' in text
    assert "hold on or off" in text and "polling problems and recoveries" in text
    assert '<option value="Europe/Berlin">' in text
    assert 'list="zone-names"' in text


def test_the_alerts_page_lists_only_the_users_own_subscriptions(staff, user, other_user):
    subscriptions.subscribe(email="mine@example.com", user=user, kinds=["hold"])
    subscriptions.subscribe(email="theirs@example.com", user=other_user)
    subscriptions.subscribe(email="nobodys@example.com")

    text = staff.get(ALERTS).content.decode()

    assert "mine@example.com" in text
    assert "theirs@example.com" not in text
    assert "nobodys@example.com" not in text


def test_the_alerts_page_adds_a_subscription_for_chosen_conferences(staff, user):
    account = make_account(name="acme")
    make_conference(account, "conf-1")
    make_conference(account, "conf-2")

    response = add(
        staff,
        scope="conferences",
        conference_ids="conf-1, conf-2",
        kinds=["members", "polling"],
        members_at_most="0",
        time_zone="Europe/Berlin",
        tag="ignored because the scope is conferences",
    )

    text = response.content.decode()
    subscription = Subscription.objects.get()
    assert subscription.user == user
    assert subscription.scope == Subscription.Scope.CONFERENCES
    assert subscription.tag == ""
    assert sorted(c.conference_id for c in subscription.conferences.all()) == ["conf-1", "conf-2"]
    assert subscription.kinds == ["members", "polling"]
    assert subscription.members_at_most == 0
    assert "Subscribed staff@example.com: members, polling alerts" in text
    assert "conferences conf-1, conf-2" in text
    assert "Europe/Berlin" in text


def test_a_duplicate_is_refused_politely(staff):
    add(staff, kinds=["state", "hold"])

    response = add(staff, kinds=["hold", "state"])

    assert response.status_code == 200
    assert "already gets exactly these alerts; unchanged." in response.content.decode()
    assert Subscription.objects.count() == 1


def test_a_bad_zone_is_refused_next_to_its_field(staff):
    response = add(staff, time_zone="Mars/Olympus")

    text = response.content.decode()
    assert response.status_code == 200
    field = text[text.index('<div class="field field-time_zone has-errors">') :]
    assert "is not a time zone" in field[: field.index("<datalist")]
    assert not Subscription.objects.exists()


def test_a_bad_kind_is_refused_with_a_message(staff):
    response = add(staff, kinds=["state", "exploded"])

    assert "Select a valid choice. exploded is not one of" in response.content.decode()
    assert not Subscription.objects.exists()


def test_an_unknown_conference_or_missing_account_is_refused(staff):
    unknown = add(staff, scope="conferences", conference_ids="conf-nope")
    no_account = add(staff, scope="account")

    assert "conf-nope is not tracked." in unknown.content.decode()
    assert "Choose the account." in no_account.content.decode()
    assert not Subscription.objects.exists()


def test_a_user_deletes_their_own_subscription(staff, user):
    subscription, _ = subscriptions.subscribe(email="mine@example.com", user=user)

    response = staff.post(reverse("conferences:alert-delete", args=[subscription.pk]), follow=True)

    assert "Deleted mine@example.com" in response.content.decode()
    assert not Subscription.objects.exists()


def test_deleting_another_users_subscription_is_a_404(staff, other_user):
    theirs, _ = subscriptions.subscribe(email="theirs@example.com", user=other_user)

    response = staff.post(reverse("conferences:alert-delete", args=[theirs.pk]))

    assert response.status_code == 404
    assert Subscription.objects.filter(pk=theirs.pk).exists()


def test_delete_needs_a_post(staff, user):
    subscription, _ = subscriptions.subscribe(email="mine@example.com", user=user)

    response = staff.get(reverse("conferences:alert-delete", args=[subscription.pk]))

    assert response.status_code == 405
    assert Subscription.objects.exists()


def test_the_alerts_page_shows_the_users_recent_emails(staff, user, other_user):
    mine, _ = subscriptions.subscribe(email="team@example.com", user=user)
    theirs, _ = subscriptions.subscribe(email="theirs@example.com", user=other_user)
    Delivery.objects.create(subscription=mine, email=mine.email, subject="conf-1 is active")
    Delivery.objects.create(email="staff@example.com", subject="conf-2 is completed")
    Delivery.objects.create(subscription=theirs, email=theirs.email, subject="not for staff")

    text = staff.get(ALERTS).content.decode()

    assert "conf-1 is active" in text and "conf-2 is completed" in text
    assert "not for staff" not in text


# The unsubscribe link.


@pytest.fixture
def subscription(db):
    subscription, _ = subscriptions.subscribe(email="ann@example.com", kinds=["state", "hold"])
    return subscription


def test_unsubscribe_get_asks_and_changes_nothing_without_signing_in(client, subscription):
    response = client.get(unsubscribe_path(subscription))

    text = response.content.decode()
    assert response.status_code == 200
    assert "Unsubscribe ann@example.com from state, hold alerts about every conference?" in text
    assert '<form method="post"' in text
    assert Subscription.objects.filter(pk=subscription.pk).exists()


def test_unsubscribe_post_deletes_the_subscription(client, subscription):
    response = client.post(unsubscribe_path(subscription))

    assert response.status_code == 200
    assert "ann@example.com no longer gets state, hold alerts" in response.content.decode()
    assert not Subscription.objects.exists()


def test_one_click_unsubscribe_works_without_a_csrf_token(subscription):
    mail_client = Client(enforce_csrf_checks=True)

    response = mail_client.post(
        unsubscribe_path(subscription),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert not Subscription.objects.exists()


def test_unsubscribe_works_for_a_signed_in_user_too(staff, subscription):
    assert staff.post(unsubscribe_path(subscription)).status_code == 200
    assert not Subscription.objects.exists()


def forged_tokens(victim):
    good = unsubscribe.token_for(victim)
    changed = good[:3] + ("A" if good[3] != "A" else "B") + good[4:]
    wrong_key = signing.dumps(
        {"s": victim.pk, "e": victim.email}, salt=unsubscribe.SALT, key="not-the-secret-key"
    )
    wrong_salt = signing.dumps({"s": victim.pk, "e": victim.email}, salt="another.purpose")
    unsigned = signing.b64_encode(f'{{"s":{victim.pk}}}'.encode()).decode()
    return [changed, wrong_key, wrong_salt, unsigned, "nonsense"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_forged_or_tampered_token_is_a_plain_404_and_deletes_nothing(client, method):
    victim, _ = subscriptions.subscribe(email="victim@example.com")

    for token in forged_tokens(victim):
        path = reverse("conferences:unsubscribe", args=[token])
        response = getattr(client, method)(path)
        text = response.content.decode()
        assert response.status_code == 404, token
        assert "This link is not valid" in text
        assert "victim@example.com" not in text

    assert Subscription.objects.filter(pk=victim.pk).exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_unsubscribe_link_opened_again_says_already_unsubscribed(client, subscription, method):
    path = unsubscribe_path(subscription)
    client.post(path)
    other, _ = subscriptions.subscribe(email="ann@example.com", kinds=["mute"])

    again = getattr(client, method)(path)

    text = again.content.decode()
    assert again.status_code == 200
    assert "Already unsubscribed" in text and "ann@example.com" in text
    assert "not valid" not in text and "damaged" not in text
    assert list(Subscription.objects.all()) == [other]  # nothing else is touched


# The conference page's alert emails.


@pytest.fixture
def conference(db):
    return make_conference(make_account(name="acme"), "conf-timeline", state="active")


def test_the_conference_page_shows_its_alert_emails(signed_in, conference):
    Delivery.objects.create(
        conference=conference,
        email="ann@example.com",
        status="sent",
        sent_at=timezone.now(),
        subject="conf-timeline is active",
    )
    Delivery.objects.create(
        conference=conference,
        email="bob@example.com",
        status="failed",
        last_error="SMTP 550 mailbox unavailable",
        subject="conf-timeline is on hold",
    )
    Delivery.objects.create(email="carol@example.com", subject="about another conference")

    text = signed_in.get(reverse("conferences:detail", args=[conference.pk])).content.decode()

    emails = text[text.index("<h2>Alert emails</h2>") :]
    assert "ann@example.com" in emails and "conf-timeline is active" in emails
    assert 'class="delivery-sent">sent' in emails
    assert 'class="delivery-failed">failed' in emails
    assert "SMTP 550 mailbox unavailable" in emails
    assert "carol@example.com" not in emails
