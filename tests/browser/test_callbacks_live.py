"""With callbacks configured, a change on the simulator shows on an open page without
waiting for a poll: simulator -> web server (receiver) -> real worker -> Postgres ->
the page's live refresh, in a real browser. (The latency itself is measured by
`make bench-callbacks`; here the wait is generous so a busy machine does not fail it.)"""

import pytest
from playwright.sync_api import expect

from conferences.callbacks import receiver
from conferences.models import Conference, Event, EventKind
from conferences.registry import roles
from tests.conftest import WORKER_ARGS, make_account, start_celery, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture
def worker(celery_env):
    # One confirming poll at most (and no beat): the member comes from its callback.
    celery_env["CONFWATCH_CALLBACK_CONFIRM_SECONDS"] = "600"
    process = start_celery(celery_env, *WORKER_ARGS)
    yield process
    process.terminate()
    process.wait(timeout=20)


def test_a_member_joining_shows_on_the_open_page_from_the_callback(
    page, live_server, settings, simulator, sim_client, worker, django_user_model
):
    settings.CONFWATCH_BASE_URL = live_server.url
    settings.CONFWATCH_PAGE_REFRESH = 1
    user = django_user_model.objects.create_user("staff", password=PASSWORD)
    user.groups.add(roles.ensure_groups()[roles.VIEWER])
    account = make_account(simulator)
    conference_id = sim_client.create_conference(
        from_number="+15555550100", callback_url=receiver.callback_url(account)
    )
    wait_for(
        lambda: Conference.objects.filter(conference_id=conference_id).exists(),
        what="the conference to be registered by its callback",
    )
    conference = Conference.objects.get(conference_id=conference_id)

    page.goto(f"{live_server.url}/conferences/{conference.pk}/")
    page.fill("input[name=username]", "staff")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#status-card .state")).to_have_text("created")
    page.evaluate("window.notReloaded = true")

    sim_client.add_member(conference_id, call_id="c-1")

    expect(page.locator("#status-card .members")).to_have_text("1", timeout=10000)
    assert page.evaluate("window.notReloaded") is True
    change = Event.objects.get(conference=conference, kind=EventKind.MEMBERS_CHANGED, after=1)
    assert change.source == "callback"
