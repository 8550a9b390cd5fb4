"""A superuser makes an API token in the admin, in a real browser, copies it from the
page that answers the form, reads the API with it over HTTP, and revokes it."""

import pytest
import requests
from django.contrib.auth.models import User

from conferences.registry import roles
from tests.conftest import make_account, make_conference

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


def test_a_token_made_in_the_admin_reads_the_api_until_it_is_revoked(page, live_server):
    User.objects.create_superuser("boss", password=PASSWORD)
    roles.create_user(username="ann", role="viewer", password=PASSWORD + " staple")
    make_conference(make_account(name="acme"), "conf-alpha")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/conferences/apitoken/add/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.fill("#id_name", "grafana")
    page.select_option("#id_user", label="ann")
    page.fill("#id_expires", "90d")
    page.click("input[name=_save]")
    token_text = page.inner_text("#api-token")

    def read():
        return requests.get(
            f"{live_server.url}/api/conferences/",
            headers={"Authorization": f"Bearer {token_text}"},
            timeout=5,
        )

    assert read().json()["conferences"][0]["conference_id"] == "conf-alpha"
    page.goto(f"{live_server.url}/admin/conferences/apitoken/")
    assert "grafana" in page.inner_text("#result_list")
    assert token_text not in page.content()
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "revoke")
    page.click("button[name=index]")
    page.wait_for_selector("text=Revoked 1 API token(s).")
    assert read().status_code == 401
