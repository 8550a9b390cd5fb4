"""What the benchmarks share: their own database (created when missing, dropped at the
end, never the demo's; its URL is DATABASE_URL, which each benchmark sets before Django
starts), a table printer, and the helpers of those that run processes or fill data."""

import math
import os
import socket
import subprocess
import sys
import time
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


# The benchmarks that run the web server, a worker and beat (callbacks, flood).

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_env(directory, web_url):
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


def start(env, log, *args):
    return subprocess.Popen(
        [sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
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
