"""Benchmark: how long after a change on Catapult its alert email arrives.

Runs the real pieces with the default settings (poll interval, round and alert periods
as dashboard/settings.py has them): the Catapult simulator in this process (rate limit
20 requests/s), PostgreSQL, Redis, a Celery worker and Celery beat as subprocesses, and
an SMTP server (MailSink) in this process.

It tracks --conferences new conferences on an account with a budget of 20 requests/s,
subscribes one address to state changes of every conference, and waits until each is
observed as "created". Then it adds a member to each conference in turn (created ->
active), a random 0-10 s apart (seeded by --seed), without waiting for the emails in
between, and notes when the email naming that conference and "created -> active" reaches
the SMTP server (looked for every 50 ms; at most 60 s per change). It prints each
latency, their min / median / p95 / max next to the target of 2 poll intervals + 5 s,
PASS or ABOVE TARGET, and the medians of the two legs: change -> observed (the
state_changed event's created_at) and observed -> email.

    make bench-alerts              # or: .venv/bin/python tests/bench/bench_alerts.py --help

It uses a database of its own (BENCH_ALERTS_DATABASE_URL, default confwatch_bench_alerts),
created and migrated at the start and dropped at the end, and a Redis database of its own
(BENCH_ALERTS_BROKER_URL, default redis://127.0.0.1:6379/14), emptied at the start and at
the end. The worker's and beat's output goes to a log file in a temporary directory; it
is printed (its last lines) when something does not arrive in time.
"""

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.bench.common import (  # noqa: E402
    catapult_call,
    own_database_and_broker,
    percentile,
    running_product,
    use_own_services,
)
from tests.catapult_driver import CatapultDriver  # noqa: E402

use_own_services(
    "BENCH_ALERTS", database="confwatch_bench_alerts", broker="redis://127.0.0.1:6379/14"
)

SIM_USER = ("u-demo", "demo-token", "demo-secret")
BUDGET = 20.0
RECIPIENT = "bench@example.com"
MOST_STAGGER = 10.0  # seconds between two changes, at most
WAIT_PER_CHANGE = 60.0  # seconds an email may take before it counts as missing
LOOK_EVERY = 0.05  # seconds between two looks at the SMTP server
STARTUP_SECONDS = 60.0  # for the first observation of every conference


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--conferences", type=int, default=8, help="changes measured (at most the hourly cap, 30)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seeds the gaps between changes")
    args = parser.parse_args()
    if args.conferences < 1:
        parser.error("--conferences must be at least 1")
    return args


@dataclass
class Change:
    """One member added to one conference, and when each step of its alert happened
    (epoch seconds; None until seen)."""

    conference_id: str
    changed_at: float | None = None
    observed_at: float | None = None
    emailed_at: float | None = None

    @property
    def latency(self):
        return None if self.emailed_at is None else self.emailed_at - self.changed_at


def mail_env(sink):
    """The worker sends its emails to the SMTP server of this process."""
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(sink.port),
    }


# --------------------------------------------------------------------------- setup


def track_new_conferences(sim, client, *, count):
    """An account for the simulator's user, `count` new conferences on the simulator,
    tracked, and one subscription to state changes of every conference."""
    from conferences.alerting import subscriptions
    from conferences.registry import tracking

    user_id, token, secret = SIM_USER
    account = tracking.add_account(
        name="bench-alerts",
        user_id=user_id,
        token=token,
        secret=secret,
        base_url=sim.url,
        request_budget=BUDGET,
    )
    conference_ids = [
        catapult_call(client.create_conference, from_number=f"+1555555{n:04d}")
        for n in range(count)
    ]
    tracking.track_conferences(account=account, conference_ids=conference_ids)
    subscriptions.subscribe(email=RECIPIENT, kinds=["state"])
    return conference_ids


def wait_until_created(conference_ids, *, timeout):
    """True once every conference was observed in state created; False after timeout."""
    from conferences.models import Conference

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        created = Conference.objects.filter(
            conference_id__in=conference_ids, state="created"
        ).count()
        if created == len(conference_ids):
            return True
        time.sleep(0.5)
    return False


# --------------------------------------------------------------------------- measuring


def measure(client, sink, changes, *, seed):
    """Make each change at its seeded time and note when its email arrives; returns
    when every email arrived or the last one's wait ran out."""
    gaps = random.Random(seed)
    next_change_at = time.time() + gaps.uniform(0, MOST_STAGGER)
    to_make = list(changes)
    waiting = {}  # subject words -> Change
    seen = 0
    while to_make or waiting:
        now = time.time()
        if to_make and now >= next_change_at:
            change = to_make.pop(0)
            catapult_call(client.add_member, change.conference_id, call_id="c-bench")
            change.changed_at = time.time()
            waiting[change.conference_id] = change
            if to_make:
                next_change_at = change.changed_at + gaps.uniform(0, MOST_STAGGER)
        messages = sink.messages()
        arrived = time.time()
        for message in messages[seen:]:
            subject = str(message["Subject"] or "")
            for conference_id, change in list(waiting.items()):
                if conference_id in subject and "created -> active" in subject:
                    change.emailed_at = arrived
                    del waiting[conference_id]
        seen = len(messages)
        for conference_id, change in list(waiting.items()):
            if arrived - change.changed_at > WAIT_PER_CHANGE:
                del waiting[conference_id]
        time.sleep(LOOK_EVERY)


