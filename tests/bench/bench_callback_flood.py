"""Benchmark: a flood of callback events to one account does not delay anyone's polling.

Runs the real pieces with the default settings (poll interval, round period, members
interval, callback caps as dashboard/settings.py has them): the Catapult simulator in
this process (one user per account, its rate limit = the account's budget), PostgreSQL,
Redis, the web server (`manage.py runserver`, the callback receiver), a Celery worker and
Celery beat as subprocesses.

--accounts accounts (default 3) get --conferences active conferences between them
(default 60, one member each, tracked without a callback URL). Once every one was
polled, the benchmark samples each account's staleness (now - last_polled_at of its
active conferences, every 0.5 s) for --before seconds; then 4 processes post `conference`
events with new ids to the first account's callback URL at --rate events/s (default 50,
the receiver's cap) for --duration seconds (default 60) while it samples again. It prints
p50 and max of each account's staleness before and during the flood and their ratio
(target: at most 1.2), what the receiver answered, how many conferences the flood
registered (CONFWATCH_CALLBACK_AUTOTRACK_PER_HOUR) and the broker's longest queue.

    make bench-flood            # or: .venv/bin/python tests/bench/bench_callback_flood.py --help

Its database (BENCH_FLOOD_DATABASE_URL, default confwatch_bench_flood) is created and
migrated at the start and dropped at the end; its Redis database (BENCH_FLOOD_BROKER_URL,
default redis://127.0.0.1:6379/12) emptied at both ends.
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
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
    "BENCH_FLOOD", database="confwatch_bench_flood", broker="redis://127.0.0.1:6379/12"
)

BUDGET = 5.0
SAMPLE_EVERY = 0.5
SENDERS = 4
STARTUP_SECONDS = 120.0
TARGET_RATIO = 1.2


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of flood")
    parser.add_argument("--before", type=float, default=30.0, help="seconds sampled before")
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument(
        "--nobody",
        action="store_true",
        help="flood a callback URL no account has (every event 404): the receiver's own cost",
    )
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--conferences", type=int, default=60, help="over all accounts")
    args = parser.parse_args()
    if not 1 <= args.accounts <= 10 or not args.accounts <= args.conferences <= 500:
        parser.error("--accounts must be 1 to 10, --conferences from --accounts to 500")
    return args


def set_up(sim, accounts, conferences):
    """The accounts (one simulator user each) and their active, tracked conferences."""
    from conferences.registry import tracking

    made = []
    for index, (user_id, token, secret) in enumerate(users(accounts)):
        account = tracking.add_account(
            name=f"flood-{index}",
            user_id=user_id,
            token=token,
            secret=secret,
            base_url=sim.url,
            request_budget=BUDGET,
        )
        client = CatapultDriver(
            base_url=sim.url, user_id=user_id, api_token=token, api_secret=secret
        )
        count = conferences // accounts + (1 if index < conferences % accounts else 0)
        ids = [
            catapult_call(client.create_conference, from_number="+15555550100")
            for _ in range(count)
        ]
        for conference_id in ids:
            catapult_call(client.add_member, conference_id, call_id="c-first")
        tracking.track_conferences(account=account, conference_ids=ids)
        client.close()
        made.append(account)
    return made


def users(count):
    return [(f"u-flood-{i}", f"token-{i}", f"secret-{i}") for i in range(count)]


def all_polled(accounts, conferences):
    from conferences.models import Conference

    active = Conference.objects.filter(account__in=accounts, state="active")
    return active.count() == conferences


def sample(accounts, samples, broker, queue_lengths):
    """One staleness sample (seconds) of each account's active conferences, and the
    broker's queue length."""
    from django.utils import timezone

    from conferences.models import Conference

    now = timezone.now()
    for account in accounts:
        polled = Conference.objects.filter(
            account=account, state="active", last_polled_at__isnull=False
        ).values_list("last_polled_at", flat=True)
        samples[account.name].extend((now - at).total_seconds() for at in polled)
    queue_lengths.append(broker.llen("celery"))


def sample_for(seconds, accounts, broker):
    samples = {account.name: [] for account in accounts}
    queue_lengths = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sample(accounts, samples, broker, queue_lengths)
        time.sleep(SAMPLE_EVERY)
    return samples, queue_lengths


def flood(url, *, rate, duration):
    """SENDERS processes (not threads of this one, which serves the simulator) post
    `conference` events with new ids at `rate` events/s in all; futures of their
    answers (Counters of status codes)."""
    start_at = time.time() + 1.0
    senders = ProcessPoolExecutor(SENDERS, mp_context=multiprocessing.get_context("spawn"))
    futures = [
        senders.submit(send_events, url, first, rate=rate, duration=duration, start_at=start_at)
        for first in range(SENDERS)
    ]
    senders.shutdown(wait=False)
    return futures


