"""Benchmark: how fresh a request budget keeps the dashboard.

Runs the simulator in scenario mode, tracks its conferences on an account whose budget
matches the simulator's limit, then starts a polling round every CONFWATCH_ROUND_SECONDS
from two threads (two workers) for a while, as beat would, and prints figures:
requests per second against the budget, 429s, the most requests the simulator saw in any
one second, how stale active conferences got, and how long writing a round took.

    make bench                     # or: .venv/bin/python tests/bench/bench_polling.py --help

It uses a database of its own (confwatch_bench), created and migrated if missing.
"""

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/confwatch_bench"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conferences", type=int, default=60)
    parser.add_argument("--budget", type=float, default=5.0, help="requests/s, = sim limit")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--speed", type=float, default=20.0, help="scenario pace factor")
    return parser.parse_args()


def ensure_database():
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if exists.fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')


def main():
    args = parse_args()
    ensure_database()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from conferences import polling, tracking
    from conferences.models import Account, Conference, HistoryEntry
    from simulator.testing import running_simulator

    call_command("migrate", verbosity=0)
    Conference.objects.all().delete()
    Account.objects.all().delete()

    write_seconds = []
    original_record = polling.record_round

    def timed_record(plans):
        started = time.perf_counter()
        try:
            return original_record(plans)
        finally:
            write_seconds.append(time.perf_counter() - started)

    polling.record_round = timed_record

    with running_simulator(
        rate_limit=args.budget, scenario=args.conferences, speed=args.speed, seed=11
    ) as sim:
        account = tracking.add_account(
            name="bench",
            user_id="u-demo",
            token="demo-token",
            secret="demo-secret",
            base_url=sim.url,
            request_budget=args.budget,
        )
        tracking.track_conferences(account=account, conference_ids=sim.conference_ids())
        sim.reset_stats()

        stop = threading.Event()

        def worker():
            try:
                while not stop.is_set():
                    started = time.monotonic()
                    polling.poll_round()
                    stop.wait(
                        max(0.0, settings.CONFWATCH_ROUND_SECONDS - (time.monotonic() - started))
                    )
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(args.workers)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        staleness = []
        while time.monotonic() - began < args.seconds:
            time.sleep(0.5)
            now = timezone.now()
            active = Conference.objects.filter(state="active").exclude(last_polled_at=None)
            ages = [(now - c.last_polled_at).total_seconds() for c in active]
            if ages:
                staleness.append(max(ages))
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        elapsed = time.monotonic() - began
        stats = sim.stats()["users"].get("u-demo", {})

    requests = stats.get("requests", 0)
    active_count = Conference.objects.filter(state="active").count()
    print(
        f"conferences tracked:              {args.conferences} ({active_count} active at the end)"
    )
    print(f"budget:                           {args.budget:g} requests/s, {args.workers} workers")
    print(f"requests sent:                    {requests} in {elapsed:.1f} s")
    print(f"requests per second:              {requests / elapsed:.2f}")
    print(f"budget used:                      {100 * requests / elapsed / args.budget:.0f} %")
    print(f"429 answers:                      {stats.get('rate_limited', 0)}")
    print(f"most requests in any 1 s window:  {stats.get('max_accepted_per_second', 0)}")
    if staleness:
        print(
            f"oldest active observation:        median {statistics.median(staleness):.1f} s, "
            f"worst {max(staleness):.1f} s"
        )
    print(f"history rows written:             {HistoryEntry.objects.count()}")
    if write_seconds:
        median_ms = 1000 * statistics.median(write_seconds)
        print(
            f"round write transaction:          median {median_ms:.1f} ms, "
            f"worst {1000 * max(write_seconds):.1f} ms over {len(write_seconds)} rounds"
        )


if __name__ == "__main__":
    main()
