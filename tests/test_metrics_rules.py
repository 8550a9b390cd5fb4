"""docs/prometheus-rules.yml and docs/grafana-dashboard.json name only metrics that a real
/metrics scrape exports (read with prometheus_client's parser)."""

import json
import re

import pytest
import yaml
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.django_db

DOCS = settings.BASE_DIR / "docs"
RULES = yaml.safe_load((DOCS / "prometheus-rules.yml").read_text())
DASHBOARD = json.loads((DOCS / "grafana-dashboard.json").read_text())
# What a family of each type exports as samples.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}
# confwatch's metric names (PromQL's functions and keywords never start so).
NAME = re.compile(r"\b(confwatch_[a-z0-9_]+)\b")


def exported_names(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        family.name + suffix
        for family in text_string_to_metric_families(response.content.decode())
        for suffix in SUFFIXES[family.type]
    }


def names_in(expression):
    """The metric names of a PromQL expression (label values and strings left out)."""
    without_strings = re.sub(r'"[^"]*"', '""', expression)
    return set(NAME.findall(without_strings))


def balanced(expression):
    depth = 0
    for char in expression:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def rules():
    return [rule for group in RULES["groups"] for rule in group["rules"]]


def test_the_three_alerts_are_there():
    assert {rule["alert"] for rule in rules()} == {
        "ConfwatchPollingStalled",
        "ConfwatchBudgetExhausted",
        "ConfwatchAlertsNotSent",
    }


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_each_alert_rule_names_only_exported_metrics(client, rule):
    named = names_in(rule["expr"])

    assert named
    assert named - exported_names(client) == set()
    assert balanced(rule["expr"])


def test_every_dashboard_panel_names_only_exported_metrics(client):
    exported = exported_names(client)
    expressions = [target["expr"] for panel in DASHBOARD["panels"] for target in panel["targets"]]
    named = set().union(*(names_in(expression) for expression in expressions))

    assert named - exported == set()
    assert all(balanced(expression) for expression in expressions)
    # Every metric the issue asks for is on the dashboard.
    assert {
        "confwatch_polls_total",
        "confwatch_round_duration_seconds_bucket",
        "confwatch_catapult_requests_total",
        "confwatch_account_budget_requests_per_second",
        "confwatch_active_staleness_max_seconds",
        "confwatch_active_staleness_p95_seconds",
        "confwatch_conferences_by_state",
        "confwatch_conferences_by_poll_status",
        "confwatch_callback_events_total",
        "confwatch_alert_deliveries_total",
        "confwatch_alert_oldest_unsent_seconds",
        "confwatch_alert_outbox_depth",
        "confwatch_rule_evaluation_seconds_bucket",
        "confwatch_http_request_duration_seconds_bucket",
        "confwatch_build_info",
    } <= named


def test_a_misspelt_metric_would_be_caught(client):
    assert names_in('rate(confwatch_pols_total{outcome="ok"}[5m])') - exported_names(client) == {
        "confwatch_pols_total"
    }