def send_events(url, first, *, rate, duration, start_at):
    """Events number first, first + SENDERS, ... each at its time in the flood."""
    import requests

    answers = Counter()
    session = requests.Session()
    for number in range(first, int(rate * duration), SENDERS):
        wait = start_at + number / rate - time.time()
        if wait > 0:
            time.sleep(wait)
        event = {"eventType": "conference", "conferenceId": f"conf-flood-{number}"}
        event["status"] = "created"
        try:
            answers[session.post(url, json=event, timeout=10).status_code] += 1
        except requests.RequestException as error:
            answers[type(error).__name__] += 1
    session.close()
    return answers


def p50_max(values):
    if not values:
        return None, None
    return statistics.median(values), max(values)


def main():
    args = parse_args()
    with own_database_and_broker():
        import redis
        from django.conf import settings

        from conferences.callbacks import receiver
        from conferences.models import CallbackEvent, CallbackSettings, Conference
        from simulator.testing import running_simulator

        broker = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
        try:
            with (
                running_simulator(rate_limit=BUDGET, users=users(args.accounts)) as sim,
                running_product(web=True) as product,
            ):
                accounts = set_up(sim, args.accounts, args.conferences)
                url = receiver.callback_url(accounts[0])
                if args.nobody:
                    url = url.rsplit("/", 2)[0] + "/" + "n0body" * 6 + "/"
                if not wait_for(lambda: all_polled(accounts, args.conferences), STARTUP_SECONDS):
                    sys.exit(
                        "The conferences were not all polled active in time.\n" + product.log_tail()
                    )
                print(
                    f"{args.conferences} active conferences over {args.accounts} accounts, budget "
                    f"{BUDGET:g} requests/s each, poll interval "
                    f"{settings.CONFWATCH_POLL_INTERVAL:g} s, round every "
                    f"{settings.CONFWATCH_ROUND_SECONDS:g} s; flood: {args.rate:g} events/s for "
                    f"{args.duration:g} s to {accounts[0].name} (registering capped at "
                    f"{settings.CONFWATCH_CALLBACK_AUTOTRACK_PER_HOUR} per hour)",
                    flush=True,
                )
                before, queue_before = sample_for(args.before, accounts, broker)
                senders = flood(url, rate=args.rate, duration=args.duration)
                time.sleep(1.0)  # the senders start together, a second from now
                during, queue_during = sample_for(args.duration, accounts, broker)
                answers = sum((sender.result() for sender in senders), Counter())

                columns = {"before p50/max": {}, "during p50/max": {}, "ratio p50/max": {}}
                worst = 0.0
                for account in accounts:
                    b50, bmax = p50_max(before[account.name])
                    d50, dmax = p50_max(during[account.name])
                    name = account.name + (" (flooded)" if account == accounts[0] else "")
                    columns["before p50/max"][name] = f"{b50:.1f} s / {bmax:.1f} s"
                    columns["during p50/max"][name] = f"{d50:.1f} s / {dmax:.1f} s"
                    ratios = (d50 / b50, dmax / bmax)
                    worst = max(worst, *ratios)
                    columns["ratio p50/max"][name] = f"{ratios[0]:.2f} / {ratios[1]:.2f}"
                print()
                print("staleness of active conferences (now - last_polled_at):")
                print_table(columns)
                flooded = CallbackSettings.objects.get(account=accounts[0])
                registered = Conference.objects.filter(conference_id__startswith="conf-flood-")
                print()
                print(f"receiver answered: {dict(sorted(answers.items(), key=str))}")
                print(
                    f"events stored {CallbackEvent.objects.count()}, waiting "
                    f"{CallbackEvent.objects.filter(processed_at__isnull=True).count()}, kept "
                    f"(untracked) {CallbackEvent.objects.filter(awaiting_tracking=True).count()}; "
                    f"conferences registered {registered.count()}, events refused past the cap "
                    f"{flooded.autotrack_refused}"
                )
                print(
                    f"broker queue length: max {max(queue_before, default=0)} before, "
                    f"max {max(queue_during, default=0)} during"
                )
                verdict = "met" if worst <= TARGET_RATIO else "NOT met"
                print(f"worst ratio {worst:.2f}: target <= {TARGET_RATIO} {verdict}")
        finally:
            broker.close()


if __name__ == "__main__":
    main()
