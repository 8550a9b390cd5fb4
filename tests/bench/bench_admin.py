"""Benchmark: how fast the admin answers on a big database.

Fills a database of its own with --conferences conferences (5 accounts, tags, states,
poll outcomes) and --history history rows (INSERT ... SELECT generate_series, so a
2-million-row run fills in well under a minute), plus events, poll errors, status
changes and deliveries in proportion, and one conference with 5,000 history rows of its
own. Then, signed in as a superuser through Django's test client (the whole request:
middleware, admin, templates, Postgres), it asks each changelist URL below --repeat
times after one warm-up request and prints, per URL, the median, the 95th percentile,
the slowest answer and the page size, and per changelist the 95th percentile of all its
answers next to the target (300 ms), PASS or ABOVE TARGET.

    .venv/bin/python tests/bench/bench_admin.py [--conferences 5000] [--history 2000000]
        [--repeat 20] [--keep]

It uses a database of its own (BENCH_ADMIN_DATABASE_URL, default confwatch_bench_admin),
created and migrated at the start and dropped at the end (--keep leaves it for
EXPLAIN); the demo's database is never touched. DEBUG is off, as in production.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/confwatch_bench_admin"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("CONFWATCH_ALLOWED_API_HOSTS", "127.0.0.1,localhost")
os.environ["LOG_LEVEL"] = "WARNING"
os.environ["DEBUG"] = "false"

from tests.bench.common import add_accounts, drop_database, fresh_database, percentile  # noqa: E402

TARGET_MS = 300.0
ACCOUNTS = ["acme", "globex", "initech", "umbrella", "hooli"]
BIG_CONFERENCE_ROWS = 5000


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


def fill(*, conferences, history, events=None, days=None, busy=0, busy_percent=0):
    """Accounts through the service (encrypted credentials), the rest in set-based SQL.
    History runs one every 2 s and events (default a tenth as many) one a second, the
    newest now, or with `days` each spread evenly over that many days; busy_percent of
    them on the first `busy` conferences (fill_history, fill_events)."""
    from django.db import connection

    add_accounts(ACCOUNTS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM conferences_account")
        first_account = cursor.fetchone()[0]
        # Conferences: every 4th created, then active, completed, never observed; one
        # in 10 not found, one in 15 paused; tags from a small set; labels with words
        # support staff search for.
        cursor.execute(
            """
            INSERT INTO conferences_conference (
                account_id, conference_id, label, tags, paused, state, active_members,
                hold, mute, from_number, created_time, last_changed_at, poll_status,
                poll_error, consecutive_failures, last_polled_at, next_poll_at, tracked_at)
            SELECT
                %(first_account)s + g %% 5,
                'conf-' || substr(md5(g::text), 1, 16),
                (ARRAY['Board call', 'Sales stand-up', 'Ops war room', 'Partner sync',
                       'Support bridge'])[1 + g %% 5] || ' ' || g,
                CASE g %% 4 WHEN 0 THEN ARRAY['acme', 'vip'] WHEN 1 THEN ARRAY['globex']
                     WHEN 2 THEN ARRAY['demo', 'initech'] ELSE ARRAY[]::varchar[] END,
                g %% 15 = 0,
                (ARRAY['created', 'active', 'completed', NULL])[1 + g %% 4],
                CASE WHEN g %% 4 = 3 THEN NULL ELSE g %% 12 END,
                CASE WHEN g %% 4 = 3 THEN NULL ELSE g %% 7 = 0 END,
                CASE WHEN g %% 4 = 3 THEN NULL ELSE g %% 3 = 0 END,
                '+1555' || lpad(g::text, 7, '0'),
                now() - (g || ' minutes')::interval,
                now() - (g || ' seconds')::interval,
                CASE WHEN g %% 4 = 3 THEN 'pending' WHEN g %% 10 = 1 THEN 'not_found'
                     ELSE 'ok' END,
                CASE WHEN g %% 10 = 1 THEN 'Not found: conference (HTTP 404)' ELSE '' END,
                0,
                now() - (g %% 60 || ' seconds')::interval,
                now(),
                now()
            FROM generate_series(1, %(conferences)s) AS g
            """,
            {"first_account": first_account, "conferences": conferences},
        )
        cursor.execute("SELECT min(id) FROM conferences_conference")
        first = cursor.fetchone()[0]
        params = {"first": first, "n": conferences, "rows": history}
    events = history // 10 if events is None else events
    spread_over = {"busy": busy, "busy_percent": busy_percent}
    fill_history(
        first=first,
        conferences=conferences,
        rows=history,
        seconds_apart=days * 86400 / history if days else 2.0,
        **spread_over,
    )
    with connection.cursor() as cursor:
        # The last run of every 4th conference: completed.
        cursor.execute(
            """
            INSERT INTO conferences_historyentry (
                conference_id, state, active_members, hold, mute, first_seen_at,
                last_seen_at)
            SELECT id, 'completed', 0, false, false, now(), now()
            FROM conferences_conference WHERE state = 'completed'
            """
        )
        # One conference with 5,000 runs of its own (the page that took 4.7 s).
        cursor.execute(
            """
            INSERT INTO conferences_historyentry (
                conference_id, state, active_members, hold, mute, first_seen_at,
                last_seen_at)
            SELECT %(first)s, 'active', g %% 20, false, g %% 2 = 0,
                   now() - (g || ' minutes')::interval,
                   now() - (g || ' minutes')::interval + interval '30 seconds'
            FROM generate_series(1, %(big)s) AS g
            """,
            {"first": first, "big": BIG_CONFERENCE_ROWS},
        )
        cursor.execute(
            """
            INSERT INTO conferences_pollerror (conference_id, poll_status, message,
                first_seen_at, last_seen_at, occurrences)
            SELECT %(first)s + g %% %(n)s,
                   (ARRAY['not_found', 'unreachable', 'rate_limited'])[1 + g %% 3],
                   'Catapult unreachable: timed out', now() - (g || ' seconds')::interval,
                   now() - (g || ' seconds')::interval, 1 + g %% 4
            FROM generate_series(1, %(rows)s / 40) AS g
            """,
            params,
        )
    fill_events(
        first=first,
        conferences=conferences,
        rows=events,
        seconds_apart=days * 86400 / events if days else 1.0,
        **spread_over,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO conferences_delivery (kind, email, conference_id, status,
                send_after, attempts, last_error, attempt_log, subject, created_at)
            SELECT 'change', 'ops' || g %% 20 || '@example.com', %(first)s + g %% %(n)s,
                   'sent', now(), 1, '', '[]'::jsonb, 'Conference changed',
                   now() - (g || ' s')::interval
            FROM generate_series(1, %(rows)s / 100) AS g
            """,
            params,
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return first


