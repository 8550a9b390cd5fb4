"""Bad input gets a clear error, never a 500; credentials never show in messages."""

import base64
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone

from conferences.models import Account
from tests.catapult_driver import CatapultDriver
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/api/conferences/a%00b/history/",
        "/api/conferences/?account=%00",
        "/?q=%00",
        "/admin/conferences/conference/?state=%00",
        "/conferences/track/?x%00=1",
    ],
)
def test_a_nul_byte_anywhere_in_the_address_is_a_400(admin_client, url):
    make_conference(make_account(), "conf-nul")

    response = admin_client.get(url)

    assert response.status_code == 400


def test_a_server_echoing_the_authorization_header_leaks_no_credentials(simulator):
    client = CatapultDriver(
        base_url=simulator.url, user_id="u-demo", api_token="demo-token", api_secret="wrong"
    )
    basic = base64.b64encode(b"demo-token:wrong").decode()
    echoed = f"Authorization: Basic {basic} for demo-token:wrong"

    scrubbed = client._scrub(echoed)

    assert basic not in scrubbed and "wrong" not in scrubbed and "demo-token" not in scrubbed
    assert client._scrub("Authorization: basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==") == (
        "Authorization: Basic ***"
    )
    client.close()


@pytest.mark.parametrize(
    "base_url",
    ["http://169.254.169.254/latest/meta-data", "http://localhost:6379", "https://evil.example"],
)
def test_an_account_cannot_point_its_credentials_at_a_host_outside_the_allow_list(
    settings, base_url
):
    settings.CONFWATCH_ALLOWED_API_HOSTS = ["api.catapult.inetwork.com"]

    with pytest.raises(CommandError, match="not an allowed API host"):
        call_command(
            "add_account",
            "acme",
            "--user-id",
            "u-1",
            "--base-url",
            base_url,
            "--token",
            "t",
            "--secret",
            "s",
        )

    assert not Account.objects.exists()


def test_the_admin_refuses_a_base_url_outside_the_allow_list(settings, admin_client):
    account = make_account()
    settings.CONFWATCH_ALLOWED_API_HOSTS = ["api.catapult.inetwork.com"]

    response = admin_client.post(
        f"/admin/conferences/account/{account.pk}/change/",
        {
            "name": account.name,
            "user_id": account.user_id,
            "base_url": "http://169.254.169.254/",
            "request_budget": "1",
            "api_token": "t",
            "api_secret": "s",
        },
    )

    assert response.status_code == 200
    assert "not an allowed API host" in response.content.decode()
    assert Account.objects.get().base_url == account.base_url


def test_the_real_api_is_allowed_by_default(settings):
    settings.CONFWATCH_ALLOWED_API_HOSTS = ["api.catapult.inetwork.com"]

    call_command("add_account", "acme", "--user-id", "u-1", "--token", "t", "--secret", "s")

    assert Account.objects.get().base_url == "https://api.catapult.inetwork.com"


# ---------------------------------------------------------------- signing in


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        "ann", password="correct horse battery", is_staff=True
    )


def test_sign_ins_leave_no_rows_behind_once_one_succeeds(client, staff):
    from axes.models import AccessAttempt, AccessLog

    client.post("/accounts/login/", {"username": "ann", "password": "wrong"})
    assert AccessAttempt.objects.count() == 1
    client.post("/accounts/login/", {"username": "ann", "password": "correct horse battery"})

    assert AccessAttempt.objects.count() == 0 and AccessLog.objects.count() == 0


