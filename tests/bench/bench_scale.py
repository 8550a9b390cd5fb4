"""Benchmark: the pages, retention and table sizes with 20 million history rows.

Fills a database of its own with the admin benchmark's data at scale (bench_admin.fill,
INSERT ... SELECT generate_series): --conferences conferences, --history history runs and
--events events spread evenly over --days days, the newest now, --busy-percent of them on
the first --busy conferences. The secondary indexes of history and events are dropped for
the fill and built again after it (one sort per index instead of 20 million scattered
inserts), and foreign keys are not checked row by row meanwhile (the rows are made to
match). Then, signed in as a superuser through Django's test client (the whole request),
it asks each URL below --repeat times after one warm-up and prints the median, the p95,
the slowest answer and the size, and per page the p95 against the target (100 ms):

- the overview's first page, filtered and searched;
- a busy conference's page with a 7-day chart, and a typical one's;
- the admin changelists of history, events and conferences.

Then it plays --retention-days days: each day one day of history and events is added at
the head (the newest end), and the product's retention (retention.prune, as beat runs it,
with the clock moved on a day, so that the oldest day falls out) is run until that day's
old rows are gone; autovacuum does what it does in production: when a table has reached
its autovacuum thresholds, the benchmark waits (at most --vacuum-wait seconds) for it;
on a server with autovacuum off (a test server), it runs VACUUM on those tables itself.
It prints each day's retention passes (target: a pass under 5 s) and the size of each
table and index after each day, to show whether they grow day over day. Last comes one
JSON line with the figures.

    .venv/bin/python tests/bench/bench_scale.py [--conferences 10000] [--history 20000000]
        [--events 20000000] [--days 180] [--busy 50] [--busy-percent 80] [--repeat 20]
        [--retention-days 5] [--vacuum-wait 600] [--keep] [--reuse]

Its database (BENCH_SCALE_DATABASE_URL, default confwatch_bench_scale) is created and
migrated at the start and dropped at the end (--keep leaves it for EXPLAIN, and for
--reuse, which measures and plays more days on it without filling it again); the demo's
database is never touched. DEBUG is off, as in production.
"""

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.bench import bench_admin, bench_pages  # noqa: E402  (they set the environment)
from tests.bench.common import drop_database, fresh_database, percentile, print_table  # noqa: E402

os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_SCALE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/confwatch_bench_scale"
)

PAGE_TARGET_MS = 100.0
PASS_TARGET_S = 5.0
TABLES = ("conferences_historyentry", "conferences_event")
MB = 1024 * 1024


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conferences", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=20_000_000)
    parser.add_argument("--events", type=int, default=None, help="default: as many as history")
    parser.add_argument("--days", type=int, default=180, help="the span of the rows")
    parser.add_argument("--busy", type=int, default=50, help="busy conferences")
    parser.add_argument("--busy-percent", type=int, default=80, help="their share of the rows")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per URL")
    parser.add_argument("--retention-days", type=int, default=5, help="days of retention played")
    parser.add_argument("--vacuum-wait", type=float, default=600, help="seconds, at most")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure and play more days on the database a --keep run left, without "
        "filling it again (same --conferences, --history, --events, --days and --busy)",
    )
    args = parser.parse_args()
    args.events = args.history if args.events is None else args.events
    if args.conferences < max(10, args.busy + 1) or args.history < args.conferences:
        parser.error("more conferences than busy ones, at least 10, and one history row each")
    return args


@contextmanager
def secondary_indexes_dropped(tables):
    """Drop the tables' indexes other than their primary keys, then build them again."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.tablename = ANY(%s) AND NOT EXISTS (
                SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            """,
            [list(tables)],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        cursor.execute("RESET maintenance_work_mem")


