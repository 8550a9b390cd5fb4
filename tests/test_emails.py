"""Alert emails: what each kind of delivery says, in text and HTML, and its headers."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from conferences.alerting import emails, unsubscribe
from conferences.models import Delivery, Event, EventKind, Subscription
from conferences.text import duration_text
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db

# 19:23:31 in Berlin (CET).
AT = datetime(2026, 11, 28, 18, 23, 31, tzinfo=UTC)


@pytest.fixture(autouse=True)
def email_settings(settings):
    settings.CONFWATCH_BASE_URL = "https://confwatch.example.com"
    settings.CONFWATCH_MAIL_DOMAIN = "mail.example.com"
    settings.DEFAULT_FROM_EMAIL = "alerts@example.com"
    settings.TIME_ZONE = "UTC"
    settings.CONFWATCH_FLAP_WINDOW_SECONDS = 600


@pytest.fixture
def account(db):
    return make_account()


@pytest.fixture
def conference(account):
    return make_conference(account, "conf-abc123", label="Board call")


def make_subscription(**overrides):
    values = {"email": "ops@example.com", "kinds": ["state"], "time_zone": "Europe/Berlin"}
    values.update(overrides)
    return Subscription.objects.create(**values)


def make_event(conference, kind=EventKind.STATE_CHANGED, **overrides):
    values = {
        "kind": kind,
        "account": conference.account,
        "conference": conference,
        "occurred_at": AT,
        "before": "created",
        "after": "active",
        "detail": {"active_members": 3, "state": "active"},
    }
    values.update(overrides)
    return Event.objects.create(**values)


def make_delivery(events, *, kind=Delivery.Kind.CHANGE, subscription=..., conference=...):
    if subscription is ...:
        subscription = make_subscription()
    if conference is ...:
        conference = events[0].conference if events else None
    delivery = Delivery.objects.create(
        kind=kind, subscription=subscription, email="ops@example.com", conference=conference
    )
    delivery.events.add(*events)
    return delivery


def html_of(message):
    [(content, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return content


def test_a_state_change_email_names_the_conference_and_the_change(conference):
    message = emails.build_message(make_delivery([make_event(conference)]))

    assert message.subject == "[confwatch] Board call (conf-abc123): created -> active"
    assert message.from_email == "alerts@example.com"
    assert message.to == ["ops@example.com"]


@pytest.mark.parametrize(
    ("kind", "before", "after", "detail", "change"),
    [
        (EventKind.MEMBERS_CHANGED, 2, 0, {}, "members 2 -> 0"),
        (EventKind.HOLD_CHANGED, False, True, {}, "hold on"),
        (EventKind.HOLD_CHANGED, True, False, {}, "hold off"),
        (EventKind.MUTE_CHANGED, False, True, {}, "mute on"),
        (EventKind.MUTE_CHANGED, True, False, {}, "mute off"),
        (EventKind.FIRST_OBSERVED, None, "active", {"state": "active"}, "first observed: active"),
        (
            EventKind.POLLING_PROBLEM,
            "ok",
            "not_found",
            {"poll_status": "not_found", "message": "404"},
            "polling problem: not found",
        ),
        (
            EventKind.POLLING_RECOVERED,
            "not_found",
            "ok",
            {"poll_status": "not_found"},
            "polling recovered",
        ),
        (EventKind.STATE_CHANGED, None, "active", {}, "unknown -> active"),
    ],
)
def test_each_kind_of_change_is_named_in_the_subject(
    conference, kind, before, after, detail, change
):
    event = make_event(conference, kind, before=before, after=after, detail=detail)

    message = emails.build_message(make_delivery([event]))

    assert message.subject == f"[confwatch] Board call (conf-abc123): {change}"


def test_a_conference_without_a_label_is_named_by_its_id(account):
    conference = make_conference(account, "conf-nolabel")

    message = emails.build_message(make_delivery([make_event(conference)]))

    assert message.subject == "[confwatch] conf-nolabel: created -> active"


def test_coalesced_changes_name_the_first_two_and_count_the_rest(conference):
    events = [
        make_event(
            conference,
            occurred_at=AT + timedelta(seconds=20),
            before=True,
            after=False,
            kind=EventKind.HOLD_CHANGED,
        ),
        make_event(conference),
        make_event(
            conference,
            EventKind.MEMBERS_CHANGED,
            before=0,
            after=3,
            occurred_at=AT + timedelta(seconds=10),
        ),
    ]

    message = emails.build_message(make_delivery(events))

    assert message.subject == (
        "[confwatch] Board call (conf-abc123): created -> active, members 0 -> 3 (+1 more)"
    )
    body = message.body
    assert body.index("created -> active") < body.index("0 -> 3") < body.index("Hold: on -> off")


def test_a_long_or_multiline_label_keeps_the_subject_one_short_line(account):
    conference = make_conference(account, "conf-long", label="Quarterly\nreview " + "x" * 170)
    events = [make_event(conference, occurred_at=AT + timedelta(seconds=n)) for n in range(5)]

    message = emails.build_message(make_delivery(events))

    assert len(message.subject) <= 150
    assert "\n" not in message.subject
    assert message.subject.startswith("[confwatch] Quarterly review xxx")
    assert "(conf-long): created -> active, created -> active (+3 more)" in message.subject


def test_the_body_tells_the_change_time_duration_members_and_links(conference):
    subscription = make_subscription(time_zone="Europe/Berlin")
    event = make_event(
        conference,
        detail={
            "active_members": 3,
            "state": "active",
            "previous_state_since": (AT - timedelta(minutes=12, seconds=5)).isoformat(),
        },
    )

    message = emails.build_message(make_delivery([event], subscription=subscription))

    body = message.body
    assert "State: created -> active" in body
    assert "2026-11-28 19:23:31 CET (Europe/Berlin)" in body
    assert "The previous state (created) lasted 12 min 5 s." in body
    assert "Active members: 3." in body
    assert f"https://confwatch.example.com/conferences/{conference.pk}/" in body
    [link] = [line for line in body.splitlines() if line.startswith("Unsubscribe: ")]
    url = link.removeprefix("Unsubscribe: ")
    assert url.startswith("https://confwatch.example.com/unsubscribe/")
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert unsubscribe.read_link(token).subscription == subscription


def test_a_subscription_without_a_time_zone_gets_the_sites(conference, settings):
    settings.TIME_ZONE = "America/New_York"
    subscription = make_subscription(time_zone="")

    message = emails.build_message(
        make_delivery([make_event(conference)], subscription=subscription)
    )

    assert "2026-11-28 13:23:31 EST (America/New_York)" in message.body
    assert "Times are in America/New_York." in message.body


def test_utc_is_named_once(conference):
    message = emails.build_message(
        make_delivery([make_event(conference)], subscription=make_subscription(time_zone="UTC"))
    )

    assert "Observed at 2026-11-28 18:23:31 UTC\n" in message.body


def test_a_change_seen_by_polling_says_between_which_polls_it_happened(conference):
    event = make_event(conference, previous_observed_at=AT - timedelta(seconds=10))

    message = emails.build_message(make_delivery([event]))

    assert (
        "Observed at 2026-11-28 19:23:31 CET (Europe/Berlin), changed between 19:23:21 and 19:23:31"
        in message.body
    )
    assert "changed between 19:23:21 and 19:23:31" in html_of(message)


def test_a_change_reported_by_a_callback_has_no_interval(conference):
    event = make_event(
        conference, previous_observed_at=AT - timedelta(seconds=10), source="callback"
    )

    message = emails.build_message(make_delivery([event]))

    assert "between" not in message.body


def test_values_nobody_knows_are_shown_as_unknown(conference):
    event = make_event(conference, EventKind.MEMBERS_CHANGED, before=None, after=4, detail={})
    first = make_event(
        conference,
        EventKind.FIRST_OBSERVED,
        before=None,
        after="created",
        detail={"state": "created", "active_members": None, "hold": None, "mute": False},
    )

    body = emails.build_message(make_delivery([event, first])).body

    assert "Active members: unknown -> 4" in body
    assert "First observed: created, members unknown, hold unknown, mute off" in body
    assert "None" not in body


def test_the_message_id_is_the_deliverys_and_the_same_when_built_twice(conference):
    delivery = make_delivery([make_event(conference)])

    first = emails.build_message(delivery).message()
    again = emails.build_message(Delivery.objects.get(pk=delivery.pk)).message()

    assert first["Message-ID"] == delivery.message_id
    assert again["Message-ID"] == first["Message-ID"]
    assert first["Message-ID"] == f"<confwatch.delivery.{delivery.pk}@mail.example.com>"
    assert first["Auto-Submitted"] == "auto-generated"


def test_the_email_can_be_unsubscribed_from_in_one_click(conference):
    subscription = make_subscription()

    message = emails.build_message(
        make_delivery([make_event(conference)], subscription=subscription)
    )

    headers = message.message()
    unsubscribe = headers["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://confwatch.example.com/unsubscribe/")
    assert unsubscribe.endswith(">")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe[1:-1] in message.body
    assert unsubscribe[1:-1] in html_of(message)


def test_an_email_whose_subscription_was_deleted_has_no_unsubscribe_link(conference):
    message = emails.build_message(make_delivery([make_event(conference)], subscription=None))

    headers = message.message()
    assert headers["List-Unsubscribe"] is None
    assert headers["List-Unsubscribe-Post"] is None
    assert "nsubscribe" not in message.body
    assert "nsubscribe" not in html_of(message)
    assert "2026-11-28 18:23:31 UTC" in message.body


def test_the_html_alternative_escapes_the_label(account):
    conference = make_conference(account, "conf-html", label="<b>Board & co</b>")

    message = emails.build_message(make_delivery([make_event(conference)]))

    html = html_of(message)
    assert "&lt;b&gt;Board &amp; co&lt;/b&gt; (conf-html)" in html
    assert "<b>Board" not in html
    assert f'href="https://confwatch.example.com/conferences/{conference.pk}/"' in html
    assert "<b>Board & co</b> (conf-html):" in message.body
    assert message.subject == "[confwatch] <b>Board & co</b> (conf-html): created -> active"


def test_building_an_email_sends_nothing(conference):
    emails.build_message(make_delivery([make_event(conference)]))

    assert mail.outbox == []


def test_a_flapping_email_lists_the_changes_and_says_further_ones_are_held(conference):
    events = [
        make_event(
            conference,
            before="created" if n % 2 == 0 else "active",
            after="active" if n % 2 == 0 else "created",
            occurred_at=AT + timedelta(seconds=30 * n),
        )
        for n in range(7)
    ]

    message = emails.build_message(make_delivery(events, kind=Delivery.Kind.FLAPPING))

    assert (
        message.subject == "[confwatch] Board call (conf-abc123) is flapping: 7 changes in 10 min"
    )
    body = message.body
    assert body.count("State: created -> active") == 4
    assert body.count("State: active -> created") == 3
    assert "Further changes are held until it settles" in body
    assert "Further changes are held until it settles" in html_of(message)
    assert f"https://confwatch.example.com/conferences/{conference.pk}/" in body


def test_a_settled_email_gives_the_status_now_and_sums_up_what_happened(account):
    conference = make_conference(
        account, "conf-abc123", label="Board call", state="active", active_members=3
    )
    events = [
        make_event(conference, occurred_at=AT),
        make_event(
            conference,
            EventKind.HOLD_CHANGED,
            before=False,
            after=True,
            occurred_at=AT + timedelta(minutes=1),
        ),
        make_event(
            conference,
            before="active",
            after="created",
            occurred_at=AT + timedelta(minutes=2),
        ),
    ]

    message = emails.build_message(make_delivery(events, kind=Delivery.Kind.SETTLED))

    assert message.subject == "[confwatch] Board call (conf-abc123) has settled: active, 3 members"
    body = message.body
    assert "While it flapped: 3 changes (state changed: 2, hold changed: 1)" in body
    assert "the first at 2026-11-28 19:23:31 CET (Europe/Berlin)" in body
    assert "the last at 2026-11-28 19:25:31 CET (Europe/Berlin)" in body
    assert "Hold: off -> on" in body
    assert "State: active -> created" in body
    assert "has settled: <strong>active, 3 members</strong>" in html_of(message)


def test_a_digest_lists_the_held_back_alerts_grouped_by_conference(account, conference):
    other = make_conference(account, "conf-other")
    events = [
        make_event(conference, occurred_at=AT),
        make_event(other, EventKind.MEMBERS_CHANGED, before=1, after=0, occurred_at=AT),
        make_event(
            conference,
            EventKind.MUTE_CHANGED,
            before=False,
            after=True,
            occurred_at=AT + timedelta(minutes=5),
        ),
        make_event(
            account.conferences.get(pk=other.pk),
            EventKind.HOLD_CHANGED,
            before=False,
            after=True,
            occurred_at=AT + timedelta(minutes=7),
        ),
    ]

    message = emails.build_message(
        make_delivery(events, kind=Delivery.Kind.DIGEST, conference=None)
    )

    assert message.subject == "[confwatch] Digest: 4 alerts held back by the hourly cap"
    body = message.body
    board = body.index(
        f"Board call (conf-abc123) <https://confwatch.example.com/conferences/{conference.pk}/>"
    )
    conf_other = body.index(f"conf-other <https://confwatch.example.com/conferences/{other.pk}/>")
    assert (
        board < body.index("State: created -> active") < body.index("Mute: off -> on") < conf_other
    )
    assert conf_other < body.index("Active members: 1 -> 0") < body.index("Hold: off -> on")
    assert "2026-11-28 19:30:31 CET (Europe/Berlin)" in body
    html = html_of(message)
    assert f'<a href="https://confwatch.example.com/conferences/{other.pk}/">conf-other</a>' in html


def test_an_account_polling_problem_names_the_account(account):
    event = Event.objects.create(
        kind=EventKind.POLLING_PROBLEM,
        account=account,
        conference=None,
        occurred_at=AT,
        before="ok",
        after="credentials_rejected",
        detail={
            "poll_status": "credentials_rejected",
            "message": "401 <Unauthorized>",
            "since": (AT - timedelta(minutes=3)).isoformat(),
        },
    )

    message = emails.build_message(make_delivery([event], conference=None))

    assert message.subject == "[confwatch] account acme: polling problem: credentials rejected"
    body = message.body
    assert "Polling: OK -> credentials rejected" in body
    assert "Message: 401 <Unauthorized>" in body
    assert "Failing since 2026-11-28 19:20:31 CET (Europe/Berlin)." in body
    assert "/conferences/" not in body
    assert "Message: 401 &lt;Unauthorized&gt;" in html_of(message)


def test_a_polling_recovery_says_how_long_the_problem_lasted(conference):
    event = make_event(
        conference,
        EventKind.POLLING_RECOVERED,
        before="unreachable",
        after="ok",
        detail={
            "poll_status": "unreachable",
            "since": (AT - timedelta(hours=1, minutes=4)).isoformat(),
        },
    )

    body = emails.build_message(make_delivery([event])).body

    assert "Polling: unreachable -> OK" in body
    assert "The problem lasted 1 h 4 min, since 2026-11-28 18:19:31 CET (Europe/Berlin)." in body


@pytest.mark.parametrize(
    ("seconds", "written"),
    [(0, "0 s"), (5, "5 s"), (725, "12 min 5 s"), (3605, "1 h"), (93784, "1 d 2 h")],
)
def test_durations_read_as_the_two_largest_units(seconds, written):
    assert duration_text(timedelta(seconds=seconds)) == written


INVISIBLE = "\u202e\u202a\u2066\u200b\u200d\u200e\ufeff\u0007"


@pytest.mark.parametrize(
    "kind",
    [Delivery.Kind.CHANGE, Delivery.Kind.FLAPPING, Delivery.Kind.SETTLED, Delivery.Kind.DIGEST],
)
def test_bidirectional_and_zero_width_characters_never_reach_an_email(account, kind):
    conference = make_conference(
        account, "conf-bidi", label="Board\u202e llac", state="\u202eactive\u200b"
    )
    event = make_event(conference, before="created\u2066", after=f"act{INVISIBLE}ive")

    message = emails.build_message(make_delivery([event], kind=kind))

    for text in (message.subject, message.body, html_of(message)):
        assert not set(INVISIBLE) & set(text), repr(text)
    assert "Board llac (conf-bidi)" in message.body
    if kind == Delivery.Kind.CHANGE:
        assert message.subject == "[confwatch] Board llac (conf-bidi): created -> active"


def test_a_label_in_another_script_keeps_its_letters(account):
    conference = make_conference(account, "conf-rtl", label="שיחת הנהלה")

    message = emails.build_message(make_delivery([make_event(conference)]))

    assert message.subject == "[confwatch] שיחת הנהלה (conf-rtl): created -> active"
