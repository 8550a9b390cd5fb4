"""The README's screenshots (docs/screenshots/): the overview and a conference page, at
1400 and 390 px, light and dark. Not part of the suite (the name does not start with
test_); run it on purpose:

    .venv/bin/python -m pytest -q tests/browser/readme_screenshots.py

With SCREENSHOTS_REVIEW_DIR set, it also takes the sign-in page, alerts, calls, the share
page and a 404 there (not committed: they are for looking at the whole product's look).
"""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conferences.polling import rounds
from conferences.recording.observations import Observation, record
from conferences.registry import roles
from tests.conftest import make_account, make_conference

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"
OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
REVIEW = os.environ.get("SCREENSHOTS_REVIEW_DIR")


def a_day_of_history(conference, now):
    """Created 20 hours ago, then a day of members coming and going, a hold and a mute."""
    start = now - timedelta(hours=20)
    record([Observation(conference.pk, start, seen={"state": "created", "active_members": 0})])
    counts = [1, 3, 4, 6, 5, 8, 7, 4, 2, 3, 5, 6, 6, 4, 3, 5, 7, 6, 5, 2]
    for hour, members in enumerate(counts, start=1):
        seen = {
            "state": "active",
            "active_members": members,
            "hold": 8 <= hour < 10,
            "mute": 14 <= hour < 15,
        }
        at = start + timedelta(hours=hour, minutes=-30 if hour == 1 else 0)
        if at < now - timedelta(minutes=2):
            record([Observation(conference.pk, at, seen=seen)])


def test_take_the_readmes_screenshots(browser, live_server, simulator, sim_client, settings):
    settings.CONFWATCH_BASE_URL = live_server.url
    roles.create_user(username="staff", role="admin", password=PASSWORD)
    account = make_account(simulator, name="acme")
    now = timezone.now()

    board = sim_client.create_conference(from_number="+15555550100")
    board_call = make_conference(account, board, label="Board call", tags=["exec"])
    a_day_of_history(board_call, now)
    for call in ("c-ann", "c-bob", "c-cho"):
        sim_client.add_member(board, call_id=call)
    sales = sim_client.create_conference(from_number="+15555550101")
    make_conference(account, sales, label="Sales weekly", tags=["sales"])
    sim_client.add_member(sales, call_id="c-dee")
    support = sim_client.create_conference(from_number="+15555550102")
    make_conference(account, support, label="Support bridge", tags=["support"])
    standup = sim_client.create_conference(from_number="+15555550103")
    make_conference(account, standup, label="Morning standup")
    make_conference(account, "conf-gone", label="Partner sync")
    rounds.poll_round(force=True)
    sim_client.update_conference(standup, state="completed")
    rounds.poll_round(force=True)
    late = make_conference(
        account, "conf-late", label="Vendor escalation", next_poll_at=now + timedelta(days=1)
    )
    record([Observation(late.pk, now - timedelta(minutes=9), seen={"state": "active"})])

    OUT.mkdir(parents=True, exist_ok=True)
    share_url = None
    for scheme in ("light", "dark"):
        for width, height in ((1400, 900), (390, 844)):
            context = browser.new_context(
                color_scheme=scheme, viewport={"width": width, "height": height}
            )
            page = context.new_page()
            size = "desktop" if width > 700 else "phone"
            if REVIEW:
                page.goto(f"{live_server.url}/accounts/login/")
                page.screenshot(path=Path(REVIEW) / f"signin-{size}-{scheme}.png", full_page=True)
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("input[name=username]", "staff")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Tracked conferences")
            page.screenshot(path=OUT / f"overview-{size}-{scheme}.png", full_page=True)
            page.goto(f"{live_server.url}/conferences/{board_call.pk}/")
            page.screenshot(
                path=OUT / f"conference-{size}-{scheme}.png",
                clip={"x": 0, "y": 0, "width": width, "height": 1500 if width > 700 else 1700},
                full_page=True,
            )
            if REVIEW:
                if share_url is None:
                    page.fill(".share-form input[name=expires]", "2h")
                    page.click("button:has-text('Create a read-only share link')")
                    share_url = page.locator(".share-links input[readonly]").first.input_value()
                review = [("alerts", "/alerts/"), ("calls", "/calls/?call_id=c-ann")]
                review += [("share", share_url), ("notfound", "/conferences/999999/")]
                for name, url in review:
                    page.goto(url if url.startswith("http") else live_server.url + url)
                    page.screenshot(
                        path=Path(REVIEW) / f"{name}-{size}-{scheme}.png", full_page=True
                    )
            context.close()