def fill(args):
    """The data; returns (busy conference, typical conference) primary keys."""
    from django.db import connection

    with connection.cursor() as cursor:
        # Foreign keys are not checked row by row during the fill (the rows match).
        cursor.execute("SET session_replication_role = replica")
    with secondary_indexes_dropped(TABLES):
        first = bench_pages.fill(
            conferences=args.conferences,
            history=args.history,
            events=args.events,
            days=args.days,
            busy=args.busy,
            busy_percent=args.busy_percent,
        )
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = DEFAULT")
        point_at_current_runs(cursor)
        cursor.execute("ANALYZE")
    return first, first + args.busy + 1234 % (args.conferences - args.busy)


def kept_data(args):
    """(busy conference, typical conference, newest row's time) of a kept database, for
    --reuse: the pks as fill chose them, the days played on from its newest row."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM conferences_conference")
        first = cursor.fetchone()[0]
        cursor.execute("SELECT max(first_seen_at) FROM conferences_historyentry")
        newest = cursor.fetchone()[0]
    if first is None or newest is None:
        sys.exit("--reuse: the database holds no kept data (run with --keep first)")
    return first, first + args.busy + 1234 % (args.conferences - args.busy), newest


def point_at_current_runs(cursor, since=0):
    """Each conference's latest_history: its newest run (among those with id > since)."""
    cursor.execute(
        """
        UPDATE conferences_conference c SET latest_history_id = h.id
        FROM (SELECT conference_id, max(id) AS id FROM conferences_historyentry
              WHERE id > %s GROUP BY conference_id) h
        WHERE h.conference_id = c.id
        """,
        [since],
    )


def page_urls(busy, typical):
    overview = bench_pages.overview_urls()
    return {
        "overview": {
            "first page": "/",
            "active": overview["active"],
            "account + tag": overview["account + tag"],
            "search label": overview["search label"],
        },
        "conference page, 7-day chart": {
            "busy conference": f"/conferences/{busy}/?range=7d",
            "typical conference": f"/conferences/{typical}/?range=7d",
        },
        "admin history": {
            "first page": "/admin/conferences/historyentry/",
            "state created": "/admin/conferences/historyentry/?state=created",
            "busy conference": f"/admin/conferences/historyentry/?conference={busy}",
        },
        "admin events": {
            "first page": "/admin/conferences/event/",
            "kind hold": "/admin/conferences/event/?kind__exact=hold_changed",
        },
        "admin conferences": {
            "first page": "/admin/conferences/conference/",
            "search": "/admin/conferences/conference/?q=globex",
            "active": "/admin/conferences/conference/?state=active",
        },
    }


def measure_pages(client, urls, repeat):
    """Print a table per page and the summary; returns {page: p95 ms}."""
    summary = {"p95 ms": {}, "target ms": {}, "verdict": {}}
    p95s = {}
    for page, rows in urls.items():
        table = {"p50 ms": {}, "p95 ms": {}, "max ms": {}, "KB": {}, "URL": {}}
        every = []
        for name, url in rows.items():
            times, size = bench_pages.measure(client, url, repeat)
            every += times
            table["p50 ms"][name] = f"{statistics.median(times):.1f}"
            table["p95 ms"][name] = f"{percentile(times, 0.95):.1f}"
            table["max ms"][name] = f"{max(times):.1f}"
            table["KB"][name] = f"{size / 1024:.1f}"
            table["URL"][name] = url
        print(f"\n{page}")
        print_table(table)
        p95s[page] = percentile(every, 0.95)
        summary["p95 ms"][page] = f"{p95s[page]:.1f}"
        summary["target ms"][page] = f"< {PAGE_TARGET_MS:.0f}"
        summary["verdict"][page] = "PASS" if p95s[page] < PAGE_TARGET_MS else "ABOVE TARGET"
    print("\npages (p95 over every URL of the page)")
    print_table(summary)
    return p95s


def sizes():
    """{relation: bytes}: each table whole (with its indexes and TOAST), its heap, and
    each of its indexes."""
    from django.db import connection

    found = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(
                "SELECT pg_total_relation_size(%s), pg_relation_size(%s)", [table, table]
            )
            total, heap = cursor.fetchone()
            short = table.removeprefix("conferences_")
            found[f"{short} total"] = total
            found[f"{short} heap"] = heap
            cursor.execute(
                "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
                "WHERE relname = %s ORDER BY indexrelname",
                [table],
            )
            for index, size in cursor.fetchall():
                found[f"  {index}"] = size
    return found


