import pytest
from playwright.sync_api import expect

from conferences.polling import rounds
from conferences.registry import roles
from tests.conftest import make_account, make_conference

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture
def staff(django_user_model):
    """A support admin: tracking from the dashboard needs the add_conference permission."""
    user = django_user_model.objects.create_user("staff", password=PASSWORD)
    user.groups.add(roles.ensure_groups()[roles.ADMIN])
    return user


def sign_in(page, live_server):
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    page.fill("input[name=username]", "staff")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Tracked conferences")


def test_an_anonymous_visitor_sees_the_sign_in_page_and_no_data(page, live_server, staff):
    make_conference(make_account(), "conf-secret-one")
    page.goto(f"{live_server.url}/")
    expect(page.locator("h1")).to_have_text("Sign in")
    assert "conf-secret-one" not in page.content()


def test_the_list_updates_live_when_a_member_joins(page, live_server, staff, simulator, sim_client):
    account = make_account(simulator)
    conference_id = sim_client.create_conference(from_number="+15555550100")
    make_conference(account, conference_id, label="Support bridge")
    rounds.poll_round(force=True)

    sign_in(page, live_server)
    row = page.locator(f"tr[data-conference-id='{conference_id}']")
    expect(row.locator(".state")).to_have_text("created")
    page.evaluate("window.notReloaded = true")

    sim_client.add_member(conference_id, call_id="c-1")
    sim_client.add_member(conference_id, call_id="c-2")
    rounds.poll_round(force=True)

    expect(row.locator(".state")).to_have_text("active", timeout=10000)
    expect(row.locator(".members")).to_have_text("2")
    assert page.evaluate("window.notReloaded") is True


def test_the_detail_page_shows_history_and_updates_live(
    page, live_server, staff, simulator, sim_client
):
    account = make_account(simulator)
    conference_id = sim_client.create_conference(from_number="+15555550100")
    make_conference(account, conference_id, label="Board call")
    rounds.poll_round(force=True)
    sign_in(page, live_server)

    page.click("text=Board call")
    expect(page.locator("#status-card .state")).to_have_text("created")
    page.evaluate("window.notReloaded = true")
    sim_client.add_member(conference_id, call_id="c-1")
    rounds.poll_round(force=True)

    expect(page.locator("#status-card .state")).to_have_text("active", timeout=10000)
    expect(page.locator("table.timeline tbody tr")).to_have_count(2)
    assert page.evaluate("window.notReloaded") is True


def test_tracking_a_conference_from_the_form_lists_it(page, live_server, staff):
    make_account(name="acme")
    sign_in(page, live_server)

    page.click("text=Track a conference")
    page.fill("textarea[name=conference_ids]", "conf-from-form")
    page.fill("input[name=label]", "Escalation")
    page.click("button:has-text('Track')")

    expect(page.locator(".messages")).to_contain_text("Now tracking conf-from-form.")
    expect(page.locator("tr[data-conference-id='conf-from-form']")).to_contain_text("Escalation")
