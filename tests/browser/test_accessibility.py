"""Every page, signed in and out, at a desktop and a phone width, in the light and the
dark colour scheme (the admin's too): axe finds no serious or critical violation, and at
390 px no page scrolls sideways. Also: the error pages are the product's, "/" focuses the
search field, and the tab's icon shows when the overview reports a problem."""

import re
from datetime import time

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.test import RequestFactory
from django.views import defaults
from playwright.sync_api import expect

from conferences.alerting import acknowledgements, sharing
from conferences.models import Delivery, Subscription
from conferences.polling import rounds
from conferences.registry import roles
from conferences.web.views.health import server_error
from tests.conftest import make_account, make_conference

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"
WIDTHS = [1400, 390]
AXE = Axe()


@pytest.fixture
def world(simulator, sim_client):
    """Two users and a conference with members, history, an alert email and a share link."""
    staff = roles.create_user(username="staff", role="admin", password=PASSWORD)
    roles.create_user(username="viewer", role="viewer", password=PASSWORD)
    account = make_account(simulator)
    conference_id = sim_client.create_conference(from_number="+15555550100")
    conference = make_conference(account, conference_id, label="Board call", tags=["sales"])
    make_conference(account, "conf-missing", label="Gone bridge")
    rounds.poll_round(force=True)
    sim_client.add_member(conference_id, call_id="c-1")
    sim_client.add_member(conference_id, call_id="c-2")
    rounds.poll_round(force=True)
    # The alerts page's widest table (issue 20: 758 px at 390 before): every column filled.
    subscription = Subscription.objects.create(
        user=staff,
        email="ops-team-with-a-long-address@example.com",
        kinds=["state", "hold", "mute", "members", "polling", "alone"],
        members_at_most=1,
        rule_after_seconds=300,
        time_zone="America/Argentina/Buenos_Aires",
        quiet_start=time(22, 0),
        quiet_end=time(7, 0),
    )
    delivery = Delivery.objects.create(
        email="ops@example.com", conference=conference, subject="[confwatch] Board call: active"
    )
    return {
        "conference": conference,
        "subscription": subscription,
        "share": "/share/" + sharing.token_for(sharing.create_link(conference=conference)) + "/",
        "acknowledge": f"/acknowledge/{acknowledgements.token_for(delivery)}/",
    }


def sign_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Tracked conferences")


def serve_rendered_errors(page, live_server):
    """400 and 500 pages cannot be provoked from a browser: serve what the handlers
    render at two addresses of the live server."""
    request = RequestFactory().get("/")
    pages = {
        "/test-error-400/": defaults.bad_request(request, exception=None),
        "/test-error-500/": server_error(request),
    }
    for path, response in pages.items():
        page.route(
            f"{live_server.url}{path}",
            lambda route, request, answer=response: route.fulfill(
                status=answer.status_code, body=answer.content, content_type="text/html"
            ),
        )
    return list(pages)


def problems_on(page, path, width):
    """The serious and critical axe violations of the open page, and sideways scrolling."""
    found = []
    for violation in AXE.run(page).response["violations"]:
        if violation["impact"] in ("serious", "critical"):
            targets = [node["target"] for node in violation["nodes"]][:3]
            found.append(f"{path} @{width}: {violation['id']} ({violation['help']}) {targets}")
    if width < 700:
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if scroll > inner:
            found.append(f"{path} @{width}: scrolls sideways ({scroll} > {inner} px)")
    return found


