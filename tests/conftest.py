import pytest
from django.utils import timezone

from conferences import catapult, tracking
from conferences.models import Conference
from simulator.testing import running_simulator

SIM_USER = ("u-demo", "demo-token", "demo-secret")


@pytest.fixture
def simulator():
    """A Catapult simulator on a free port, with a budget-sized rate limit of 50/s."""
    with running_simulator(rate_limit=50) as server:
        yield server


@pytest.fixture
def sim_client(simulator):
    """A Catapult client to act on the simulator the way a customer's app would."""
    user_id, token, secret = SIM_USER
    client = catapult.CatapultClient(
        base_url=simulator.url, user_id=user_id, api_token=token, api_secret=secret
    )
    yield client
    client.close()


def make_account(simulator=None, **overrides):
    user_id, token, secret = SIM_USER
    values = {
        "name": "acme",
        "user_id": user_id,
        "token": token,
        "secret": secret,
        "base_url": simulator.url if simulator else "http://127.0.0.1:9",
        "request_budget": 40.0,
    }
    values.update(overrides)
    return tracking.add_account(**values)


def make_conference(account, conference_id="conf-test", **overrides):
    values = {"account": account, "conference_id": conference_id, "next_poll_at": timezone.now()}
    values.update(overrides)
    return Conference.objects.create(**values)


@pytest.fixture
def account(db, simulator):
    return make_account(simulator)


@pytest.fixture
def user(db, django_user_model):
    return django_user_model.objects.create_user("staff", password="correct horse battery")


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def reload(instance):
    instance.refresh_from_db()
    return instance


def requests_seen(simulator, user_id="u-demo"):
    """Requests the simulator accepted or rate limited for the user (after auth)."""
    return simulator.stats()["users"].get(user_id, {}).get("requests", 0)
