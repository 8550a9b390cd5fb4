"""The conference page: live status card, members chart, timeline, history export."""

import csv
import io
import json
import re
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from conferences.alerting import maintenance
from conferences.catapult import answers
from conferences.models import Conference, Event, HistoryEntry, PollError, UserPreference
from conferences.recording import observations
from conferences.recording.observations import Observation
from conferences.web.selectors import charts, timeline
from tests.conftest import make_account, make_conference, reload

pytestmark = pytest.mark.django_db


@pytest.fixture
def conference(db):
    return make_conference(make_account(name="acme"), "conf-page", label="Board call")


def observe(conference, at, **values):
    """Record a full status through the one recording path, as a poll would."""
    seen = {"state": "active", "active_members": 2, "hold": False, "mute": False}
    seen.update(values)
    [outcome] = observations.record([Observation(conference.pk, at, seen=seen)])
    assert outcome.applied
    return reload(conference)


def fail(conference, at, error=None):
    error = error or answers.TransientError("connection refused")
    observations.record([Observation.of_failure(conference.pk, error, observed_at=at)])
    return reload(conference)


def add_runs(conference, runs):
    """History rows in bulk: (first_seen_at, last_seen_at, state, members, hold, mute)."""
    entries = HistoryEntry.objects.bulk_create(
        HistoryEntry(
            conference=conference,
            first_seen_at=first,
            last_seen_at=last,
            state=state,
            active_members=members,
            hold=hold,
            mute=mute,
        )
        for first, last, state, members, hold, mute in runs
    )
    newest = max(entries, key=lambda entry: entry.first_seen_at)
    Conference.objects.filter(pk=conference.pk).update(
        latest_history=newest,
        state=newest.state,
        active_members=newest.active_members,
        hold=newest.hold,
        mute=newest.mute,
        last_observed_at=newest.last_seen_at,
        last_polled_at=newest.last_seen_at,
        poll_status="ok",
    )
    return reload(conference)


def page(client, conference, query="", **headers):
    return client.get(reverse("conferences:detail", args=[conference.pk]) + query, headers=headers)


def section(text, element_id):
    start = text.index(f'id="{element_id}"')
    return text[start : text.index("</section>", start)]


# The status card.


def test_the_status_card_shows_every_field_the_api_sent(signed_in, conference):
    now = timezone.now()
    result = answers.parse_conference(
        {
            "id": "conf-page",
            "state": "active",
            "activeMembers": 3,
            "hold": True,
            "mute": False,
            "from": "+15555550100",
            "createdTime": "2026-11-28T10:00:00Z",
            "tag": "customer-42",
            "callbackUrl": "https://example.com/catapult/events",
        }
    )
    observe(conference, now - timedelta(minutes=7), state="created", active_members=0)
    observations.record([Observation.of_conference(conference.pk, result, observed_at=now)])

    card = section(page(signed_in, conference).content.decode(), "status-card")

    assert '<span class="state state-active">active</span>' in card
    assert "for 0 s, since" in card
    assert '<dd class="members">3</dd>' in card
    assert '<dd class="hold">Conference hold: on</dd>' in card  # members: not read yet
    assert '<dd class="mute">Conference mute: off</dd>' in card
    assert "+15555550100" in card
    assert "customer-42" in card and "https://example.com/catapult/events" in card
    assert '<time datetime="2026-11-28T10:00:00+00:00"' in card
    shown = f"{now:%Y-%m-%d %H:%M:%S}.{now.microsecond // 1000:03d} UTC"
    assert f'title="{shown}">{now:%Y-%m-%d %H:%M:%S} UTC</time>' in card
    assert "stale" not in card


@pytest.mark.parametrize(
    ("method", "timeout", "shown"),
    [
        (None, None, "–"),
        ("POST", None, "POST, timeout not set"),
        (None, 2000, "method not set, timeout 2000 ms"),
        ("GET", 5000, "GET, timeout 5000 ms"),
    ],
)
def test_the_callback_method_and_timeout_read_as_one_dash_or_say_which_is_set(
    signed_in, conference, method, timeout, shown
):
    Conference.objects.filter(pk=conference.pk).update(
        callback_http_method=method, callback_timeout=timeout
    )

    card = section(page(signed_in, conference).content.decode(), "status-card")

    assert f'<dd class="callback-settings">{shown}</dd>' in card


