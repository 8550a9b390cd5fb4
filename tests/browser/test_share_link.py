import pytest
from playwright.sync_api import expect

from conferences.polling import rounds
from conferences.registry import roles
from tests.conftest import make_account, make_conference

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture
def staff(db):
    """A support admin: share links are an admin's (tests/test_roles.py: a viewer's 403)."""
    return roles.create_user(username="staff", role="admin", password=PASSWORD)


def sign_in(page, live_server):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "staff")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Tracked conferences")


def test_a_share_link_shows_the_conference_to_an_anonymous_browser_until_revoked(
    browser, page, live_server, staff, simulator, sim_client, settings
):
    settings.CONFWATCH_BASE_URL = live_server.url
    account = make_account(simulator, name="private-account")
    conference_id = sim_client.create_conference(from_number="+15555550100")
    make_conference(account, conference_id, label="Board call")
    rounds.poll_round(force=True)
    sim_client.add_member(conference_id, call_id="c-1")
    sim_client.add_member(conference_id, call_id="c-2")
    rounds.poll_round(force=True)

    sign_in(page, live_server)
    page.click("text=Board call")
    page.fill(".share-form input[name=expires]", "2h")
    page.click("button:has-text('Create a read-only share link')")
    expect(page.locator(".messages")).to_contain_text("Share link")
    url = page.locator(".share-links input[readonly]").first.input_value()
    assert url.startswith(f"{live_server.url}/share/")

    anonymous = browser.new_context()
    try:
        visitor = anonymous.new_page()
        visitor.goto(url)
        expect(visitor.locator("h1")).to_have_text("Board call")
        expect(visitor.locator("#status-card .state")).to_have_text("active")
        expect(visitor.locator("#status-card .members")).to_have_text("2")
        expect(visitor.locator("table.history tbody tr")).to_have_count(2)
        assert "private-account" not in visitor.content()
        assert visitor.locator("header nav").count() == 0

        page.click(".share-links button:has-text('Revoke')")
        expect(page.locator(".messages")).to_contain_text("revoked")
        response = visitor.goto(url)
        assert response.status == 404
        expect(visitor.locator("h1")).to_have_text("Not found")
        changed = visitor.goto(url[:-2] + ("xx/" if not url.endswith("xx/") else "yy/"))
        assert changed.status == 404
    finally:
        anonymous.close()
