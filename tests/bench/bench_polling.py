"""Benchmark: how well a request budget is spent and how fresh it keeps the dashboard.

Prints one table, one column per scenario, each on a fresh simulator (scenario mode,
its rate limit = the account's budget) and freshly tracked conferences:
- "1 worker", "2 workers": beat starts a round every CONFWATCH_ROUND_SECONDS (a task
  that expires after that long) and one or two workers run them, for --seconds.
- "after idle": two workers poll for a while, then no round at all for --idle seconds,
  then rounds resume; only the --seconds after the idle period are measured.
- "poll_once": one poll_round(force=True) of 30 conferences at a budget of 5, its wall
  time next to the best possible for that budget.

Rows: requests per second against the budget (and the rate that would poll every active
and created conference once per CONFWATCH_POLL_INTERVAL), 429s, the most requests
accepted in any one second, the staleness of active conferences at p50/p95 (sampled
every 0.25 s; a conference not polled since the measurement began counts from its start)
next to the best possible for the budget, and the longest wait of a conference in state
created on the simulator next to the bound the README states. That bound's N is the
number of conferences confwatch last saw created (or never saw), which is more than the
simulator's created ones while their change to active is not observed yet.

    make bench                     # or: .venv/bin/python tests/bench/bench_polling.py --help

It uses a database of its own (BENCH_DATABASE_URL, default confwatch_bench), created and
migrated at the start and dropped at the end; the demo's database is never touched.
"""

import argparse
import math
import os
import queue
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/confwatch_bench"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("CONFWATCH_ALLOWED_API_HOSTS", "127.0.0.1,localhost")
os.environ["LOG_LEVEL"] = "WARNING"

from tests.bench.common import drop_database, fresh_database, percentile, print_table  # noqa: E402

SAMPLE_EVERY = 0.25
# The poll_once case that used to take 13.4 s instead of about 6.3 s.
ONCE_CONFERENCES = 30
ONCE_BUDGET = 5.0
SEED = 11


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conferences", type=int, default=60)
    parser.add_argument("--budget", type=float, default=5.0, help="requests/s, = sim limit")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured, per scenario")
    parser.add_argument("--speed", type=float, default=20.0, help="scenario pace factor")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulator latency")
    parser.add_argument("--idle", type=float, default=8.0, help="seconds without rounds")
    parser.add_argument("--warmup", type=float, default=10.0, help="polling before idle")
    return parser.parse_args()


@dataclass
class Figures:
    """What one scenario measured, over [started, ended) in epoch seconds."""

    started: float
    ended: float = 0.0
    active_ages: list = field(default_factory=list)
    active_counts: list = field(default_factory=list)
    created_counts: list = field(default_factory=list)
    # Conferences confwatch last saw created or never saw (the bound's N): more than the
    # simulator's created ones while their change to active is not observed yet.
    waiting_counts: list = field(default_factory=list)
    longest_created_wait: float | None = None
    once_seconds: float | None = None


def start_tracking(sim, *, budget):
    """Forget the previous scenario's rows; track the simulator's conferences afresh."""
    from conferences.models import Account, Conference
    from conferences.registry import tracking

    Conference.objects.all().delete()
    Account.objects.all().delete()
    account = tracking.add_account(
        name="bench",
        user_id="u-demo",
        token="demo-token",
        secret="demo-secret",
        base_url=sim.url,
        request_budget=budget,
    )
    tracking.track_conferences(account=account, conference_ids=sim.conference_ids())


