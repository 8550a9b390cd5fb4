"""What the benchmarks share: their own database (created when missing, dropped at the
end, never the demo's; its URL is DATABASE_URL, which each benchmark sets before Django
starts), a table printer, and the helpers of those that run processes or fill data."""

import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def database_urls():
    url = os.environ["DATABASE_URL"]
    return url.rsplit("/", 1)[1], url.rsplit("/", 1)[0] + "/postgres"


def ensure_database():
    import psycopg

    name, admin_url = database_urls()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if exists.fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')


def drop_database():
    import psycopg
    from django.db import connections

    connections.close_all()
    name, admin_url = database_urls()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_database():
    """Start Django on the benchmark's own database, dropped first (a run that was killed
    may have left it behind), created and migrated."""
    import django
    from django.core.management import call_command

    drop_database()
    ensure_database()
    django.setup()
    call_command("migrate", verbosity=0)


def print_table(columns):
    """Print {column title: {row name: text}} as a table, rows in first-seen order."""
    rows = []
    for cells in columns.values():
        rows += [name for name in cells if name not in rows]
    width = max(len(name) for name in rows)
    widths = {
        title: max([len(title)] + [len(text) for text in cells.values()])
        for title, cells in columns.items()
    }
    print(" " * width + "".join(f"  {title:>{widths[title]}}" for title in columns))
    for name in rows:
        texts = (f"  {cells.get(name, '-'):>{widths[title]}}" for title, cells in columns.items())
        print(f"{name:<{width}}" + "".join(texts))


def empty_broker():
    """Empty the benchmark's own Redis database (CELERY_BROKER_URL)."""
    import redis

    client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    try:
        client.flushdb()
    finally:
        client.close()


def stop(process):
    """Stop a process the benchmark started: SIGTERM, then SIGKILL after 20 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def catapult_call(method, *args, timeout=20, **kwargs):
    """Call the simulator as a customer's app would, waiting out a 429 (polling shares
    the user's rate limit)."""
    from conferences.catapult import answers

    deadline = time.monotonic() + timeout
    while True:
        try:
            return method(*args, **kwargs)
        except answers.RateLimited:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def add_accounts(names):
    """Accounts through the service (encrypted credentials) at an address nobody
    answers: the page benchmarks read what they stored, they never poll."""
    from conferences.registry import tracking

    for name in names:
        tracking.add_account(
            name=name,
            user_id=f"u-{name}",
            token=f"t-{name}",
            secret=f"s-{name}",
            base_url="http://127.0.0.1:9",
            request_budget=5.0,
        )


# The benchmarks that run the product's processes (alerts, callbacks, flood).

ROOT = Path(__file__).resolve().parents[2]
# What these benchmarks measure runs at the product's default intervals: none comes from
# the caller's shell, neither in this process nor in those it starts.
MEASURED_DEFAULTS = (
    "CONFWATCH_POLL_INTERVAL",
    "CONFWATCH_ROUND_SECONDS",
    "CONFWATCH_MEMBERS_INTERVAL",
    "CONFWATCH_ALERT_SECONDS",
)
LOG_TAIL_LINES = 40


def use_own_services(prefix, *, database, broker):
    """Point this process, before Django starts, and the processes it starts at the
    benchmark's own database and Redis database: <prefix>_DATABASE_URL (default the
    local database named `database`) and <prefix>_BROKER_URL (default `broker`)."""
    os.environ["DATABASE_URL"] = os.environ.get(
        f"{prefix}_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{database}"
    )
    os.environ["CELERY_BROKER_URL"] = os.environ.get(f"{prefix}_BROKER_URL", broker)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    os.environ.setdefault("CONFWATCH_ALLOWED_API_HOSTS", "127.0.0.1,localhost")
    os.environ["LOG_LEVEL"] = "WARNING"
    for name in MEASURED_DEFAULTS:
        os.environ.pop(name, None)


@contextmanager
def own_database_and_broker():
    """Django started on the benchmark's own database (fresh_database), and its own
    Redis database empty; at the end the Redis database is emptied and the database
    dropped, whatever happened."""
    fresh_database()
    try:
        empty_broker()
        yield
    finally:
        try:
            empty_broker()
        finally:
            drop_database()


@dataclass
class Product:
    """The product's processes as a benchmark runs them: their shared log file, and the
    web server's address when it runs one."""

    log_path: Path
    web_url: str | None = None

    def log_tail(self):
        return log_tail(self.log_path)


@contextmanager
def running_product(*, web=False, env=None):
    """A Celery worker and Celery beat (and, with web=True, the web server, `manage.py
    runserver` on a free port, which becomes CONFWATCH_BASE_URL here too) as
    subprocesses on the benchmark's database and broker, with `env` added to their
    environment; their output in one log file in a temporary directory. Stopped at the
    end."""
    from django.conf import settings

    processes = []
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        product = Product(log_path=Path(directory) / "processes.log")
        environment = dict(os.environ)
        environment["CELERY_BEAT_SCHEDULE_FILENAME"] = str(Path(directory) / "beat-schedule")
        environment.update(env or {})
        try:
            with open(product.log_path, "ab") as log:
                if web:
                    port = free_port()
                    product.web_url = f"http://127.0.0.1:{port}"
                    settings.CONFWATCH_BASE_URL = product.web_url
                    environment["CONFWATCH_BASE_URL"] = product.web_url
                    processes.append(
                        start(
                            environment,
                            log,
                            "manage.py",
                            "runserver",
                            f"127.0.0.1:{port}",
                            "--noreload",
                        )
                    )
                celery = ["-m", "celery", "-A", "dashboard"]
                processes.append(
                    start(
                        environment,
                        log,
                        *celery,
                        "worker",
                        "--concurrency=2",
                        "--without-mingle",
                        "--without-gossip",
                        "--loglevel=warning",
                    )
                )
                processes.append(start(environment, log, *celery, "beat", "--loglevel=warning"))
            if web and not wait_for(lambda: web_is_up(product.web_url), 30):
                sys.exit(f"The web server did not start:\n{product.log_tail()}")
            yield product
        finally:
            for process in reversed(processes):
                stop(process)


def log_tail(path):
    """The last lines of a log file, for a report of what went wrong."""
    lines = Path(path).read_text(errors="replace").splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:]) or "(the log is empty)"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(env, log, *args, niceness=0):
    """One of the product's processes, at this niceness (the Procfile's `nice -n`)."""
    return subprocess.Popen(
        [sys.executable, *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
    )


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def web_is_up(url):
    import requests

    try:
        return requests.get(url + "/accounts/login/", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def percentile(values, share):
    """Nearest rank: the smallest value with at least `share` of the values at or below
    it (share 0.5 is the median, 0.95 the p95). Every bench reports through this one."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]