def spread(*, first, conferences, busy, busy_percent):
    """SQL for the conference of row g: round-robin over all of them, except that
    busy_percent rows in 100 go round-robin to the first `busy` conferences."""
    if not busy or not busy_percent:
        return f"{first} + g % {conferences}"
    return (
        f"{first} + CASE WHEN g % 100 < {busy_percent} THEN g % {busy} ELSE g % {conferences} END"
    )


def fill_history(
    *, first, conferences, rows, end=None, seconds_apart=2.0, busy=0, busy_percent=0, start=1
):
    """History runs g = start .. start + rows - 1, one every `seconds_apart` seconds
    overall, the newest at `end` (default now); the first run of each conference
    "created", the rest "active". Conferences as `spread` says."""
    from django.db import connection
    from django.utils import timezone

    conference = spread(
        first=first, conferences=conferences, busy=busy, busy_percent=busy_percent
    ).replace("%", "%%")
    last = start + rows - 1
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO conferences_historyentry (
                conference_id, state, active_members, hold, mute, first_seen_at,
                last_seen_at)
            SELECT
                {conference},
                CASE WHEN g <= %(n)s THEN 'created' ELSE 'active' END,
                g %% 9,
                g %% 13 = 0,
                g %% 5 = 0,
                %(end)s - (%(last)s - g) * %(step)s * interval '1 second',
                %(end)s - ((%(last)s - g) * %(step)s - %(step)s / 2) * interval '1 second'
            FROM generate_series(%(start)s, %(last)s) AS g
            """,
            {
                "n": conferences,
                "end": end or timezone.now(),
                "last": last,
                "start": start,
                "step": seconds_apart,
            },
        )


def fill_events(
    *, first, conferences, rows, end=None, seconds_apart=1.0, busy=0, busy_percent=0, start=1
):
    """Events g = start .. start + rows - 1 (members, state, hold and mute changes in
    turn), one every `seconds_apart` seconds overall, the newest at `end` (default now),
    handled. Conferences as `spread` says."""
    from django.db import connection
    from django.utils import timezone

    conference = spread(
        first=first, conferences=conferences, busy=busy, busy_percent=busy_percent
    ).replace("%", "%%")
    last = start + rows - 1
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO conferences_event (kind, account_id, conference_id, occurred_at,
                before, after, detail, source, handled_at, created_at)
            SELECT (ARRAY['members_changed', 'state_changed', 'hold_changed',
                          'mute_changed'])[1 + g %% 4],
                   c.account_id, c.id,
                   %(end)s - (%(last)s - g) * %(step)s * interval '1 second',
                   to_jsonb(g %% 5), to_jsonb(g %% 6), '{{}}'::jsonb, 'poll', now(), now()
            FROM generate_series(%(start)s, %(last)s) AS g
            JOIN conferences_conference c ON c.id = {conference}
            """,
            {"end": end or timezone.now(), "last": last, "start": start, "step": seconds_apart},
        )


