"""LOG_FORMAT=json: every line a process writes is one JSON object with time, level,
logger, message, request id, account and conference where known, and no secret; each
response echoes its request id. Text stays the default."""

import json
import subprocess
import sys
from datetime import datetime

import pytest
import requests

from conferences.registry import roles, tokens
from tests.conftest import make_account, make_conference, process_env, wait_for
from tests.test_redact import DevelopmentServer, answers

KEYS = {"time", "level", "logger", "message", "request_id", "account", "conference"}


def json_lines(text):
    """Every line parsed as a JSON object (a line that is not one fails the test)."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    for line in lines:
        assert KEYS <= set(line), line
        assert datetime.fromisoformat(line["time"]).tzinfo is not None
    return lines


def manage(*args, **env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=process_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_a_poll_logs_json_lines_naming_the_account_and_never_its_secret(
    transactional_db, simulator
):
    account = make_account(simulator, token="wrong-token-8080", secret="wrong-secret-9090")
    make_conference(account, "conf-logged")

    done = manage("poll_once", LOG_FORMAT="json", LOG_LEVEL="INFO")

    lines = json_lines(done.stderr)
    paused = [line for line in lines if "paused until" in line["message"]]
    assert paused and paused[0]["level"] == "WARNING"
    assert paused[0]["logger"] == "conferences.polling.dispatch"
    assert paused[0]["account"] == "acme" and paused[0]["conference"] is None
    assert "wrong-secret-9090" not in done.stderr and "wrong-token-8080" not in done.stderr


def test_each_request_logs_its_id_and_what_it_read_and_echoes_the_id(transactional_db, tmp_path):
    conference = make_conference(make_account(name="acme"), "conf-logged")
    user = roles.create_user(username="ann", role="viewer", password="x" * 20)
    _, token_text = tokens.create_token(name="logged", user=user)
    share_key = "damaged-key-777"
    server = DevelopmentServer(tmp_path / "runserver.log", LOG_FORMAT="json")
    try:
        wait_for(lambda: answers(server), timeout=30, what="the development server")
        read = server.get(
            f"/api/conferences/{conference.conference_id}/history/",
            headers={"Authorization": f"Bearer {token_text}", "X-Request-ID": "trace-42"},
        )
        missing = server.get(f"/share/{share_key}/", headers={"X-Request-ID": "trace-43"})
        bad_id = server.get("/health/", headers={"X-Request-ID": "no spaces, please" * 5})
        wait_for(lambda: "trace-43" in server.log_text(), timeout=10, what="the 404's log lines")
    except requests.RequestException:
        server.stop()
        raise
    log = server.stop()

    lines = json_lines(log)
    assert (read.status_code, read.headers["X-Request-ID"]) == (200, "trace-42")
    assert (missing.status_code, missing.headers["X-Request-ID"]) == (404, "trace-43")
    assert len(bad_id.headers["X-Request-ID"]) == 32  # a new one, not what was sent
    read_line = next(line for line in lines if line["request_id"] == "trace-42")
    assert read_line["logger"] == "django.server"
    assert (read_line["account"], read_line["conference"]) == ("acme", "conf-logged")
    missing_lines = [line for line in lines if line["request_id"] == "trace-43"]
    # A refused request is one line (conferences/ops/request_lines.py), not the server's too.
    assert [line["logger"] for line in missing_lines] == ["django.request"]
    assert (
        missing_lines[0]["level"] == "WARNING" and " 404 Not Found " in missing_lines[0]["message"]
    )
    assert all(line["account"] is None for line in missing_lines)
    assert share_key not in log and token_text not in log


@pytest.mark.django_db
def test_text_stays_the_default_format():
    done = manage("shell", "-c", "import logging; logging.getLogger('probe').warning('hello')")

    assert done.stderr.strip().endswith("WARNING probe: hello")
    with pytest.raises(json.JSONDecodeError):
        json.loads(done.stderr)


@pytest.mark.django_db
def test_an_unknown_log_format_is_refused():
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=process_env(LOG_FORMAT="yaml"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert "LOG_FORMAT='yaml' is not known; use text or json." in done.stderr
