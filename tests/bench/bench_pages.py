"""Benchmark: how fast the dashboard's pages answer on a big database.

Fills a database of its own with --conferences conferences and --history history rows
(the admin benchmark's set-based fill: INSERT ... SELECT generate_series, plus events,
poll errors, status changes and deliveries in proportion), then, signed in through
Django's test client (the whole request: middleware, view, templates, Postgres), asks
each URL below --repeat times after one warm-up and prints per URL the median, the 95th
percentile, the slowest answer and the size, and per page the 95th percentile of all its
answers next to the target (100 ms), PASS or ABOVE TARGET:

- the overview's first page, with and without filters, sorts and search;
- its live refresh when nothing changed (the htmx poll that answers 204);
- its live refresh when something changed (the partial, rendered again).

    .venv/bin/python tests/bench/bench_pages.py [--conferences 5000] [--history 2000000]
        [--repeat 20] [--keep]

Its database (BENCH_PAGES_DATABASE_URL, default confwatch_bench_pages) is created and
migrated at the start and dropped at the end (--keep leaves it for EXPLAIN); the demo's
database is never touched. DEBUG is off, as in production.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.bench import bench_admin  # noqa: E402  (sets the environment for Django)
from tests.bench.common import drop_database, fresh_database, percentile, print_table  # noqa: E402

os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_PAGES_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/confwatch_bench_pages"
)

TARGET_MS = 100.0
HTMX = {"HX-Request": "true"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conferences", type=int, default=5000)
    parser.add_argument("--history", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per URL")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if args.conferences < 10 or args.history < args.conferences:
        parser.error("at least 10 conferences and one history row each")
    return args


def fill(*, conferences, history, **spread):
    """The admin benchmark's data (`spread`: how it lays history and events out, see
    bench_admin.fill). Conferences polled fine count as observed an hour
    ahead: the run takes minutes, and polling would keep them fresh meanwhile (else they
    turn stale one by one and every refresh finds a change)."""
    from django.db import connection

    first = bench_admin.fill(conferences=conferences, history=history, **spread)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE conferences_conference SET last_observed_at = now() + interval '1 hour' "
            "WHERE poll_status = 'ok'"
        )
        cursor.execute("VACUUM ANALYZE conferences_conference")
    return first


def overview_urls():
    from conferences.models import Account

    account = Account.objects.get(name="globex").pk
    return {
        "default order": "/",
        "active": "/?state=active",
        "problems": "/?health=problem",
        "account + tag": f"/?account={account}&tag=vip",
        "search label": "/?q=Board+call",
        "search from": "/?q=%2B15550001234",
        "hold + mute + paused": "/?hold=on&mute=on&tracking=all",
        "sort members": "/?sort=-members",
        "sort label": "/?sort=label",
        "page 40": "/?page=40",
    }


def measure(client, url, repeat, *, status=200, headers=None):
    response = client.get(url, headers=headers)  # warm-up
    if response.status_code != status:
        raise SystemExit(f"{url} answered {response.status_code}, not {status}")
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
    return times, len(response.content)


def version_of(client, url):
    """The version an open page would send with its next live refresh."""
    import re

    html = client.get(url, headers=HTMX).content.decode()
    return re.search(r'id="overview-live".*?[?&](?:amp;)?v=([0-9a-f]+)', html, re.S).group(1)


def with_version(url, version):
    return f"{url}{'&' if '?' in url else '?'}v={version}"


def pages(client):
    """{page: {row name: (url, expected status, headers)}}: what the benchmark asks."""
    urls = overview_urls()
    return {
        "overview first page": {name: (url, 200, None) for name, url in urls.items()},
        "live refresh, nothing changed (204)": {
            name: (with_version(url, version_of(client, url)), 204, HTMX)
            for name, url in urls.items()
        },
        "live refresh, changed (partial)": {
            name: (with_version(url, "0"), 200, HTMX) for name, url in urls.items()
        },
    }


def main():
    args = parse_args()
    fresh_database()
    from django.contrib.auth import get_user_model
    from django.test import Client

    try:
        started = time.perf_counter()
        fill(conferences=args.conferences, history=args.history)
        print(
            f"filled {args.conferences:,} conferences and {args.history:,} history rows "
            f"(+ events, errors, changes, deliveries) in {time.perf_counter() - started:.1f} s"
        )
        user = get_user_model().objects.create_superuser("bench", password="bench-password-1")
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        summary = {"p95 ms": {}, "target ms": {}, "verdict": {}}
        for page, rows in pages(client).items():
            table = {"p50 ms": {}, "p95 ms": {}, "max ms": {}, "KB": {}, "URL": {}}
            every = []
            for name, (url, status, headers) in rows.items():
                times, size = measure(client, url, args.repeat, status=status, headers=headers)
                every += times
                table["p50 ms"][name] = f"{statistics.median(times):.1f}"
                table["p95 ms"][name] = f"{percentile(times, 0.95):.1f}"
                table["max ms"][name] = f"{max(times):.1f}"
                table["KB"][name] = f"{size / 1024:.1f}"
                table["URL"][name] = url
            print(f"\n{page}")
            print_table(table)
            p95 = percentile(every, 0.95)
            summary["p95 ms"][page] = f"{p95:.1f}"
            summary["target ms"][page] = f"< {TARGET_MS:.0f}"
            summary["verdict"][page] = "PASS" if p95 < TARGET_MS else "ABOVE TARGET"
        print("\nsummary (p95 over every URL of the page)")
        print_table(summary)
        verdicts = set(summary["verdict"].values())
        print("\nall PASS" if verdicts == {"PASS"} else "\nsome ABOVE TARGET")
    finally:
        if not args.keep:
            drop_database()


if __name__ == "__main__":
    main()