def urls(first_conference, conferences):
    from conferences.models import Account, Conference

    account = Account.objects.get(name="globex").pk
    some = Conference.objects.order_by("pk")[1234 % conferences]
    today = time.strftime("%Y-%m-%d")
    midnight = f"{today}+00:00:00%2B00:00"
    conference_list = "/admin/conferences/conference/"
    history_list = "/admin/conferences/historyentry/"
    return {
        "conferences": [
            conference_list,
            conference_list + "?state=active",
            conference_list + "?q=globex",
            conference_list + "?state=active&q=globex",
            conference_list + "?poll_status__exact=not_found&q=demo",
            conference_list + f"?account__id__exact={account}&tag=vip",
            conference_list + "?q=Board+call",
            conference_list + f"?q={some.conference_id}",
            conference_list + "?q=%2B15550001234",
            conference_list + "?paused__exact=1&hold__exact=1",
            conference_list + f"?created_time__year={today[:4]}",
            conference_list + "?o=5.-9",
            conference_list + "?p=20",
        ],
        "history": [
            history_list,
            history_list + "?state=completed",
            history_list + "?state=created",
            history_list + f"?conference={first_conference}",
            history_list + f"?conference={some.pk}",
            history_list + f"?conference__account__id__exact={account}",
            history_list + f"?conference__account__id__exact={account}&state=completed",
            history_list + f"?q={some.conference_id}",
            history_list + "?q=Board",
            history_list + f"?first_seen_at__gte={midnight}&state=active",
            history_list + "?p=90",
        ],
        "other pages (not part of the target)": [
            f"/admin/conferences/conference/{first_conference}/change/",
            "/admin/conferences/event/",
            "/admin/conferences/event/?kind__exact=hold_changed",
            "/admin/conferences/pollerror/?poll_status=rate_limited",
            "/admin/conferences/delivery/",
        ],
    }


def measure(client, url, repeat):
    response = client.get(url)  # warm-up
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    return times, len(response.content)


def main():
    args = parse_args()
    fresh_database()
    from django.contrib.auth import get_user_model
    from django.test import Client

    try:
        started = time.perf_counter()
        first = fill(conferences=args.conferences, history=args.history)
        print(
            f"filled {args.conferences:,} conferences and {args.history:,} history rows "
            f"(+ events, errors, changes, deliveries) in {time.perf_counter() - started:.1f} s"
        )
        user = get_user_model().objects.create_superuser("bench", password="bench-password-1")
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        verdicts = []
        for group, group_urls in urls(first, args.conferences).items():
            print(f"\n{group}")
            print(f"  {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'KB':>7}  URL")
            every = []
            for url in group_urls:
                times, size = measure(client, url, args.repeat)
                every += times
                print(
                    f"  {statistics.median(times):8.1f} {percentile(times, 0.95):8.1f} "
                    f"{max(times):8.1f} {size / 1024:7.1f}  {url}"
                )
            if group.startswith("other"):
                continue
            p95 = percentile(every, 0.95)
            verdict = "PASS" if p95 < TARGET_MS else "ABOVE TARGET"
            verdicts.append(verdict)
            print(f"  {group} changelist: p95 {p95:.1f} ms (target < {TARGET_MS:.0f} ms) {verdict}")
        print()
        print("all PASS" if set(verdicts) == {"PASS"} else "some ABOVE TARGET")
    finally:
        if not args.keep:
            drop_database()


if __name__ == "__main__":
    main()