def visit_all(page, live_server, paths):
    found = []
    for path, status in paths:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            response = page.goto(f"{live_server.url}{path}")
            assert response.status == status, path
            found += problems_on(page, path, width)
    return found


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_passes_axe_and_fits_a_phone(browser, live_server, world, scheme):
    pk = world["conference"].pk
    found = []

    anonymous = browser.new_context(color_scheme=scheme)
    page = anonymous.new_page()
    errors = serve_rendered_errors(page, live_server)
    found += visit_all(
        page,
        live_server,
        [
            ("/accounts/login/", 200),
            ("/admin/login/", 200),
            (world["share"], 200),
            (world["share"] + "?range=7d", 200),
            (world["share"] + "?range=garbage", 400),
            (world["acknowledge"], 200),
            ("/no-such-page/", 404),
            (errors[0], 400),
            (errors[1], 500),
        ],
    )
    anonymous.close()

    staff = browser.new_context(color_scheme=scheme)
    page = staff.new_page()
    sign_in(page, live_server, "staff")
    found += visit_all(
        page,
        live_server,
        [
            ("/", 200),
            (f"/conferences/{pk}/", 200),
            (f"/conferences/{pk}/?range=7d", 200),
            (f"/conferences/{pk}/?range=garbage", 400),
            ("/alerts/", 200),
            ("/calls/?call_id=c-1", 200),
            ("/preferences/", 200),
            ("/conferences/track/", 200),
            ("/no-such-page/", 404),
        ],
    )
    page.goto(f"{live_server.url}/alerts/")  # at 390 px: the columns once cut off show
    for column in ("Rules", "Quiet hours", "Time zone"):
        expect(page.locator(f"tr[data-subscription] td[data-label='{column}']")).to_be_visible()
    expect(page.get_by_role("button", name="Delete")).to_be_in_viewport()
    staff.close()

    viewer = browser.new_context(color_scheme=scheme)
    page = viewer.new_page()
    sign_in(page, live_server, "viewer")
    found += visit_all(page, live_server, [("/conferences/track/", 403)])
    viewer.close()

    assert found == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_admins_pages_pass_axe_and_fit_a_phone(browser, live_server, world, scheme):
    conference = world["conference"]
    context = browser.new_context(color_scheme=scheme)
    page = context.new_page()
    sign_in(page, live_server, "staff")

    found = visit_all(
        page,
        live_server,
        [
            ("/admin/", 200),
            ("/admin/conferences/conference/", 200),
            (f"/admin/conferences/conference/{conference.pk}/change/", 200),
            ("/admin/conferences/historyentry/", 200),
            ("/admin/conferences/delivery/", 200),
            ("/admin/conferences/subscription/", 200),
            # select2's search fields (user, conferences): each has a name to read out.
            (f"/admin/conferences/subscription/{world['subscription'].pk}/change/", 200),
            ("/admin/conferences/subscription/add/", 200),
            ("/admin/conferences/maintenancewindow/add/", 200),
            (f"/admin/conferences/account/{conference.account_id}/change/", 200),
            ("/admin/conferences/conference/import/", 200),
        ],
    )
    context.close()

    assert found == []


def test_the_admins_autocompletes_are_named_by_their_fields_labels(page, live_server, world):
    sign_in(page, live_server, "staff")
    path = f"/admin/conferences/subscription/{world['subscription'].pk}/change/"
    page.goto(f"{live_server.url}{path}")

    expect(page.get_by_role("searchbox", name="Conferences")).to_be_visible()
    assert problems_on(page, path, 1400) == []

    # A single select's box reads its label; its open dropdown's search field is named by
    # the label too.
    path = "/admin/conferences/maintenancewindow/add/"
    page.goto(f"{live_server.url}{path}")
    box = page.locator("#id_account + .select2-container .select2-selection--single")
    expect(box).to_have_accessible_name(re.compile("^Account"))
    box.click()
    dropdown_search = page.locator(".select2-container--open .select2-search__field")
    expect(dropdown_search).to_be_focused()
    expect(dropdown_search).to_have_accessible_name("Account:")
    assert problems_on(page, path, 1400) == []


def test_the_error_pages_are_the_products_with_navigation_and_what_to_do(page, live_server, world):
    sign_in(page, live_server, "viewer")

    page.goto(f"{live_server.url}/conferences/track/")
    expect(page.locator("h1")).to_have_text("You are not allowed to see this")
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()

    pk = world["conference"].pk
    page.goto(f"{live_server.url}/conferences/{pk}/?range=garbage")
    expect(page.locator("h1")).to_have_text("This request could not be understood")
    expect(page.locator(".problem-page")).to_contain_text("choose a range above the chart")
    page.get_by_role("link", name="Open the conference page").click()
    expect(page.locator("#chart")).to_be_visible()

    page.goto(f"{live_server.url}/conferences/999999/")
    expect(page.locator("h1")).to_have_text("Nothing here")
    expect(page.get_by_role("link", name="Go to the conferences overview")).to_be_visible()


def test_slash_focuses_the_search_field_and_the_skip_link_comes_first(page, live_server, world):
    sign_in(page, live_server, "staff")

    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    expect(page.locator(".skip")).to_be_visible()
    page.locator("body").click()
    page.keyboard.press("/")
    expect(page.locator("input[name=q]")).to_be_focused()
    page.keyboard.type("/Board")  # inside the field, "/" is a character like any other
    expect(page.locator("input[name=q]")).to_have_value("/Board")


def test_the_tabs_icon_shows_attention_while_the_overview_reports_a_problem(
    page, live_server, world
):
    icon = page.locator("link#favicon")
    sign_in(page, live_server, "staff")
    # conf-missing is not found by the simulator: the overview counts it as a problem.
    expect(icon).to_have_attribute("href", "/static/favicon-attention.svg")

    page.goto(f"{live_server.url}/conferences/{world['conference'].pk}/")
    expect(icon).to_have_attribute("href", "/static/favicon.svg")
