"""The Procfile's real lines in production (CONFWATCH_ENV=production, a strong key,
ALLOWED_HOSTS, behind a TLS proxy) on a database of their own, created and dropped here:
release, then gunicorn with 2 workers, the worker, the poller and beat. A client that sets
X-Forwarded-Proto like the proxy signs in, reads every page and a static file (served by
whitenoise with DEBUG off), gets the product's own 404 and 403 pages, and scrapes
/metrics."""

import os
import re
import subprocess
import sys
import time
from urllib.parse import urlsplit

import psycopg
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from simulator.testing import running_simulator
from tests.catapult_driver import CatapultDriver
from tests.conftest import SIM_USER
from tests.procfile import (
    HTTP_TIMEOUT,
    ROOT,
    Line,
    free_port,
    run_line,
    wait_until_answers,
    with_venv,
)

HOST = "confwatch.example.com"
STRONG_KEY = "pr0d-" + "".join(chr(ord("a") + i * 7 % 26) for i in range(60))
METRICS_TOKEN = "production-metrics-token-0123456789"
PASSWORD = "a long production password 42"
VERSION = "9.9.9-production-test"


@pytest.fixture
def fresh_database():
    """A database created for the test and dropped after it (never the default one)."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/confwatch")
    parts = urlsplit(base)
    name = f"{parts.path.lstrip('/')}_production_start"
    assert name != "confwatch"
    server = parts._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parts._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class BehindTlsProxy:
    """A client as a TLS-terminating proxy forwards it: plain HTTP to gunicorn with the
    public Host and X-Forwarded-Proto: https. It keeps the cookies itself (they are
    Secure, which a cookie jar would not send over plain HTTP)."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.cookies = {}

    def request(self, method, path, *, headers=None, **kwargs):
        sent = {"Host": HOST, "X-Forwarded-Proto": "https", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        response = requests.request(
            method,
            self.base + path,
            headers=sent,
            allow_redirects=False,
            timeout=HTTP_TIMEOUT,
            **kwargs,
        )
        for cookie in response.cookies:
            self.cookies[cookie.name] = cookie.value
        return response

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def sign_in(self, username):
        form = self.get("/accounts/login/")
        assert form.status_code == 200, form.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        answer = self.request(
            "POST",
            "/accounts/login/",
            data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Referer": f"https://{HOST}/accounts/login/"},
        )
        assert answer.status_code == 302, answer.text
        assert answer.headers["Location"] == "/"
        return self


def manage(env, *args):
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=with_venv(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def production(fresh_database, tmp_path):
    """Release, then web, worker, poller and beat, as the Procfile says, with a tracked
    conference on a simulator."""
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CONFWATCH_", "PROMETHEUS_"))
        and key not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        CONFWATCH_ENV="production",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS=HOST,
        CONFWATCH_TLS_PROXY="true",
        DATABASE_URL=fresh_database,
        CELERY_BROKER_URL=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"),
        CELERY_BEAT_SCHEDULE_FILENAME=str(tmp_path / "beat-schedule"),
        CONFWATCH_ALLOWED_API_HOSTS="127.0.0.1",
        CONFWATCH_METRICS_TOKEN=METRICS_TOKEN,
        CONFWATCH_VERSION=VERSION,
        CONFWATCH_ROUND_SECONDS="0.5",
        CONFWATCH_POLL_INTERVAL="1",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        PORT=str(port),
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    )
    (tmp_path / "prometheus").mkdir()
    (tmp_path / "prometheus" / "counter_1.db").write_bytes(b"left over from an earlier run")
    run_line("release", env)
    assert list((tmp_path / "prometheus").glob("*.db")) == []
    users = dict(env, CONFWATCH_USER_PASSWORD=PASSWORD)
    manage(users, "createuser", "chief", "--role", "admin", "--email", "chief@example.com")
    manage(users, "createuser", "reader", "--role", "viewer", "--email", "reader@example.com")
    with running_simulator(rate_limit=50) as simulator:
        user_id, token, secret = SIM_USER
        driver = CatapultDriver(
            base_url=simulator.url, user_id=user_id, api_token=token, api_secret=secret
        )
        conference_id = driver.create_conference(from_number="+15555550100")
        driver.close()
        credentials = dict(env, CATAPULT_API_TOKEN=token, CATAPULT_API_SECRET=secret)
        manage(
            credentials, "add_account", "acme", "--user-id", user_id, "--base-url", simulator.url
        )
        manage(env, "track", "--account", "acme", conference_id, "--label", "Weekly sync")
        lines = []
        try:
            lines = [Line(kind, env, tmp_path) for kind in ("web", "worker", "poller", "beat")]
            wait_until_answers(
                f"http://127.0.0.1:{port}/health/", line=lines[0], headers={"Host": HOST}
            )
            yield {"port": port, "env": env, "lines": lines, "conference_id": conference_id}
        finally:
            for line in lines:
                line.stop()


def conference_pk(database_url, conference_id):
    with psycopg.connect(database_url, connect_timeout=10) as connection:
        row = connection.execute(
            "SELECT id FROM conferences_conference WHERE conference_id = %s", [conference_id]
        ).fetchone()
    return row[0]


def scrape(client, token=METRICS_TOKEN):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def polls_of(found, outcome):
    return found.get(("confwatch_polls_total", (("account", "acme"), ("outcome", outcome))), 0)


def wait_for_polls(client, *, timeout=60):
    """The poller, sent rounds by beat, polls the tracked conference."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = scrape(client)
        if polls_of(found, "ok") >= 2:
            return found
        time.sleep(0.5)
    raise AssertionError("the poller did not poll (is beat sending rounds?)")


def test_the_procfile_runs_in_production_behind_a_tls_proxy(production):
    client = BehindTlsProxy(production["port"]).sign_in("chief")
    pk = conference_pk(production["env"]["DATABASE_URL"], production["conference_id"])
    found = wait_for_polls(client)

    pages = [
        "/",
        "/?state=created&sort=label",
        "/conferences/track/",
        f"/conferences/{pk}/",
        f"/conferences/{pk}/?range=7d",
        f"/conferences/{pk}/history.csv",
        f"/conferences/{pk}/history.json",
        "/alerts/",
        "/calls/",
        "/preferences/",
        "/accounts/password_change/",
        "/api/conferences/",
        f"/api/conferences/{production['conference_id']}/history/",
        "/admin/",
        "/admin/conferences/conference/",
        f"/admin/conferences/conference/{pk}/change/",
        "/admin/conferences/account/",
        "/admin/conferences/subscription/",
    ]
    answers = {page: client.get(page) for page in pages}

    assert {page: r.status_code for page, r in answers.items() if r.status_code != 200} == {}
    overview = answers["/"]
    assert "Weekly sync" in overview.text
    assert overview.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Traceback" not in "".join(r.text for r in answers.values())
    # Static files: whitenoise serves what the release step collected.
    stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', overview.text)
    assert stylesheets
    static = client.get(stylesheets[0])
    assert static.status_code == 200
    assert static.headers["Content-Type"].startswith("text/css")
    assert (
        static.content == (ROOT / "static" / stylesheets[0].removeprefix("/static/")).read_bytes()
    )
    # The product's own error pages, DEBUG off.
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404
    assert "Nothing here" in missing.text and "Go to the conferences overview" in missing.text
    refused = BehindTlsProxy(production["port"]).sign_in("reader").get("/conferences/track/")
    assert refused.status_code == 403
    assert "You are not allowed to see this" in refused.text
    # Metrics: the worker's polls and the build, through gunicorn.
    assert polls_of(found, "ok") >= 2
    assert found[("confwatch_build_info", (("version", VERSION),))] == 1
    assert found[("confwatch_conferences_by_state", (("state", "created"),))] == 1
    assert client.get("/metrics").status_code == 401

    # Plain HTTP (not through the proxy) goes to HTTPS; /health/ answers over it; an
    # unknown host is refused.
    base = client.base
    plain = requests.get(
        base + "/", headers={"Host": HOST}, allow_redirects=False, timeout=HTTP_TIMEOUT
    )
    health = requests.get(base + "/health/", headers={"Host": HOST}, timeout=HTTP_TIMEOUT)
    other_host = requests.get(
        base + "/health/", headers={"Host": "evil.example"}, timeout=HTTP_TIMEOUT
    )
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://{HOST}/"
    assert health.status_code == 200
    assert health.json()["database"] == "ok"
    assert other_host.status_code == 400
    # Nothing went wrong on the way, in any process's log.
    for line in production["lines"]:
        assert line.process.poll() is None, line.output()
        assert "Traceback" not in line.output(), line.output()
        assert " ERROR " not in line.output() and "ERROR/" not in line.output(), line.output()
