"""Chaos: two beats running by mistake (a deploy that started a second one) send every
round twice; conferences are still polled once per interval."""

import time

import pytest

from conferences.models import Conference
from tests.chaos.conftest import start_celery_logged, stop
from tests.conftest import WORKER_ARGS, make_account, make_conference, requests_seen, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

WATCHED_SECONDS = 5.0
INTERVAL = 2.0
ROUND = 0.5


def test_two_beats_do_not_poll_a_conference_twice_per_interval(
    simulator, sim_client, celery_env, tmp_path
):
    account = make_account(simulator, request_budget=20.0)
    for _ in range(3):
        make_conference(account, sim_client.create_conference(from_number="+15555550100"))
    # The real settings (the test settings fix the interval at 10 s): a poll every 2 s.
    env = dict(celery_env, DJANGO_SETTINGS_MODULE="dashboard.settings")
    env.update(CONFWATCH_POLL_INTERVAL=str(INTERVAL), CONFWATCH_ROUND_SECONDS=str(ROUND))
    worker = start_celery_logged(env, tmp_path / "worker.log", *WORKER_ARGS)
    beats = [
        start_celery_logged(
            dict(env, CELERY_BEAT_SCHEDULE_FILENAME=str(tmp_path / f"schedule-{n}")),
            tmp_path / f"beat-{n}.log",
            "beat",
        )
        for n in range(2)
    ]
    try:
        wait_for(
            lambda: not Conference.objects.filter(last_polled_at=None).exists(),
            what="the first polls",
        )
        before = requests_seen(simulator)
        time.sleep(WATCHED_SECONDS)
        polls = requests_seen(simulator) - before
    finally:
        for process in beats + [worker]:
            stop(process)

    # A conference due within a round's stretch is claimed by that round: at most one
    # poll per (interval - round) each, however many rounds the two beats send.
    assert 3 <= polls <= 3 * (WATCHED_SECONDS / (INTERVAL - ROUND) + 1)
    for n in range(2):  # both beats did send rounds
        sent = (tmp_path / f"beat-{n}.log").read_text().count("Sending due task poll a round")
        assert sent >= WATCHED_SECONDS / ROUND