def test_conference_hold_and_mute_are_told_apart_from_the_members_own(signed_in, conference):
    at = timezone.now() - timedelta(minutes=5)
    observe(conference, at, hold=False, mute=True)
    members = (
        answers.Member(id="m-1", state="active", hold=True, call_id="c-1"),
        answers.Member(id="m-2", state="active", hold=True, mute=True, call_id="c-2"),
        answers.Member(id="m-3", state="active", call_id="c-3"),
    )
    observations.record(
        [Observation(conference.pk, at + timedelta(seconds=1), members=members, source="callback")]
    )

    text = page(signed_in, conference).content.decode()

    card = section(text, "status-card")
    assert '<dd class="hold">Conference hold: off · 2 members on hold</dd>' in card
    assert '<dd class="mute">Conference mute: on · 1 member muted</dd>' in card
    listed = section(text, "members")
    assert '<p class="muted members-as-of">As of <time' in listed
    assert "hold and mute here are each member's own" in listed


def test_the_status_card_says_how_long_the_state_lasts_and_when_it_went_stale(
    signed_in, conference
):
    started = timezone.now() - timedelta(hours=2, minutes=5)
    observe(conference, started)
    observe(conference, started + timedelta(minutes=1), active_members=3)

    card = section(page(signed_in, conference).content.decode(), "status-card")

    assert "for 2 h 5 min, since" in card
    assert "stale: not observed for over 2 poll intervals" in card


def test_the_live_refresh_answers_204_after_reading_the_conference_row_and_windows(
    signed_in, conference
):
    observe(conference, timezone.now())
    first = page(signed_in, conference, "?range=7d")  # the page, as a browser opens it
    version = re.search(r"v=([0-9a-f]+)", first.content.decode()).group(1)

    with CaptureQueriesContext(connection) as queries:
        same = page(signed_in, conference, f"?v={version}&range=7d", HX_Request="true")

    assert same.status_code == 204
    assert "HX-Request" in same["Vary"]
    tables = [query["sql"] for query in queries if "conferences_" in query["sql"]]
    assert len(tables) == 2 and 'FROM "conferences_conference"' in tables[0]
    assert 'FROM "conferences_maintenancewindow"' in tables[1]  # the windows in force


def test_a_member_change_makes_the_live_refresh_render_the_members_and_timeline(
    signed_in, conference
):
    at = timezone.now() - timedelta(minutes=5)
    observe(conference, at)
    first = page(signed_in, conference, HX_Request="true")
    version = re.search(r"v=([0-9a-f]+)", first.content.decode()).group(1)

    muted = answers.Member(id="m-1", state="active", mute=True, call_id="c-1")
    observations.record(
        [Observation(conference.pk, at + timedelta(seconds=1), members=(muted,), source="callback")]
    )
    changed = page(signed_in, conference, f"?v={version}", HX_Request="true")

    text = changed.content.decode()
    assert changed.status_code == 200
    assert "c-1" in section(text, "members") and "muted" in section(text, "members")
    assert "c-1 joined (reported by Catapult)" in section(text, "timeline")


def test_a_change_makes_the_live_refresh_render_the_card_chart_and_timeline(signed_in, conference):
    at = timezone.now() - timedelta(minutes=5)
    observe(conference, at)
    first = page(signed_in, conference, HX_Request="true")
    version = re.search(r"v=([0-9a-f]+)", first.content.decode()).group(1)

    observe(conference, at + timedelta(minutes=1), active_members=5, hold=True)
    changed = page(signed_in, conference, f"?v={version}", HX_Request="true")

    text = changed.content.decode()
    assert changed.status_code == 200
    assert "<html" not in text and 'id="live-status"' in text
    assert '<dd class="members">5</dd>' in text
    assert "<svg" in text and "between 2 and 5, 5 at the end" in text
    assert "members: 2 &rarr; 5" in section(text, "timeline")
    assert "hold: off &rarr; on" in section(text, "timeline")


