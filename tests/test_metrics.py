"""/metrics: who may scrape it, and what it says (read back with prometheus_client's own
parser)."""

import ipaddress
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from conferences.alerting import rules, sender
from conferences.callbacks import receiver
from conferences.models import Delivery, DeliveryStatus
from conferences.polling import rounds
from tests.conftest import make_account, make_conference
from tests.test_alerts import pending_deliveries
from tests.test_settings import settings_load

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-metrics-token-0123456789"


def scrape(client, **headers):
    return client.get("/metrics", **headers)


def samples(response):
    """{(name, sorted labels): value} of a scrape."""
    assert response.status_code == 200, response.content
    text = response.content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found, name, **labels):
    return found.get((name, tuple(sorted(labels.items()))))


# ---------------------------------------------------------------- who may scrape


def test_development_without_configuration_answers_loopback(client):
    found = samples(scrape(client))

    assert value(found, "confwatch_build_info", version="unknown") == 1


def test_development_without_configuration_refuses_another_address(client):
    response = scrape(client, REMOTE_ADDR="10.1.2.3")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_production_without_configuration_refuses_even_loopback(client, settings):
    settings.PRODUCTION = True

    assert scrape(client).status_code == 401


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token-of-some-length",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        "Bearer",
        "Bearer ",
        TOKEN,
        "Bearer \u00e9t\u00e9",
    ],
)
def test_a_missing_wrong_or_malformed_token_gets_401_without_a_query(
    client, settings, django_assert_num_queries, authorization
):
    settings.CONFWATCH_METRICS_TOKEN = TOKEN
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}

    with django_assert_num_queries(0):
        response = scrape(client, **headers)

    assert response.status_code == 401
    assert b"confwatch_" not in response.content


def test_the_right_token_reads_the_metrics_from_anywhere(client, settings):
    settings.CONFWATCH_METRICS_TOKEN = TOKEN
    settings.PRODUCTION = True

    response = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}", REMOTE_ADDR="203.0.113.9")

    assert value(samples(response), "confwatch_build_info", version="unknown") == 1


def test_an_allowed_network_reads_without_a_token_and_others_do_not(client, settings):
    settings.CONFWATCH_METRICS_ALLOWED_IPS = [ipaddress.ip_network("10.0.0.0/8")]

    assert scrape(client, REMOTE_ADDR="10.9.8.7").status_code == 200
    assert scrape(client, REMOTE_ADDR="192.168.1.1").status_code == 401
    # Loopback is no longer implied once something is configured.
    assert scrape(client).status_code == 401


# ---------------------------------------------------------------- what it says


def test_stored_state_is_counted_by_state_poll_status_and_account(client):
    now = timezone.now()
    account = make_account(name="acme", request_budget=5)
    make_account(name="quiet", user_id="u-quiet", request_budget=2)
    for seconds in range(1, 21):
        make_conference(
            account,
            f"conf-active-{seconds}",
            state="active",
            poll_status="ok",
            last_observed_at=now - timedelta(seconds=seconds),
        )
    make_conference(account, "conf-new")
    make_conference(account, "conf-done", state="completed", poll_status="ok")
    make_conference(account, "conf-odd", state="x" * 30, poll_status="malformed")

    found = samples(scrape(client))

    assert value(found, "confwatch_conferences_by_state", state="active") == 20
    assert value(found, "confwatch_conferences_by_state", state="unknown") == 1
    assert value(found, "confwatch_conferences_by_state", state="completed") == 1
    assert value(found, "confwatch_conferences_by_state", state="other") == 1
    assert value(found, "confwatch_conferences_by_poll_status", poll_status="ok") == 21
    assert value(found, "confwatch_conferences_by_poll_status", poll_status="pending") == 1
    assert value(found, "confwatch_conferences_by_poll_status", poll_status="unreachable") == 0
    assert value(found, "confwatch_account_budget_requests_per_second", account="acme") == 5
    assert value(found, "confwatch_account_budget_requests_per_second", account="quiet") == 2
    assert value(found, "confwatch_account_polled_conferences", account="acme") == 22
    assert value(found, "confwatch_account_polled_conferences", account="quiet") == 0
    worst = value(found, "confwatch_active_staleness_max_seconds", account="acme")
    p95 = value(found, "confwatch_active_staleness_p95_seconds", account="acme")
    assert 20 <= worst < 30
    assert 19 <= p95 < worst
    assert value(found, "confwatch_active_staleness_max_seconds", account="quiet") is None


