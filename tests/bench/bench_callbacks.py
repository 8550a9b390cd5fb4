"""Benchmark: how long after a change on Catapult it is in the database, with callbacks
on and with polling alone.

Runs the real pieces with the default settings (poll interval, round period, members
interval as dashboard/settings.py has them): the Catapult simulator in this process
(rate limit = the budget), PostgreSQL, Redis, the web server (`manage.py runserver`, the
callback receiver), a Celery worker and Celery beat as subprocesses.

Twice, on fresh conferences: "callbacks" creates --conferences conferences on the
simulator with the account's callback URL (they are registered by their `conference`
event) and "polling" creates as many without it and tracks them. Each gets a first
member (so it is active), then each in turn gets one more member, a seeded 0-3 s apart;
the benchmark notes when the conference's active members and the new member row are in
the database (looked for every 20 ms; at most 90 s per change). It prints min / median /
max of both per mode.

    make bench-callbacks        # or: .venv/bin/python tests/bench/bench_callbacks.py --help

Its database (BENCH_CALLBACKS_DATABASE_URL, default confwatch_bench_callbacks) is created
and migrated at the start and dropped at the end; its Redis database
(BENCH_CALLBACKS_BROKER_URL, default redis://127.0.0.1:6379/13) emptied at both ends.
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.bench.common import (  # noqa: E402
    catapult_call,
    own_database_and_broker,
    print_table,
    running_product,
    use_own_services,
    wait_for,
)
from tests.catapult_driver import CatapultDriver  # noqa: E402

use_own_services(
    "BENCH_CALLBACKS", database="confwatch_bench_callbacks", broker="redis://127.0.0.1:6379/13"
)

SIM_USER = ("u-demo", "demo-token", "demo-secret")
BUDGET = 5.0
MOST_STAGGER = 3.0
WAIT_PER_CHANGE = 90.0
LOOK_EVERY = 0.02
STARTUP_SECONDS = 60.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conferences", type=int, default=5, help="changes measured per mode")
    parser.add_argument("--seed", type=int, default=7, help="seeds the gaps between changes")
    args = parser.parse_args()
    if not 1 <= args.conferences <= 50:
        parser.error("--conferences must be 1 to 50")
    return args


def set_up_conferences(client, account, *, count, callback_url):
    """`count` active conferences (one member each), tracked; their Catapult ids."""
    from conferences.models import Conference, Member
    from conferences.registry import tracking

    ids = [
        catapult_call(
            client.create_conference, from_number="+15555550100", callback_url=callback_url
        )
        for _ in range(count)
    ]
    if callback_url is None:
        tracking.track_conferences(account=account, conference_ids=ids)
    for conference_id in ids:
        catapult_call(client.add_member, conference_id, call_id="c-first")
    ready = wait_for(
        lambda: (
            Conference.objects.filter(
                account=account, conference_id__in=ids, active_members=1
            ).count()
            == count
            and Member.objects.filter(conference__conference_id__in=ids).count() == count
        ),
        STARTUP_SECONDS,
    )
    if not ready:
        sys.exit("The conferences were not all seen active with their first member in time.")
    return ids


def measure(client, ids, *, seed):
    """Add a member to each conference in turn; seconds until the conference's active
    members, and the member row, were in the database (None: not within the wait)."""
    from conferences.models import Conference, Member

    gaps = random.Random(seed)
    counted, stored = [], []
    for conference_id in ids:
        time.sleep(gaps.uniform(0, MOST_STAGGER))
        catapult_call(client.add_member, conference_id, call_id="c-second")
        changed_at = time.time()
        count_at = member_at = None
        while time.time() - changed_at < WAIT_PER_CHANGE and None in (count_at, member_at):
            now = time.time()
            if (
                count_at is None
                and Conference.objects.filter(
                    conference_id=conference_id, active_members=2
                ).exists()
            ):
                count_at = now - changed_at
            if (
                member_at is None
                and Member.objects.filter(
                    conference__conference_id=conference_id, call_id="c-second"
                ).exists()
            ):
                member_at = now - changed_at
            time.sleep(LOOK_EVERY)
        counted.append(count_at)
        stored.append(member_at)
    return counted, stored


def summary(values):
    found = [value for value in values if value is not None]
    if not found:
        return "none arrived"
    text = (
        f"min {min(found):.2f} s, median {statistics.median(found):.2f} s, max {max(found):.2f} s"
    )
    if len(found) < len(values):
        text += f" ({len(values) - len(found)} missing)"
    return text


def main():
    args = parse_args()
    with own_database_and_broker():
        from django.conf import settings

        from conferences.callbacks import receiver
        from conferences.registry import tracking
        from simulator.testing import running_simulator

        with (
            running_simulator(rate_limit=BUDGET) as sim,
            running_product(web=True),
        ):
            user_id, token, secret = SIM_USER
            client = CatapultDriver(
                base_url=sim.url, user_id=user_id, api_token=token, api_secret=secret
            )
            account = tracking.add_account(
                name="bench-callbacks",
                user_id=user_id,
                token=token,
                secret=secret,
                base_url=sim.url,
                request_budget=BUDGET,
            )
            url = receiver.callback_url(account)
            print(
                f"{args.conferences} changes per mode, budget {BUDGET:g} requests/s, poll "
                f"interval {settings.CONFWATCH_POLL_INTERVAL:g} s, members read every "
                f"{settings.CONFWATCH_MEMBERS_INTERVAL:g} s, round every "
                f"{settings.CONFWATCH_ROUND_SECONDS:g} s",
                flush=True,
            )
            columns = {"active members in the DB": {}, "member row in the DB": {}}
            for mode, callback_url in (("callbacks", url), ("polling alone", None)):
                ids = set_up_conferences(
                    client, account, count=args.conferences, callback_url=callback_url
                )
                counted, stored = measure(client, ids, seed=args.seed)
                columns["active members in the DB"][mode] = summary(counted)
                columns["member row in the DB"][mode] = summary(stored)
            print()
            print_table(columns)
            client.close()


if __name__ == "__main__":
    main()
