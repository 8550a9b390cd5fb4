import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from conferences.models import Account, Conference
from tests.conftest import make_conference

pytestmark = pytest.mark.django_db


def run(*args):
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_account_reads_credentials_from_the_environment(monkeypatch, db):
    monkeypatch.setenv("CATAPULT_API_TOKEN", "t-123")
    monkeypatch.setenv("CATAPULT_API_SECRET", "s-456")

    out = run("add_account", "acme", "--user-id", "u-acme", "--base-url", "http://127.0.0.1:8765")

    account = Account.objects.get(name="acme")
    assert account.credentials() == ("t-123", "s-456")
    assert "s-456" not in account.api_secret_encrypted
    assert "t-123" not in account.api_token_encrypted
    assert "s-456" not in out and "t-123" not in out
    assert account.request_budget == 1.0


def test_add_account_without_a_secret_is_refused_clearly(monkeypatch, db):
    monkeypatch.delenv("CATAPULT_API_SECRET", raising=False)
    with pytest.raises(CommandError, match="token and secret are required"):
        run("add_account", "acme", "--user-id", "u-acme", "--token", "t")
    assert not Account.objects.exists()


def test_add_account_refuses_a_bad_base_url(db):
    with pytest.raises(CommandError, match="valid URL"):
        run(
            "add_account",
            "acme",
            "--user-id",
            "u",
            "--token",
            "t",
            "--secret",
            "s",
            "--base-url",
            "not a url",
        )


def test_track_adds_ids_and_a_duplicate_is_a_no_op_with_a_message(account):
    out = run("track", "--account", "acme", "conf-1", "conf-2", "--label", "Bridge", "--tag", "vip")
    assert "Tracking conf-1 on acme." in out

    again = run("track", "--account", "acme", "conf-1")

    assert "conf-1 is already tracked on acme; unchanged." in again
    assert Conference.objects.filter(conference_id="conf-1").count() == 1
    assert Conference.objects.get(conference_id="conf-1").tags == ["vip"]


def test_track_on_an_unknown_account_says_so(db):
    with pytest.raises(CommandError, match="No account named 'nope'"):
        run("track", "--account", "nope", "conf-1")


def test_poll_once_polls_everything_tracked_and_prints_one_line(account, sim_client):
    conference_id = sim_client.create_conference(from_number="+15555550100")
    make_conference(account, conference_id)
    make_conference(account, "conf-unknown")
    make_conference(account, "conf-paused", paused=True)

    out = run("poll_once")

    assert out.count("\n") == 1
    assert out.startswith("polled 2 conferences (1 not_found, 1 ok)")


def test_conference_status_prints_one_json_object(account, sim_client):
    conference_id = sim_client.create_conference(from_number="+15555550100")
    make_conference(account, conference_id, label="Board call")
    run("poll_once")

    data = json.loads(run("conference_status", conference_id, "--json"))

    assert data["conference_id"] == conference_id
    assert data["state"] == "created"
    assert data["from"] == "+15555550100"
    assert data["poll_status"] == "ok"
    assert len(data["history"]) == 1
    assert data["history"][0]["state"] == "created"


def test_conference_status_of_an_untracked_id_is_a_clear_error(db):
    with pytest.raises(CommandError, match="conf-x is not tracked"):
        run("conference_status", "conf-x")
