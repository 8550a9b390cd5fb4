"""A round through a real Celery worker (and beat) on the real Redis into the real Postgres."""

import pytest
from django.db import connection
from django.utils import timezone

from conferences import tasks
from conferences.models import Conference
from conferences.ops import queued
from tests.conftest import (
    WORKER_ARGS,
    make_account,
    make_conference,
    reload,
    start_celery,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(celery_env):
    process = start_celery(
        celery_env, "worker", "--pool=solo", "--without-mingle", "--without-gossip"
    )
    yield process
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def beat(celery_env, worker):
    process = start_celery(celery_env, "beat")
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


def worker_backends():
    """The pids of the other sessions on the test database (the worker's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


def test_a_worker_keeps_its_database_connection_from_one_task_to_the_next(
    simulator, sim_client, worker
):
    account = make_account(simulator)
    conference = make_conference(account, sim_client.create_conference(from_number="+15555550100"))
    tasks.poll_round.delay()
    wait_for(lambda: reload(conference).last_polled_at is not None, what="the first round")
    first = worker_backends()

    for _ in range(3):
        polled = reload(conference).last_polled_at
        Conference.objects.filter(pk=conference.pk).update(next_poll_at=timezone.now())
        tasks.poll_round.delay()
        wait_for(lambda polled=polled: reload(conference).last_polled_at > polled, what="a round")

    assert first and worker_backends() == first  # no new connection per task


def test_a_round_waits_in_the_polling_queue_for_the_poller_not_behind_the_other_tasks(
    simulator, sim_client, celery_env
):
    """The Procfile's worker (--queues celery) leaves rounds alone; its poller (--queues
    polling) takes them, so a busy alert worker never delays a round."""
    broker = queued.redis_client()
    account = make_account(simulator)
    conference = make_conference(account, sim_client.create_conference(from_number="+15555550100"))
    worker = start_celery(celery_env, *WORKER_ARGS, "--queues", "celery")
    try:
        tasks.poll_round.delay()
        tasks.send_alerts.delay()

        wait_for(lambda: broker.llen("celery") == 0, what="the worker to take the alert pass")
        assert broker.llen("polling") == 1
        assert reload(conference).last_polled_at is None
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    poller = start_celery(celery_env, *WORKER_ARGS, "--queues", "polling")
    try:
        wait_for(lambda: reload(conference).last_polled_at is not None, what="the round")
        assert broker.llen("polling") == 0
        assert reload(conference).state == "created"
    finally:
        poller.terminate()
        poller.wait(timeout=20)


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


def test_a_burst_of_rounds_with_events_queues_one_alert_pass_until_it_starts():
    broker = queued.redis_client()
    broker.flushdb()

    for _ in range(5):
        tasks.queue_alert_pass()

    assert broker.llen("celery") == 1
    tasks.send_alerts()  # the queued pass starts (run here): new events queue another
    tasks.queue_alert_pass()
    tasks.queue_alert_pass()
    assert broker.llen("celery") == 2
    broker.flushdb()