@pytest.mark.parametrize("login_url", ["/accounts/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_user_name_out_with_a_clear_message(
    client, settings, staff, login_url
):
    answers = [
        client.post(login_url, {"username": "ann", "password": f"guess-{n}"}).status_code
        for n in range(settings.AXES_FAILURE_LIMIT)
    ]
    locked = client.post(login_url, {"username": "ann", "password": "correct horse battery"})

    assert answers[: settings.AXES_FAILURE_LIMIT - 1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302


def sign_in(login_url, password, address, username="ann"):
    """(the answer, whether the client is signed in afterwards)."""
    client = Client(REMOTE_ADDR=address)
    response = client.post(login_url, {"username": username, "password": password})
    return response, "_auth_user_id" in client.session


@pytest.mark.parametrize("login_url", ["/accounts/login/", "/admin/login/"])
def test_a_lockout_from_one_address_does_not_stop_the_same_user_from_another(
    settings, staff, login_url
):
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(login_url, f"guess-{n}", "10.0.0.66")

    from_the_attacker, attacker_in = sign_in(login_url, "correct horse battery", "10.0.0.66")
    from_elsewhere, elsewhere_in = sign_in(login_url, "correct horse battery", "10.9.9.9")

    assert from_the_attacker.status_code == 429 and not attacker_in
    assert "Too many failed sign-ins" in from_the_attacker.content.decode()
    assert from_elsewhere.status_code == 302 and elsewhere_in


def test_wrong_passwords_for_other_names_do_not_lock_out_a_user_at_that_address(settings, staff):
    for n in range(settings.AXES_FAILURE_LIMIT * 2):
        sign_in("/accounts/login/", "guess", "10.0.0.66", username=f"user{n % 2}")

    shared_address, signed_in = sign_in("/accounts/login/", "correct horse battery", "10.0.0.66")

    assert shared_address.status_code == 302 and signed_in


def test_an_admin_lifts_a_lockout_with_axes_reset_username(settings, staff):
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in("/accounts/login/", f"guess-{n}", "10.0.0.66")
    assert sign_in("/accounts/login/", "correct horse battery", "10.0.0.66")[0].status_code == 429

    call_command("axes_reset_username", "ann", stdout=StringIO())

    assert sign_in("/accounts/login/", "correct horse battery", "10.0.0.66")[1]


def test_a_superuser_lifts_a_lockout_in_the_admins_access_attempts(settings, staff, admin_client):
    from axes.models import AccessAttempt

    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in("/accounts/login/", f"guess-{n}", "10.0.0.66")
    [attempt] = AccessAttempt.objects.filter(username="ann")
    listed = admin_client.get("/admin/axes/accessattempt/").content.decode()

    admin_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})

    assert "ann" in listed and "10.0.0.66" in listed
    assert sign_in("/accounts/login/", "correct horse battery", "10.0.0.66")[1]


def test_a_right_password_after_a_few_wrong_ones_signs_in(client, settings, staff):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/accounts/login/", {"username": "ann", "password": "guess"})

    response = client.post(
        "/accounts/login/", {"username": "ann", "password": "correct horse battery"}
    )

    assert response.status_code == 302 and response["Location"] == "/"


@pytest.mark.parametrize("password", ["confwatch", "password1234", "123456789012", "ann-ann"])
def test_the_password_validators_refuse_weak_passwords(password):
    with pytest.raises(ValidationError):
        validate_password(password, User(username="ann"))


def test_createuser_refuses_confwatch_as_a_password(monkeypatch):
    monkeypatch.setenv("CONFWATCH_USER_PASSWORD", "confwatch")

    with pytest.raises(CommandError, match="too short"):
        call_command("createuser", "vera", "--role", "viewer", stdout=StringIO())

    assert not User.objects.filter(username="vera").exists()


# ---------------------------------------------------------------- sessions and pages


def test_an_htmx_update_without_a_session_is_sent_to_sign_in_by_hx_redirect(client):
    response = client.get(
        "/?v=abc", headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/?q=x"}
    )

    assert response.status_code == 204
    assert response["HX-Redirect"] == "/accounts/login/?next=/%3Fq%3Dx"


def test_a_page_view_extends_the_session_but_a_live_update_does_not(client, staff):
    client.force_login(staff)
    soon = timezone.now() + timedelta(seconds=100)
    Session.objects.update(expire_date=soon)

    client.get("/", headers={"HX-Request": "true"})
    after_update = Session.objects.get().expire_date
    client.get("/")
    after_page = Session.objects.get().expire_date

    assert after_update == soon
    assert after_page > timezone.now() + timedelta(seconds=3000)


def test_an_idle_session_ends(client, staff):
    client.force_login(staff)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))

    response = client.get("/")

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_every_page_carries_a_content_security_policy_without_inline_code(admin_client):
    response = admin_client.get("/")

    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "<style" not in response.content.decode()
    assert "<script>" not in response.content.decode()


# ---------------------------------------------------------------- the database down


def refuse_every_query(execute, sql, params, many, context):
    raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


@pytest.mark.parametrize(
    "url", ["/api/conferences/", "/api/conferences/conf-a/history/", "/api/conferences/?q=x"]
)
def test_the_json_api_answers_json_503_when_the_database_is_down(client, staff, url):
    client.force_login(staff)
    client.raise_request_exception = False

    with connection.execute_wrapper(refuse_every_query):
        response = client.get(url)

    assert response.status_code == 503
    assert response.json() == {"error": "The database is unavailable; try again shortly."}


def test_a_page_answers_503_when_the_database_is_down(client, staff):
    client.force_login(staff)
    client.raise_request_exception = False

    with connection.execute_wrapper(refuse_every_query):
        response = client.get("/")

    assert response.status_code == 503
    assert "database is unavailable" in response.content.decode()


def test_the_demo_login_it_prints_passes_the_validators_and_signs_in(client, simulator):
    out = StringIO()

    call_command(
        "demo_setup", "--simulator-url", simulator.url, "--wait", "5", "--file", "", stdout=out
    )

    password = re.search(r"sign in as demo / (\S+)", out.getvalue()).group(1)
    validate_password(password, User.objects.get(username="demo"))
    response = client.post("/accounts/login/", {"username": "demo", "password": password})
    assert response.status_code == 302 and response["Location"] == "/"
