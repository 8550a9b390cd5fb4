"""Benchmark: what one full polling round of many conferences costs, next to a plain loop.

Runs the real pieces: the Catapult simulator as a separate process (so its CPU is not
counted as the poller's; rate limit off, --latency-ms on every answer), PostgreSQL, and
`rounds.poll_round(force=True)` in this process with the code's default settings
(CONFWATCH_POLL_CONCURRENCY as configured; CONFWATCH_ROUND_DEADLINE 60 s unless set). It
creates --conferences conferences on the simulator over --accounts users (a third with
members, some muted), tracks them on accounts with a budget of --budget requests/s
(default 10,000, the most allowed: the budget never limits), then measures:

- the first round (first observations), a round where nothing changed, and a round after
  1% of the conferences changed on the simulator (a member added, or put on hold); the
  active conferences' members lists are read once between the first round and the
  others, outside the figures (CONFWATCH_MEMBERS_INTERVAL 1 h, so not again);
- for each: wall time, polls per second, this process's CPU per conference, the write
  (`results.record_round`, wrapped at run time) as wall time and Postgres active time,
  rows (n_tup_ins + n_tup_upd + n_tup_del of the conferences_* tables) and WAL bytes,
  for the write and for the whole round (claims included);
- the same round at 100 requests/s per account, next to the best possible for that budget;
- a plain baseline on a sample of the same conferences (--naive-sample, scaled to N): one
  `requests.get` each (no Session: a new connection per request, like a naive script),
  the JSON parsed, one `Conference.save()` per observation (and a HistoryEntry when the
  status changed), on rows of its own with the same status, so nothing changed for it.

It prints one table (rows = figures, columns = rounds, the naive loop, the ratio and the
target), and with --scale the per-conference costs at 2,000 and 10,000 side by side.

    make bench-throughput          # or: .venv/bin/python tests/bench/bench_throughput.py --help

It uses a database of its own (BENCH_THROUGHPUT_DATABASE_URL, default
confwatch_bench_throughput), created and migrated for each size and dropped at the end;
the demo's database is never touched. WAL bytes are cluster-wide: writes to other
databases in the same moment count too.
"""

import argparse
import cProfile
import os
import pstats
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_THROUGHPUT_DATABASE_URL",
    "postgres://postgres@127.0.0.1:5432/confwatch_bench_throughput",
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("CONFWATCH_ALLOWED_API_HOSTS", "127.0.0.1,localhost")
os.environ["LOG_LEVEL"] = "WARNING"
os.environ["DEBUG"] = "false"  # as in production: no query log kept in memory
os.environ.setdefault("CONFWATCH_ROUND_DEADLINE", "60")
# Members lists are read once, before the measured rounds (see run_size), and are not
# due again while they run: the rounds measure conference reads.
os.environ.setdefault("CONFWATCH_MEMBERS_INTERVAL", "3600")

import requests  # noqa: E402

from tests.bench.common import drop_database, fresh_database, print_table  # noqa: E402
from tests.catapult_driver import CatapultDriver  # noqa: E402

TARGET_SIZE = 2000
SCALE_SIZES = (2000, 10000)
UNLIMITED_BUDGET = 10_000.0  # requests/s per account (models.REQUEST_BUDGET_MAX): never limits
LIMITED_BUDGET = 100.0
LIMITED_TITLE = f"at {LIMITED_BUDGET:g}/s per account"
CHANGED_SHARE = 0.01
SETUP_THREADS = 32
HTTP_TIMEOUT = (3.05, 10.0)
CONTROL_TIMEOUT = 10.0
START_TIMEOUT = 20.0
SEED = 7
# The targets at 2,000 conferences; wall and write scale with N elsewhere.
TARGET_ROUND_SECONDS = 3.0
TARGET_CPU_MS = 1.5
TARGET_WRITE_MS = 150.0
TARGET_SPEEDUP = 5.0
# At 10,000 a cost per conference within this factor of 2,000's counts as no worse
# (measurement noise on a shared 2-core machine).
SCALE_TOLERANCE = 1.10