def test_the_outbox_depth_and_the_oldest_unsent_alert_come_from_the_deliveries(client):
    now = timezone.now()
    Delivery.objects.create(email="a@example.com", send_after=now - timedelta(seconds=90))
    Delivery.objects.create(email="b@example.com", send_after=now - timedelta(seconds=5))
    Delivery.objects.create(email="c@example.com", send_after=now + timedelta(hours=1))
    Delivery.objects.create(
        email="d@example.com", status=DeliveryStatus.SENT, send_after=now - timedelta(days=1)
    )

    found = samples(scrape(client))

    assert value(found, "confwatch_alert_outbox_depth", due="true") == 2
    assert value(found, "confwatch_alert_outbox_depth", due="false") == 1
    assert 90 <= value(found, "confwatch_alert_oldest_unsent_seconds") < 120


def test_a_round_counts_its_polls_by_account_and_outcome(client, simulator, sim_client):
    account = make_account(simulator, name="sim")
    make_conference(account, sim_client.create_conference(from_number="+15555550100"))
    make_conference(account, sim_client.create_conference(from_number="+15555550101"))
    make_conference(account, "conf-nobody-has")
    before = samples(scrape(client))

    rounds.poll_round(force=True)
    found = samples(scrape(client))

    def grew(name, **labels):
        return (value(found, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert grew("confwatch_polls_total", account="sim", outcome="ok") == 2
    assert grew("confwatch_polls_total", account="sim", outcome="not_found") == 1
    assert grew("confwatch_catapult_requests_total", account="sim", kind="status") == 3
    assert grew("confwatch_round_duration_seconds_count") == 1


def test_web_requests_are_timed_by_view_name(client):
    before = samples(scrape(client))
    for _ in range(3):
        client.get("/health/")
    client.get("/no-such-page/")
    found = samples(scrape(client))

    def grew(**labels):
        name = "confwatch_http_request_duration_seconds_count"
        return (value(found, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert grew(view="conferences:health", status="2xx") == 3
    assert grew(view="unresolved", status="4xx") + grew(view="unresolved", status="3xx") == 1


# ---------------------------------------------------------------- its settings


@pytest.mark.parametrize(
    "env, message",
    [
        ({"CONFWATCH_METRICS_TOKEN": "short"}, "CONFWATCH_METRICS_TOKEN must be at least 16"),
        ({"CONFWATCH_METRICS_TOKEN": "with a space in it, long"}, "without spaces"),
        ({"CONFWATCH_METRICS_ALLOWED_IPS": "10.0.0.0/8,intranet"}, "'intranet' is not an"),
        ({"CONFWATCH_METRICS_ALLOWED_IPS": " , "}, "CONFWATCH_METRICS_ALLOWED_IPS"),
    ],
)
def test_a_bad_metrics_setting_stops_the_start_with_its_name(env, message):
    result = settings_load(**env)

    assert result.returncode != 0
    assert message in result.stderr


def test_good_metrics_settings_start():
    result = settings_load(
        CONFWATCH_METRICS_TOKEN=TOKEN, CONFWATCH_METRICS_ALLOWED_IPS="10.0.0.0/8, ::1, 192.0.2.7"
    )

    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- counted where it happens


def grown(before, after, name, **labels):
    return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)


def test_callback_requests_are_counted_by_outcome(client, simulator):
    account = make_account(simulator)
    url = urlsplit(receiver.callback_url(account)).path
    before = samples(scrape(client))

    client.post(url, data="not json", content_type="application/json")
    client.post("/callbacks/no-such-secret/", data="{}", content_type="application/json")
    client.post("/callbacks/no-such-secret/", data="{}", content_type="application/json")
    found = samples(scrape(client))

    name = "confwatch_callback_events_total"
    assert grown(before, found, name, outcome="malformed") == 1
    assert grown(before, found, name, outcome="unknown_secret") == 2


def test_alert_sends_are_counted_by_channel_and_outcome(client, simulator, mailsink):
    conference = make_conference(make_account(simulator), "conf-outbox")
    pending_deliveries(3, conference)
    mailsink.refuse("many@example.com", code=550, message="5.1.1 no such user")
    before = samples(scrape(client))

    sender.send_pending()
    found = samples(scrape(client))

    name = "confwatch_alert_deliveries_total"
    assert grown(before, found, name, channel="email", outcome="failed") == 3
    assert grown(before, found, name, channel="email", outcome="sent") == 0


def test_each_rule_evaluation_is_timed(client):
    before = samples(scrape(client))

    rules.evaluate(now=timezone.now())
    found = samples(scrape(client))

    assert grown(before, found, "confwatch_rule_evaluation_seconds_count") == 1
