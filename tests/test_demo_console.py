"""`make run`'s console: the whole demo (honcho and Procfile.demo: simulator, mail sink,
web, worker, beat, ready) started for real on the test database. A new user must see the
URL and login last, find them in the file the README names, read nothing but warnings
above them, and stop it all with Ctrl-C without a traceback."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings

from tests.conftest import process_env

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[1]
LOGIN_LINE = re.compile(r"ready\.1\s+\|\s+Open (http://\S+) and sign in as demo / (\S+)$")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_until(process, pattern, *, timeout):
    """Lines of the process's output until one matches (or the time is up)."""
    lines, deadline = [], time.monotonic() + timeout
    os.set_blocking(process.stdout.fileno(), False)
    buffer = b""
    while time.monotonic() < deadline:
        chunk = process.stdout.read()
        if chunk:
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            lines += [line.decode(errors="replace") for line in complete]
            if any(pattern.search(line) for line in lines):
                return lines
        else:
            time.sleep(0.2)
    raise AssertionError("no login line within the time:\n" + "\n".join(lines))


def test_make_run_prints_the_login_last_writes_it_down_and_stops_cleanly(tmp_path):
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).flushdb()
    web_port = free_port()
    demo_file = tmp_path / "demo.txt"
    env = process_env(
        CELERY_BROKER_URL=django_settings.CELERY_BROKER_URL,
        CELERY_BEAT_SCHEDULE_FILENAME=str(tmp_path / "beat-schedule"),
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        SIM_PORT=str(free_port()),
        WEB_PORT=str(web_port),
        MAIL_PORT=str(free_port()),
        SIM_RATE="20",
        SEED="3",
        DEMO_FILE=str(demo_file),
        MAIL_DIR=str(tmp_path / "mail"),
    )
    demo = subprocess.Popen(
        [sys.executable, "-m", "honcho", "-f", "Procfile.demo", "start"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        lines = read_until(demo, LOGIN_LINE, timeout=120)
        time.sleep(3)  # anything printed after the login line is read below
    finally:
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
        rest, _ = demo.communicate(timeout=60)
    lines += rest.decode(errors="replace").splitlines()

    at = next(i for i, line in enumerate(lines) if LOGIN_LINE.search(line))
    login = LOGIN_LINE.search(lines[at])
    assert login.group(1) == f"http://127.0.0.1:{web_port}/"
    # Printed last: nothing but alert emails follows it until Ctrl-C.
    stop = next(i for i, line in enumerate(lines) if "SIGINT received" in line)
    assert all(line.split("|")[0].strip().startswith("mail.") for line in lines[at + 1 : stop])
    # Written down, for the owner only.
    assert f"sign in as demo / {login.group(2)}" in demo_file.read_text()
    assert demo_file.stat().st_mode & 0o077 == 0
    # Quiet: warnings only, no banners, no request lines.
    for line in lines:
        assert not re.search(r"\bINFO\b|celery@|\[tasks\]|\"GET /", line), line
    # Stopped cleanly.
    assert demo.returncode is not None
    assert not any("Traceback" in line for line in lines)