def test_the_live_refresh_shows_the_maintenance_badge_while_a_window_is_in_force(
    signed_in, conference
):
    observe(conference, timezone.now() - timedelta(minutes=5))
    first = page(signed_in, conference, HX_Request="true")
    version = re.search(r"v=([0-9a-f]+)", first.content.decode()).group(1)
    assert "in maintenance until" not in first.content.decode()
    now = timezone.now()
    window = maintenance.create_window(
        conference_ids=[conference.conference_id],
        starts=f"{now - timedelta(minutes=1):%Y-%m-%d %H:%M}",
        until=f"{now + timedelta(hours=1):%Y-%m-%d %H:%M}",
        time_zone="UTC",
    )

    during = page(signed_in, conference, f"?v={version}", HX_Request="true")

    assert during.status_code == 200  # the row did not change; the window did
    text = during.content.decode()
    assert "<html" not in text and 'id="live-status"' in text
    until = f"{now + timedelta(hours=1):%Y-%m-%d %H:%M} UTC"
    assert f">in maintenance until {until}</a>: alerts are held" in section(text, "live-status")

    maintenance.end_window(window)
    version = re.search(r"v=([0-9a-f]+)", text).group(1)
    after = page(signed_in, conference, f"?v={version}", HX_Request="true")

    assert after.status_code == 200
    assert 'id="live-status"' in after.content.decode()
    assert "in maintenance" not in after.content.decode()


def test_a_completed_conference_page_does_not_refresh(signed_in, conference):
    at = timezone.now() - timedelta(minutes=5)
    observe(conference, at)
    observe(conference, at + timedelta(minutes=1), state="completed", active_members=0)

    text = page(signed_in, conference).content.decode()

    assert 'id="live-status"' in text and "hx-trigger" not in text
    assert "Completed: no longer polled." in text


@pytest.mark.parametrize(
    "query", ["?range=1y", "?range=", "?before=yesterday", "?before=1-9-1", "?before=9" * 30]
)
def test_a_bad_range_or_timeline_position_is_a_400(signed_in, conference, query):
    response = page(signed_in, conference, query)

    if query == "?range=":
        assert response.status_code == 200  # empty means the default
    else:
        assert response.status_code == 400
        text = response.content.decode()
        assert response["Content-Type"].startswith("text/html")
        assert 'class="problem-page"' in text and "Error 400" in text
        assert "Open the conference page without it" in text
        assert f'href="/conferences/{conference.pk}/">Open the conference page</a>' in text


def test_an_unknown_range_is_the_styled_400_naming_the_ranges_there_are(signed_in, conference):
    text = page(signed_in, conference, "?range=garbage").content.decode()

    assert "The chart has no range &#x27;garbage&#x27;: it has 1h (last hour)" in text
    assert "choose a range above the chart" in text
    assert '<nav aria-label="Main">' in text  # the product's page, with its navigation


def test_a_missing_conference_is_a_404_for_the_page_its_refresh_and_its_export(signed_in, db):
    assert signed_in.get("/conferences/999/").status_code == 404
    assert signed_in.get("/conferences/999/?v=abc", headers={"HX-Request": "true"}).status_code == (
        404
    )
    assert signed_in.get("/conferences/999/history.csv").status_code == 404


# The chart.


def test_an_empty_history_has_no_chart_but_says_so(signed_in, conference):
    text = page(signed_in, conference, "?range=all").content.decode()

    chart = section(text, "chart")
    assert "<svg" not in chart and "not observed." in chart
    assert "Nothing observed yet." in section(text, "timeline")


def test_one_run_is_drawn_with_an_accessible_title_and_summary(signed_in, conference):
    now = timezone.now()
    observe(conference, now - timedelta(minutes=30), active_members=4)
    observe(conference, now, active_members=4)

    chart = section(page(signed_in, conference, "?range=1h").content.decode(), "chart")

    for layout in ("wide", "narrow"):
        assert f'role="img" aria-labelledby="chart-title-{layout} chart-desc-{layout}"' in chart
        assert (
            f'<title id="chart-title-{layout}">Active members of Board call, last hour</title>'
        ) in chart
    assert "1 change recorded; active members between 4 and 4, 4 at the end" in chart
    assert "time active 50%" in chart and "not observed 50%" in chart
    url = f"/conferences/{conference.pk}/"
    assert f'<a href="{url}?range=1h#chart" aria-current="true">last hour</a>' in chart


