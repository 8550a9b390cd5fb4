"""Benchmark: how fast the conference page answers on a big database.

Fills a database of its own with --conferences conferences and --history history rows in
all (INSERT ... SELECT generate_series), poll errors, events and status changes in
proportion. A typical conference has about 400 runs over 46 days; a big one has a run
every 2 minutes for the last 7 days (5,040 runs); a busy one, the stress case, a run
every 10 s for 7 days (60,480 runs), as many member events, 200 polling problems and
their recoveries. Then, signed in through Django's test client (the whole request:
middleware, view, template, Postgres), it asks each URL below --repeat times after one
warm-up request and prints the median, the 95th percentile, the slowest answer and the
size, and the verdicts on the targets: the typical and the big conference's page with a
7-day chart, and the big one's live refresh (the 204 of "nothing changed" and a
refresh that renders), under 100 ms at the 95th percentile. The busy conference's
figures are printed next to them, without a target.

    .venv/bin/python tests/bench/bench_conference_page.py [--conferences 5000]
        [--history 2000000] [--repeat 30] [--keep]

It uses a database of its own (BENCH_CONFERENCE_DATABASE_URL, default
confwatch_bench_conference), created and migrated at the start and dropped at the end
(--keep leaves it for EXPLAIN); the demo's database is never touched. DEBUG is off, as
in production.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_CONFERENCE_DATABASE_URL",
    "postgres://postgres@127.0.0.1:5432/confwatch_bench_conference",
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("CONFWATCH_ALLOWED_API_HOSTS", "127.0.0.1,localhost")
os.environ["LOG_LEVEL"] = "WARNING"
os.environ["DEBUG"] = "false"

from tests.bench.common import add_accounts, drop_database, fresh_database, percentile, print_table  # noqa: E402

TARGET_MS = 100.0
ACCOUNTS = ["acme", "globex", "initech", "umbrella", "hooli"]
BUSY_RUNS = 7 * 24 * 360  # one run every 10 s for 7 days
BIG_RUNS = 7 * 24 * 30  # one run every 2 minutes for 7 days


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conferences", type=int, default=5000)
    parser.add_argument("--history", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per URL")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if args.conferences < 10 or args.history < args.conferences + BUSY_RUNS + BIG_RUNS:
        parser.error(f"at least 10 conferences and {BUSY_RUNS + BIG_RUNS:,} + one history row each")
    return args


def fill(*, conferences, history):
    """Accounts through the service (encrypted credentials), the rest in set-based SQL.
    Returns the busy, the big and a typical conference's primary keys."""
    from django.db import connection

    add_accounts(ACCOUNTS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM conferences_account")
        first_account = cursor.fetchone()[0]
        cursor.execute(
            """
            INSERT INTO conferences_conference (
                account_id, conference_id, label, tags, paused, state, active_members,
                hold, mute, from_number, created_time, last_changed_at, poll_status,
                poll_error, consecutive_failures, last_polled_at, last_observed_at,
                next_poll_at, tracked_at)
            SELECT
                %(first_account)s + g %% 5,
                'conf-' || substr(md5(g::text), 1, 16),
                (ARRAY['Board call', 'Sales stand-up', 'Ops war room', 'Partner sync',
                       'Support bridge'])[1 + g %% 5] || ' ' || g,
                CASE g %% 4 WHEN 0 THEN ARRAY['acme', 'vip'] ELSE ARRAY[]::varchar[] END,
                g %% 15 = 0,
                (ARRAY['created', 'active', 'active', 'active'])[1 + g %% 4],
                g %% 12, g %% 7 = 0, g %% 3 = 0,
                '+1555' || lpad(g::text, 7, '0'),
                now() - (g || ' minutes')::interval,
                now() - (g || ' seconds')::interval,
                'ok', '', 0, now(), now(), now(), now()
            FROM generate_series(1, %(conferences)s) AS g
            """,
            {"first_account": first_account, "conferences": conferences},
        )
        cursor.execute("SELECT min(id) FROM conferences_conference")
        busy = cursor.fetchone()[0]
        params = {
            "busy": busy,
            "big": busy + 1,
            "n": conferences - 2,
            "rows": history - BUSY_RUNS - BIG_RUNS,
            "busy_rows": BUSY_RUNS,
            "big_rows": BIG_RUNS,
        }
        # Every other conference: round-robin, one run every 2 s overall (about 400
        # runs each over 46 days), the newest now.
        cursor.execute(
            """
            INSERT INTO conferences_historyentry (
                conference_id, state, active_members, hold, mute, first_seen_at,
                last_seen_at)
            SELECT
                %(busy)s + 2 + g %% %(n)s,
                CASE WHEN g <= %(n)s THEN 'created' ELSE 'active' END,
                g %% 9, g %% 13 = 0, g %% 5 = 0,
                now() - ((%(rows)s - g) * 2 || ' seconds')::interval,
                now() - ((%(rows)s - g) * 2 - 1 || ' seconds')::interval
            FROM generate_series(1, %(rows)s) AS g
            """,
            params,
        )
        # The busy conference: a run every 10 s for 7 days, hold and mute now and then.
        cursor.execute(
            """
            INSERT INTO conferences_historyentry (
                conference_id, state, active_members, hold, mute, first_seen_at,
                last_seen_at)
            SELECT %(busy)s, CASE WHEN g = 1 THEN 'created' ELSE 'active' END,
                   CASE WHEN g = 1 THEN 0 ELSE 1 + g %% 17 END,
                   (g / 360) %% 5 = 0, (g / 500) %% 7 = 0,
                   now() - ((%(busy_rows)s - g) * 10 || ' seconds')::interval,
                   now() - ((%(busy_rows)s - g) * 10 - 9 || ' seconds')::interval
            FROM generate_series(1, %(busy_rows)s) AS g
            """,
            params,
        )
        # The big conference: a run every 2 minutes for 7 days.
        cursor.execute(
            """
            INSERT INTO conferences_historyentry (
                conference_id, state, active_members, hold, mute, first_seen_at,
                last_seen_at)
            SELECT %(big)s, CASE WHEN g = 1 THEN 'created' ELSE 'active' END,
                   CASE WHEN g = 1 THEN 0 ELSE 1 + g %% 11 END,
                   (g / 30) %% 5 = 0, (g / 40) %% 7 = 0,
                   now() - ((%(big_rows)s - g) * 120 || ' seconds')::interval,
                   now() - ((%(big_rows)s - g) * 120 - 110 || ' seconds')::interval
            FROM generate_series(1, %(big_rows)s) AS g
            """,
            params,
        )
        cursor.execute(
            """
            UPDATE conferences_conference c SET latest_history_id = h.id, state = h.state,
                active_members = h.active_members, hold = h.hold, mute = h.mute,
                last_changed_at = h.first_seen_at
            FROM (SELECT DISTINCT ON (conference_id) * FROM conferences_historyentry
                  ORDER BY conference_id, first_seen_at DESC) h
            WHERE h.conference_id = c.id
            """
        )
        cursor.execute(
            """
            UPDATE conferences_conference c SET state_since = h.since
            FROM (SELECT conference_id, state, min(first_seen_at) AS since
                  FROM conferences_historyentry GROUP BY conference_id, state) h
            WHERE h.conference_id = c.id AND h.state = c.state
            """
        )
        cursor.execute(
            """
            INSERT INTO conferences_pollerror (conference_id, poll_status, message,
                first_seen_at, last_seen_at, occurrences)
            SELECT CASE WHEN g <= 200 THEN %(busy)s WHEN g <= 300 THEN %(big)s
                        ELSE %(busy)s + 2 + g %% %(n)s END,
                   (ARRAY['not_found', 'unreachable', 'rate_limited'])[1 + g %% 3],
                   'Catapult unreachable: timed out',
                   now() - (g * 3000 || ' seconds')::interval,
                   now() - (g * 3000 - 60 || ' seconds')::interval, 1 + g %% 4
            FROM generate_series(1, %(rows)s / 40) AS g
            """,
            params,
        )
        # Events: the busy conference's members changes and recoveries, and the others'.
        cursor.execute(
            """
            INSERT INTO conferences_event (kind, account_id, conference_id, occurred_at,
                before, after, detail, source, handled_at, created_at)
            SELECT CASE WHEN g %% 300 = 0 THEN 'polling_recovered' ELSE 'members_changed' END,
                   c.account_id, c.id, now() - (g * 10 || ' seconds')::interval,
                   to_jsonb(g %% 5), to_jsonb(g %% 6),
                   jsonb_build_object('since', now() - (g * 10 + 120 || ' seconds')::interval),
                   'poll', now(), now()
            FROM generate_series(1, %(busy_rows)s) AS g
            JOIN conferences_conference c ON c.id = %(busy)s
            """,
            params,
        )
        cursor.execute(
            """
            INSERT INTO conferences_event (kind, account_id, conference_id, occurred_at,
                before, after, detail, source, handled_at, created_at)
            SELECT (ARRAY['members_changed', 'state_changed', 'hold_changed',
                          'mute_changed'])[1 + g %% 4],
                   c.account_id, c.id, now() - (g || ' seconds')::interval,
                   to_jsonb(g %% 5), to_jsonb(g %% 6), '{}'::jsonb, 'poll', now(), now()
            FROM generate_series(1, %(rows)s / 10) AS g
            JOIN conferences_conference c ON c.id = %(busy)s + 2 + g %% %(n)s
            """,
            params,
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return busy, busy + 1, busy + 2 + 1234 % (conferences - 2)


def request(client, url, *, status, htmx):
    """One timed request (ms) and the size of its answer."""
    headers = {"HX-Request": "true"} if htmx else {}
    started = time.perf_counter()
    response = client.get(url, headers=headers)
    if response.streaming:
        size = sum(len(chunk) for chunk in response.streaming_content)
    else:
        size = len(response.content)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != status:
        raise SystemExit(f"{url} answered {response.status_code}, not {status}")
    return elapsed, size


def measure(client, urls, repeat):
    """{name: (times, size)}, the URLs asked in turn (so that a burst of load elsewhere on
    the machine falls on all of them alike), after one warm-up request each."""
    for url, status, htmx in urls.values():
        request(client, url, status=status, htmx=htmx)
    times = {name: [] for name in urls}
    sizes = {}
    for round_number in range(repeat):
        for name, (url, status, htmx) in urls.items():
            if "export" in name and round_number % 10:
                continue  # an export takes long: one in ten rounds
            elapsed, sizes[name] = request(client, url, status=status, htmx=htmx)
            times[name].append(elapsed)
    return {name: (times[name], sizes[name]) for name in urls}


def live_version(client, url):
    import re

    text = client.get(url, headers={"HX-Request": "true"}).content.decode()
    return re.search(r"v=([0-9a-f]+)", text).group(1)


def main():
    args = parse_args()
    fresh_database()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from conferences.models import HistoryEntry
    from conferences.web.selectors.timeline import Cursor

    try:
        started = time.perf_counter()
        busy, big, typical = fill(conferences=args.conferences, history=args.history)
        print(
            f"filled {args.conferences:,} conferences and {args.history:,} history rows "
            f"(the big one: {BIG_RUNS:,} runs in 7 days, the busy one: {BUSY_RUNS:,}) in "
            f"{time.perf_counter() - started:.1f} s"
        )
        user = get_user_model().objects.create_user("bench", password="bench-password-1")
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        big_page, busy_page = f"/conferences/{big}/", f"/conferences/{busy}/"
        middle = (
            HistoryEntry.objects.filter(conference_id=busy)
            .order_by("-first_seen_at")
            .values_list("first_seen_at", "id")[BUSY_RUNS // 2]
        )
        deep = Cursor(middle[0], 0, middle[1]).token()
        version = live_version(client, big_page + "?range=7d")
        targets = {
            "typical conference, 7-day chart": (f"/conferences/{typical}/?range=7d", 200, False),
            "big conference, 7-day chart": (big_page + "?range=7d", 200, False),
            "big, live refresh, nothing changed (204)": (
                big_page + f"?range=7d&v={version}",
                204,
                True,
            ),
            "big, live refresh that renders": (big_page + "?range=7d&v=old", 200, True),
        }
        others = {
            "big, all history": (big_page + "?range=all", 200, False),
            "busy conference, 1-hour chart": (busy_page + "?range=1h", 200, False),
            "busy, 24-hour chart": (busy_page + "?range=24h", 200, False),
            "busy, 7-day chart": (busy_page + "?range=7d", 200, False),
            "busy, live refresh that renders": (busy_page + "?range=7d&v=old", 200, True),
            "busy, timeline 30,000 runs deep": (
                busy_page + f"?range=7d&before={deep}",
                200,
                False,
            ),
            "busy, export of 7 days as CSV": (
                f"/conferences/{busy}/history.csv?range=7d",
                200,
                False,
            ),
        }
        columns = {"min ms": {}, "p50 ms": {}, "p95 ms": {}, "max ms": {}, "KB": {}}
        columns["target"] = {}
        verdicts = []
        load = os.getloadavg()[0]
        results = measure(client, {**targets, **others}, args.repeat)
        for name, (times, size) in results.items():
            p95 = percentile(times, 0.95)
            columns["min ms"][name] = f"{min(times):.1f}"
            columns["p50 ms"][name] = f"{statistics.median(times):.1f}"
            columns["p95 ms"][name] = f"{p95:.1f}"
            columns["max ms"][name] = f"{max(times):.1f}"
            columns["KB"][name] = f"{size / 1024:.1f}"
            if name in targets:
                verdict = "PASS" if p95 < TARGET_MS else "ABOVE TARGET"
                verdicts.append(verdict)
                columns["target"][name] = f"< {TARGET_MS:.0f} ms {verdict}"
        cores = os.cpu_count()
        print(f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
        print(f"({cores} cores; a load above {cores} slows every figure below)")
        print()
        print_table(columns)
        print()
        print("all PASS" if set(verdicts) == {"PASS"} else "some ABOVE TARGET")
    finally:
        if not args.keep:
            drop_database()


if __name__ == "__main__":
    main()
