"""Prometheus metrics for /metrics (README, "Metrics").

Two kinds:
- Counters and histograms of what happens in a process (polls, requests to Catapult,
  rounds, callbacks, alert deliveries, rule evaluations, web requests). With several
  gunicorn workers and Celery processes they are kept in prometheus_client's
  multiprocess mode: every process writes its own files in PROMETHEUS_MULTIPROC_DIR
  (set by the Procfile, emptied by its release step), and a scrape adds them up.
  Without that variable a process keeps its own (development, tests).
- Gauges of what is stored (conferences by state, staleness, budgets, the outbox),
  computed from the database when /metrics is scraped: exact whatever the processes.

Labels stay bounded: account names, outcomes from a fixed vocabulary, view names;
never a conference id.
"""

import collections
import hashlib
import hmac
import ipaddress
import os
import time

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.db.models import Aggregate, Count, DateTimeField, Min, Q
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from conferences.alerting import channels
from conferences.models import (
    Account,
    Conference,
    ConferenceState,
    Delivery,
    DeliveryStatus,
    PollStatus,
    last_seen,
    polled_q,
)
from conferences.ops import health

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

POLLS = Counter(
    "confwatch_polls",
    "Conference status reads recorded, by account and outcome (the poll status after it).",
    ["account", "outcome"],
)
REQUESTS = Counter(
    "confwatch_catapult_requests",
    "Requests sent to Catapult by the polling rounds, by account and kind (status or members).",
    ["account", "kind"],
)
ROUND_SECONDS = Histogram(
    "confwatch_round_duration_seconds",
    "How long a polling round took, from its claims to its write.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 15, 30, 60),
)
CALLBACK_EVENTS = Counter(
    "confwatch_callback_events",
    "Catapult callback requests answered, by outcome.",
    ["outcome"],
)
DELIVERIES = Counter(
    "confwatch_alert_deliveries",
    "Alert deliveries tried, by channel and outcome (sent, failed, retry).",
    ["channel", "outcome"],
)
RULE_SECONDS = Histogram(
    "confwatch_rule_evaluation_seconds",
    "How long one evaluation of the alert rules took.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
REQUEST_SECONDS = Histogram(
    "confwatch_http_request_duration_seconds",
    "Web requests by view (its URL name) and status class, and how long they took.",
    ["view", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# A callback's answer (conferences/callbacks/receiver.py) as an outcome.
CALLBACK_OUTCOMES = {
    200: "accepted",
    400: "malformed",
    401: "unauthorized",
    404: "unknown_secret",
    413: "too_large",
    429: "rate_limited",
    503: "unavailable",
}


# --------------------------------------------------------------------------- recording


def round_recorded(plans, outcomes):
    """Count a round's requests (per account and kind) and its recorded status reads
    (per account and poll status after them); `plans` and `outcomes` are
    polling.rounds' own. Counted first, so that each label set is incremented once."""
    account_of, requests, polls = {}, collections.Counter(), collections.Counter()
    for plan in plans:
        name = plan.account.name
        for job in plan.jobs:
            account_of[job.conference.pk] = name
            if job.future is not None:
                requests[name, job.kind] += 1
    for outcome in outcomes:
        observation = outcome.observation
        if outcome.applied and not observation.members_read:
            account = account_of.get(observation.conference_pk, "unknown")
            polls[account, outcome.poll_status_after] += 1
    for labels, count in requests.items():
        REQUESTS.labels(*labels).inc(count)
    for labels, count in polls.items():
        POLLS.labels(*labels).inc(count)


def callback_answered(status):
    CALLBACK_EVENTS.labels(CALLBACK_OUTCOMES.get(status, "other")).inc()


def delivery_channel(delivery):
    """How a delivery goes out: "email", or its channel's scheme (slack, json, webhook...:
    Apprise's bounded list, never the URL)."""
    if channels.is_channel(delivery.email):
        return channels.scheme_of(delivery.email)
    return "email"


def delivery_tried(delivery, outcome):
    """Count one send of a delivery by its channel and outcome (alerting.sender's)."""
    result = "sent" if outcome.sent else "failed" if outcome.permanent else "retry"
    DELIVERIES.labels(delivery_channel(delivery), result).inc()


class RequestLatency:
    """Middleware: every web request's time by the view it resolved to (its URL name,
    "unresolved" for a 404 of no pattern) and its status class (2xx, 4xx...)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match else None) or "unresolved"
        status = f"{response.status_code // 100}xx"
        REQUEST_SECONDS.labels(view, status).observe(time.perf_counter() - started)
        return response


# --------------------------------------------------------------------------- scraping


class PercentileOfAge(Aggregate):
    """The time whose age (now minus it) is the `fraction` percentile of the ages: the
    newest first, as ages grow (Postgres' percentile_disc)."""

    function = "percentile_disc"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s DESC)"


def state_label(state):
    """A conference's state as a label: Catapult's three, "unknown" before the first
    observation, "other" for anything else an API could send."""
    if state is None:
        return "unknown"
    return state if state in ConferenceState.values else "other"


def gauge(name, documentation, labels, values):
    """A gauge family from {label values: value}."""
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label_values, value in sorted(values.items()):
        family.add_metric(list(label_values), value)
    return family


class StoredState:
    """Gauges read from the database at each scrape."""

    def collect(self):
        now = timezone.now()
        build = GaugeMetricFamily(
            "confwatch_build_info", "The running confwatch version.", labels=["version"]
        )
        build.add_metric([settings.CONFWATCH_VERSION], 1)
        yield build
        yield from self.accounts(now)
        yield from self.conferences()
        yield from self.alerts(now)

    def accounts(self, now):
        accounts = list(Account.objects.values_list("pk", "name", "request_budget"))
        names = {pk: name for pk, name, _ in accounts}
        yield gauge(
            "confwatch_account_budget_requests_per_second",
            "Each account's request budget (compare rate(confwatch_catapult_requests_total)).",
            ["account"],
            {(name,): budget for _, name, budget in accounts},
        )
        polled = Conference.objects.filter(polled_q())
        counts = dict(polled.values("account").annotate(n=Count("pk")).values_list("account", "n"))
        yield gauge(
            "confwatch_account_polled_conferences",
            "Conferences each account polls (neither paused nor completed).",
            ["account"],
            {(name,): counts.get(pk, 0) for pk, name in names.items()},
        )
        seen = last_seen()
        rows = (
            Conference.objects.filter(paused=False, state=ConferenceState.ACTIVE)
            .values("account")
            .annotate(
                oldest=Min(seen),
                p95=PercentileOfAge(seen, fraction=0.95, output_field=DateTimeField()),
            )
        )
        worst, p95 = {}, {}
        for row in rows:
            key = (names.get(row["account"], "unknown"),)
            worst[key] = (now - row["oldest"]).total_seconds()
            p95[key] = (now - row["p95"]).total_seconds()
        yield gauge(
            "confwatch_active_staleness_max_seconds",
            "Seconds since the stalest active conference of each account was observed.",
            ["account"],
            worst,
        )
        yield gauge(
            "confwatch_active_staleness_p95_seconds",
            "95th percentile of the seconds since each account's active conferences were observed.",
            ["account"],
            p95,
        )

    def conferences(self):
        by_state = {}
        for state, count in Conference.objects.values_list("state").annotate(n=Count("pk")):
            key = (state_label(state),)
            by_state[key] = by_state.get(key, 0) + count
        yield gauge(
            "confwatch_conferences_by_state",
            "Tracked conferences by their last observed state.",
            ["state"],
            by_state,
        )
        by_status = {(status,): 0 for status in PollStatus.values}
        for status, count in Conference.objects.values_list("poll_status").annotate(n=Count("pk")):
            by_status[(status,)] = count
        yield gauge(
            "confwatch_conferences_by_poll_status",
            "Tracked conferences by the outcome of their last poll.",
            ["poll_status"],
            by_status,
        )

    def alerts(self, now):
        pending = Delivery.objects.filter(status=DeliveryStatus.PENDING).aggregate(
            total=Count("pk"), due=Count("pk", filter=Q(send_after__lte=now))
        )
        yield gauge(
            "confwatch_alert_outbox_depth",
            "Alert deliveries waiting in the outbox: due now, or held for later on purpose "
            "(a digest, quiet hours, coalescing).",
            ["due"],
            {("true",): pending["due"], ("false",): pending["total"] - pending["due"]},
        )
        age = health.alerts(now)["oldest_unsent_alert_seconds"]
        yield gauge(
            "confwatch_alert_oldest_unsent_seconds",
            "Age of the oldest due alert delivery not sent yet, from when it became due "
            "(0 when none waits).",
            [],
            {(): age or 0},
        )


def exposition():
    """The metrics in the Prometheus text format: this process's own (or, in multiprocess
    mode, every process's) and the gauges read from the database."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_DIR):
        MultiProcessCollector(registry)
    else:
        registry.register(OwnProcess())
    registry.register(StoredState())
    return generate_latest(registry)


class OwnProcess:
    """This process's metrics (without multiprocess mode)."""

    def collect(self):
        return REGISTRY.collect()


# --------------------------------------------------------------------------- who may scrape

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def scrape_allowed(request):
    """Whether the request may read /metrics, without touching the database: a bearer
    token equal to CONFWATCH_METRICS_TOKEN (compared in constant time), or else a
    client address within CONFWATCH_METRICS_ALLOWED_IPS. A token that is sent must be
    right. With neither configured, development allows loopback and production
    nobody."""
    token = settings.CONFWATCH_METRICS_TOKEN
    networks = settings.CONFWATCH_METRICS_ALLOWED_IPS
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, presented = header.partition(" ")
        if not token or scheme.lower() != "bearer" or not presented.strip():
            return False
        # Digests of equal length: neither the content nor the length of the token leaks.
        return hmac.compare_digest(digest(presented.strip()), digest(token))
    if not token and not networks and not settings.PRODUCTION:
        networks = LOOPBACK
    return address_within(get_client_ip_address(request), networks)


def digest(text):
    return hashlib.sha256(text.encode(errors="surrogateescape")).digest()


def address_within(address, networks):
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in networks)
