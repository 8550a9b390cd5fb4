"""Bad input gets a clear error, never a 500; credentials never show in messages."""

import base64

import pytest

from conferences import catapult
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