COUNTERS_SQL = """
SELECT
    (SELECT active_time FROM pg_stat_database WHERE datname = current_database()),
    (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables
     WHERE relname LIKE 'conferences\\_%'),
    pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0'),
    (SELECT coalesce(sum(n_tup_upd), 0) FROM pg_stat_user_tables
     WHERE relname = 'conferences_historyentry')
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conferences", type=int, default=TARGET_SIZE)
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=50.0, help="simulator latency")
    parser.add_argument(
        "--budget", type=float, default=UNLIMITED_BUDGET, help="requests/s per account"
    )
    parser.add_argument(
        "--naive-sample", type=int, default=300, help="conferences the naive loop polls"
    )
    parser.add_argument(
        "--scale", action="store_true", help="run 2000 and 10000; compare cost per conference"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile one more unchanged round (cProfile, main thread) and print it",
    )
    args = parser.parse_args()
    if args.conferences < 1 or args.accounts < 1 or args.naive_sample < 1:
        parser.error("--conferences, --accounts and --naive-sample must be at least 1")
    return args


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Counters:
    """Database counters: Postgres active time (ms), rows written, WAL position (bytes),
    history runs updated (an open run's end is written once a minute, RUN_REFRESH)."""

    active_ms: float = 0.0
    rows: int = 0
    wal: int = 0
    runs_updated: int = 0

    def __sub__(self, other):
        return Counters(
            self.active_ms - other.active_ms,
            self.rows - other.rows,
            self.wal - other.wal,
            self.runs_updated - other.runs_updated,
        )

    def scaled(self, factor):
        return Counters(
            self.active_ms * factor,
            round(self.rows * factor),
            round(self.wal * factor),
            round(self.runs_updated * factor),
        )


def read_counters():
    """Flush this connection's pending statistics (the flush happens when the backend
    goes idle after the first statement), then read them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(COUNTERS_SQL)
        active_ms, rows, wal, runs_updated = cursor.fetchone()
    return Counters(float(active_ms), int(rows), int(wal), int(runs_updated))


@dataclass
class Figures:
    """One round (or the naive loop, scaled to `conferences`)."""

    conferences: int
    wall: float
    cpu: float
    write_wall: float
    write: Counters
    round: Counters
    summary: str = ""
    polled: int = 0
    skipped: int = 0  # claimed but never sent, or abandoned at the deadline
    windows: int | None = None  # budget windows reserved after the claim
    sampled: bool = False  # the naive loop: measured on `polled` conferences, scaled

    @property
    def observed(self):
        """Conferences the figures are for: every one for the (scaled) naive loop, the
        ones polled for a round (a round that hit its deadline polled fewer)."""
        return self.conferences if self.sampled else max(1, self.polled)


class WriteMeter:
    """Wraps results.record_round at run time (the module is not edited) to measure the
    round's write: its wall time and the database counters around it. Also counts the
    calls of budget.reserve_window (a new budget window), when there is one."""

    def __enter__(self):
        from conferences.polling import budget, results

        self.original = results.record_round
        self.original_reserve = getattr(budget, "reserve_window", None)
        self.reset()

        def counted(*args, **kwargs):
            self.windows += 1
            return self.original_reserve(*args, **kwargs)

        if self.original_reserve is not None:
            budget.reserve_window = counted

        def measured(*args, **kwargs):
            before = read_counters()
            started = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds = time.perf_counter() - started
                self.counters = read_counters() - before

        results.record_round = measured
        return self

    def reset(self):
        self.seconds, self.counters, self.windows = None, None, 0

    def __exit__(self, *exc_info):
        from conferences.polling import budget, results

        results.record_round = self.original
        if self.original_reserve is not None:
            budget.reserve_window = self.original_reserve


def measure_round(meter, *, conferences):
    from conferences.polling import rounds

    meter.reset()
    before = read_counters()
    cpu, started = time.process_time(), time.perf_counter()
    summary = rounds.poll_round(force=True)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    counters = read_counters() - before
    if meter.seconds is None:
        raise RuntimeError("poll_round no longer calls results.record_round: update the bench")
    return Figures(
        conferences=conferences,
        wall=wall,
        cpu=cpu,
        write_wall=meter.seconds,
        write=meter.counters,
        round=counters,
        summary=summary.line(),
        polled=summary.polled,
        skipped=summary.skipped + summary.abandoned,
        windows=meter.windows if meter.original_reserve is not None else None,
    )


# --------------------------------------------------------------------------- simulator


class SimulatorProcess:
    """`python -m simulator` in a process of its own, on a free port; its output goes to
    a log file, whose tail is printed if it does not start."""

    def __init__(self, *, users, latency_ms, log_path):
        self.command = [sys.executable, "-m", "simulator", "--port", "0", "--rate-limit", "0"]
        self.command += ["--latency-ms", f"{latency_ms:g}", "--seed", str(SEED)]
        for user in users:
            self.command += ["--user", ":".join(user)]
        self.log_path = log_path
        self.process = None
        self.url = None

    def __enter__(self):
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                self.command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while self.url is None and time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            match = re.search(r"simulator on (http://\S+)", Path(self.log_path).read_text())
            if match:
                self.url = match.group(1)
            else:
                time.sleep(0.1)
        if self.url is None:
            self.stop()
            tail = Path(self.log_path).read_text()[-2000:]
            raise RuntimeError(f"the simulator did not start:\n{tail}")
        return self

    def control(self, method, path, body=None):
        response = requests.request(method, self.url + path, json=body, timeout=CONTROL_TIMEOUT)
        response.raise_for_status()
        return response.json()

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __exit__(self, *exc_info):
        self.stop()


def bench_users(count):
    return [(f"u-bench-{n}", f"bench-token-{n}", f"bench-secret-{n}") for n in range(1, count + 1)]


def client_for(sim, user):

    user_id, token, secret = user
    return CatapultDriver(
        base_url=sim.url,
        user_id=user_id,
        api_token=token,
        api_secret=secret,
        pool_size=SETUP_THREADS,
        timeout=HTTP_TIMEOUT,
    )


def create_conferences(sim, users, count):
    """`count` conferences, round-robin over the users; every third has 1-3 members
    (active), every seventh is muted, the others are just created. Returns
    [(user, conference_id)] in creation order."""
    clients = {user: client_for(sim, user) for user in users}

    def create(index):
        user = users[index % len(users)]
        client = clients[user]
        conference_id = client.create_conference(from_number=f"+1919555{index % 10000:04d}")
        if index % 3 == 0:
            for member in range(1 + index % 4 % 3):
                client.add_member(conference_id, call_id=f"c-bench-{index}-{member}")
        if index % 7 == 0:
            client.update_conference(conference_id, mute=True)
        return user, conference_id

    try:
        with ThreadPoolExecutor(SETUP_THREADS) as pool:
            return list(pool.map(create, range(count), timeout=120 + count * 0.05))
    finally:
        for client in clients.values():
            client.close()


def change_some(sim, users, created):
    """Change CHANGED_SHARE of the conferences (seeded choice): a member joins half of
    them, the other half is put on hold. Returns how many changed."""
    count = max(1, round(len(created) * CHANGED_SHARE))
    chosen = random.Random(SEED).sample(range(len(created)), count)
    clients = {user: client_for(sim, user) for user in users}

    def change(position):
        user, conference_id = created[chosen[position]]
        if position % 2 == 0:
            clients[user].add_member(conference_id, call_id=f"c-change-{position}")
        else:
            clients[user].update_conference(conference_id, hold=True)

    try:
        with ThreadPoolExecutor(SETUP_THREADS) as pool:
            list(pool.map(change, range(count), timeout=120))
    finally:
        for client in clients.values():
            client.close()
    return count


# --------------------------------------------------------------------------- tracking


def track(sim, users, created, *, prefix, budget):
    """An account per user (named prefix-user) tracking that user's conferences."""
    from conferences.registry import tracking

    accounts = []
    for user in users:
        user_id, token, secret = user
        account = tracking.add_account(
            name=f"{prefix}-{user_id}",
            user_id=user_id,
            token=token,
            secret=secret,
            base_url=sim.url,
            request_budget=budget,
        )
        ids = [conference_id for owner, conference_id in created if owner == user]
        tracking.track_conferences(account=account, conference_ids=ids)
        accounts.append(account)
    return accounts


def naive_rows(sim, users, sample):
    """Rows of its own for the naive loop (paused, so no round polls them), with the
    status confwatch last observed: for the naive loop nothing changed either."""
    from conferences.models import Conference

    track(sim, users, sample, prefix="naive", budget=1.0)
    rows = Conference.objects.filter(account__name__startswith="naive-")
    rows.update(paused=True)
    observed = {
        c.conference_id: c
        for c in Conference.objects.filter(account__name__startswith="bench-").only(
            "conference_id", "state", "active_members", "hold", "mute"
        )
    }
    rows = list(rows.select_related("account").order_by("pk"))
    for row in rows:
        seen = observed[row.conference_id]
        row.state, row.active_members = seen.state, seen.active_members
        row.hold, row.mute = seen.hold, seen.mute
    Conference.objects.bulk_update(rows, ["state", "active_members", "hold", "mute"])
    return rows


def naive_loop(rows, *, conferences):
    """The plain baseline: for each row one requests.get, the JSON parsed, one ORM save
    (and a HistoryEntry when the status changed). Figures scaled to `conferences`."""
    from django.utils import timezone

    from conferences.models import HistoryEntry, PollStatus

    credentials = {row.account_id: row.account.credentials() for row in rows}
    write_wall = 0.0
    before = read_counters()
    cpu, started = time.process_time(), time.perf_counter()
    for row in rows:
        account = row.account
        url = f"{account.base_url}/v1/users/{account.user_id}/conferences/{row.conference_id}"
        response = requests.get(
            url,
            auth=credentials[row.account_id],
            headers={"Accept": "application/json"},
            timeout=HTTP_TIMEOUT,
        )
        response.raise_for_status()
        data = response.json()
        now = timezone.now()
        saving = time.perf_counter()
        seen = {
            "state": data.get("state"),
            "active_members": data.get("activeMembers"),
            "hold": data.get("hold"),
            "mute": data.get("mute"),
        }
        if any(getattr(row, name) != value for name, value in seen.items()):
            for name, value in seen.items():
                setattr(row, name, value)
            row.last_changed_at = now
            HistoryEntry.objects.create(conference=row, first_seen_at=now, last_seen_at=now, **seen)
        row.last_polled_at = row.last_observed_at = now
        row.poll_status = PollStatus.OK
        row.save()
        write_wall += time.perf_counter() - saving
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    counters = read_counters() - before
    factor = conferences / len(rows)
    return Figures(
        conferences=conferences,
        wall=wall * factor,
        cpu=cpu * factor,
        write_wall=write_wall * factor,
        write=counters.scaled(factor),
        round=counters.scaled(factor),
        summary=f"polled {len(rows)} conferences, scaled x{factor:.2f}",
        polled=len(rows),
        sampled=True,
    )


# --------------------------------------------------------------------------- one size


def run_size(args, *, conferences, log_dir):
    """Set up a simulator and a fresh database for `conferences`, measure, print the
    table; return {column title: Figures}."""
    from django.conf import settings

    from conferences.models import Account
    from conferences.polling import budget, rounds

    fresh_database()
    users = bench_users(args.accounts)
    log_path = os.path.join(log_dir, f"simulator-{conferences}.log")
    with SimulatorProcess(users=users, latency_ms=args.latency_ms, log_path=log_path) as sim:
        # Setup without the latency (quicker); it is back on before anything is measured.
        sim.control("POST", "/_sim/faults", {"latency_ms": 0})
        began = time.perf_counter()
        created = create_conferences(sim, users, conferences)
        track(sim, users, created, prefix="bench", budget=args.budget)
        latency = sim.control("POST", "/_sim/faults", {"latency_ms": args.latency_ms})
        concurrency = settings.CONFWATCH_POLL_CONCURRENCY or "0 (auto)"
        print(
            f"\n== {conferences} conferences over {args.accounts} accounts, simulator "
            f"latency {latency['latency_ms']:g} ms, rate limit off (separate process, "
            f"{sim.url}); CONFWATCH_POLL_CONCURRENCY={concurrency}, "
            f"CONFWATCH_ROUND_DEADLINE={settings.CONFWATCH_ROUND_DEADLINE:g} s; "
            f"budget {args.budget:g} requests/s per account; "
            f"setup {time.perf_counter() - began:.1f} s",
            flush=True,
        )
        columns = {}
        with WriteMeter() as meter:
            columns["first round"] = measure_round(meter, conferences=conferences)
            print(f"  first round: {columns['first round'].summary}", flush=True)
            # The active conferences' members lists, due once they were seen active:
            # read now, outside the figures (one request per page on top of the round).
            members = rounds.poll_round(force=True)
            print(f"  members lists read (not measured): {members.line()}", flush=True)
            columns["unchanged"] = measure_round(meter, conferences=conferences)
            print(f"  unchanged: {columns['unchanged'].summary}", flush=True)
            changed = change_some(sim, users, created)
            title = f"{CHANGED_SHARE:.0%} changed"
            columns[title] = measure_round(meter, conferences=conferences)
            print(f"  {title} ({changed} on the simulator): {columns[title].summary}", flush=True)
            if args.profile:
                profile_round(meter, conferences=conferences)
            Account.objects.filter(name__startswith="bench-").update(request_budget=LIMITED_BUDGET)
            limited = measure_round(meter, conferences=conferences)
            columns[LIMITED_TITLE] = limited
            print(f"  {LIMITED_TITLE}: {limited.summary}", flush=True)
        sample = created[:: max(1, conferences // min(args.naive_sample, conferences))]
        sample = sample[: args.naive_sample]
        columns["naive loop"] = naive_loop(naive_rows(sim, users, sample), conferences=conferences)
        print(f"  naive loop: {columns['naive loop'].summary}", flush=True)
    print()
    print_table(result_table(columns, conferences=conferences))
    best = conferences / (args.accounts * LIMITED_BUDGET * budget.BUDGET_SHARE)
    print(
        f"\nbudget-limited: the same round at {LIMITED_BUDGET:g} requests/s per account took "
        f"{limited.wall:.2f} s ({conferences / limited.wall:.0f} polls/s); best possible "
        f"{conferences} / ({args.accounts} x {LIMITED_BUDGET:g} x {budget.BUDGET_SHARE:g}) "
        f"= {best:.2f} s ({limited.wall / best:.2f}x the best)"
    )
    print_notes(args, sample_size=len(sample), conferences=conferences)
    return columns


def profile_round(meter, *, conferences):
    """One more unchanged round under cProfile (the main thread: claims, pacing, the
    write; the HTTP threads are not seen), top functions by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        figures = measure_round(meter, conferences=conferences)
    finally:
        profiler.disable()
    print(f"\n  profiled unchanged round: {figures.wall:.2f} s wall, {figures.cpu:.2f} s CPU")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(15)


# --------------------------------------------------------------------------- printing


def size_text(count):
    for unit in ("B", "kB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return ""


# Rows that count what a round did rather than what it cost: no ratio.
COUNT_ROWS = (
    "conferences polled",
    "not polled (skipped, abandoned)",
    "budget windows reserved in the round",
)


def figure_rows(f):
    """The figures of one column, row name -> (number, text)."""
    n = f.conferences
    windows = "-" if f.windows is None else f"{f.windows}"
    polled = f"{f.polled} sampled" if f.sampled else f"{f.polled} of {n}"
    rate, cpu_ms = f.observed / f.wall, 1000 * f.cpu / f.observed
    return {
        "conferences polled": (f.polled, polled),
        "not polled (skipped, abandoned)": (f.skipped, f"{f.skipped}"),
        "budget windows reserved in the round": (f.windows or 0, windows),
        "wall time of one round": (f.wall, f"{f.wall:.2f} s"),
        "polls per second": (rate, f"{rate:.0f}"),
        "worker CPU per conference polled": (cpu_ms, f"{cpu_ms:.2f} ms"),
        "write: wall time (record_round)": (1000 * f.write_wall, f"{1000 * f.write_wall:.0f} ms"),
        "write: Postgres active time": (f.write.active_ms, f"{f.write.active_ms:.0f} ms"),
        "write: rows written": (f.write.rows, f"{f.write.rows}"),
        "write: of which history runs' ends": (f.write.runs_updated, f"{f.write.runs_updated}"),
        "write: WAL bytes": (f.write.wal, size_text(f.write.wal)),
        "round: rows written (claims too)": (f.round.rows, f"{f.round.rows}"),
        "round: WAL bytes": (f.round.wal, size_text(f.round.wal)),
        "round: Postgres active time": (f.round.active_ms, f"{f.round.active_ms:.0f} ms"),
    }


def result_table(columns, *, conferences):
    """Columns of the printed table: each round, the naive loop, the ratio of the naive
    loop to the unchanged round (how many times better confwatch is) and the target."""
    table = {
        title: {name: text for name, (_, text) in figure_rows(f).items()}
        for title, f in columns.items()
    }
    unchanged = figure_rows(columns["unchanged"])
    changed = figure_rows(columns[f"{CHANGED_SHARE:.0%} changed"])
    naive = figure_rows(columns["naive loop"])
    ratio = {}
    for name, (value, _) in unchanged.items():
        if name in COUNT_ROWS:
            continue
        if value > 0 and naive[name][0] > 0:
            better = (
                value / naive[name][0] if name == "polls per second" else naive[name][0] / value
            )
            ratio[name] = f"x{better:.1f}"
    table["naive / confwatch"] = ratio
    scale = conferences / TARGET_SIZE
    scaled = " (scaled)" if conferences != TARGET_SIZE else ""
    limits = {
        # row: (limit, higher is better, target text)
        "wall time of one round": (
            TARGET_ROUND_SECONDS * scale,
            False,
            f"<= {TARGET_ROUND_SECONDS * scale:g} s{scaled}",
        ),
        "polls per second": (
            TARGET_SPEEDUP * naive["polls per second"][0],
            True,
            f">= {TARGET_SPEEDUP:g}x naive",
        ),
        "worker CPU per conference polled": (TARGET_CPU_MS, False, f"<= {TARGET_CPU_MS:g} ms"),
        "write: wall time (record_round)": (
            TARGET_WRITE_MS * scale,
            False,
            f"<= {TARGET_WRITE_MS * scale:g} ms{scaled}",
        ),
    }
    table["target"], table["verdict"] = {}, {}
    everything = unchanged["not polled (skipped, abandoned)"][0] == 0
    everything = everything and changed["not polled (skipped, abandoned)"][0] == 0
    for name, (limit, higher, text) in limits.items():
        values = (unchanged[name][0], changed[name][0])
        met = everything and all(v >= limit if higher else v <= limit for v in values)
        table["target"][name] = text
        table["verdict"][name] = "PASS" if met else "FAIL"
    return table


def print_notes(args, *, sample_size, conferences):
    print(
        f"naive loop: requests.get per conference (no Session: a new connection each), "
        f"JSON parsed, one Conference.save() per observation (+ a HistoryEntry on change); "
        f"SAMPLED on {sample_size} of {conferences} conferences, figures scaled to "
        f"{conferences}.\n"
        "worker CPU: time.process_time() of this process (the poller and its threads; the "
        "simulator is another process).\n"
        "write: results.record_round, wrapped at run time. Postgres active time: "
        "pg_stat_database.active_time (statement execution in this database). rows: "
        "n_tup_ins + n_tup_upd + n_tup_del of conferences_*. WAL: pg_current_wal_lsn() "
        "difference, cluster-wide (other databases' writes in the same moment count too)."
    )


def print_scale(results):
    """Cost per conference at each size, side by side, for the unchanged, 1% changed and
    budget-limited rounds."""
    small, large = (results[size] for size in SCALE_SIZES)
    rows = {
        "wall time per conference": lambda f: (1000 * f.wall / f.observed, "ms"),
        "worker CPU per conference": lambda f: (1000 * f.cpu / f.observed, "ms"),
        "write wall time per conference": lambda f: (1e6 * f.write_wall / f.observed, "us"),
        "write Postgres time per conference": lambda f: (
            1000 * f.write.active_ms / f.observed,
            "us",
        ),
        "write rows per conference": lambda f: (f.write.rows / f.observed, ""),
        "write WAL bytes per conference": lambda f: (f.write.wal / f.observed, "B"),
        "round WAL bytes per conference": lambda f: (f.round.wal / f.observed, "B"),
    }
    table = {}
    for title in ("unchanged", f"{CHANGED_SHARE:.0%} changed", LIMITED_TITLE):
        a, b, ratio = f"{SCALE_SIZES[0]} {title}", f"{SCALE_SIZES[1]} {title}", f"{title}: ratio"
        table[a], table[b], table[ratio] = {}, {}, {}
        for name, figure in rows.items():
            (x, unit), (y, _) = figure(small[title]), figure(large[title])
            table[a][name], table[b][name] = f"{x:.2f} {unit}", f"{y:.2f} {unit}"
            verdict = "ok" if y <= x * SCALE_TOLERANCE else "WORSE"
            table[ratio][name] = f"{y / x:.2f} {verdict}" if x else "-"
    print(
        f"\n== cost per conference polled, {SCALE_SIZES[1]} vs {SCALE_SIZES[0]} (target: no worse; "
        f"ratio <= {SCALE_TOLERANCE:g} counts as ok)"
    )
    print_table(table)
    print(
        "A round a minute or more after a conference's last written sighting also writes its "
        "open history run's end (RUN_REFRESH, once a minute): the larger size's rounds are "
        'further apart, so more of them do; the row "write: of which history runs\' ends" '
        "above counts them."
    )


def stop_on_sigterm(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")


def main():
    args = parse_args()
    # A terminated run still stops its simulator and drops its database (finally blocks).
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    sizes = SCALE_SIZES if args.scale else (args.conferences,)
    import django

    django.setup()
    print(
        f"confwatch throughput benchmark, sizes {', '.join(map(str, sizes))}, "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs",
        flush=True,
    )
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-throughput-") as log_dir:
            for size in sizes:
                results[size] = run_size(args, conferences=size, log_dir=log_dir)
                drop_database()
        if args.scale:
            print_scale(results)
    finally:
        drop_database()


if __name__ == "__main__":
    main()
