"""The conference page in a real browser, on the running product: a real Celery worker
and beat poll the simulator, the page refreshes itself."""

import random
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conferences.models import Conference, HistoryEntry, PollError
from conferences.registry import roles
from conferences.web.selectors import charts
from tests.browser.test_accessibility import problems_on
from tests.browser.test_live_dashboard import PASSWORD, sign_in
from tests.conftest import make_account, make_conference, reload, start_celery, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).parent / "screenshots"
POLL_INTERVAL = 10


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("staff", password=PASSWORD)


def test_a_change_on_the_simulator_shows_on_the_open_conference_page(
    page, live_server, staff, simulator, sim_client, celery_env
):
    celery_env["CONFWATCH_POLL_INTERVAL"] = str(POLL_INTERVAL)
    worker = start_celery(celery_env, "worker", "--pool=solo", "--without-mingle")
    beat = start_celery(celery_env, "beat")
    try:
        account = make_account(simulator)
        conference_id = sim_client.create_conference(
            from_number="+15555550100",
            tag="customer-42",
            callback_url="https://example.com/catapult/events",
        )
        conference = make_conference(account, conference_id, label="Board call")
        wait_for(lambda: reload(conference).state == "created", what="the first observation")

        sign_in(page, live_server)
        page.goto(f"{live_server.url}/conferences/{conference.pk}/?range=1h")
        card = page.locator("#status-card")
        expect(card.locator(".state")).to_have_text("created")
        expect(card.locator(".catapult-tag")).to_have_text("customer-42")
        expect(card.locator(".callback-url")).to_have_text("https://example.com/catapult/events")
        expect(page.locator("#chart svg.chart-wide title")).to_have_text(
            "Active members of Board call, last hour"
        )
        expect(page.locator("table.timeline tbody tr")).to_have_count(1)
        page.evaluate("window.notReloaded = true")

        sim_client.add_member(conference_id, call_id="c-1")
        sim_client.update_conference(conference_id, hold=True)

        within = 2 * POLL_INTERVAL * 1000
        expect(card.locator(".state")).to_have_text("active", timeout=within)
        expect(card.locator(".members")).to_have_text("1")
        expect(card.locator(".hold")).to_contain_text("Conference hold: on")
        expect(page.locator("#chart .chart-summary")).to_contain_text("1 at the end")
        expect(page.locator(f"#chart .chart-wide rect[fill='{charts.HOLD_FILL}']")).to_have_count(1)
        rows = page.locator("table.timeline tbody tr:not(.entry-member)")
        expect(rows).to_have_count(2)
        expect(rows.first).to_contain_text("State, members, hold changed")
        # The members list is read too: the member's arrival joins the page and timeline.
        expect(page.locator("#members")).to_contain_text("c-1", timeout=within)
        expect(page.locator("table.timeline tr.entry-member")).to_contain_text("c-1 joined")
        assert page.evaluate("window.notReloaded") is True

        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "conference-page-live.png"), full_page=True)
    finally:
        for process in (beat, worker):
            process.terminate()
            process.wait(timeout=20)


