"""What is never shown: a URL's user name and password from the API, and the keys of
links (share, acknowledge, unsubscribe, callbacks) in the request logs."""

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conferences import redact
from conferences.alerting import acknowledgements, sharing, unsubscribe
from conferences.models import Delivery, Subscription
from conferences.registry import roles
from tests.browser.test_overview_live import free_port
from tests.conftest import make_account, make_conference, process_env, wait_for


@pytest.mark.parametrize(
    "url, shown",
    [
        ("https://user:password@cb.example.com/x?y=1", "https://***@cb.example.com/x?y=1"),
        ("https://user@cb.example.com/", "https://***@cb.example.com/"),
        ("http://u:p@ss@cb.example.com:8080/x", "http://***@cb.example.com:8080/x"),
        ("//user:pw@cb.example.com/x", "//***@cb.example.com/x"),
        ("https://cb.example.com/a@b", "https://cb.example.com/a@b"),
        ("https://cb.example.com/x?mail=a@b", "https://cb.example.com/x?mail=a@b"),
        ("", ""),
        (None, None),
    ],
)
def test_a_urls_user_name_and_password_are_never_shown(url, shown):
    assert redact.without_userinfo(url) == shown


@pytest.mark.django_db
def test_the_conference_page_shows_a_callback_url_without_its_password(client):
    conference = make_conference(
        make_account(), "conf-cb", callback_url="https://hook:s3cr3t-pw@cb.example.com/events"
    )
    client.force_login(roles.create_user(username="viewer2", role="viewer", password="x" * 16))

    page = client.get(f"/conferences/{conference.pk}/").content.decode()

    assert "https://***@cb.example.com/events" in page
    assert "s3cr3t-pw" not in page and "hook:" not in page


class DevelopmentServer:
    """`manage.py runserver` on the test database, its log (stderr) in a file."""

    def __init__(self, log_path, *, log_level="INFO", **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "w+")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}"]
            + ["--noreload", "--skip-checks"],
            env=process_env(LOG_LEVEL=log_level, **env),
            stdout=subprocess.DEVNULL,  # its banner; the log lines go to stderr
            stderr=self.log,
        )

    def get(self, path, **kwargs):
        return requests.get(self.url + path, timeout=5, allow_redirects=False, **kwargs)

    def log_text(self):
        return Path(self.log.name).read_text()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        return text


def test_the_request_log_masks_every_links_key(transactional_db, tmp_path):
    conference = make_conference(make_account(), "conf-logged")
    subscription = Subscription.objects.create(email="ops@example.com", kinds=["state"])
    delivery = Delivery.objects.create(email="ops@example.com", conference=conference)
    keys = {
        "share": sharing.token_for(sharing.create_link(conference=conference)),
        "acknowledge": acknowledgements.token_for(delivery),
        "unsubscribe": unsubscribe.token_for(subscription),
        "callbacks": "not-the-callback-secret-4242",
    }
    server = DevelopmentServer(tmp_path / "runserver.log")
    try:
        wait_for(lambda: answers(server), timeout=30, what="the development server")
        answered = {name: server.get(f"/{name}/{key}/").status_code for name, key in keys.items()}
        answered["missing share"] = server.get("/share/damaged-key-777/").status_code
        answered["query"] = server.get("/?token=query-key-555").status_code
        time.sleep(0.3)
    finally:
        log = server.stop()

    assert answered == {
        "share": 200,
        "acknowledge": 200,
        "unsubscribe": 200,
        "callbacks": 404,
        "missing share": 404,
        "query": 302,
    }
    for key in keys.values():
        assert key not in log
    for name in ("share", "acknowledge", "unsubscribe"):
        assert f'"GET /{name}/…/ HTTP/1.1" 200' in log  # the development server's line
    # A refused request's one line (conferences.ops.request_lines).
    assert "GET /callbacks/…/ 404 Not Found (anonymous)" in log
    assert "damaged-key-777" not in log and "query-key-555" not in log
    assert "GET /share/…/ 404 Not Found (anonymous)" in log
    assert '"GET /?token=… HTTP/1.1" 302' in log


def answers(server):
    try:
        return server.get("/health/").status_code in (200, 503)
    except requests.RequestException:
        return False


@pytest.mark.django_db
def test_a_client_error_is_logged_as_one_warning_line_without_a_traceback(
    client, django_user_model, caplog
):
    viewer = django_user_model.objects.create_user("looker", password="correct horse battery")
    client.force_login(viewer)

    with caplog.at_level(logging.INFO):
        refused = client.get("/conferences/track/")
        stranger = client.get("/health/", HTTP_HOST="evil.example")

    assert (refused.status_code, stranger.status_code) == (403, 400)
    records = [r for r in caplog.records if r.name.startswith(("django.request", "django.sec"))]
    assert [(r.levelname, r.exc_info) for r in records] == [("WARNING", None), ("WARNING", None)]
    assert "evil.example" in records[1].getMessage()


def test_a_refused_request_is_one_line_with_method_path_status_and_user(transactional_db, tmp_path):
    conference = make_conference(make_account(), "conf-refused")
    roles.create_user(username="viewer-logged", role="viewer", password="viewer-password-42")
    server = DevelopmentServer(tmp_path / "runserver.log", log_level="WARNING")
    try:
        wait_for(lambda: answers(server), timeout=30, what="the development server")
        browser = requests.Session()
        browser.get(server.url + "/accounts/login/", timeout=5)
        signed_in = browser.post(
            server.url + "/accounts/login/",
            data={
                "username": "viewer-logged",
                "password": "viewer-password-42",
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            },
            timeout=5,
            allow_redirects=False,
        )
        answered = {
            "missing": browser.get(server.url + "/nowhere/?token=query-key-999", timeout=5),
            "viewer shares": browser.post(
                f"{server.url}/conferences/{conference.pk}/share/",
                data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
                timeout=5,
            ),
            "page": browser.get(server.url + "/", timeout=5),
        }
        time.sleep(0.3)
    finally:
        log = server.stop()

    assert signed_in.status_code == 302
    assert {name: answer.status_code for name, answer in answered.items()} == {
        "missing": 404,
        "viewer shares": 403,
        "page": 200,
    }
    lines = log.splitlines()
    assert [line for line in lines if "/nowhere/" in line] == [
        next(line for line in lines if line.endswith("GET /nowhere/ 404 Not Found (viewer-logged)"))
    ]
    share_path = f"/conferences/{conference.pk}/share/"
    assert [line for line in lines if share_path in line] == [
        next(
            line
            for line in lines
            if line.endswith(f"POST {share_path} 403 Forbidden (viewer-logged)")
        )
    ]
    assert "query-key-999" not in log
    assert "Traceback" not in log and "HTTP/1.1" not in log  # no second line, no traceback