def test_the_chart_has_state_bands_and_hold_and_mute_periods(conference):
    now = timezone.now()
    hour = timedelta(hours=1)
    conference = add_runs(
        conference,
        [
            (now - 4 * hour, now - 3 * hour, "created", 0, False, False),
            (now - 3 * hour, now - 2 * hour, "active", 3, True, False),
            (now - 2 * hour, now - hour, "active", 5, False, True),
            (now - hour, now - hour, "completed", 0, False, False),
        ],
    )

    chart = charts.conference_chart(conference, range_key="all", now=now)
    svg = charts.draw(chart, title="t")  # the wide one (chart.svg() draws narrow too)

    assert not chart.bucketed and chart.changes == 4
    assert [(span.state, span.last) for span in chart.spans] == [
        ("created", 0),
        ("active", 3),
        ("active", 5),
        ("completed", 0),
    ]
    # Completed is final: it lasts to the end of the range ("all" ends when it completed).
    assert chart.end == now - hour
    for fill in (charts.STATE_FILL["created"], charts.STATE_FILL["active"], charts.HOLD_FILL):
        assert f'fill="{fill}"' in svg
    assert svg.count(f'fill="{charts.MUTE_FILL}"') == 1
    summary = chart.summary()
    assert "time created 33%, active 67%" in summary
    assert "on hold 1 h; muted 1 h" in summary


def test_the_run_in_effect_when_the_range_starts_is_drawn_from_its_start(conference):
    now = timezone.now()
    conference = add_runs(
        conference,
        [
            (now - timedelta(days=3), now - timedelta(minutes=40), "active", 7, False, False),
            (now - timedelta(minutes=30), now, "active", 2, False, False),
        ],
    )

    chart = charts.conference_chart(conference, range_key="1h", now=now)

    assert chart.spans[0].start == now - timedelta(hours=1) and chart.spans[0].last == 7
    assert chart.spans[0].end == now - timedelta(minutes=30)
    assert "between 2 and 7, 2 at the end" in chart.summary()


def test_a_long_history_is_bucketed_in_sql_and_keeps_its_totals(conference):
    now = timezone.now().replace(microsecond=0)
    step = timedelta(seconds=60)
    rows = []
    for index in range(1440):  # one run a minute for 24 hours
        first = now - timedelta(hours=24) + index * step
        rows.append((first, first + step / 2, "active", index % 10, index % 2 == 0, False))
    add_runs(conference, rows)
    conference = Conference.objects.select_related("latest_history").get(pk=conference.pk)

    with CaptureQueriesContext(connection) as queries:
        chart = charts.conference_chart(conference, range_key="24h", now=now)
        svg = chart.svg(title="t")

    assert chart.bucketed and chart.changes == 1440
    assert len(queries) == 3
    assert len(chart.spans) <= 2 * charts.MAX_BUCKETS + 1
    assert (min(s.low for s in chart.spans), max(s.high for s in chart.spans)) == (0, 9)
    # Every other minute on hold: 12 hours (the last run lasts until it was last seen).
    assert abs(chart.seconds["hold"] - 12 * 3600) <= 60
    assert "on hold 11 h 59 min" in chart.summary() or "on hold 12 h" in chart.summary()
    assert "Each point of the chart sums up 5 min." in chart.summary()
    assert len(svg) < 120_000  # both layouts, wide and narrow


def test_the_chart_range_chooses_what_is_drawn(signed_in, conference):
    now = timezone.now()
    add_runs(
        conference,
        [
            (now - timedelta(days=3), now - timedelta(days=3), "created", 0, False, False),
            (now - timedelta(days=2), now, "active", 6, False, False),
        ],
    )

    week = section(page(signed_in, conference, "?range=7d").content.decode(), "chart")
    hour = section(page(signed_in, conference, "?range=1h").content.decode(), "chart")

    assert "Last 7 days" in week and "2 changes recorded" in week
    assert "Last hour" in hour and "0 changes recorded" in hour and "6 at the end" in hour
    assert "history.csv?range=1h" in hour


