"""/metrics from the Procfile's web line (gunicorn, 2 workers) and poller line (Celery,
2 processes), in prometheus_client's multiprocess mode: after a known number of polls
the counters, read with prometheus_client's parser, say exactly that many, whichever
process polled and whichever web worker answers."""

import pytest
import requests
from django.contrib.auth.models import User
from prometheus_client.parser import text_string_to_metric_families

from conferences import tasks
from tests.conftest import make_account, make_conference, wait_for
from tests.procfile import HTTP_TIMEOUT, Line, free_port, wait_until_answers

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "metrics-token-for-the-processes-test"
ROUNDS = 4


def metric_samples(base_url, token=TOKEN):
    response = requests.get(
        f"{base_url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(found, name, **labels):
    return found.get((name, tuple(sorted(labels.items()))), 0)


@pytest.fixture
def product(celery_env, tmp_path):
    """The web and poller lines on the test database, sharing one metrics directory (the
    poller is the worker that polls)."""
    port = free_port()
    env = dict(
        celery_env,
        PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        CONFWATCH_METRICS_TOKEN=TOKEN,
        CONFWATCH_VERSION="1.2.3-test",
    )
    lines = [Line("web", env, tmp_path), Line("poller", env, tmp_path)]
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_answers(f"{base_url}/health/", line=lines[0])
        yield base_url, tmp_path / "prometheus"
    finally:
        for line in lines:
            line.stop()


def test_the_poll_counters_of_a_celery_worker_add_up_in_a_scrape_of_gunicorn(
    simulator, sim_client, product
):
    base_url, directory = product
    account = make_account(simulator, name="acme")
    pks = [
        make_conference(account, sim_client.create_conference(from_number="+15555550100")).pk,
        make_conference(account, sim_client.create_conference(from_number="+15555550101")).pk,
        make_conference(account, "conf-nobody-has").pk,
    ]
    user = User.objects.create_user("poller")

    for done in range(1, ROUNDS + 1):
        tasks.poll_now.delay(pks, user.pk)
        wait_for(
            lambda done=done: (
                sum(
                    value(
                        metric_samples(base_url), "confwatch_polls_total", account="acme", outcome=o
                    )
                    for o in ("ok", "not_found")
                )
                == 3 * done
            ),
            what=f"poll now {done}",
        )
    health = ("confwatch_http_request_duration_seconds_count", "conferences:health")
    before = value(metric_samples(base_url), health[0], view=health[1], status="2xx")
    for _ in range(10):
        requests.get(f"{base_url}/health/", timeout=HTTP_TIMEOUT)
    found = metric_samples(base_url)

    assert value(found, "confwatch_polls_total", account="acme", outcome="ok") == 2 * ROUNDS
    assert value(found, "confwatch_polls_total", account="acme", outcome="not_found") == ROUNDS
    assert value(found, "confwatch_catapult_requests_total", account="acme", kind="status") == (
        3 * ROUNDS
    )
    assert value(found, "confwatch_round_duration_seconds_count") == ROUNDS
    assert value(found, health[0], view=health[1], status="2xx") - before == 10
    assert value(found, "confwatch_conferences_by_state", state="created") == 2
    assert value(found, "confwatch_conferences_by_poll_status", poll_status="not_found") == 1
    assert value(found, "confwatch_build_info", version="1.2.3-test") == 1
    # Each process wrote its own files: the web's workers and the worker's children.
    assert len({path.name.rsplit("_", 1)[-1] for path in directory.glob("*.db")}) >= 3


def test_gunicorn_refuses_a_scrape_without_the_token(product):
    base_url, _ = product

    response = requests.get(f"{base_url}/metrics", timeout=HTTP_TIMEOUT)
    wrong = requests.get(
        f"{base_url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=HTTP_TIMEOUT
    )

    assert (response.status_code, wrong.status_code) == (401, 401)
