"""The pages and htmx work under the Content-Security-Policy; a live page whose session
ended goes to the sign-in page."""

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import expect

from tests.browser.test_live_dashboard import sign_in, staff  # noqa: F401 (a fixture)
from tests.conftest import make_account, make_conference

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_no_page_breaks_the_content_security_policy(page, live_server, staff):  # noqa: F811
    account = make_account()
    conference = make_conference(account, "conf-csp", label="Board call")
    refused = []
    page.on("console", lambda message: refused.append(message.text))
    sign_in(page, live_server)

    with page.expect_request(lambda request: "v=" in request.url):  # an htmx live update
        pass
    for path in [
        f"/conferences/{conference.pk}/",
        "/conferences/track/",
        "/alerts/",
        "/admin/conferences/conference/",
        f"/admin/conferences/conference/{conference.pk}/change/",
        f"/admin/conferences/account/{account.pk}/change/",
    ]:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert "Content-Security-Policy" in response.headers or (
            "content-security-policy" in response.headers
        )

    assert [text for text in refused if "Content Security Policy" in text] == []


def test_a_live_page_whose_session_ended_goes_to_sign_in(page, live_server, staff):  # noqa: F811
    make_conference(make_account(), "conf-live", label="Board call")
    sign_in(page, live_server)

    Session.objects.all().delete()

    expect(page.locator("h1")).to_have_text("Sign in", timeout=10000)
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")


def test_untracking_from_the_list_asks_first_without_an_inline_handler(page, live_server, staff):  # noqa: F811
    from conferences.models import Conference

    make_conference(make_account(), "conf-untrack", label="Board call")
    sign_in(page, live_server)
    untrack = page.get_by_role("button", name="Untrack Board call")

    page.once("dialog", lambda dialog: dialog.dismiss())
    untrack.click()
    expect(page.locator("h1")).to_have_text("Tracked conferences")
    assert Conference.objects.filter(conference_id="conf-untrack").exists()

    page.once("dialog", lambda dialog: dialog.accept())
    untrack.click()
    expect(page.get_by_text("Untracked Board call")).to_be_visible()
    assert not Conference.objects.filter(conference_id="conf-untrack").exists()


def test_a_hidden_tab_holds_its_live_updates_back_without_eval(page, live_server, staff):  # noqa: F811
    make_conference(make_account(), "conf-hidden", label="Board call")
    problems = []
    page.on("console", lambda message: problems.append(message.text))
    updates = []
    page.on("request", lambda request: updates.append(request.url) if "v=" in request.url else 0)
    sign_in(page, live_server)
    with page.expect_request(lambda request: "v=" in request.url):
        pass  # visible: the live update runs every 2 s

    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true})"
    )
    page.wait_for_timeout(1000)  # an update already in flight ends
    updates.clear()
    page.wait_for_timeout(5000)

    assert updates == []  # hidden: at most one every 30 s, and one was just sent
    assert [text for text in problems if "eval" in text.lower()] == []