def autovacuum_state():
    """{table: (autovacuum runs so far, whether autovacuum is due now)}, the thresholds
    read as autovacuum reads them: the table's own storage parameters, else the server's."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, setting::float FROM pg_settings WHERE name IN ("
            "'autovacuum_vacuum_threshold', 'autovacuum_vacuum_scale_factor', "
            "'autovacuum_vacuum_insert_threshold', 'autovacuum_vacuum_insert_scale_factor')"
        )
        server = dict(cursor.fetchall())
        cursor.execute(
            """
            SELECT s.relname, s.autovacuum_count, s.n_dead_tup, s.n_ins_since_vacuum,
                   greatest(c.reltuples, 0), coalesce(c.reloptions, '{}')
            FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
            WHERE s.relname = ANY(%s)
            """,
            [list(TABLES)],
        )
        state = {}
        for table, runs, dead, inserted, tuples, options in cursor.fetchall():
            own = dict(option.split("=", 1) for option in options)

            def setting(name, own=own):
                return float(own.get(name, server[name]))

            vacuum_at = setting("autovacuum_vacuum_threshold")
            vacuum_at += setting("autovacuum_vacuum_scale_factor") * tuples
            insert_at = setting("autovacuum_vacuum_insert_threshold")
            insert_at += setting("autovacuum_vacuum_insert_scale_factor") * tuples
            state[table] = (runs, dead > vacuum_at or inserted > insert_at)
    return state


def wait_for_autovacuum(limit):
    """Wait, at most `limit` seconds, until autovacuum has run on every table that was
    due; returns the seconds waited."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        if cursor.fetchone()[0] != "on":
            # A test server (the CI one turns it off): do what autovacuum would have, with
            # the same thresholds, so that bloat is judged as in production.
            started = time.monotonic()
            time.sleep(1)  # the statistics of the last transactions reach the server
            due = sorted(table for table, (_, is_due) in autovacuum_state().items() if is_due)
            for table in due:
                cursor.execute(f'VACUUM "{table}"')
            print(f"  autovacuum is off on this server: vacuumed what was due ({due or 'none'})")
            return time.monotonic() - started
    started = time.monotonic()
    time.sleep(1)  # the statistics of the last transactions reach the server
    before = autovacuum_state()
    due = {table for table, (_, is_due) in before.items() if is_due}
    while due and time.monotonic() - started < limit:
        time.sleep(2)
        now = autovacuum_state()
        due = {table for table in due if now[table][0] == before[table][0]}
    if due:
        print(f"  autovacuum had not run on {', '.join(sorted(due))} after {limit:.0f} s")
    return time.monotonic() - started


