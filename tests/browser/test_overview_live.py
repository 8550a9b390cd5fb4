"""The overview on the running product: a real web server (runserver in its own process,
which a test stops and starts), a real Celery worker and beat polling the simulator, and
Chromium. Screenshots of the overview land in tests/browser/screenshots/."""

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from conferences.models import Conference
from conferences.registry import roles
from tests.conftest import make_account, make_conference, start_celery, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"
POLL_INTERVAL = 3  # seconds, for the worker and the pages
PAGE_REFRESH = 1
# A change is on the page within two poll intervals, plus one page refresh and a little
# slack for a machine busy with other tests.
WITHIN_TWO_POLLS_MS = (2 * POLL_INTERVAL + PAGE_REFRESH + 2) * 1000
SCREENSHOTS = Path(__file__).parent / "screenshots"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebServer:
    """`manage.py runserver` on the test database, stopped and started at will."""

    def __init__(self, env, port):
        self.env, self.port, self.process = env, port, None
        self.url = f"http://127.0.0.1:{port}"

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}"]
            + ["--noreload", "--skip-checks"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.answers, timeout=30, what="the web server")

    def answers(self):
        try:
            return requests.get(f"{self.url}/accounts/login/", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def product(tmp_path, celery_env, simulator):
    """The running product on the test database: web, worker and beat."""
    env = dict(
        celery_env,
        DJANGO_SETTINGS_MODULE="tests.browser.product_settings",
        CONFWATCH_POLL_INTERVAL=str(POLL_INTERVAL),
        CONFWATCH_PAGE_REFRESH=str(PAGE_REFRESH),
        CONFWATCH_ROUND_SECONDS="0.5",
        LOG_LEVEL="WARNING",
    )
    web = WebServer(env, free_port())
    web.start()
    workers = [start_celery(env, "worker", "--pool=solo", "--without-mingle", "--without-gossip")]
    workers.append(start_celery(env, "beat"))
    yield web
    web.stop()
    for process in workers:
        process.terminate()
    for process in workers:
        process.wait(timeout=30)


@pytest.fixture
def staff(django_user_model):
    user = django_user_model.objects.create_user("staff", password=PASSWORD)
    user.groups.add(roles.ensure_groups()[roles.ADMIN])
    return user


@pytest.fixture
def desk(simulator, sim_client):
    """What a support desk watches: live conferences on the simulator, one the API does
    not know, one paused from an earlier run."""
    account = make_account(simulator, name="acme")
    live = {}
    for label, tags in [
        ("Support bridge", ["acme", "vip"]),
        ("Board call", ["globex"]),
        ("Sales stand-up", ["acme"]),
    ]:
        conference_id = sim_client.create_conference(from_number="+15555550100")
        make_conference(account, conference_id, label=label, tags=tags)
        live[label] = conference_id
    sim_client.add_member(live["Board call"], call_id="c-board-1")
    make_conference(account, "conf-nobodyknows", label="Lost bridge", tags=["acme"])
    make_conference(
        account,
        "conf-earlier-run",
        label="Old demo bridge",
        paused=True,
        state="active",
        active_members=4,
        last_observed_at=timezone.now(),
    )
    return live


def sign_in(page, web):
    page.goto(f"{web.url}/")
    expect(page).to_have_url(f"{web.url}/accounts/login/?next=/")
    page.fill("input[name=username]", "staff")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Tracked conferences")


def row(page, conference_id):
    return page.locator(f"tr[data-conference-id='{conference_id}']")


def polled_once(conference_ids):
    def check():
        return Conference.objects.filter(
            conference_id__in=conference_ids, last_polled_at__isnull=False
        ).count() == len(conference_ids)

    return check


def test_sign_in_filter_sort_and_search_the_overview(page, product, staff, desk):
    wait_for(polled_once([*desk.values(), "conf-nobodyknows"]), what="a first poll of each")
    sign_in(page, product)

    expect(row(page, "conf-nobodyknows").locator(".poll")).to_have_text("not found")
    expect(page.locator("[data-count=not_found] .number")).to_have_text("1")
    expect(page.locator("tbody#conference-rows tr").first).to_have_attribute(
        "data-conference-id", "conf-nobodyknows"
    )  # problems first

    page.select_option("#id_state", "active")
    page.click("button:has-text('Filter')")
    expect(page).to_have_url(
        f"{product.url}/?q=&state=active&account=&tag=&health=&hold=&mute=&tracking="
    )
    expect(page.locator("tbody#conference-rows tr")).to_have_count(1)
    expect(row(page, desk["Board call"]).locator(".members")).to_have_text("1")

    page.goto(f"{product.url}/")
    page.click("th a:has-text('Conference')")
    expect(page).to_have_url(f"{product.url}/?sort=label")
    labels = page.locator("tbody#conference-rows td.conference a").all_inner_texts()
    assert labels == sorted(labels, key=str.lower)
    page.click("th a:has-text('Conference')")
    expect(page).to_have_url(f"{product.url}/?sort=-label")
    page.go_back()
    expect(page).to_have_url(f"{product.url}/?sort=label")

    page.fill("#id_q", "+1555555")
    page.click("button:has-text('Filter')")
    expect(page.locator("tbody#conference-rows tr")).to_have_count(3)  # the from number
    page.click("[data-count=paused]")
    expect(row(page, "conf-earlier-run").locator(".state")).to_have_text("paused")


def test_a_change_on_the_simulator_shows_on_the_open_overview_within_two_poll_intervals(
    page, product, staff, desk, sim_client
):
    conference_id = desk["Support bridge"]
    wait_for(polled_once([conference_id]), what="a first poll")
    sign_in(page, product)
    expect(row(page, conference_id).locator(".state")).to_have_text("created")
    page.evaluate("window.notReloaded = true")

    sim_client.add_member(conference_id, call_id="c-1")
    sim_client.add_member(conference_id, call_id="c-2")

    expect(row(page, conference_id).locator(".state")).to_have_text(
        "active", timeout=WITHIN_TWO_POLLS_MS
    )
    expect(row(page, conference_id).locator(".members")).to_have_text("2")
    expect(page.locator("[data-count=active] .number")).to_have_text("2")  # and the counts
    assert page.evaluate("window.notReloaded") is True


def test_signing_out_in_another_tab_sends_the_live_page_to_sign_in(page, product, staff, desk):
    sign_in(page, product)
    other_tab = page.context.new_page()
    other_tab.goto(f"{product.url}/alerts/")

    other_tab.click("button:has-text('Sign out')")

    expect(page).to_have_url(f"{product.url}/accounts/login/?next=/", timeout=10000)
    expect(page.locator("h1")).to_have_text("Sign in")
    expect(page.locator("table.conferences")).to_have_count(0)


def test_a_stopped_server_shows_the_disconnected_notice_until_it_is_back(
    page, product, staff, desk
):
    sign_in(page, product)
    notice = page.locator("#connection-status")
    expect(notice).to_be_hidden()

    product.stop()
    expect(notice).to_be_visible(timeout=10000)
    expect(notice).to_contain_text("Disconnected since")
    page.wait_for_timeout(2 * PAGE_REFRESH * 1000)
    expect(notice).to_be_visible()  # still down, still said

    product.start()
    expect(notice).to_be_hidden(timeout=10000)
    expect(page.locator("h1")).to_have_text("Tracked conferences")


def test_a_hung_server_shows_not_responding_and_stops_the_relative_times_until_it_answers(
    page, product, staff, desk
):
    wait_for(polled_once(list(desk.values())), what="a first poll of each")
    sign_in(page, product)
    notice = page.locator("#connection-status")
    changed = row(page, desk["Board call"]).locator(".changed time")
    expect(changed).to_have_attribute("datetime", re.compile("."))

    os.kill(product.process.pid, signal.SIGSTOP)  # it accepts connections, answers none
    try:
        expect(notice).to_be_visible(timeout=(2 * PAGE_REFRESH + 5) * 1000)
        expect(notice).to_contain_text(re.compile(r"Not responding since \d\d:\d\d:\d\d UTC"))
        shown = changed.text_content()
        # Three minutes later, as far as this time is concerned: it does not tick on.
        page.evaluate(
            """(selector) => {
              const element = document.querySelector(selector);
              element.setAttribute('datetime', new Date(Date.now() - 180000).toISOString());
            }""",
            f"tr[data-conference-id='{desk['Board call']}'] .changed time",
        )
        page.wait_for_timeout(6000)  # longer than the relative times' 5 s tick
        expect(changed).to_have_text(shown)
        expect(notice).to_be_visible()
    finally:
        os.kill(product.process.pid, signal.SIGCONT)

    expect(notice).to_be_hidden(timeout=15000)
    expect(changed).not_to_have_text(shown, timeout=7000)


@pytest.mark.parametrize(("name", "width", "height"), [("desktop", 1366, 768), ("390", 390, 844)])
def test_the_overview_fits_the_screen_and_is_saved_as_a_screenshot(
    page, product, staff, desk, name, width, height
):
    wait_for(polled_once([*desk.values(), "conf-nobodyknows"]), what="a first poll of each")
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, product)
    page.goto(f"{product.url}/?tracking=all")
    expect(row(page, "conf-nobodyknows").locator(".poll")).to_have_text("not found")

    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"overview-{name}.png"), full_page=True)

    assert overflow <= 0
    for control in ["q", "state", "account", "tag", "health", "hold", "mute", "tracking"]:
        assert page.locator(f"label[for=id_{control}]").is_visible()


