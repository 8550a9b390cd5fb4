"""Benchmark: what evaluating the rules adds to every alert pass.

Fills a database of its own with --conferences conferences (a quarter each created,
active alone, active on hold, completed) and --runs history runs each (set-based SQL),
and --subscriptions subscriptions to every conference with the rules alone, all_held,
members_drop and schedule. Then times `rules.evaluate` (run at the start of every alert
pass, every CONFWATCH_ALERT_SECONDS) --repeat times after the first pass, which fires
what holds, and prints the median, the 95th percentile and the slowest pass, the
history runs read, and the first pass's events.

    .venv/bin/python tests/bench/bench_rules.py [--conferences 2000] [--runs 20]
        [--subscriptions 3] [--repeat 10]

It uses a database of its own (BENCH_RULES_DATABASE_URL, default confwatch_bench_rules),
created and migrated at the start and dropped at the end; the demo's database is never
touched.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_RULES_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/confwatch_bench_rules"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("CONFWATCH_ALLOWED_API_HOSTS", "127.0.0.1,localhost")
os.environ["LOG_LEVEL"] = "WARNING"
os.environ["DEBUG"] = "false"

from tests.bench.common import drop_database, fresh_database, percentile, print_table  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conferences", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=20, help="history runs per conference")
    parser.add_argument("--subscriptions", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    if args.conferences < 4 or args.runs < 1 or args.subscriptions < 1 or args.repeat < 1:
        parser.error("at least 4 conferences, 1 run, 1 subscription and 1 repeat")
    return args


def fill(*, conferences, runs, subscriptions):
    from django.db import connection

    from conferences.models import Subscription
    from conferences.registry import tracking

    tracking.add_account(
        name="acme", user_id="u-acme", token="t", secret="s", base_url="http://127.0.0.1:9"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM conferences_account")
        account = cursor.fetchone()[0]
        # g % 4: 0 created, 1 active alone, 2 active on hold, 3 completed. A created
        # conference was never active: all its runs are "created".
        cursor.execute(
            """
            INSERT INTO conferences_conference (
                account_id, conference_id, label, tags, paused, state, active_members,
                hold, mute, poll_status, poll_error, consecutive_failures, next_poll_at,
                tracked_at)
            SELECT %(account)s, 'conf-' || g, 'Call ' || g, ARRAY['vip'], false,
                (ARRAY['created', 'active', 'active', 'completed'])[1 + g %% 4],
                (ARRAY[0, 1, 5, 0])[1 + g %% 4], g %% 4 = 2, false, 'ok', '', 0, now(),
                now()
            FROM generate_series(1, %(n)s) AS g
            """,
            {"account": account, "n": conferences},
        )
        cursor.execute(
            """
            INSERT INTO conferences_historyentry (
                conference_id, state, active_members, hold, mute, first_seen_at,
                last_seen_at)
            SELECT c.id,
                CASE WHEN r = %(runs)s OR c.state = 'created' THEN c.state ELSE 'active' END,
                CASE WHEN r = %(runs)s OR c.state = 'created' THEN c.active_members
                    ELSE 2 + r %% 5 END,
                CASE WHEN r = %(runs)s THEN c.hold ELSE false END, false,
                now() - ((%(runs)s - r + 1) * interval '5 minutes'),
                now() - ((%(runs)s - r + 1) * interval '5 minutes') + interval '4 minutes'
            FROM conferences_conference c CROSS JOIN generate_series(1, %(runs)s) AS r
            """,
            {"runs": runs},
        )
        cursor.execute("VACUUM ANALYZE")
    for index in range(subscriptions):
        Subscription.objects.create(
            email=f"ops{index}@example.com",
            kinds=["alone", "all_held", "members_drop", "schedule"],
            rule_after_seconds=60,
            drop_percent=50,
            expect_schedule="Mon,Tue,Wed,Thu,Fri,Sat,Sun 00:00 UTC",
            grace_seconds=60,
        )


def main():
    args = parse_args()
    fresh_database()
    from django.db import connection, reset_queries
    from django.utils import timezone

    from conferences.alerting import rules

    try:
        fill(conferences=args.conferences, runs=args.runs, subscriptions=args.subscriptions)
        first = rules.evaluate(now=timezone.now())
        timings = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            again = rules.evaluate(now=timezone.now())
            timings.append((time.perf_counter() - start) * 1000)
            assert again == [], f"a second pass fired again: {again[:3]}"
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.runcall(rules.evaluate, now=timezone.now())
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
        connection.force_debug_cursor = True
        reset_queries()
        rules.evaluate(now=timezone.now())
        queries = len(connection.queries)
        connection.force_debug_cursor = False
        p95 = percentile(timings, 0.95)
        label = (
            f"{args.conferences} conferences x {args.runs} runs, "
            f"{args.subscriptions} subscriptions x 4 rules"
        )
        print_table(
            {
                "median ms": {label: f"{statistics.median(timings):.0f}"},
                "p95 ms": {label: f"{p95:.0f}"},
                "max ms": {label: f"{max(timings):.0f}"},
                "queries": {label: str(queries)},
                "first pass events": {label: str(len(first))},
            }
        )
    finally:
        drop_database()


if __name__ == "__main__":
    main()