def test_a_conference_first_observed_minutes_ago_fills_the_chart_by_default(signed_in, conference):
    now = timezone.now()
    observe(conference, now - timedelta(minutes=6), state="created", active_members=0)
    observe(conference, now, active_members=2)

    chart = section(page(signed_in, conference).content.decode(), "chart")

    assert 'aria-current="true">since first observed</a>' in chart
    assert "Since first observed (" in chart and "not observed" not in chart
    assert "range=all" in chart


def test_a_conference_observed_for_days_shows_the_last_24_hours_by_default(signed_in, conference):
    now = timezone.now()
    add_runs(conference, [(now - timedelta(days=2), now, "active", 4, False, False)])

    chart = section(page(signed_in, conference).content.decode(), "chart")

    assert 'aria-current="true">last 24 hours</a>' in chart


def test_the_chart_has_a_taller_narrow_layout_for_phones_with_larger_labels(conference):
    now = timezone.now()
    conference = add_runs(conference, [(now - timedelta(hours=1), now, "active", 3, True, False)])
    chart = charts.conference_chart(conference, range_key="1h", now=now)

    wide = charts.draw(chart, title="t", layout=charts.WIDE)
    narrow = charts.draw(chart, title="t", layout=charts.NARROW)

    assert 'viewBox="0 0 800 190"' in wide and 'viewBox="0 0 400 264"' in narrow
    # 400 units across a 390 px phone's ~350 px: 14-unit labels are over 11 px.
    assert 'font-size="14"' in narrow and 'font-size="11"' not in narrow
    assert len(re.findall(r"\d\d:\d\d(?: UTC)?</text>", narrow)) == 3


def test_the_time_axis_names_the_viewers_zone_on_its_first_label(signed_in, user, conference):
    UserPreference.objects.create(user=user, time_zone="Asia/Tokyo")
    now = timezone.now()
    add_runs(conference, [(now - timedelta(hours=2), now, "active", 3, False, False)])

    chart = section(page(signed_in, conference, "?range=1h").content.decode(), "chart")

    labels = re.findall(r'font-size="\d+" fill="#4b5560">([^<]*\d:\d\d[^<]*)</text>', chart)
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    first = f"{(now - timedelta(hours=1)).astimezone(tokyo):%H:%M} JST"
    assert len(labels) == 5 + 3  # the wide and the narrow chart
    assert labels[0] == first and labels[5] == first
    assert [label for label in labels if "JST" in label] == [first, first]


def test_a_label_after_a_daylight_saving_change_names_the_zone_again(conference):
    now = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)  # New York left daylight time on Nov 1
    conference = add_runs(conference, [(now - timedelta(days=8), now, "active", 3, False, False)])
    chart = charts.conference_chart(conference, range_key="7d", now=now)

    with timezone.override(zoneinfo.ZoneInfo("America/New_York")):
        labels = [shown for _, shown in charts.time_ticks(chart, count=5)]

    assert labels == ["Tue 08:00 EDT", "Thu 02:00", "Fri 20:00", "Sun 13:00 EST", "Tue 07:00"]


def test_a_chart_of_two_minutes_labels_its_times_with_seconds_so_none_repeats(conference):
    now = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
    runs = [(now - timedelta(minutes=2), now, "active", 1, False, False)]
    conference = add_runs(conference, runs)
    chart = charts.conference_chart(conference, range_key="all", now=now)

    with timezone.override(UTC):
        labels = [shown for _, shown in charts.time_ticks(chart, count=5)]

    assert labels == ["11:58:00 UTC", "11:58:30", "11:59:00", "11:59:30", "12:00:00"]


# The timeline.


