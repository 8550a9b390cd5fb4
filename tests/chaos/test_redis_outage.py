"""Chaos: the broker (Redis) stops and starts again under a real worker and beat."""

import time

import pytest
from django.db.models import Max
from django.utils import timezone

from conferences.models import Conference
from tests.chaos.conftest import start_celery_logged, stop
from tests.conftest import WORKER_ARGS, make_account, make_conference, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

BUDGET = 20.0


def last_poll():
    return Conference.objects.aggregate(last=Max("last_polled_at"))["last"]


def test_worker_and_beat_recover_from_a_broker_outage_without_a_burst(
    simulator, sim_client, celery_env, private_redis, tmp_path
):
    account = make_account(simulator, request_budget=BUDGET)
    for _ in range(3):
        make_conference(account, sim_client.create_conference(from_number="+15555550100"))
    env = dict(celery_env, CELERY_BROKER_URL=private_redis.url)
    worker = start_celery_logged(env, tmp_path / "worker.log", *WORKER_ARGS)
    beat = start_celery_logged(env, tmp_path / "beat.log", "beat")
    try:
        wait_for(
            lambda: not Conference.objects.filter(last_polled_at=None).exists(),
            what="the first polls",
        )

        private_redis.stop()
        # Long enough for beat to meet the outage however loaded the machine is.
        wait_for(
            lambda: "broker unavailable" in (tmp_path / "beat.log").read_text(),
            timeout=30,
            what="beat to meet the outage",
        )
        time.sleep(1)
        stopped_at = timezone.now()
        private_redis.start()

        wait_for(lambda: last_poll() > stopped_at, timeout=45, what="polling to resume")
        time.sleep(2)  # a few rounds after the recovery
        assert worker.poll() is None and beat.poll() is None
    finally:
        stop(beat)
        stop(worker)

    stats = simulator.stats()["users"]["u-demo"]
    assert stats["rate_limited"] == 0
    assert stats["max_accepted_per_second"] <= BUDGET
    beat_log = (tmp_path / "beat.log").read_text()
    assert "Traceback" not in beat_log
    assert beat_log.count("broker unavailable") == 1
    assert beat_log.count("broker answers again after") == 1
