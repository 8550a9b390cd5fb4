"""Share links: a read-only page of one conference, for anyone with the link, until it
expires or is revoked; anything else is the same 404."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from conferences.alerting import sharing
from conferences.models import Delivery, ShareLink
from conferences.recording.observations import Observation, record
from conferences.registry import roles
from conferences.web.selectors import charts
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(db):
    """A support admin (conftest's plain user, overridden): sharing is an admin's action;
    tests/test_roles.py shows a viewer's 403."""
    return roles.create_user(username="staff", role="admin", password="correct horse battery")


@pytest.fixture
def conference(db):
    account = make_account(name="secret-account")
    conference = make_conference(account, "conf-shared", label="Board call", tags=["vip"])
    now = timezone.now()
    record([Observation(conference.pk, now, seen={"state": "created", "active_members": 0})])
    record([Observation(conference.pk, now + timedelta(seconds=5), seen={"active_members": 3})])
    Delivery.objects.create(
        email="private@example.com", conference=conference, subject="[confwatch] Board call: hi"
    )
    return conference


def share_path(url):
    return re.sub(r"^https?://[^/]+", "", url)


def test_a_support_admin_creates_a_link_that_shows_the_conference_anonymously(
    conference, signed_in, client, user
):
    response = signed_in.post(f"/conferences/{conference.pk}/share/", {"expires": ""})
    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    link = ShareLink.objects.get()
    assert link.created_by == user
    assert abs(link.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    # The message's link names this one (its signature carries the second it was made,
    # so a link signed again here may differ).
    url = re.search(r"https?://\S+/share/\S+/", message).group(0)
    assert sharing.find_link(url.rstrip("/").rsplit("/", 1)[1]) == link
    signed_in.logout()

    page = client.get(share_path(url))

    assert page.status_code == 200
    html = page.content.decode()
    assert "Board call" in html and "conf-shared" in html
    assert 'class="members">3<' in html
    assert "<svg" in html and "Active members of Board call, since first observed" in html
    assert 'id="members"' in html
    assert "[confwatch] Board call: hi" in html
    assert "secret-account" not in html and "private@example.com" not in html
    assert "vip" not in html
    assert page["X-Robots-Tag"] == "noindex, nofollow"
    assert "no-cache" in page["Cache-Control"] or "max-age=0" in page["Cache-Control"]


def test_the_shared_page_offers_the_conference_pages_chart_ranges(conference, client):
    link = sharing.create_link(conference=conference)
    path = share_path(sharing.share_url(link))

    week = client.get(path + "?range=7d").content.decode()
    refused = client.get(path + "?range=forever")

    for key, label in charts.range_choices():
        assert f'<a href="?range={key}#chart"' in week and f">{label}</a>" in week
    assert 'aria-current="true">last 7 days</a>' in week
    assert "Active members of Board call, last 7 days" in week
    assert refused.status_code == 400 and refused["X-Robots-Tag"] == "noindex, nofollow"
    text = refused.content.decode()
    assert "The chart has no range &#x27;forever&#x27;" in text
    assert f'<a href="{path}">Open the shared page</a>' in text


def test_an_expired_revoked_changed_or_unknown_link_is_the_same_404(conference, client):
    good = sharing.create_link(conference=conference)
    expired = sharing.create_link(conference=conference, expires_in=60)
    expired.expires_at = timezone.now() - timedelta(seconds=1)
    expired.save()
    revoked = sharing.revoke(sharing.create_link(conference=conference))
    token = sharing.token_for(good)
    gone_conference = make_conference(conference.account, "conf-deleted")
    gone = sharing.create_link(conference=gone_conference)
    gone_token = sharing.token_for(gone)
    gone_conference.delete()
    other_key = ShareLink(pk=good.pk, key="guessed")

    bad_tokens = [
        sharing.token_for(expired),
        sharing.token_for(revoked),
        token[:-3] + ("xyz" if not token.endswith("xyz") else "abc"),
        token.replace(":", "-", 1),
        sharing.token_for(other_key),
        gone_token,
        "nothing",
    ]
    answers = [client.get(f"/share/{bad}/") for bad in bad_tokens]

    assert client.get(f"/share/{token}/").status_code == 200
    assert {answer.status_code for answer in answers} == {404}
    assert len({answer.content for answer in answers}) == 1
    assert b"conf-" not in answers[0].content


def test_a_support_admin_revokes_a_link(conference, signed_in, client):
    link = sharing.create_link(conference=conference)
    path = share_path(sharing.share_url(link))
    assert client.get(path).status_code == 200

    response = signed_in.post(f"/share-links/{link.pk}/revoke/")

    assert response.status_code == 302
    assert client.get(path).status_code == 404


def test_a_bad_expiry_is_a_400_and_creates_no_link(conference, signed_in):
    response = signed_in.post(f"/conferences/{conference.pk}/share/", {"expires": "forever"})

    assert response.status_code == 400
    assert "is not a valid expiry" in response.content.decode()
    assert not ShareLink.objects.exists()


def test_a_refused_share_link_shows_the_conference_page_again_with_what_was_typed(
    conference, signed_in
):
    response = signed_in.post(f"/conferences/{conference.pk}/share/", {"expires": "40d"})

    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="status-card"' in page and 'id="acknowledgements"' in page
    panel = page[page.index('id="share-links"') :]
    assert "No link was created: correct the form and send it again." in panel
    assert 'value="40d"' in panel and 'aria-invalid="true"' in panel
    assert 'class="errorlist"' in panel
    assert not ShareLink.objects.exists()


def test_anonymous_users_cannot_create_or_revoke_links(conference, client):
    link = sharing.create_link(conference=conference)

    created = client.post(f"/conferences/{conference.pk}/share/", {})
    revoked = client.post(f"/share-links/{link.pk}/revoke/")

    assert created.status_code == 302 and "/accounts/login/" in created["Location"]
    assert revoked.status_code == 302 and "/accounts/login/" in revoked["Location"]
    assert ShareLink.objects.count() == 1 and ShareLink.objects.get().revoked_at is None


def run(*args):
    out = StringIO()
    call_command("share_link", *args, stdout=out)
    return out.getvalue().strip()


def test_the_command_prints_an_absolute_link_and_revokes_it(conference, settings, client):
    settings.CONFWATCH_BASE_URL = "https://confwatch.example.com"

    url = run("conf-shared", "--expires", "2h")

    assert url.startswith("https://confwatch.example.com/share/")
    link = ShareLink.objects.get()
    assert abs(link.expires_at - (timezone.now() + timedelta(hours=2))) < timedelta(minutes=1)
    assert client.get(share_path(url)).status_code == 200

    assert "Revoked the share link of conf-shared" in run("--revoke", url)
    assert client.get(share_path(url)).status_code == 404


@pytest.mark.parametrize(
    "args, message",
    [
        (["conf-nope"], "conf-nope is not tracked."),
        (["conf-shared", "--expires", "soon"], "is not a valid expiry"),
        (["conf-shared", "--expires", "99d"], "too long"),
        (["--revoke", "https://confwatch.example.com/share/forged/"], "not a share link"),
        ([], "Give the conference id"),
    ],
)
def test_the_command_refuses_bad_input_clearly(conference, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