def test_the_timeline_shows_each_change_with_what_changed_and_how_long(signed_in, conference):
    at = timezone.now() - timedelta(minutes=30)
    observe(conference, at, state="created", active_members=0)
    observe(conference, at + timedelta(minutes=10), active_members=2)
    observe(conference, at + timedelta(minutes=25), active_members=2, mute=True)

    text = section(page(signed_in, conference).content.decode(), "timeline")

    rows = re.findall(r'<tr class="entry entry-(\w+)', text)
    assert rows == ["change", "change", "first"]
    assert "Mute changed" in text and "mute: off &rarr; on" in text
    assert "State, members changed" in text and "state: created &rarr; active" in text
    assert "First observed" in text and "members: 0" in text
    durations = re.findall(r'<td class="entry-duration">([^<]*)</td>', text)
    assert durations == ["0 s so far", "15 min", "10 min"]


def test_poll_problems_and_recoveries_are_on_the_timeline_and_look_different(signed_in, conference):
    at = timezone.now() - timedelta(minutes=10)
    observe(conference, at)
    fail(conference, at + timedelta(minutes=1))
    fail(conference, at + timedelta(minutes=3))
    Conference.objects.filter(pk=conference.pk).update(problem_reported_at=at)
    observe(conference, at + timedelta(minutes=4), active_members=3)

    text = section(page(signed_in, conference).content.decode(), "timeline")

    rows = re.findall(r'<tr class="entry entry-(\w+)( entry-polling)?', text)
    assert rows == [
        ("recovered", " entry-polling"),
        ("change", ""),
        ("problem", " entry-polling"),
        ("first", ""),
    ]
    assert "Polling problem: unreachable" in text and "connection refused" in text
    assert "failed: 2 polls" in text
    assert "Polling recovered" in text and "The problem lasted 3 min" in text
    durations = re.findall(r'<td class="entry-duration">([^<]*)</td>', text)
    assert durations[2] == "2 min"


def test_a_problem_that_goes_on_is_shown_as_ongoing(signed_in, conference):
    at = timezone.now() - timedelta(minutes=10)
    observe(conference, at)
    fail(conference, at + timedelta(minutes=1))
    fail(conference, at + timedelta(minutes=2))

    text = section(page(signed_in, conference).content.decode(), "timeline")

    assert '<td class="entry-duration">1 min so far</td>' in text


# An entry's time and title.
ENTRY = (
    r'<time datetime="([^"]+)"[^>]*>[^<]*</time></td>\s*'
    r'<td class="entry-title">(?:<span[^>]*>[^<]*</span>)?([^<]+)'
)


def test_the_timeline_pages_by_time_down_to_the_oldest_entry(signed_in, conference):
    start = timezone.now() - timedelta(days=30)
    rows = [
        (start + timedelta(minutes=i), start + timedelta(minutes=i), "active", i, False, False)
        for i in range(130)
    ]
    conference = add_runs(conference, rows)
    # A problem and a recovery at exactly the time of a change: none may be lost.
    tie = start + timedelta(minutes=50)
    PollError.objects.create(
        conference=conference,
        poll_status="unreachable",
        message="x",
        first_seen_at=tie,
        last_seen_at=tie,
    )
    Event.objects.create(
        conference=conference,
        account=conference.account,
        kind="polling_recovered",
        occurred_at=tie,
        before="unreachable",
        after="ok",
    )
    # Events of other kinds are not on the timeline (the changes come from history).
    Event.objects.create(
        conference=conference,
        account=conference.account,
        kind="members_changed",
        occurred_at=tie,
        before=1,
        after=2,
    )

    seen, query, pages = [], "", 0
    while True:
        text = section(page(signed_in, conference, query).content.decode(), "timeline")
        pages += 1
        seen += re.findall(ENTRY, text)
        older = re.search(
            r'href="/conferences/\d+/(\?range=24h&amp;before=[0-9-]+)#timeline"', text
        )
        if older is None:
            break
        assert "&larr; newest" in text or pages == 1
        query = older.group(1).replace("&amp;", "&")

    assert pages == 3
    assert len(seen) == 132
    assert len(set(seen)) == 132
    times = [at for at, _ in seen]
    assert times == sorted(times, reverse=True)
    assert seen[-1][1] == "First observed"
    at_tie = [
        title
        for at, title in seen
        if at == timezone.localtime(tie).isoformat(timespec="milliseconds")
    ]
    assert at_tie == ["Polling recovered", "Polling problem: unreachable", "Members changed"]


