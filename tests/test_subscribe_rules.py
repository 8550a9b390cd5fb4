"""The `subscribe` command with rules and quiet hours: what it stores, what it refuses."""

from datetime import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from conferences.models import Subscription

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("subscribe", *args, stdout=out)
    return out.getvalue()


def test_subscribe_to_the_alone_rule_after_ten_minutes():
    out = run("ann@example.com", "--kinds", "alone", "--after", "10m")

    subscription = Subscription.objects.get()
    assert subscription.kinds == ["alone"]
    assert subscription.rule_after_seconds == 600
    assert subscription.notify_resolved is True
    assert "rules: alone after 10 min" in out


def test_subscribe_to_rules_next_to_change_kinds_with_their_parameters():
    out = run(
        "ann@example.com",
        "--kinds",
        "state,members_drop,schedule,not_started",
        "--after",
        "90s",
        "--drop",
        "50",
        "--expect",
        "Mon,Wed 09:00 Europe/Berlin",
        "--grace",
        "5m",
        "--no-resolved",
    )

    subscription = Subscription.objects.get()
    assert subscription.kinds == ["state", "not_started", "members_drop", "schedule"]
    assert subscription.rule_after_seconds == 90
    assert subscription.drop_percent == 50
    assert subscription.expect_schedule == "Mon,Wed 09:00 Europe/Berlin"
    assert subscription.grace_seconds == 300
    assert subscription.notify_resolved is False
    assert "members drop by 50% for 1 min 30 s" in out
    assert "schedule Mon,Wed 09:00 Europe/Berlin (grace 5 min)" in out
    assert "no resolved emails" in out


def test_subscribe_with_quiet_hours_in_the_time_zone():
    out = run("ann@example.com", "--tz", "Europe/Berlin", "--quiet", "22:00-07:00")

    subscription = Subscription.objects.get()
    assert (subscription.quiet_start, subscription.quiet_end) == (time(22), time(7))
    assert subscription.quiet_drop is False
    assert "quiet hours 22:00-07:00 (summarised)" in out
    run("ann@example.com", "--tz", "Europe/Berlin", "--quiet", "22:00-07:00")
    assert Subscription.objects.count() == 1  # the same again: unchanged


@pytest.mark.parametrize(
    "args, message",
    [
        (["--kinds", "alone"], "The rule alone needs a duration"),
        (["--kinds", "alone", "--after", "10"], "'10' is not a valid duration; write a number and"),
        (["--kinds", "alone", "--after", "ten minutes"], "is not a valid duration"),
        (["--kinds", "alone", "--after", "40d"], "too long"),
        (["--after", "10m"], "A duration \\(after\\) applies to the rules"),
        (["--kinds", "members_drop"], "needs the drop in percent"),
        (["--kinds", "members_drop", "--drop", "0"], "A drop of 0% makes no sense"),
        (["--kinds", "members_drop", "--drop", "half"], "'half' is not a percentage"),
        (["--drop", "50"], "A drop applies to the members_drop rule"),
        (["--kinds", "schedule"], "The rule schedule needs the expected start"),
        (["--kinds", "schedule", "--expect", "Mon 09:00"], "is not a schedule"),
        (["--kinds", "schedule", "--expect", "Mon 25:00 Europe/Berlin"], "'25:00' is not a time"),
        (["--kinds", "schedule", "--expect", "Funday 09:00 UTC"], "'funday' is not a day"),
        (["--kinds", "schedule", "--expect", "Mon 09:00 Mars/Base"], "'Mars/Base' is not a time"),
        (["--grace", "5m"], "A grace period applies to the schedule rule"),
        (["--quiet", "22-07"], "is not a time window"),
        (["--quiet", "07:00-07:00"], "must start and end at different times"),
        (["--quiet-drop"], "needs the quiet hours"),
    ],
)
def test_a_bad_rule_or_quiet_hours_option_is_a_clear_error_and_nothing_is_written(args, message):
    with pytest.raises(CommandError, match=message):
        run("ann@example.com", *args)

    assert not Subscription.objects.exists()