def note_observations(changes):
    """When each change was observed: its state_changed event's created_at."""
    from conferences.models import Event, EventKind

    for change in changes:
        created_at = (
            Event.objects.filter(
                kind=EventKind.STATE_CHANGED, conference__conference_id=change.conference_id
            )
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if created_at is not None:
            change.observed_at = created_at.timestamp()


# --------------------------------------------------------------------------- report


def seconds(value):
    return "-" if value is None else f"{value:.2f} s"


def report(changes, *, target):
    width = max(len(change.conference_id) for change in changes)
    print(f"{'conference':<{width}}  {'change->email':>13}  {'->observed':>10}  {'->email':>10}")
    for change in changes:
        observed = emailed = None
        if change.observed_at is not None:
            observed = change.observed_at - change.changed_at
            if change.emailed_at is not None:
                emailed = change.emailed_at - change.observed_at
        latency = seconds(change.latency) if change.latency is not None else "no email"
        print(
            f"{change.conference_id:<{width}}  {latency:>13}  "
            f"{seconds(observed):>10}  {seconds(emailed):>10}"
        )
    latencies = [change.latency for change in changes if change.latency is not None]
    missing = len(changes) - len(latencies)
    print()
    if latencies:
        print(
            f"change -> email: min {min(latencies):.2f} s, "
            f"median {statistics.median(latencies):.2f} s, "
            f"p95 {percentile(latencies, 0.95):.2f} s, max {max(latencies):.2f} s "
            f"({len(latencies)} of {len(changes)} emails)"
        )
    observed = [c.observed_at - c.changed_at for c in changes if c.observed_at is not None]
    emailed = [
        c.emailed_at - c.observed_at
        for c in changes
        if c.observed_at is not None and c.emailed_at is not None
    ]
    if observed:
        print(f"  median change -> observed in the database: {statistics.median(observed):.2f} s")
    if emailed:
        print(f"  median observed -> email at the SMTP server: {statistics.median(emailed):.2f} s")
    within = not missing and latencies and percentile(latencies, 0.95) <= target
    verdict = "PASS" if within else "ABOVE TARGET"
    if missing:
        verdict += f" ({missing} emails missing after {WAIT_PER_CHANGE:g} s)"
    print(f"target (2 poll intervals + 5 s): p95 <= {target:g} s: {verdict}")
    return not missing


def main():
    args = parse_args()
    with own_database_and_broker():
        from django.conf import settings

        from simulator.testing import running_simulator
        from tests.smtp import running_mailsink

        target = 2 * settings.CONFWATCH_POLL_INTERVAL + 5
        if args.conferences > settings.CONFWATCH_ALERT_HOURLY_CAP:
            # Past the cap, the recipient's alerts wait for the hourly digest.
            sys.exit(
                f"--conferences must be at most {settings.CONFWATCH_ALERT_HOURLY_CAP} "
                "(CONFWATCH_ALERT_HOURLY_CAP, the emails one recipient gets in an hour)"
            )
        with (
            running_mailsink() as sink,
            running_simulator(rate_limit=BUDGET) as sim,
        ):
            user_id, token, secret = SIM_USER
            client = CatapultDriver(
                base_url=sim.url, user_id=user_id, api_token=token, api_secret=secret
            )
            try:
                print(
                    f"{args.conferences} conferences, seed {args.seed}, budget {BUDGET:g} "
                    f"requests/s; poll interval {settings.CONFWATCH_POLL_INTERVAL:g} s, "
                    f"round every {settings.CONFWATCH_ROUND_SECONDS:g} s, "
                    f"alerts every {settings.CONFWATCH_ALERT_SECONDS:g} s",
                    flush=True,
                )
                conference_ids = track_new_conferences(sim, client, count=args.conferences)
                with running_product(env=mail_env(sink)) as product:
                    if not wait_until_created(conference_ids, timeout=STARTUP_SECONDS):
                        print(f"Not every conference was observed within {STARTUP_SECONDS:g} s.")
                        print(f"--- last lines of the worker and beat log:\n{product.log_tail()}")
                        sys.exit(1)
                    changes = [Change(conference_id) for conference_id in conference_ids]
                    measure(client, sink, changes, seed=args.seed)
                    note_observations(changes)
                    if not report(changes, target=target):
                        print(f"--- last lines of the worker and beat log:\n{product.log_tail()}")
                        sys.exit(1)
            finally:
                client.close()


if __name__ == "__main__":
    main()
