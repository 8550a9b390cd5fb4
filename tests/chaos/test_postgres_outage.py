"""Chaos: PostgreSQL stops and starts again under a real worker and beat (a private
cluster of the test's own)."""

import subprocess
import sys
import time

import pytest

from tests.chaos.conftest import start_celery_logged, stop
from tests.conftest import SIM_USER, WORKER_ARGS, process_env

pytestmark = pytest.mark.django_db(transaction=True)

INTERVAL = 1.0


def manage(env, *args):
    subprocess.run(
        [sys.executable, "manage.py", *args], env=env, check=True, capture_output=True, timeout=60
    )


def wait_until(predicate, *, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return time.monotonic()


def test_polling_resumes_after_a_database_outage_and_logs_it_once(
    simulator, sim_client, celery_env, private_postgres, tmp_path
):
    user_id, token, secret = SIM_USER
    ids = [sim_client.create_conference(from_number="+15555550100") for _ in range(3)]
    env = process_env(
        DATABASE_URL=private_postgres.url,
        CELERY_BROKER_URL=celery_env["CELERY_BROKER_URL"],
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        CONFWATCH_ALLOWED_API_HOSTS="127.0.0.1",
        CONFWATCH_POLL_INTERVAL=str(INTERVAL),
        CONFWATCH_ROUND_SECONDS="0.5",
        CELERY_BEAT_SCHEDULE_FILENAME=str(tmp_path / "beat-schedule"),
        CATAPULT_API_TOKEN=token,
        CATAPULT_API_SECRET=secret,
    )
    manage(
        env,
        "add_account",
        "acme",
        "--user-id",
        user_id,
        "--base-url",
        simulator.url,
        "--budget",
        "20",
    )
    manage(env, "track", "--account", "acme", *ids)

    def polled_since(moment):
        rows = private_postgres.query(
            "SELECT count(*) FROM conferences_conference "
            f"WHERE last_polled_at > to_timestamp({moment})"
        )
        return rows[0][0] == len(ids)

    worker = start_celery_logged(env, tmp_path / "worker.log", *WORKER_ARGS)
    beat = start_celery_logged(env, tmp_path / "beat.log", "beat")
    try:
        wait_until(lambda: polled_since(0), timeout=30, what="the first polls")
        private_postgres.stop()
        time.sleep(3)  # a few rounds fail meanwhile
        private_postgres.start()
        restarted = time.time()
        started = time.monotonic()
        resumed = wait_until(lambda: polled_since(restarted), timeout=30, what="polling")
        time.sleep(1)  # one more round logs the summary
    finally:
        stop(beat)
        stop(worker)

    assert resumed - started <= 2 * INTERVAL + 3  # two intervals, and a round's start
    # Nothing half-written: one history run per conference (nothing changed), no claim
    # left behind by a round that failed.
    assert private_postgres.query("SELECT count(*) FROM conferences_historyentry") == [(3,)]
    log = (tmp_path / "worker.log").read_text()
    assert log.count("database unavailable") == 1, log
    assert log.count("database answers again after") == 1, log
    assert "Traceback" not in log