def play_retention(args, first, base):
    """Day by day: one day of rows at the head, the oldest day pruned; returns the passes'
    durations by day, the rows they deleted and the sizes after each day."""
    from django.db import connection

    from conferences.registry import retention

    per_day = {"history": args.history // args.days, "events": args.events // args.days}
    spread = {"busy": args.busy, "busy_percent": args.busy_percent}
    days = {"before": sizes()}
    passes = {}
    deleted = {}
    print(
        f"\nretention: each day {per_day['history']:,} history runs and {per_day['events']:,} "
        "events added at the head, the day past the retention pruned"
    )
    for day in range(1, args.retention_days + 1):
        end = base + timedelta(days=day)
        with connection.cursor() as cursor:
            cursor.execute("SELECT max(id) FROM conferences_historyentry")
            newest = cursor.fetchone()[0]
        started = time.perf_counter()
        bench_admin.fill_history(
            first=first,
            conferences=args.conferences,
            rows=per_day["history"],
            end=end,
            seconds_apart=86400 / per_day["history"],
            start=args.history + day * per_day["history"],
            **spread,
        )
        bench_admin.fill_events(
            first=first,
            conferences=args.conferences,
            rows=per_day["events"],
            end=end,
            seconds_apart=86400 / per_day["events"],
            start=args.events + day * per_day["events"],
            **spread,
        )
        with connection.cursor() as cursor:
            point_at_current_runs(cursor, since=newest)
        filled = time.perf_counter() - started
        passes[day], deleted[day] = [], {}
        while True:
            started = time.perf_counter()
            result = retention.prune(now=end)
            passes[day].append(time.perf_counter() - started)
            for name, count in result.deleted.items():
                deleted[day][name] = deleted[day].get(name, 0) + count
            if not result.unfinished:
                break
        waited = wait_for_autovacuum(args.vacuum_wait)
        runs = {table: runs for table, (runs, _) in autovacuum_state().items()}
        days[f"day {day}"] = sizes()
        print(
            f"  day {day}: filled in {filled:.1f} s; {len(passes[day])} retention passes, "
            f"slowest {max(passes[day]):.2f} s, all {sum(passes[day]):.2f} s, deleted "
            f"{deleted[day].get('history entries', 0):,} history runs and "
            f"{deleted[day].get('events', 0):,} events; waited {waited:.0f} s for "
            f"autovacuum (runs so far: {runs})"
        )
    print("\ntable and index sizes (MB) after each day")
    print_table(
        {
            day: {name: f"{size / MB:.1f}" for name, size in found.items()}
            for day, found in days.items()
        }
    )
    return passes, deleted, days


def main():
    args = parse_args()
    if args.reuse:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)  # the kept database may predate a migration
    else:
        fresh_database()
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    try:
        started = time.perf_counter()
        if args.reuse:
            busy, typical, base = kept_data(args)
        else:
            busy, typical = fill(args)
            base = timezone.now()
        fill_seconds = time.perf_counter() - started
        print(
            f"{'reused' if args.reuse else 'filled'} {args.conferences:,} conferences, "
            f"{args.history:,} history runs and {args.events:,} events over {args.days} days "
            f"({args.busy_percent}% on {args.busy} busy conferences) in {fill_seconds:.0f} s"
        )
        user, _ = get_user_model().objects.get_or_create(
            username="bench", defaults={"is_staff": True, "is_superuser": True}
        )
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        load = os.getloadavg()[0]
        p95s = measure_pages(client, page_urls(busy, typical), args.repeat)
        print(f"load average {load:.1f} before the pages, {os.getloadavg()[0]:.1f} after")
        passes, deleted, days = play_retention(args, busy, base)
        every_pass = [seconds for day in passes.values() for seconds in day]
        slowest = max(every_pass)
        verdict = "PASS" if slowest < PASS_TARGET_S else "ABOVE TARGET"
        print(
            f"\nretention pass: slowest {slowest:.2f} s, median "
            f"{statistics.median(every_pass):.2f} s (target < {PASS_TARGET_S:.0f} s) {verdict}"
        )
        first_day, last_day = days["day 1"], days[f"day {args.retention_days}"]
        growth = {
            name: round((last_day[name] - first_day[name]) / MB, 1)
            for name in first_day
            if not name.startswith(" ")
        }
        print(f"growth from day 1 to day {args.retention_days} (MB): {growth}")
        print(
            json.dumps(
                {
                    "history_rows": args.history,
                    "event_rows": args.events,
                    "fill_s": round(fill_seconds, 1),
                    **{
                        f"{page.replace(' ', '_').replace(',', '')}_p95_ms": round(p95, 1)
                        for page, p95 in p95s.items()
                    },
                    "retention_pass_max_s": round(slowest, 2),
                    "retention_day_s": [round(sum(day), 2) for day in passes.values()],
                    "total_mb": {
                        day: {
                            name: round(size / MB, 1)
                            for name, size in found.items()
                            if name.endswith("total")
                        }
                        for day, found in days.items()
                    },
                    "growth_mb": growth,
                }
            )
        )
    finally:
        if not args.keep:
            drop_database()


if __name__ == "__main__":
    main()
