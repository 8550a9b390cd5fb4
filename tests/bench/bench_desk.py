"""Benchmark: a support desk's busy hour, every part under load at once (issue #24).

Runs the product as deployed, each part a process of its own: gunicorn with 2 workers
(dashboard/gunicorn.py), a Celery worker and a poller (the polling queue's
worker, as in the Procfile), each of concurrency 2, Celery beat, the mail sink, and the
Catapult simulator playing its desk scenario (simulator/desk.py): --conferences
conferences over --accounts accounts, starting in waves on the hour and half hour of a
scenario clock at real time (--compression 1: the hour's first --minutes, its on-the-hour wave
included, the way a desk lives it; a higher compression plays more of the hour faster
than any desk does), running 5-40 scenario minutes; half the accounts send callbacks to
confwatch, the others are polled only. Every conference is tracked before the
scenario's clock starts. --viewers members of staff (HTTP clients) keep the overview
open (its live refresh every 2 s) and open a conference page every 10 s;
--subscriptions subscriptions (state changes and rules) send email to the mail sink.

After --minutes it stops the scenario, lets confwatch catch up for two poll intervals
and 5 s, then compares the simulator's change log with the events confwatch stored
(missing, duplicated, out of order), the deliveries with the mail sink (expected, sent,
duplicated), and prints the figures in one table; the last line is the same as one JSON
object. A figure it does not measure yet says "not measured" (null in the JSON).

    make bench-desk      # or: .venv/bin/python tests/bench/bench_desk.py --help

Its database (BENCH_DESK_DATABASE_URL, default confwatch_bench_desk) is created and
migrated at the start and dropped at the end; its Redis database (BENCH_DESK_BROKER_URL,
default redis://127.0.0.1:6379/11) emptied at both ends.
"""

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DESK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/confwatch_bench_desk"
)
os.environ["CELERY_BROKER_URL"] = os.environ.get(
    "BENCH_DESK_BROKER_URL", "redis://127.0.0.1:6379/11"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("CONFWATCH_ALLOWED_API_HOSTS", "127.0.0.1,localhost")
os.environ["LOG_LEVEL"] = "WARNING"
os.environ["DEBUG"] = "false"

import requests  # noqa: E402

from tests.bench import desk_support as support  # noqa: E402
from tests.bench.common import (  # noqa: E402
    drop_database,
    empty_broker,
    fresh_database,
    percentile,
    print_table,
    start,
    stop,
    wait_for,
    web_is_up,
)
from tests.procfile import procfile_lines  # noqa: E402

NOT_MEASURED = "not measured"
REFRESH_SECONDS = 2.0
PAGE_EVERY = 10.0
STALENESS_TARGET = 1.2  # p99 staleness within 1.2 times the best the budgets allow
# The processes whose CPU the report shows (the Postgres backends are sampled apart).
CPU_PARTS = ("web", "worker", "poller", "beat", "simulator", "mail")
MEMORY_AT = 120.0  # seconds into the scenario: "memory at minute 2"
SAMPLE_EVERY = 1.0
PASSWORD = "desk-bench-password-1"
STATUS_KINDS = ("first_observed", "state_changed", "members_changed", "hold_changed")
STATUS_KINDS += ("mute_changed",)
FIELD_OF_KIND = {
    "state_changed": "state",
    "members_changed": "active_members",
    "hold_changed": "hold",
    "mute_changed": "mute",
}
SUBSCRIPTION_KINDS = (["state"], ["alone"], ["all_held"], ["members_drop"])


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conferences", type=int, default=2000)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=10.0, help="real minutes played")
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument(
        "--compression",
        type=float,
        default=1.0,
        help="scenario seconds per real second (default 1: real time, the hour's first "
        "--minutes with its on-the-hour wave; 60 / --minutes plays the whole hour faster)",
    )
    parser.add_argument(
        "--budget", type=float, default=20.0, help="requests/s per account (and its rate limit)"
    )
    parser.add_argument("--web-port", type=int, default=8209)
    parser.add_argument("--sim-port", type=int, default=8779)
    parser.add_argument("--mail-port", type=int, default=8039)
    parser.add_argument("--seed", type=int, default=24)
    args = parser.parse_args()
    if args.accounts < 2 or args.conferences < args.accounts or args.minutes <= 0:
        parser.error("need --accounts >= 2, --conferences >= --accounts and --minutes > 0")
    if not args.compression > 0:
        parser.error("--compression must be positive")
    return args


def users(count):
    return [
        (f"u-desk-{index}", f"desk-token-{index}", f"desk-secret-{index}") for index in range(count)
    ]


def set_up_accounts(args, sim_url):
    """The accounts; the even ones call back (their callback URL, for the simulator)."""
    from conferences.callbacks import receiver
    from conferences.registry import tracking

    accounts, callback_urls = {}, {}
    for index, (user_id, token, secret) in enumerate(users(args.accounts)):
        account = tracking.add_account(
            name=f"desk-{index}",
            user_id=user_id,
            token=token,
            secret=secret,
            base_url=sim_url,
            request_budget=args.budget,
        )
        accounts[user_id] = account
        if index % 2 == 0:
            callback_urls[user_id] = receiver.callback_url(account)
    return accounts, callback_urls


def set_up_subscriptions(count, accounts):
    from conferences.models import Subscription

    accounts = list(accounts.values())
    for index in range(count):
        Subscription.objects.create(
            email=f"desk{index}@example.com",
            scope=Subscription.Scope.ACCOUNT,
            account=accounts[index % len(accounts)],
            # Every account gets every kind (index // accounts, not index: with 4 accounts
            # and 4 kinds, index alone would give each account one kind only).
            kinds=SUBSCRIPTION_KINDS[(index // len(accounts)) % len(SUBSCRIPTION_KINDS)],
            rule_after_seconds=60,
            drop_percent=50,
        )


def set_up_viewers(count):
    from django.contrib.auth import get_user_model

    return [
        get_user_model().objects.create_superuser(f"viewer{index}", password=PASSWORD).username
        for index in range(count)
    ]


def procfile_niceness(kind):
    """The `nice -n N` of the Procfile's line for this process type (0 without one)."""
    found = re.search(r"\bnice -n (\d+) ", procfile_lines()[kind])
    return int(found.group(1)) if found else 0


def table_rows(measured):
    """Format None as "not measured"."""
    return {name: NOT_MEASURED if value is None else value for name, value in measured.items()}


def seconds_text(values):
    return pair(values, 0.5, 0.95, "s", 2)


def pair(values, low, high, unit, digits):
    if not values:
        return None
    return " / ".join(f"{percentile(values, share):.{digits}f} {unit}" for share in (low, high))


def megabytes(pair_of_bytes):
    if pair_of_bytes is None:
        return None
    return " / ".join(f"{value / 2**20:.0f} MB" for value in pair_of_bytes)


def p95(values):
    return round(percentile(values, 0.95), 3) if values else None


class Sampler(threading.Thread):
    """Every second: staleness of the polled accounts' active conferences, the Postgres
    backends' CPU; at MEMORY_AT s the web and worker memory."""

    def __init__(self, *, polled_accounts, web, workers, budget, poll_interval, stop_event):
        super().__init__(daemon=True)
        self.polled_accounts = polled_accounts
        self.web, self.workers = web, workers
        self.budget, self.poll_interval = budget, poll_interval
        self.stop_event = stop_event
        self.staleness, self.best = [], []
        self.backends = support.BackendCpu()
        self.memory_early = None
        self.memory_at = None
        self.started = time.monotonic()

    def run(self):
        from django.db import connection
        from django.utils import timezone

        from conferences.models import Conference
        from conferences.models.conference import polled_q
        from conferences.web.selectors.overview import budget_use

        while not self.stop_event.wait(SAMPLE_EVERY):
            now = timezone.now()
            for account in self.polled_accounts:
                polled = list(
                    Conference.objects.filter(
                        account=account, state="active", last_polled_at__isnull=False
                    ).values_list("last_polled_at", flat=True)
                )
                self.staleness.extend((now - at).total_seconds() for at in polled)
                # The best a budget allows, as the overview's account strip says it: each
                # polled conference (active or created) read once an interval, the interval
                # stretched when the usable budget cannot read them all in it, after the
                # active ones' members lists took their share of it.
                count = Conference.objects.filter(polled_q(), account=account).count()
                best = budget_use(
                    self.budget, polled=count, active=len(polled), interval=self.poll_interval
                )
                self.best.extend([best["real_interval"]] * len(polled))
            with connection.cursor() as cursor:
                self.backends.sample(cursor)
            if self.memory_early is None and time.monotonic() - self.started >= MEMORY_AT:
                self.memory_early = self.memory()
                self.memory_at = time.monotonic() - self.started
        connection.close()

    def memory(self):
        workers = sum(support.tree_rss_bytes(worker.pid) for worker in self.workers)
        return support.tree_rss_bytes(self.web.pid), workers


def database_size():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        size = cursor.fetchone()[0]
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE relname LIKE 'conferences\\_%'"
        )
        tables = [name for (name,) in cursor.fetchall()]
        rows = 0
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            rows += cursor.fetchone()[0]
    return rows, size


def stored_values(conference_ids):
    """{conference id: {field: [(value, event id, observed at, written at)]}} in event
    order, times in epoch seconds."""
    from conferences.models import Event

    stored = defaultdict(lambda: defaultdict(list))
    events = (
        Event.objects.filter(kind__in=STATUS_KINDS, conference__conference_id__in=conference_ids)
        .order_by("id")
        .values_list(
            "id",
            "kind",
            "after",
            "detail",
            "occurred_at",
            "created_at",
            "conference__conference_id",
        )
    )
    for event_id, kind, after, detail, occurred, created, conference_id in events.iterator():
        times = (occurred.timestamp(), created.timestamp())
        if kind == "first_observed":
            for name in support.STATUS_FIELDS:
                stored[conference_id][name].append((detail.get(name), event_id, *times))
        else:
            stored[conference_id][FIELD_OF_KIND[kind]].append((after, event_id, *times))
    return stored


# What a conference-member callback tells (activeMembers) and what a conference callback
# tells (created, completed); the rest (a conference going active, its hold and mute)
# only a poll sees, on callback accounts too.
CALLBACK_FIELDS = {"active_members": lambda value: True}
CALLBACK_FIELDS["state"] = lambda value: value in ("created", "completed")


def compare_all(simulated, account_of, calling_accounts, *, shortest, until):
    """{(group, field): Comparison} with group "callback" or "polled" (the account's);
    a polled change shorter than `shortest` s is too short to be missing."""
    stored = stored_values(list(simulated))
    results = defaultdict(support.Comparison)
    for conference_id, fields in simulated.items():
        calls_back = account_of[conference_id] in calling_accounts
        group = "callback" if calls_back else "polled"
        for name in support.STATUS_FIELDS:
            carried = CALLBACK_FIELDS.get(name) if calls_back else None
            support.compare(
                fields[name],
                stored[conference_id][name],
                results[group, name],
                carried=carried or (lambda value: False),
                shortest=shortest,
                until=until,
            )
    return results


def merged(results, group):
    total = support.Comparison()
    for (each, _), result in results.items():
        if each == group:
            total.changes += result.changes
            total.missing += result.missing
            total.too_short += result.too_short
            total.duplicated += result.duplicated
            total.out_of_order += result.out_of_order
            total.matched += result.matched
            total.change_at_by_event.update(result.change_at_by_event)
            total.examples += result.examples
    return total


def print_examples(examples):
    """The first duplicated or out-of-order values: the simulated changes (value, time)
    and the stored values up to it (value, event id, observed, written; times relative
    to the first simulated change)."""
    for what, simulated, stored in examples[:6]:
        origin = simulated[0][1]
        print(f"\n{what}:")
        print("  simulated: " + ", ".join(f"{v}@{at - origin:.2f}" for v, at in simulated))
        print(
            "  stored:    "
            + ", ".join(
                f"{v}#{event} obs@{seen - origin:.2f} w@{written - origin:.2f}"
                for v, event, seen, written in stored
            )
        )


def by_field(results, attribute):
    """ "state 1/2, active_members 0/3, ..." (callback/polled) for one count."""
    return ", ".join(
        f"{name} {getattr(results['callback', name], attribute)}/"
        f"{getattr(results['polled', name], attribute)}"
        for name in support.STATUS_FIELDS
    )


def email_figures(mail_dir, results):
    """Deliveries by status; messages sent and duplicated (the sink's Message-IDs); and
    change to email, by how the change came (callback or poll), for the change
    deliveries due at once: one held by the coalescing or group window, the hourly cap
    or quiet hours waits by design (`held` counts them), a rule's waits for its rule."""
    from conferences.models import Delivery

    arrivals = support.read_mail(mail_dir)
    statuses, held = Counter(), 0
    latencies = {"callback": [], "polled": []}
    carried_by_at = {}
    for group in results.values():
        carried_by_at.update({at: carried for at, _, carried in group.matched})
    change_at = {**results["callback"].change_at_by_event, **results["polled"].change_at_by_event}
    for delivery in Delivery.objects.prefetch_related("events"):
        statuses[delivery.status] += 1
        arrived = arrivals.get(delivery.message_id)
        if not arrived or delivery.kind != Delivery.Kind.CHANGE:
            continue
        if (delivery.send_after - delivery.created_at).total_seconds() > 1:
            held += 1
            continue
        changes = [change_at[event.pk] for event in delivery.events.all() if event.pk in change_at]
        if not changes:
            continue
        first = min(changes)
        latencies["callback" if carried_by_at.get(first) else "polled"].append(min(arrived) - first)
    sent = len(arrivals)
    duplicated = sum(len(times) - 1 for times in arrivals.values())
    return statuses, sent, duplicated, latencies, held


def product_env(directory, web_url):
    """The environment of the product's processes: the deployed settings (not the tests'),
    the product's own poll intervals, beat's schedule file in the run's directory."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        CONFWATCH_BASE_URL=web_url,
        CELERY_BEAT_SCHEDULE_FILENAME=str(directory / "beat-schedule"),
        LOG_LEVEL="WARNING",
    )
    for name in (
        "CONFWATCH_POLL_INTERVAL",
        "CONFWATCH_ROUND_SECONDS",
        "CONFWATCH_MEMBERS_INTERVAL",
    ):
        env.pop(name, None)
    return env


def main():  # noqa: PLR0915 - one run, read top to bottom
    args = parse_args()
    fresh_database()
    from django.conf import settings

    web_url = f"http://127.0.0.1:{args.web_port}"
    sim_url = f"http://127.0.0.1:{args.sim_port}"
    settings.CONFWATCH_BASE_URL = web_url
    processes = {}
    try:
        empty_broker()
        with tempfile.TemporaryDirectory(prefix="bench-desk-") as directory:
            directory = Path(directory)
            mail_dir, log_path = directory / "mail", directory / "changes.jsonl"
            accounts, callback_urls = set_up_accounts(args, sim_url)
            set_up_subscriptions(args.subscriptions, accounts)
            viewers = set_up_viewers(args.viewers)
            env = product_env(directory, web_url)
            env.update(
                EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                EMAIL_HOST="127.0.0.1",
                EMAIL_PORT=str(args.mail_port),
                DEBUG="false",
            )
            log_file = open(directory / "processes.log", "ab")  # noqa: SIM115
            celery = ["-m", "celery", "-A", "dashboard", "--quiet"]
            processes["web"] = start(
                env, log_file, "-m", "gunicorn", "dashboard.wsgi", "--config",
                "python:dashboard.gunicorn", "--bind", f"127.0.0.1:{args.web_port}",
            )  # fmt: skip
            # At the Procfile's niceness: the worker (alerts, callbacks) at a lower priority,
            # so the poller, whose requests have their time slots, and the web go first.
            for name, queue in (("worker", "celery"), ("poller", "polling")):
                niceness = procfile_niceness(name)
                processes[name] = start(
                    env, log_file, *celery, "worker", "--queues", queue, "--hostname",
                    f"{name}@%h", "--concurrency=2", "--without-mingle", "--without-gossip",
                    "--loglevel=warning", niceness=niceness,
                )  # fmt: skip
            processes["beat"] = start(env, log_file, *celery, "beat", "--loglevel=warning")
            processes["mail"] = start(
                env, log_file, "-m", "mailsink", "--port", str(args.mail_port), "--dir",
                str(mail_dir), "--every", "60",
            )  # fmt: skip
            if not wait_for(lambda: web_is_up(web_url), 60):
                sys.exit("The web server did not start:\n" + tail(directory))
            delay = 15.0 + args.conferences / 200
            sim_args = ["-m", "simulator", "--port", str(args.sim_port), "--seed", str(args.seed)]
            sim_args += ["--rate-limit", str(args.budget), "--speed", str(args.compression)]
            sim_args += ["--desk", str(args.conferences), "--desk-minutes", str(args.minutes)]
            sim_args += ["--desk-log", str(log_path), "--desk-delay", str(delay)]
            for user_id, token, secret in users(args.accounts):
                sim_args += ["--user", f"{user_id}:{token}:{secret}"]
            for user_id, url in callback_urls.items():
                sim_args += ["--desk-callback", f"{user_id}={url}"]
            sim_started = time.monotonic()
            processes["simulator"] = start(env, log_file, *sim_args)
            if not wait_for(lambda: sim_is_up(sim_url), 60):
                sys.exit("The simulator did not start:\n" + tail(directory))
            desk = requests.get(f"{sim_url}/_sim/desk", timeout=10).json()
            track(desk["list"], accounts)
            tracked_in = time.monotonic() - sim_started
            if tracked_in >= delay:
                print(f"warning: tracking took {tracked_in:.1f} s, past the {delay:.0f} s delay")
            time.sleep(max(0.0, delay - tracked_in))
            rows_before, bytes_before = database_size()
            cpu_before = {name: support.tree_cpu_seconds(processes[name].pid) for name in CPU_PARTS}
            cpu_before["viewers"] = time.process_time()
            calling = set(callback_urls)
            stop_event = threading.Event()
            sampler = Sampler(
                polled_accounts=[a for user_id, a in accounts.items() if user_id not in calling],
                web=processes["web"],
                workers=[processes["worker"], processes["poller"]],
                budget=args.budget,
                poll_interval=settings.CONFWATCH_POLL_INTERVAL,
                stop_event=stop_event,
            )
            sampler.start()
            viewer_threads = start_viewers(viewers, web_url, stop_event)
            print(
                f"desk: {args.conferences} conferences over {args.accounts} accounts "
                f"({len(calling)} calling back), {args.minutes:g} min at compression "
                f"{args.compression:g}, {args.viewers} viewers, {args.subscriptions} "
                "subscriptions",
                flush=True,
            )
            played_from = time.monotonic()
            time.sleep(args.minutes * 60)
            progress = requests.post(f"{sim_url}/_sim/desk/stop", timeout=30).json()
            played = time.monotonic() - played_from
            # Catch up: two of the longest poll intervals the budgets allow, and 5 s.
            best = percentile(sampler.best, 0.99) if sampler.best else 0.0
            time.sleep(2 * max(settings.CONFWATCH_POLL_INTERVAL, best) + 5)
            caught_up = time.time()
            stop_event.set()
            for thread in [sampler, *viewer_threads]:
                thread.join(30)
            memory_end = sampler.memory()
            cpu = {
                name: support.tree_cpu_seconds(processes[name].pid) - cpu_before[name]
                for name in CPU_PARTS
            }
            cpu["viewers"] = time.process_time() - cpu_before["viewers"]
            rows_after, bytes_after = database_size()
            simulated, account_of = support.read_change_log(log_path)
            # A polled change is seen when it lasts longer than the gap between two polls:
            # at most the staleness target, 1.2 times the best the budgets allow.
            best = percentile(sampler.best, 0.99) if sampler.best else 0.0
            shortest = STALENESS_TARGET * max(settings.CONFWATCH_POLL_INTERVAL, best)
            by_group = compare_all(
                simulated, account_of, calling, shortest=shortest, until=caught_up
            )
            screen = {"callback": [], "polled": []}
            for viewer in viewer_threads:
                sightings = {"callback": [], "polled": []}
                for shown in viewer.shown:
                    group = "callback" if account_of.get(shown[0]) in calling else "polled"
                    sightings[group].append(shown)
                for group, shown in sightings.items():
                    screen[group] += support.screen_latencies(simulated, shown)
            results = {group: merged(by_group, group) for group in ("callback", "polled")}
            statuses, sent, duplicated, email_latencies, held = email_figures(mail_dir, results)
            report(
                args=args,
                progress=progress,
                played=played,
                results=results,
                by_group=by_group,
                screen=screen,
                statuses=statuses,
                sent=sent,
                held=held,
                shortest=shortest,
                duplicated=duplicated,
                email_latencies=email_latencies,
                sampler=sampler,
                viewers=viewer_threads,
                cpu=cpu,
                memory_end=memory_end,
                growth=(rows_after - rows_before, bytes_after - bytes_before),
            )
    finally:
        for process in reversed(list(processes.values())):
            stop(process)
        try:
            empty_broker()
        finally:
            drop_database()


def tail(directory):
    return (directory / "processes.log").read_text(errors="replace")[-3000:]


def sim_is_up(url):
    try:
        return requests.get(url + "/_sim/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def track(conferences, accounts):
    from conferences.registry import tracking

    by_account = defaultdict(list)
    for row in conferences:
        by_account[row["account"]].append(row["id"])
    for user_id, ids in by_account.items():
        tracking.track_conferences(account=accounts[user_id], conference_ids=ids)


def start_viewers(usernames, web_url, stop_event):
    from conferences.models import Conference

    pks = list(Conference.objects.order_by("pk").values_list("pk", flat=True))
    threads = []
    for index, username in enumerate(usernames):
        viewer = support.Viewer(
            web_url=web_url,
            username=username,
            password=PASSWORD,
            conference_pks=pks[index :: max(1, len(usernames))][:20],
            refresh=REFRESH_SECONDS,
            page_every=PAGE_EVERY,
            stop=stop_event,
        )
        viewer.start()
        threads.append(viewer)
    return threads


def report(*, args, progress, played, results, by_group, screen, statuses, sent, duplicated,
           held, shortest, email_latencies, sampler, viewers, cpu, memory_end, growth):  # fmt: skip
    from django.conf import settings

    callback, polled = results["callback"], results["polled"]
    # By how the change came: a callback tells it, or only a poll sees it.
    db = {"callback": [], "polled": []}
    for group in results.values():
        for changed, written, carried in group.matched:
            db["callback" if carried else "polled"].append(written - changed)
    timings = [
        value for viewer in viewers for values in viewer.timings.values() for value in values
    ]
    by_page = defaultdict(list)
    for viewer in viewers:
        for page, values in viewer.timings.items():
            by_page[page] += values
    statuses_5xx = sum(
        count for viewer in viewers for code, count in viewer.statuses.items() if code >= 500
    )
    viewer_errors = sum((viewer.errors for viewer in viewers), Counter())
    staleness_ratio = None
    if sampler.staleness:
        staleness_ratio = percentile(sampler.staleness, 0.99) / percentile(sampler.best, 0.99)
    memory_growth = None
    if sampler.memory_early is not None:
        early_worker = sampler.memory_early[1]
        memory_growth = (memory_end[1] - early_worker) / early_worker if early_worker else None
    # Rows come from changes, which come at the scenario's pace: a day is 24 scenario hours.
    day = 86400 / (played * args.compression)
    retention_days = max(settings.CONFWATCH_RETENTION_DAYS.values())
    figures = {
        "changes simulated (callback / polled)": f"{callback.changes} / {polled.changes}",
        "steps played / skipped": f"{progress['applied_steps']} / {progress['skipped_steps']}",
        "missing (callback / polled accounts)": f"{callback.missing} / {polled.missing}",
        "  missing by field (callback/polled)": by_field(by_group, "missing"),
        f"polled changes shorter than {shortest:.1f} s (unseeable)": (
            f"{callback.too_short} / {polled.too_short}"
        ),
        "duplicated": str(callback.duplicated + polled.duplicated),
        "out of order": str(callback.out_of_order + polled.out_of_order),
        "  out of order by field (callback/polled)": by_field(by_group, "out_of_order"),
        "emails expected (deliveries)": f"{sum(statuses.values())} {dict(statuses)}",
        "emails sent / duplicated": f"{sent} / {duplicated}",
        "change emails held by a window, cap or quiet hours": str(held),
        "staleness p50 / p99": pair(sampler.staleness, 0.5, 0.99, "s", 1),
        "best p99 the budgets allow": (
            f"{percentile(sampler.best, 0.99):.1f} s" if sampler.best else None
        ),
        "callback change -> db p50 / p95": seconds_text(db["callback"]),
        "polled change -> db p50 / p95": seconds_text(db["polled"]),
        "callback change -> email p50 / p95 (due at once)": seconds_text(
            email_latencies["callback"]
        ),
        "polled change -> email p50 / p95 (due at once)": seconds_text(email_latencies["polled"]),
        "callback change -> screen p50 / p95": seconds_text(screen["callback"]),
        "polled change -> screen p50 / p95": seconds_text(screen["polled"]),
        "page p95 (all viewer requests)": f"{1000 * percentile(timings, 0.95):.0f} ms"
        if timings
        else None,
        "  page p50 / p95 by page (requests)": "; ".join(
            f"{page} {1000 * percentile(values, 0.5):.0f} / "
            f"{1000 * percentile(values, 0.95):.0f} ms ({len(values)})"
            for page, values in sorted(by_page.items())
        )
        or None,
        "viewer requests / 5xx / errors": (
            f"{len(timings)} / {statuses_5xx} / {sum(viewer_errors.values())}"
            + (f" {dict(viewer_errors)}" if viewer_errors else "")
        ),
        "CPU s web / worker / poller / beat": " / ".join(
            f"{cpu[name]:.1f}" for name in ("web", "worker", "poller", "beat")
        ),
        "CPU s Postgres (backends, sampled)": f"{sampler.backends.seconds():.1f}",
        "CPU s simulator / mail sink / this bench (viewers)": " / ".join(
            f"{cpu[name]:.1f}" for name in ("simulator", "mail", "viewers")
        ),
        "memory web / workers at minute 2": megabytes(sampler.memory_early),
        "memory web / workers at the end": megabytes(memory_end),
        "db growth rows / bytes": f"{growth[0]} / {growth[1] / 2**20:.1f} MB",
        "db growth a day (24 scenario hours) / retention": (
            f"{growth[0] * day:.0f} rows, {growth[1] * day / 2**30:.2f} GB / "
            f"{growth[0] * day * retention_days:.0f} rows, "
            f"{growth[1] * day * retention_days / 2**30:.1f} GB ({retention_days} days)"
        ),
    }
    print_examples(callback.examples + polled.examples)
    print()
    print_table({"measured": table_rows(figures)})
    print(json.dumps({
        "missing": callback.missing + polled.missing,
        "duplicated": callback.duplicated + polled.duplicated,
        "out_of_order": callback.out_of_order + polled.out_of_order,
        "duplicate_emails": duplicated,
        "errors_5xx": statuses_5xx,
        "staleness_p99_ratio": round(staleness_ratio, 3) if staleness_ratio else None,
        "callback_change_to_db_p95_s": p95(db["callback"]),
        "callback_change_to_email_p95_s": p95(email_latencies["callback"]),
        "polled_change_to_email_p95_s": p95(email_latencies["polled"]),
        "change_to_screen_p95_s": p95(screen["callback"]),
        "page_p95_ms": round(1000 * percentile(timings, 0.95), 1) if timings else None,
        "worker_memory_growth": round(memory_growth, 3) if memory_growth is not None else None,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