def test_a_timeline_cursor_round_trips():
    cursor = timeline.Cursor(timezone.now(), 2, 99)
    assert timeline.Cursor.parse(cursor.token()) == cursor


# The export.


@pytest.fixture
def history(conference):
    now = timezone.now()
    return add_runs(
        conference,
        [
            (now - timedelta(hours=3), now - timedelta(hours=2), "created", 0, None, None),
            (now - timedelta(minutes=90), now - timedelta(minutes=70), "active", 2, False, True),
            (now - timedelta(minutes=20), now, "active", 4, True, False),
        ],
    )


def export(client, conference, fmt, query=""):
    url = reverse("conferences:history-export", args=[conference.pk, fmt])
    response = client.get(url + query)
    assert response.streaming
    return response, b"".join(response.streaming_content).decode()


def test_the_json_export_is_the_history_api_document(signed_in, history):
    response, body = export(signed_in, history, "json", "?range=all")

    api = signed_in.get("/api/conferences/conf-page/history/").json()
    assert json.loads(body) == api
    assert len(api["history"]) == 3
    assert response["Content-Type"] == "application/json"
    assert 'filename="conf-page-history-all.json"' in response["Content-Disposition"]


def test_the_csv_export_has_the_fields_of_the_history_api(signed_in, history):
    response, body = export(signed_in, history, "csv", "?range=all")

    rows = list(csv.DictReader(io.StringIO(body)))
    api = signed_in.get("/api/conferences/conf-page/history/").json()["history"]
    assert list(rows[0]) == list(api[0])
    assert [row["active_members"] for row in rows] == ["4", "2", "0"]
    assert rows[0]["hold"] == "true" and rows[1]["hold"] == "false" and rows[2]["hold"] == ""
    assert rows[0]["first_seen_at"] == api[0]["first_seen_at"]
    assert response["Content-Type"].startswith("text/csv")


def test_the_export_is_bounded_by_the_range(signed_in, history):
    _, hour = export(signed_in, history, "json", "?range=1h")
    _, default = export(signed_in, history, "csv")

    # The last hour: the run that started in it and the one in effect when it began.
    assert [item["active_members"] for item in json.loads(hour)["history"]] == [4, 2]
    assert len(default.strip().splitlines()) == 4


def test_an_empty_history_exports_a_header_or_an_empty_list(signed_in, conference):
    _, text = export(signed_in, conference, "csv", "?range=all")
    _, document = export(signed_in, conference, "json", "?range=7d")

    assert text.strip() == "state,active_members,hold,mute,first_seen_at,last_seen_at"
    assert json.loads(document)["history"] == []
    assert json.loads(document)["conference_id"] == "conf-page"


def test_an_export_with_a_bad_range_or_format_is_refused(signed_in, conference):
    url = reverse("conferences:history-export", args=[conference.pk, "csv"])
    assert signed_in.get(url + "?range=forever").status_code == 400
    assert signed_in.get(f"/conferences/{conference.pk}/history.xlsx").status_code == 404


def test_the_export_needs_a_sign_in(client, conference):
    response = client.get(reverse("conferences:history-export", args=[conference.pk, "csv"]))
    assert response.status_code == 302


def test_a_bucketed_range_starts_with_the_run_in_effect_before_it(conference):
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(hours=1)
    rows = [(now - timedelta(days=2), start + timedelta(minutes=5), "active", 7, True, False)]
    for index in range(700):  # from 10 minutes into the hour, one run every 3 s
        first = start + timedelta(minutes=10, seconds=3 * index)
        rows.append((first, first, "active", index % 3, False, False))
    add_runs(conference, rows)
    conference = Conference.objects.select_related("latest_history").get(pk=conference.pk)

    chart = charts.conference_chart(conference, range_key="1h", now=now)

    assert chart.bucketed and chart.changes == 700
    first = chart.spans[0]
    assert (first.start, first.end, first.last, first.hold) == (
        start,
        start + timedelta(minutes=10),
        7,
        True,
    )
    assert chart.spans[1].start == start + timedelta(minutes=10)
    assert chart.seconds["hold"] == 600
