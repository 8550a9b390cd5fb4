from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conferences.models import MaintenanceWindow
from conferences.registry import roles
from tests.conftest import make_account, make_conference

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


def sign_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Tracked conferences")


def local(moment):
    return moment.strftime("%Y-%m-%d %H:%M")


def test_an_admin_adds_a_window_the_pages_show_it_and_ending_it_clears_them(
    page, live_server, simulator
):
    roles.create_user(username="staff", role="admin", password=PASSWORD)
    account = make_account(simulator)
    make_conference(account, "conf-router", label="Router call", tags=["router"])
    make_conference(account, "conf-other", label="Other call", tags=["other"])
    now = timezone.now().astimezone(timezone.get_current_timezone())
    until = now + timedelta(hours=2)

    sign_in(page, live_server, "staff")
    page.click("nav >> text=Maintenance")
    expect(page.locator("h1")).to_have_text("Maintenance windows")
    page.select_option("select[name=scope]", "tag")
    page.fill("input[name=covers]", "router")
    page.fill("input[name=starts]", local(until))
    page.fill("input[name=until]", local(now))
    page.click("button:has-text('Add')")
    expect(page.locator(".form-errors")).to_contain_text("must be after from")
    page.fill("input[name=starts]", local(now - timedelta(minutes=1)))
    page.fill("input[name=until]", local(until))
    page.fill("input[name=reason]", "router swap")
    page.click("button:has-text('Add')")
    expect(page.locator(".messages")).to_contain_text("Added maintenance")
    row = page.locator("#maintenance-windows tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("tag router")
    expect(row).to_contain_text("router swap")
    expect(row).to_contain_text("in maintenance")

    page.click("nav >> text=Conferences")
    badge = f"in maintenance until {local(until)}"
    router_row = page.locator("tr", has_text="Router call")
    expect(router_row.locator(".maintenance")).to_contain_text(badge)
    expect(page.locator("tr", has_text="Other call").locator(".maintenance")).to_have_count(0)
    page.click("text=Router call")
    expect(page.locator("p.maintenance")).to_contain_text(badge)

    page.click("nav >> text=Maintenance")
    page.click("button:has-text('End now')")
    expect(page.locator(".messages")).to_contain_text("its summaries go out now")
    expect(page.locator("#maintenance-windows")).to_have_count(0)
    assert MaintenanceWindow.objects.get().ended_at is not None
    page.click("nav >> text=Conferences")
    expect(page.locator(".maintenance")).to_have_count(0)


def test_a_viewer_sees_the_windows_without_the_controls(page, live_server, simulator):
    roles.create_user(username="viewer", role="viewer", password=PASSWORD)
    make_account(simulator)
    now = timezone.now()
    MaintenanceWindow.objects.create(
        tag="router",
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=1),
        time_zone="UTC",
        reason="carrier work",
    )

    sign_in(page, live_server, "viewer")
    page.click("nav >> text=Maintenance")

    expect(page.locator("#maintenance-windows tbody tr")).to_contain_text("coming")
    expect(page.locator("#maintenance-windows")).to_contain_text("carrier work")
    expect(page.locator("button:has-text('End now')")).to_have_count(0)
    expect(page.locator("button:has-text('Add')")).to_have_count(0)
