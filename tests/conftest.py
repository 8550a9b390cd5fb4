import os
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from conferences.models import Conference
from conferences.registry import tracking
from simulator.testing import running_simulator
from tests.catapult_driver import CatapultDriver
from tests.smtp import mail_settings, running_mailsink

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
    client = CatapultDriver(
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


def wait_for(predicate, *, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def process_env(**overrides):
    """The environment for a project process a test starts (a worker, a sender, a round):
    the test settings, on the test database."""
    database = connection.settings_dict
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings")
    env["DATABASE_URL"] = f"{url}/{database['NAME']}"
    env.update(overrides)
    return env


@pytest.fixture
def celery_env(tmp_path):
    """The environment for a real Celery worker or beat on the test database and a Redis
    database of the tests' own (emptied first)."""
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
    return process_env(
        CELERY_BROKER_URL=django_settings.CELERY_BROKER_URL,
        CONFWATCH_ROUND_SECONDS="0.5",
        CONFWATCH_POLL_INTERVAL="1",
        CELERY_BEAT_SCHEDULE_FILENAME=str(tmp_path / "beat-schedule"),
    )


WORKER_ARGS = ("worker", "--pool=solo", "--without-mingle", "--without-gossip")


def start_celery(env, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dashboard", *args, "--loglevel=warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def mailsink(settings):
    """A real SMTP server on a free port; Django's mail goes to it during the test."""
    with running_mailsink() as sink:
        for name, value in mail_settings(sink).items():
            setattr(settings, name, value)
        yield sink