def run_beat_and_workers(*, workers, began, stop_at, idle_ticks=range(0)):
    """Start a beat thread (round task number k at began + k * CONFWATCH_ROUND_SECONDS,
    expiring after that long; none for k in idle_ticks) and `workers` threads running the
    tasks, until stop_at. Returns the threads; they end by themselves."""
    from django.conf import settings
    from django.db import connection

    from conferences.polling import rounds

    every = settings.CONFWATCH_ROUND_SECONDS
    tasks = queue.Queue()

    def beat():
        tick = 0
        while began + tick * every < stop_at:
            time.sleep(max(0.0, began + tick * every - time.time()))
            if tick not in idle_ticks:
                tasks.put(time.time())
            tick += 1

    def worker():
        try:
            while time.time() < stop_at:
                try:
                    sent_at = tasks.get(timeout=max(0.01, min(0.2, stop_at - time.time())))
                except queue.Empty:
                    continue
                if time.time() - sent_at <= every:  # an expired task is dropped
                    rounds.poll_round()
        finally:
            connection.close()

    threads = [threading.Thread(target=beat, name="bench-beat")]
    threads += [threading.Thread(target=worker, name=f"bench-worker-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    return threads


def sample(sim, figures):
    """One look at the simulator and the database: the age of each active conference's
    last poll, and of each created one's (counted from the start when older)."""
    from conferences.models import Conference

    now = time.time()
    states = {c["id"]: c["state"] for c in sim.conferences()}
    stored = Conference.objects.values_list("conference_id", "last_polled_at", "state")
    polled = {conference_id: last for conference_id, last, _ in stored}
    waiting = sum(1 for _, _, state in stored if state in (None, "created"))
    figures.waiting_counts.append(waiting)
    active_count = created_count = 0
    for conference_id, state in states.items():
        last = polled.get(conference_id)
        since = max(last.timestamp(), figures.started) if last else figures.started
        age = now - since
        if state == "active":
            active_count += 1
            figures.active_ages.append(age)
        elif state == "created":
            created_count += 1
            longest = figures.longest_created_wait or 0.0
            figures.longest_created_wait = max(longest, age)
    figures.active_counts.append(active_count)
    figures.created_counts.append(created_count)


def sample_until(sim, figures, *, until):
    while time.time() < until:
        sample(sim, figures)
        time.sleep(max(0.0, min(SAMPLE_EVERY, until - time.time())))
    figures.ended = until


def polling_scenario(args, *, workers, warmup=0.0, idle=0.0):
    from django.conf import settings

    from simulator.testing import running_simulator

    with running_simulator(
        rate_limit=args.budget,
        scenario=args.conferences,
        speed=args.speed,
        seed=SEED,
        latency_ms=args.latency_ms,
    ) as sim:
        start_tracking(sim, budget=args.budget)
        every = settings.CONFWATCH_ROUND_SECONDS
        began = time.time()
        # No round starts in [warmup, warmup + idle); the first one after that, on beat's
        # schedule, starts the measured window.
        first_idle = math.ceil(warmup / every) if idle else 0
        resume = math.ceil((warmup + idle) / every) if idle else 0
        measured_from = began + resume * every
        stop_at = measured_from + args.seconds
        threads = run_beat_and_workers(
            workers=workers, began=began, stop_at=stop_at, idle_ticks=range(first_idle, resume)
        )
        time.sleep(max(0.0, measured_from - time.time()))
        figures = Figures(started=measured_from)
        sample_until(sim, figures, until=stop_at)
        for thread in threads:
            thread.join(timeout=60)
        return figures, sim.requests()


def poll_once_scenario(args):
    from conferences.polling import rounds
    from simulator.testing import running_simulator

    with running_simulator(
        rate_limit=ONCE_BUDGET,
        scenario=ONCE_CONFERENCES,
        speed=args.speed,
        seed=SEED,
        latency_ms=args.latency_ms,
    ) as sim:
        start_tracking(sim, budget=ONCE_BUDGET)
        figures = Figures(started=time.time())
        rounds.poll_round(force=True)
        figures.ended = time.time()
        figures.once_seconds = figures.ended - figures.started
        return figures, sim.requests()


def requests_in(journal, figures):
    """(requests, 429s, most accepted in any 1 s) among the journal's requests that
    started inside the measured window."""
    inside = [r for r in journal if figures.started <= r[2] < figures.ended]
    accepted = sorted(r[2] for r in inside if r[4] != 429)
    most, first = 0, 0
    for last, started in enumerate(accepted):
        while accepted[first] <= started - 1.0:
            first += 1
        most = max(most, last - first + 1)
    return len(inside), sum(1 for r in inside if r[4] == 429), most


def column(figures, journal, *, budget):
    """The scenario's cells, row name -> text."""
    from django.conf import settings

    from conferences.polling.budget import BUDGET_SHARE

    rate = budget * BUDGET_SHARE
    seconds = figures.ended - figures.started
    requests, limited, most = requests_in(journal, figures)
    rate_used = requests / seconds
    cells = {
        "budget (requests/s)": f"{budget:g}",
        "measured for": f"{seconds:.1f} s",
        "requests/s (budget use)": f"{rate_used:.2f} ({100 * rate_used / budget:.0f}%)",
        "429 answers": f"{limited}",
        "most requests in 1 s": f"{most}",
    }
    if figures.once_seconds is not None:
        best = ONCE_CONFERENCES / rate
        cells["poll_once wall (best)"] = f"{figures.once_seconds:.1f} s ({best:.1f} s)"
    if figures.active_counts:
        active = statistics.mean(figures.active_counts)
        period = max(settings.CONFWATCH_POLL_INTERVAL, active / rate)
        created = statistics.mean(figures.created_counts)
        needed = (active + created) / settings.CONFWATCH_POLL_INTERVAL
        cells["requests/s needed"] = f"{needed:.2f}"
        cells["active conferences (avg)"] = f"{active:.1f}"
        if figures.active_ages:
            p50 = percentile(figures.active_ages, 0.50)
            p95 = percentile(figures.active_ages, 0.95)
            cells["staleness p50 (best)"] = f"{p50:.1f} s ({period / 2:.1f})"
            cells["staleness p95 (best)"] = f"{p95:.1f} s ({0.95 * period:.1f})"
        # The README's bound, with the most created conferences seen at once and the
        # budget the members reads left (they take one request per page).
        members_rate = (
            sum(
                1 for r in journal if figures.started <= r[2] < figures.ended and "/members" in r[1]
            )
            / seconds
        )
        share = settings.CONFWATCH_BACKGROUND_SHARE * max(0.0, rate - members_rate)
        cells["members reads/s"] = f"{members_rate:.2f}"
        most_waiting = max(figures.waiting_counts)
        bound = settings.CONFWATCH_POLL_INTERVAL + settings.CONFWATCH_ROUND_SECONDS
        bound += most_waiting / share if share else 0.0
        cells["created conferences (avg)"] = f"{created:.1f}"
        cells["created as confwatch saw them (most)"] = f"{most_waiting}"
        if figures.longest_created_wait is not None:
            wait = figures.longest_created_wait
            cells["longest created wait (bound)"] = f"{wait:.1f} s ({bound:.1f})"
    return cells


def main():
    args = parse_args()
    fresh_database()
    from django.conf import settings

    try:
        print(
            f"budget {args.budget:g} requests/s, {args.conferences} conferences, "
            f"latency {args.latency_ms:g} ms, {args.seconds:g} s per scenario "
            f"(speed {args.speed:g}, idle {args.idle:g} s, "
            f"round every {settings.CONFWATCH_ROUND_SECONDS:g} s, "
            f"poll interval {settings.CONFWATCH_POLL_INTERVAL:g} s)",
            flush=True,
        )
        columns = {}
        for title, options in (
            ("1 worker", {"workers": 1}),
            ("2 workers", {"workers": 2}),
            ("after idle", {"workers": 2, "warmup": args.warmup, "idle": args.idle}),
        ):
            figures, journal = polling_scenario(args, **options)
            columns[title] = column(figures, journal, budget=args.budget)
        figures, journal = poll_once_scenario(args)
        columns[f"poll_once ({ONCE_CONFERENCES} @ {ONCE_BUDGET:g}/s)"] = column(
            figures, journal, budget=ONCE_BUDGET
        )
        print_table(columns)
    finally:
        drop_database()


if __name__ == "__main__":
    main()
