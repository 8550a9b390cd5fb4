"""Read-only API tokens: made by `manage.py api_token` and the admin, shown once, stored as
a hash; they read the JSON API as their user and never write; a revoked, expired,
unknown or malformed token is 401 with a JSON error."""

import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from conferences.models import ApiToken, Conference, HistoryEntry
from conferences.registry import roles, tokens
from tests.conftest import make_account, make_conference, reload

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def run(*args):
    out = io.StringIO()
    call_command("api_token", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def viewer():
    return roles.create_user(
        username="ann", role="viewer", password=PASSWORD, email="ann@example.com"
    )


@pytest.fixture
def conference():
    account = make_account(name="acme")
    conference = make_conference(account, "conf-alpha", label="Board call", state="active")
    now = timezone.now()
    HistoryEntry.objects.create(
        conference=conference, state="active", first_seen_at=now, last_seen_at=now
    )
    return conference


def bearer(token_text):
    return {"Authorization": f"Bearer {token_text}"}


def create(name="script", user="ann", *more):
    """The token text: the last word of the command's output."""
    return run("create", name, "--user", user, *more).split()[-1]


def test_create_prints_the_token_once_as_its_last_word_and_stores_only_its_hash(viewer):
    output = run("create", "nightly report", "--user", "ann", "--expires", "90d")
    token_text = output.split()[-1]

    assert re.fullmatch(r"cw_[A-Za-z0-9_-]{43}", token_text)
    token = ApiToken.objects.get(name="nightly report")
    assert token.user == viewer
    assert token.token_hash == tokens.hash_of(token_text)
    assert token_text.startswith(token.prefix) and len(token.prefix) < 16
    assert timedelta(days=89, hours=23) < token.expires_at - timezone.now() <= timedelta(days=90)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM conferences_apitoken")
        stored = " ".join(map(str, cursor.fetchall()))
    assert token_text not in stored
    assert token_text not in run("list")


def test_a_token_reads_the_json_api_as_its_user(client, viewer, conference):
    token_text = create()

    listed = client.get("/api/conferences/", headers=bearer(token_text))
    history = client.get("/api/conferences/conf-alpha/history/", headers=bearer(token_text))
    call = client.get("/api/calls/c-1/", headers=bearer(token_text))

    assert listed.status_code == 200
    assert [c["conference_id"] for c in listed.json()["conferences"]] == ["conf-alpha"]
    assert history.json()["history"][0]["state"] == "active"
    assert call.json() == {"call_id": "c-1", "conferences": []}
    assert "Authorization" in listed["Vary"]
    assert "sessionid" not in listed.cookies  # a token signs nobody in


def test_a_token_reads_the_history_export_and_a_signed_out_browser_still_goes_to_sign_in(
    client, viewer, conference
):
    token_text = create()
    url = f"/conferences/{conference.pk}/history.json"

    exported = client.get(url, headers=bearer(token_text))
    signed_out = client.get(url)

    assert exported.status_code == 200
    assert b'"conference_id": "conf-alpha"' in b"".join(exported.streaming_content)
    assert signed_out.status_code == 302
    assert signed_out["Location"].startswith("/accounts/login/?next=")


def test_a_revoked_token_gets_401_with_a_json_error(client, viewer, conference):
    token_text = create()
    assert client.get("/api/conferences/", headers=bearer(token_text)).status_code == 200

    assert run("revoke", "script") == "Revoked token 'script' (" + token_text[:11] + "…).\n"
    response = client.get("/api/conferences/", headers=bearer(token_text))

    assert response.status_code == 401
    assert response.json() == {"error": "This API token was revoked."}
    assert response["WWW-Authenticate"] == 'Bearer realm="confwatch", error="invalid_token"'
    assert re.search(r"script\tann\tcw_\S+…\t.*\t\d{4}-\d\d-\d\d [\d:]+ \S+$", run("list"), re.M)


def test_an_expired_token_gets_401(client, viewer, conference):
    token, token_text = tokens.create_token(name="old", user=viewer, expires_in=60)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.get("/api/conferences/", headers=bearer(token_text))

    assert response.status_code == 401
    assert response.json() == {"error": "This API token has expired."}


def test_an_inactive_users_token_gets_401(client, viewer, conference):
    token_text = create()
    User.objects.filter(pk=viewer.pk).update(is_active=False)

    response = client.get("/api/conferences/", headers=bearer(token_text))

    assert response.status_code == 401
    assert response.json() == {"error": "This API token's user is inactive."}


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Bearer cw_short", "Bearer " + "x" * 5000, "bearer cw_" + "é" * 43],
)
def test_a_malformed_token_gets_401_without_reaching_the_database(
    client, viewer, conference, header, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = client.get("/api/conferences/", headers={"Authorization": header})

    assert response.status_code == 401
    assert response.json() == {"error": "That is not an API token."}


def test_an_unknown_token_gets_401_after_one_query(
    client, viewer, conference, django_assert_num_queries
):
    real = create()
    unknown = real[:11] + ("A" if real[11] != "A" else "B") + real[12:]

    with django_assert_num_queries(1):
        response = client.get("/api/conferences/", headers=bearer(unknown))

    assert response.status_code == 401
    assert response.json() == {"error": "Unknown API token."}


def test_authenticating_a_token_takes_one_query_and_notes_its_use_once_a_minute(
    viewer, django_assert_num_queries
):
    token, token_text = tokens.create_token(name="script", user=viewer)
    now = timezone.now()

    with django_assert_num_queries(2):  # find it, note its first use
        assert tokens.authenticate(token_text, now=now) == viewer
    with django_assert_num_queries(1):
        tokens.authenticate(token_text, now=now + timedelta(seconds=59))
    assert reload(token).last_used_at == now
    tokens.authenticate(token_text, now=now + timedelta(seconds=61))
    assert reload(token).last_used_at == now + timedelta(seconds=61)
    assert "just now" in run("list")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_token_never_writes(client, viewer, conference, method):
    admin = roles.create_user(username="boss", role="admin", password=PASSWORD)
    token, token_text = tokens.create_token(name="boss script", user=admin)

    for url in ["/api/conferences/", f"/conferences/{conference.pk}/untrack/"]:
        response = client.generic(method, url, headers=bearer(token_text))
        assert response.status_code in (403, 302), url  # a page: to sign in, untouched

    response = client.generic(method, "/api/conferences/", headers=bearer(token_text))
    assert response.status_code == 403
    assert response.json() == {"error": "API tokens only read: use GET or HEAD."}
    assert Conference.objects.filter(pk=conference.pk).exists()
    assert reload(token).last_used_at is None


def test_a_bad_token_never_falls_back_to_the_session(client, viewer, conference):
    client.force_login(viewer)

    signed_in = client.get("/api/conferences/")
    bad_token = client.get("/api/conferences/", headers=bearer("cw_" + "A" * 43))
    other_scheme = client.get("/api/conferences/", headers={"Authorization": "Basic YTpi"})

    assert signed_in.status_code == 200
    assert bad_token.status_code == 401
    assert other_scheme.status_code == 200  # not a token: the session reads


def test_without_a_session_or_a_token_the_api_says_how_to_authenticate(client, conference):
    response = client.get("/api/conferences/")

    assert response.status_code == 401
    assert response.json() == {"error": "Sign in first, or send an API token."}
    assert response["WWW-Authenticate"] == 'Bearer realm="confwatch"'


@pytest.mark.parametrize(
    "args, message",
    [
        (["create", "x", "--user", "nobody"], "There is no user named 'nobody'."),
        (["create", "script", "--user", "ann"], "A token named 'script' exists already."),
        (["create", "y", "--user", "ann", "--expires", "soon"], "'soon' is not a valid expiry"),
        (["create", "y", "--user", "ann", "--expires", "400d"], "at most 366d"),
        (["create", " ", "--user", "ann"], "Give the token a name of 1 to 100 characters."),
        (["revoke", "nothing"], "There is no token named 'nothing'."),
    ],
)
def test_bad_input_is_a_clear_error(viewer, args, message):
    create()

    with pytest.raises(CommandError, match=re.escape(message)):
        run(*args)
    assert ApiToken.objects.count() == 1


def test_the_admin_shows_a_new_token_once_and_never_its_hash(client, viewer):
    client.force_login(User.objects.create_superuser("root", password=PASSWORD))

    response = client.post(
        "/admin/conferences/apitoken/add/", {"name": "grafana", "user": viewer.pk, "expires": "30d"}
    )

    token = ApiToken.objects.get(name="grafana")
    shown = re.search(r'<code id="api-token">(cw_[^<]+)</code>', response.content.decode())
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert tokens.authenticate(shown.group(1)) == viewer
    for url in [
        "/admin/conferences/apitoken/",
        f"/admin/conferences/apitoken/{token.pk}/change/",
    ]:
        page = client.get(url).content.decode()
        assert token.prefix in page
        assert token.token_hash not in page and shown.group(1) not in page


def test_the_admin_refuses_a_bad_expiry_and_revokes_with_its_action(client, viewer):
    client.force_login(User.objects.create_superuser("root", password=PASSWORD))
    token, token_text = tokens.create_token(name="grafana", user=viewer)

    refused = client.post(
        "/admin/conferences/apitoken/add/", {"name": "other", "user": viewer.pk, "expires": "2y"}
    )
    client.post(
        "/admin/conferences/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )

    assert "is not a valid expiry" in refused.content.decode()
    assert reload(token).revoked_at is not None
    with pytest.raises(tokens.Refused):
        tokens.authenticate(token_text)


def test_support_roles_cannot_manage_tokens_in_the_admin(client, viewer):
    roles.create_user(username="boss", role="admin", password=PASSWORD)
    client.force_login(User.objects.get(username="boss"))

    assert client.get("/admin/conferences/apitoken/").status_code == 403