def test_a_conference_page_with_a_day_of_history_reads_well(page, live_server, staff):
    """A screenshot of a busy day: state bands, hold and mute, polling problems."""
    conference = make_conference(
        make_account(),
        "conf-busy-day",
        label="Ops war room",
        tags=["vip"],
        from_number="+15555550123",
        catapult_tag="war-room",
    )
    now = timezone.now()
    start = now - timedelta(hours=23)
    runs = [
        HistoryEntry(
            conference=conference,
            state="created",
            active_members=0,
            hold=False,
            mute=False,
            first_seen_at=start,
            last_seen_at=start + timedelta(minutes=50),
        )
    ]
    at = start + timedelta(hours=1)
    members, rng = 1, random.Random(7)
    while at < now - timedelta(minutes=30):  # a change every 2 minutes: drawn in buckets
        hours = (at - start) / timedelta(hours=1)
        members = min(max(1, members + rng.choice((-1, 1))), 12 if 10 < hours < 13 else 6)
        runs.append(
            HistoryEntry(
                conference=conference,
                state="active",
                active_members=members,
                hold=6 < hours < 7.5,
                mute=14 < hours < 17,
                first_seen_at=at,
                last_seen_at=at + timedelta(seconds=110),
            )
        )
        at += timedelta(minutes=2)
    runs.append(
        HistoryEntry(
            conference=conference,
            state="completed",
            active_members=0,
            hold=False,
            mute=False,
            first_seen_at=at,
            last_seen_at=now,
        )
    )
    HistoryEntry.objects.bulk_create(runs)
    PollError.objects.create(
        conference=conference,
        poll_status="unreachable",
        message="Catapult unreachable: read timed out",
        first_seen_at=now - timedelta(minutes=75),
        last_seen_at=now - timedelta(minutes=72),
        occurrences=12,
    )
    Conference.objects.filter(pk=conference.pk).update(
        latest_history=runs[-1],
        state="completed",
        active_members=0,
        hold=False,
        mute=False,
        poll_status="ok",
        last_polled_at=now,
        last_observed_at=now,
        created_time=start,
        completed_time=at,
    )

    sign_in(page, live_server)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/conferences/{conference.pk}/")

    expect(page.locator("#chart .chart-summary")).to_contain_text("Each point of the chart")
    expect(page.locator("table.timeline tr.entry-problem")).to_have_count(1)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "conference-page.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    top = {"x": 0, "y": 0, "width": 390, "height": 1600}  # the card, chart and timeline's start
    page.screenshot(path=str(SCREENSHOTS / "conference-page-390.png"), full_page=True, clip=top)
    overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert overflow is False
    # On a phone the narrow chart shows: taller, its labels at least 11 px.
    expect(page.locator("#chart svg.chart-wide")).to_be_hidden()
    narrow = page.locator("#chart svg.chart-narrow")
    expect(narrow).to_be_visible()
    drawn = narrow.evaluate(
        """(svg) => {
          const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
          const sizes = [...svg.querySelectorAll("text")].map(
            (text) => parseFloat(getComputedStyle(text).fontSize) * scale);
          return {height: svg.getBoundingClientRect().height, smallest: Math.min(...sizes)};
        }"""
    )
    assert drawn["height"] >= 200 and drawn["smallest"] >= 11


def test_a_refused_acknowledgement_keeps_what_was_typed(page, live_server, django_user_model):
    roles.create_user(username="admin", role="admin", password=PASSWORD)
    conference = make_conference(make_account(), "conf-refused", label="Ops bridge")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/conferences/{conference.pk}/")

    page.fill("#acknowledge-reason", "carrier incident 7")
    page.fill("#acknowledge-expires", "until friday")
    page.click("button:has-text('Acknowledge')")

    expect(page.locator(".acknowledge-form .form-refused")).to_contain_text(
        "Nothing was acknowledged"
    )
    expect(page.locator("#acknowledge-reason")).to_have_value("carrier incident 7")
    expect(page.locator("#acknowledge-expires")).to_have_value("until friday")
    expect(page.locator(".acknowledge-form .errorlist")).to_contain_text("not a valid expiry")
    expect(page.locator("h1")).to_have_text("Ops bridge")
    expect(page.locator(".acknowledge-form .form-refused")).to_be_in_viewport()
    assert problems_on(page, "refused acknowledgement", 390) == []  # axe, and no sideways scroll
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "conference-page-refused-form-390.png"))

    page.fill("#acknowledge-expires", "2h")
    page.click("button:has-text('Acknowledge')")
    expect(page.locator(".messages")).to_contain_text("Acknowledged Ops bridge")
    expect(page.locator("table.acknowledgements")).to_contain_text("carrier incident 7")
