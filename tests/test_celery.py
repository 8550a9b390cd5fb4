"""A round through a real Celery worker (and beat) on the real Redis into the real Postgres."""

import os
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings
from django.db import connection

from conferences import tasks
from tests.conftest import make_account, make_conference, reload

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(predicate, *, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def celery_env(tmp_path):
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    database = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}"
        f"/{database['NAME']}",
        CONFWATCH_ROUND_SECONDS="0.5",
        CONFWATCH_POLL_INTERVAL="1",
        CELERY_BEAT_SCHEDULE_FILENAME=str(tmp_path / "beat-schedule"),
    )
    return env


def start(env, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dashboard", *args, "--loglevel=warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def worker(celery_env):
    process = start(celery_env, "worker", "--pool=solo", "--without-mingle", "--without-gossip")
    yield process
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def beat(celery_env, worker):
    process = start(celery_env, "beat")
    yield process
    process.terminate()
    process.wait(timeout=20)


def test_a_round_sent_to_redis_is_polled_by_a_real_worker_into_postgres(
    simulator, sim_client, worker
):
    account = make_account(simulator)
    conference_id = sim_client.create_conference(from_number="+15555550100")
    conference = make_conference(account, conference_id)

    tasks.poll_round.delay()

    wait_for(lambda: reload(conference).last_polled_at is not None, what="the round")
    conference = reload(conference)
    assert conference.state == "created"
    assert conference.poll_status == "ok"
    assert conference.history.count() == 1


def test_beat_keeps_polling_so_a_member_joining_shows_up_on_its_own(simulator, sim_client, beat):
    account = make_account(simulator)
    conference_id = sim_client.create_conference(from_number="+15555550100")
    conference = make_conference(account, conference_id)
    wait_for(lambda: reload(conference).state == "created", what="the first observation")

    sim_client.add_member(conference_id, call_id="c-joiner")

    wait_for(lambda: reload(conference).state == "active", what="the member to show")
    assert reload(conference).active_members == 1
    assert [entry.state for entry in conference.history.order_by("first_seen_at")] == [
        "created",
        "active",
    ]
