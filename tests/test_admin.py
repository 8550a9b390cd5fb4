import pytest
from django.utils import timezone

from conferences.models import Account, HistoryEntry
from tests.conftest import make_account, make_conference

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", password="correct horse battery")
    client.force_login(user)
    return client


def test_staff_find_conferences_by_id_label_or_tag_in_the_admin(admin):
    account = make_account()
    make_conference(account, "conf-alpha", label="Board call", tags=["acme"], state="active")
    make_conference(account, "conf-beta", label="Ops room", tags=["globex"], state="created")

    by_tag = admin.get("/admin/conferences/conference/?q=acme").content.decode()
    by_label = admin.get("/admin/conferences/conference/?q=Ops").content.decode()
    by_state = admin.get("/admin/conferences/conference/?state__exact=created").content.decode()
    by_tag_filter = admin.get("/admin/conferences/conference/?tag=globex").content.decode()

    assert "conf-alpha" in by_tag and "conf-beta" not in by_tag
    assert "conf-beta" in by_label and "conf-alpha" not in by_label
    assert "conf-beta" in by_state and "conf-alpha" not in by_state
    assert "conf-beta" in by_tag_filter and "conf-alpha" not in by_tag_filter


def test_an_account_added_in_the_admin_keeps_its_secret_encrypted_and_hidden(admin):
    response = admin.post(
        "/admin/conferences/account/add/",
        {
            "name": "acme",
            "user_id": "u-acme",
            "base_url": "https://api.catapult.inetwork.com",
            "request_budget": "1",
            "api_token": "t-visible-nowhere",
            "api_secret": "s-visible-nowhere",
        },
    )
    assert response.status_code == 302
    account = Account.objects.get(name="acme")
    assert account.credentials() == ("t-visible-nowhere", "s-visible-nowhere")
    page = admin.get(f"/admin/conferences/account/{account.pk}/change/").content.decode()
    assert "s-visible-nowhere" not in page and "t-visible-nowhere" not in page


def test_a_new_account_without_credentials_is_refused(admin):
    response = admin.post(
        "/admin/conferences/account/add/",
        {"name": "acme", "user_id": "u-acme", "base_url": "https://x.example", "request_budget": 1},
    )
    assert response.status_code == 200
    assert "needs its API token and secret" in response.content.decode()
    assert not Account.objects.exists()


def test_history_is_read_only_in_the_admin(admin):
    conference = make_conference(make_account(), "conf-alpha")
    entry = HistoryEntry.objects.create(
        conference=conference,
        state="active",
        first_seen_at=timezone.now(),
        last_seen_at=timezone.now(),
    )

    page = admin.get(f"/admin/conferences/historyentry/{entry.pk}/change/")
    assert page.status_code == 200
    assert 'name="state"' not in page.content.decode()
    assert admin.get("/admin/conferences/historyentry/add/").status_code == 403
    detail = admin.get(f"/admin/conferences/conference/{conference.pk}/change/")
    assert detail.status_code == 200