def test_the_overview_reads_the_same_without_javascript(browser, live_server, staff, desk):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, live_server)
        expect(row(page, desk["Board call"]).locator(".state")).to_have_text("not yet observed")
        expect(page.locator("[data-count=paused] .number")).to_have_text("1")
        expect(page.locator("noscript")).to_have_count(1)

        page.fill("#id_tag", "vip")
        page.click("button:has-text('Filter')")
        expect(page).to_have_url(re.compile(r"tag=vip"))
        expect(page.locator("tbody#conference-rows tr")).to_have_count(1)
        page.click("tbody button:has-text('Pause')")  # a plain form post, back to the same filter
        expect(page.locator(".messages")).to_contain_text("Paused Support bridge")
        expect(page).to_have_url(re.compile(r"tag=vip"))
    finally:
        context.close()


def test_relative_times_stay_right_while_the_page_is_open(page, live_server, staff, desk):
    Conference.objects.filter(conference_id=desk["Board call"]).update(
        last_changed_at=timezone.now()
    )
    sign_in(page, live_server)
    changed = row(page, desk["Board call"]).locator(".changed time")
    expect(changed).to_have_text("just now")
    title = changed.get_attribute("title")
    assert title.endswith(" UTC")  # the zone is named on hover

    # Three minutes later (as far as this time is concerned): the page says so by itself.
    page.evaluate(
        """(selector) => {
          const element = document.querySelector(selector);
          element.setAttribute('datetime', new Date(Date.now() - 180000).toISOString());
        }""",
        f"tr[data-conference-id='{desk['Board call']}'] .changed time",
    )
    expect(changed).to_have_text("3 min ago", timeout=7000)


@pytest.mark.parametrize(
    "path", ["/", "/alerts/", "/conferences/track/", "/preferences/", "/accounts/login/"]
)
def test_no_page_is_wider_than_a_390_px_phone(page, live_server, staff, desk, path):
    page.set_viewport_size({"width": 390, "height": 844})
    if path != "/accounts/login/":
        sign_in(page, live_server)
    page.goto(f"{live_server.url}{path}")

    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )

    assert overflow <= 0
