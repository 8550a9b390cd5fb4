import re

import pytest
from django.urls import reverse
from django.utils import timezone

from conferences.models import Conference, HistoryEntry
from conferences.registry import roles
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db


@pytest.fixture
def observed(db):
    """A conference with one observation, no simulator needed for the pages."""
    account = make_account(name="acme")
    conference = make_conference(
        account,
        "conf-observed",
        label="Sales stand-up",
        tags=["acme"],
        state="active",
        active_members=3,
        hold=False,
        mute=True,
        poll_status="ok",
        last_polled_at=timezone.now(),
        last_changed_at=timezone.now(),
    )
    entry = HistoryEntry.objects.create(
        conference=conference,
        state="active",
        active_members=3,
        hold=False,
        mute=True,
        first_seen_at=timezone.now(),
        last_seen_at=timezone.now(),
    )
    conference.latest_history = entry
    conference.save()
    return conference


@pytest.fixture
def tracker(signed_in, user):
    """The signed-in user as a support admin: tracking needs the add_conference permission."""
    user.groups.add(roles.ensure_groups()[roles.ADMIN])
    return signed_in


@pytest.mark.parametrize(
    "url",
    ["/", "/conferences/track/", "/conferences/1/"],
)
def test_anonymous_user_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_api_user_gets_a_401(client):
    response = client.get("/api/conferences/")
    assert response.status_code == 401
    assert response.json() == {"error": "Sign in first, or send an API token."}


def test_a_user_can_sign_in_and_see_the_list(client, user, observed):
    response = client.post(
        reverse("login"), {"username": "staff", "password": "correct horse battery"}
    )
    assert response.status_code == 302
    page = client.get("/")
    text = page.content.decode()
    assert "Sales stand-up" in text
    assert "conf-observed" in text
    assert reverse("conferences:detail", args=[observed.pk]) in text
    assert 'hx-trigger="every' in text


def test_the_list_poll_answers_204_when_nothing_changed(signed_in, observed):
    first = signed_in.get("/", headers={"HX-Request": "true"})
    assert first.status_code == 200
    assert "<html" not in first.content.decode() and "<h1" not in first.content.decode()
    version = re.search(r"v=([0-9a-f]+)", first.content.decode()).group(1)

    same = signed_in.get(f"/?v={version}", headers={"HX-Request": "true"})
    assert same.status_code == 204
    assert "HX-Request" in same["Vary"]

    Conference.objects.filter(pk=observed.pk).update(active_members=4)
    changed = signed_in.get(f"/?v={version}", headers={"HX-Request": "true"})
    assert changed.status_code == 200
    assert ">4<" in changed.content.decode()


def test_the_list_filters_by_search_and_state(signed_in, observed):
    make_conference(observed.account, "conf-other", label="Board call", state="created")

    by_tag = signed_in.get("/?q=acme").content.decode()
    assert "Sales stand-up" in by_tag and "Board call" not in by_tag
    by_state = signed_in.get("/?state=created").content.decode()
    assert "Board call" in by_state and "Sales stand-up" not in by_state
    bad = signed_in.get("/?state=exploded")
    assert bad.status_code == 200
    assert "Select a valid choice" in bad.content.decode()


def test_the_detail_page_shows_live_status_and_history(signed_in, observed):
    response = signed_in.get(reverse("conferences:detail", args=[observed.pk]))
    text = response.content.decode()
    assert response.status_code == 200
    assert "conf-observed" in text
    assert 'id="status-card"' in text
    assert "Nothing observed yet" not in text
    assert 'hx-trigger="every' in text


def test_a_completed_conference_page_stops_polling(signed_in, observed):
    Conference.objects.filter(pk=observed.pk).update(state="completed")
    response = signed_in.get(
        reverse("conferences:detail", args=[observed.pk]), headers={"HX-Request": "true"}
    )
    text = response.content.decode()
    assert 'id="live-status"' in text
    assert "hx-trigger" not in text
    assert "no longer polled" in text


def test_a_missing_conference_page_is_a_404(signed_in, db):
    assert signed_in.get(reverse("conferences:detail", args=[999])).status_code == 404


def test_the_track_form_tracks_new_ids_and_reports_duplicates(tracker, observed):
    response = tracker.post(
        reverse("conferences:track"),
        {
            "account": observed.account.pk,
            "conference_ids": "conf-new1, conf-new2 conf-observed",
            "label": "Escalation",
            "tags": "Acme, urgent",
        },
        follow=True,
    )
    text = response.content.decode()
    assert "Now tracking conf-new1, conf-new2." in text
    assert "Already tracked: conf-observed." in text
    new = Conference.objects.get(conference_id="conf-new1")
    assert new.label == "Escalation"
    assert new.tags == ["acme", "urgent"]
    assert new.poll_status == "pending"


def test_the_track_form_refuses_bad_ids_with_a_clear_error(tracker, observed):
    response = tracker.post(
        reverse("conferences:track"),
        {"account": observed.account.pk, "conference_ids": "conf-a/../b", "tags": ""},
    )
    assert response.status_code == 200
    assert "is not a conference id" in response.content.decode()
    assert not Conference.objects.filter(conference_id__contains="/").exists()


def test_the_api_lists_conferences_with_the_documented_fields(signed_in, observed):
    make_conference(observed.account, "conf-pending")
    data = signed_in.get("/api/conferences/").json()["conferences"]
    by_id = {item["conference_id"]: item for item in data}
    item = by_id["conf-observed"]
    for name in [
        "conference_id",
        "account",
        "label",
        "state",
        "active_members",
        "hold",
        "mute",
        "from",
        "created_time",
        "completed_time",
        "last_polled_at",
        "last_changed_at",
        "poll_status",
    ]:
        assert name in item
    assert item["account"] == "acme"
    assert item["active_members"] == 3
    assert item["mute"] is True
    assert item["from"] is None
    assert "+00:00" in item["last_polled_at"]
    pending = by_id["conf-pending"]
    assert pending["poll_status"] == "pending"
    assert pending["state"] is None and pending["hold"] is None


def test_the_history_api_returns_status_with_history(signed_in, observed):
    data = signed_in.get("/api/conferences/conf-observed/history/").json()
    assert data["conference_id"] == "conf-observed"
    assert len(data["history"]) == 1
    item = data["history"][0]
    assert set(item) == {"state", "active_members", "hold", "mute", "first_seen_at", "last_seen_at"}


def test_the_history_api_says_when_an_id_is_not_tracked(signed_in, db):
    response = signed_in.get("/api/conferences/conf-nope/history/")
    assert response.status_code == 404
    assert response.json() == {"error": "conf-nope is not tracked."}


def test_an_account_with_rejected_credentials_is_shown_on_the_list(signed_in, observed):
    account = observed.account
    account.problem = "credentials_rejected"
    account.problem_message = "Credentials rejected: Invalid API token or secret (HTTP 401)"
    account.save()

    text = signed_in.get("/").content.decode()

    assert "Account acme: credentials rejected" in text
    assert "Invalid API token or secret" in text


def test_paused_conferences_are_listed_only_when_asked_for(signed_in, observed):
    make_conference(observed.account, "conf-resting", label="Old bridge", paused=True)

    assert "Old bridge" not in signed_in.get("/").content.decode()
    assert "Old bridge" in signed_in.get("/?tracking=paused").content.decode()
    everything = signed_in.get("/?tracking=all").content.decode()
    assert "Old bridge" in everything and "Sales stand-up" in everything
