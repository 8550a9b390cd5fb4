"""Maintenance windows: the times they cover, bad input, and alerts held and summarised
(the simulator, the poller, the outbox and a real SMTP server)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from conferences.alerting import fanout, maintenance
from conferences.models import Delivery, MaintenanceWindow, Subscription
from conferences.polling import rounds
from tests.conftest import make_conference, reload

pytestmark = pytest.mark.django_db


def poll():
    return rounds.poll_round(force=True)


def body(message):
    return message.get_body(("plain",)).get_content()


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def local(moment):
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- times


def test_a_weekly_window_across_midnight_covers_the_local_hours_through_a_dst_change(account):
    # Saturday 22:00 to Sunday 04:00 in Berlin; clocks go forward on Sunday 2027-03-28
    # at 02:00 and back on Sunday 2027-10-31 at 03:00.
    window = maintenance.create_window(
        account_name="acme",
        starts="2027-03-20 22:00",
        until="2027-03-21 04:00",
        weekly=True,
        time_zone="Europe/Berlin",
    )

    def covered(*moment):
        return maintenance.in_force(window, utc(*moment)) is not None

    # The first week, in winter time (UTC+1): 21:00 to 03:00 UTC.
    assert not covered(2027, 3, 20, 20, 59)
    assert covered(2027, 3, 20, 21, 0)
    assert covered(2027, 3, 21, 2, 59)
    assert not covered(2027, 3, 21, 3, 0)
    # The night the clocks go forward: from 22:00 CET to 04:00 CEST, five hours.
    assert not covered(2027, 3, 27, 20, 59)
    assert covered(2027, 3, 27, 21, 0)
    assert covered(2027, 3, 28, 1, 59)
    assert not covered(2027, 3, 28, 2, 0)
    found = maintenance.in_force(window, utc(2027, 3, 28, 0, 0))
    assert found.ends_at - found.starts_at == timedelta(hours=5)
    # In summer time (UTC+2): 20:00 to 02:00 UTC.
    assert not covered(2027, 4, 3, 19, 59)
    assert covered(2027, 4, 3, 20, 0)
    assert not covered(2027, 4, 4, 2, 0)
    # The night the clocks go back: from 22:00 CEST to 04:00 CET, seven hours.
    assert covered(2027, 10, 30, 20, 0)
    assert covered(2027, 10, 31, 2, 59)
    assert not covered(2027, 10, 31, 3, 0)
    # On weekdays, nothing.
    assert not covered(2027, 3, 24, 21, 30)


def test_an_ended_window_covers_nothing_from_then_on(account):
    window = maintenance.create_window(
        account_name="acme",
        starts="2027-03-20 22:00",
        until="2027-03-21 04:00",
        weekly=True,
        time_zone="Europe/Berlin",
    )
    assert maintenance.end_window(window, now=utc(2027, 3, 20, 23, 0))

    assert maintenance.in_force(window, utc(2027, 3, 20, 22, 59)) is not None
    assert maintenance.in_force(window, utc(2027, 3, 20, 23, 0)) is None
    assert maintenance.in_force(window, utc(2027, 3, 27, 22, 0)) is None
    assert not maintenance.end_window(window)


@pytest.mark.parametrize(
    ("values", "error"),
    [
        (
            {"starts": "2027-05-02 10:00", "until": "2027-05-02 09:00"},
            "Until (2027-05-02 09:00) must be after from (2027-05-02 10:00)",
        ),
        ({"time_zone": "Mars/Olympus"}, "'Mars/Olympus' is not a time zone"),
        ({"account_name": "nobody"}, "No account named 'nobody'."),
        ({"account_name": None, "conference_ids": ["conf-nowhere"]}, "conf-nowhere is not tracked"),
        (
            {"starts": "2027-03-28 02:30", "until": "2027-03-28 05:00"},
            "From 2027-03-28 02:30 does not exist in Europe/Berlin",
        ),
        ({"starts": "tomorrow"}, "'tomorrow' is not a time"),
        ({"tag": "vip"}, "Name exactly one of"),
        ({"weekly": True, "until": "2027-05-09 10:00"}, "shorter than a week"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error_and_nothing_stored(account, values, error):
    arguments = {
        "account_name": "acme",
        "starts": "2027-05-02 08:00",
        "until": "2027-05-02 12:00",
        "time_zone": "Europe/Berlin",
    } | values

    with pytest.raises(ValidationError) as raised:
        maintenance.create_window(**arguments)

    assert error in " ".join(raised.value.messages)
    assert not MaintenanceWindow.objects.exists()


def test_the_command_adds_lists_and_ends_windows(account, capsys):
    make_conference(account, "conf-a")
    make_conference(account, "conf-b")
    now = timezone.now()
    call_command(
        "maintenance",
        "add",
        "--conference",
        "conf-a",
        "conf-b",
        "--from",
        local(now - timedelta(minutes=5)),
        "--until",
        local(now + timedelta(hours=1)),
        "--tz",
        "UTC",
        "--reason",
        "carrier work",
    )
    call_command("maintenance", "list")
    window = MaintenanceWindow.objects.get()
    call_command("maintenance", "end", str(window.pk))

    out = capsys.readouterr().out
    assert f"Added maintenance {window.pk}: conferences conf-a, conf-b" in out
    assert f"{window.pk}  now     conferences conf-a, conf-b" in out
    assert "carrier work" in out
    assert f"Ended maintenance {window.pk}" in out
    assert reload(window).ended_at is not None
    with pytest.raises(CommandError, match="has ended already"):
        call_command("maintenance", "end", str(window.pk))
    with pytest.raises(CommandError, match="does not exist in Europe/Berlin"):
        call_command(
            "maintenance",
            "add",
            "--account",
            "acme",
            "--from",
            "2027-03-28 02:00",
            "--until",
            "2027-03-28 06:00",
            "--tz",
            "Europe/Berlin",
        )


# --------------------------------------------------------------------------- alerts


@pytest.fixture
def calls(account, sim_client):
    """Two conferences tagged "router", one tagged "other", first observed."""
    found = {}
    for name, tag in (("Router A", "router"), ("Router B", "router"), ("Other", "other")):
        conference_id = sim_client.create_conference(from_number="+15555550100")
        found[name] = make_conference(account, conference_id, label=name, tags=[tag])
    poll()
    return found


def test_a_window_holds_alerts_for_what_it_covers_and_summarises_them_when_it_ends(
    calls, account, sim_client, mailsink, settings
):
    settings.CONFWATCH_PROBLEM_AFTER_SECONDS = 0
    Subscription.objects.create(email="ann@example.com", kinds=["state", "polling"])
    now = timezone.now()
    window = maintenance.create_window(
        tag="router",
        starts=local(now - timedelta(minutes=1)),
        until=local(now + timedelta(minutes=30)),
        time_zone="UTC",
        reason="router swap",
    )
    missing = make_conference(account, "conf-gone", label="Router C", tags=["router"])
    sim_client.add_member(calls["Router A"].conference_id, call_id="c-1")
    sim_client.add_member(calls["Other"].conference_id, call_id="c-2")
    poll()

    fanout.run_pass()

    [other] = mailsink.wait_for(1, timeout=5)
    assert other["Subject"].startswith("[confwatch] Other (")  # outside the window
    summary = Delivery.objects.get(kind=Delivery.Kind.MAINTENANCE)
    assert summary.status == "pending" and summary.maintenance == window
    assert summary.events.count() == 2  # recorded, not sent
    assert reload(calls["Router A"]).state == "active"  # polling went on
    assert reload(missing).poll_status == "not_found"

    fanout.run_pass(now=now + timedelta(minutes=29))
    assert len(mailsink.messages()) == 1
    fanout.run_pass(now=maintenance.in_force(window, now).ends_at)

    messages = mailsink.wait_for(2, timeout=5)
    assert len(messages) == 2
    message = messages[1]
    assert message["Subject"] == (
        "[confwatch] Maintenance summary (router swap): 2 alerts about 2 conferences, 1 still wrong"
    )
    text = body(message)
    assert "2 alerts held during the maintenance of tag router:" in text
    assert "Router A (" in text and "created -> active" in text and "Now active, 1 member." in text
    assert "Router C (conf-gone)" in text
    assert "Still in trouble: polling problem (not found)." in text
    fanout.run_pass(now=now + timedelta(hours=1))
    assert len(mailsink.messages()) == 2  # once


def test_ending_a_window_early_sends_its_summary_at_once(calls, sim_client, mailsink):
    Subscription.objects.create(email="ann@example.com", kinds=["state"])
    now = timezone.now()
    window = maintenance.create_window(
        conference_ids=[calls["Router B"].conference_id],
        starts=local(now - timedelta(minutes=1)),
        until=local(now + timedelta(hours=3)),
        time_zone="UTC",
    )
    sim_client.add_member(calls["Router B"].conference_id, call_id="c-1")
    poll()
    fanout.run_pass()
    assert mailsink.messages() == []

    maintenance.end_window(window)
    fanout.run_pass()

    [message] = mailsink.wait_for(1, timeout=5)
    assert message["Subject"] == "[confwatch] Maintenance summary: 1 alert about 1 conference"
    assert "Router B (" in body(message)


# --------------------------------------------------------------------------- admin


@pytest.fixture
def admin(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", password="correct horse battery")
    client.force_login(user)
    return client


def test_the_admin_refuses_a_time_the_clocks_skip_and_adds_a_good_window(admin, account):
    form = {
        "account": str(account.pk),
        "tag": "",
        "starts": "2027-03-28 02:15",
        "until": "2027-03-28 05:00",
        "time_zone": "Europe/Berlin",
        "reason": "carrier work",
    }

    refused = admin.post("/admin/conferences/maintenancewindow/add/", form)
    form["starts"] = "2027-03-28 01:15"
    added = admin.post("/admin/conferences/maintenancewindow/add/", form)
    both = admin.post(
        "/admin/conferences/maintenancewindow/add/",
        form | {"tag": "vip", "starts": "2027-03-28 01:00"},
    )

    assert refused.status_code == 200
    assert "2027-03-28 02:15 does not exist in Europe/Berlin" in refused.content.decode()
    assert added.status_code == 302
    window = MaintenanceWindow.objects.get()
    assert window.starts_at == utc(2027, 3, 28, 0, 15)
    assert window.ends_at == utc(2027, 3, 28, 3, 0)
    assert window.created_by == "boss"
    assert "Cover exactly one of" in both.content.decode()
    page = admin.get(f"/admin/conferences/maintenancewindow/{window.pk}/change/").content.decode()
    assert 'value="2027-03-28 01:15"' in page


def test_a_summary_of_a_window_ending_in_quiet_hours_waits_for_their_end():
    subscription = Subscription(
        email="ann@example.com",
        time_zone="Europe/Berlin",
        quiet_start=datetime(2000, 1, 1, 22, 0).time(),
        quiet_end=datetime(2000, 1, 1, 7, 0).time(),
    )

    # 23:00 in Berlin (UTC+1) is in the quiet hours; 21:00 is not.
    assert maintenance.summary_time(subscription, utc(2027, 1, 5, 22, 0)) == utc(2027, 1, 6, 6, 0)
    assert maintenance.summary_time(subscription, utc(2027, 1, 5, 20, 0)) == utc(2027, 1, 5, 20, 0)
