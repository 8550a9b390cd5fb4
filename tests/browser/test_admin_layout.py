"""The admin in a real browser: what fits on a support desk's screen."""

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from tests.conftest import make_account, make_conference

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_at_1366_px_every_column_of_the_conference_list_is_on_screen(page, live_server):
    User.objects.create_superuser("boss", password="correct horse battery")
    account = make_account(name="acme-production-eu-west")
    for index in range(20):
        make_conference(
            account,
            f"conf-ixaagbn5wcyskisiy{index:03d}",
            label="Quarterly partner escalation bridge with the regional teams",
            tags=["acme", "vip"],
            state="active",
            active_members=12,
            hold=False,
            mute=True,
            poll_status="credentials_rejected",
            paused=index % 2 == 0,
            last_polled_at=timezone.now(),
            last_changed_at=timezone.now(),
        )
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/conferences/conference/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "correct horse battery")
    page.click("input[type=submit]")
    page.wait_for_selector("#result_list")

    layout = page.evaluate(
        """() => {
          const table = document.querySelector('#result_list');
          const box = table.parentElement;
          const headers = [...table.querySelectorAll('thead th')].map(th => ({
            name: th.innerText.trim().toLowerCase(),
            right: th.getBoundingClientRect().right,
          }));
          return {tableWidth: table.scrollWidth, boxWidth: box.clientWidth,
                  screen: document.documentElement.clientWidth, headers};
        }"""
    )
    health = page.locator("#result_list td.field-poll_health").all_inner_texts()

    assert layout["tableWidth"] <= layout["boxWidth"]  # no scrolling inside the list
    names = [header["name"] for header in layout["headers"]]
    assert "poll health" in names and "last change" in " ".join(names)
    assert all(header["right"] <= layout["screen"] for header in layout["headers"])
    assert any("paused" in cell for cell in health) and all(
        "ago" in cell or "just now" in cell for cell in health
    )
