"""Bad input gets a clear error, never a 500; credentials never show in messages."""

import base64

import pytest
from django.core.management import CommandError, call_command

from conferences import catapult
from conferences.models import Account
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
    client = catapult.CatapultClient(
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
