from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from conferences.alerting import subscriptions
from conferences.models import Subscription
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("subscribe", *args, stdout=out)
    return out.getvalue()


def test_subscribe_defaults_to_state_alerts_about_every_conference():
    out = run("ann@example.com")

    subscription = Subscription.objects.get()
    assert subscription.email == "ann@example.com"
    assert subscription.kinds == ["state"]
    assert subscription.scope == Subscription.Scope.ALL
    assert subscription.account is None and subscription.tag == ""
    assert subscription.time_zone == ""
    assert subscription.user is None
    assert out.count("\n") == 1
    assert out.startswith("Subscribed ann@example.com: state alerts about every conference")


def test_subscribe_takes_kinds_zone_thresholds_and_an_account():
    make_account(name="acme")

    out = run(
        "ann@example.com",
        "--account",
        "acme",
        "--kinds",
        "members, state,members",
        "--tz",
        "Europe/Berlin",
        "--members-at-most",
        "1",
        "--members-above",
        "10",
    )

    subscription = Subscription.objects.get()
    assert subscription.scope == Subscription.Scope.ACCOUNT
    assert subscription.account.name == "acme"
    assert subscription.kinds == ["state", "members"]
    assert subscription.time_zone == "Europe/Berlin"
    assert (subscription.members_at_most, subscription.members_above) == (1, 10)
    assert "account acme's conferences" in out
    assert "at 1 or fewer or above 10" in out


def test_subscribe_to_chosen_conferences_within_an_account():
    acme = make_account(name="acme")
    globex = make_account(name="globex")
    ours = make_conference(acme, "conf-1")
    make_conference(globex, "conf-1")
    other = make_conference(acme, "conf-2")

    run("ann@example.com", "--account", "acme", "--conference", "conf-1", "conf-2")

    again = run("ann@example.com", "--conference", "conf-2,conf-1", "--account", "acme")

    subscription = Subscription.objects.get()
    assert subscription.scope == Subscription.Scope.CONFERENCES
    assert set(subscription.conferences.all()) == {ours, other}
    assert "unchanged" in again


def test_subscribe_to_a_tag_stores_it_lowercase():
    run("ann@example.com", "--tag", "VIP", "--kinds", "hold,mute")

    subscription = Subscription.objects.get()
    assert subscription.scope == Subscription.Scope.TAG
    assert subscription.tag == "vip"
    assert subscription.kinds == ["hold", "mute"]


def test_a_duplicate_subscription_is_a_no_op_with_a_message():
    run("ann@example.com", "--kinds", "state,hold")

    again = run("ann@example.com", "--kinds", "hold,state")

    assert Subscription.objects.count() == 1
    assert again.startswith("Already subscribed (ann@example.com: state, hold alerts")
    assert again.rstrip().endswith("unchanged.")


def test_other_kinds_or_another_zone_are_a_new_subscription():
    run("ann@example.com")
    run("ann@example.com", "--kinds", "state,hold")
    run("ann@example.com", "--tz", "America/New_York")

    assert Subscription.objects.count() == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["--kinds", "state,exploded"], "Unknown kind 'exploded'; choose from state, hold"),
        (["--tz", "Mars/Olympus"], "'Mars/Olympus' is not a time zone"),
        (["--account", "nope"], "No account named 'nope'; add it with add_account."),
        (["--conference", "conf-nope"], "conf-nope is not tracked."),
        (["--members-above", "3"], "Member thresholds apply to members alerts only"),
        (["--tag", "vip", "--account", "acme"], "give the tag or the account, not both"),
    ],
)
def test_a_bad_option_is_a_clear_error_and_nothing_is_written(args, message):
    make_account(name="acme")

    with pytest.raises(CommandError, match=message):
        run("ann@example.com", *args)

    assert not Subscription.objects.exists()


def test_a_bad_email_is_refused():
    with pytest.raises(CommandError, match="Enter a valid email address."):
        run("not-an-address")

    assert not Subscription.objects.exists()


def test_the_service_keys_its_errors_by_argument():
    with pytest.raises(ValidationError) as raised:
        subscriptions.subscribe(email="x", kinds=["nope"], time_zone="Nowhere/Land")

    assert set(raised.value.message_dict) == {"email", "kinds", "time_zone"}
    assert not Subscription.objects.exists()


def test_an_id_tracked_on_several_accounts_needs_the_account():
    make_conference(make_account(name="acme"), "conf-1")
    make_conference(make_account(name="globex"), "conf-1")

    with pytest.raises(ValidationError, match="tracked on several accounts \\(acme, globex\\)"):
        subscriptions.subscribe(email="ann@example.com", conference_ids=["conf-1"])

    assert not Subscription.objects.exists()


def test_the_same_conferences_in_another_order_are_a_duplicate():
    account = make_account(name="acme")
    make_conference(account, "conf-1")
    make_conference(account, "conf-2")

    first, created = subscriptions.subscribe(
        email="ann@example.com", conference_ids=["conf-1", "conf-2"]
    )
    same, created_again = subscriptions.subscribe(
        email="ANN@example.com", conference_ids=["conf-2", "conf-1"]
    )
    fewer, created_fewer = subscriptions.subscribe(
        email="ann@example.com", conference_ids=["conf-1"]
    )

    assert (created, created_again, created_fewer) == (True, False, True)
    assert same == first and fewer != first


def test_unsubscribe_deletes_the_subscription():
    subscription, _ = subscriptions.subscribe(email="ann@example.com")

    subscriptions.unsubscribe(subscription)

    assert not Subscription.objects.exists()
