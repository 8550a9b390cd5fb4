"""The Procfile's real lines, started as a process manager would: each through the shell,
in a session of its own (stopped with everything it started), its output in a file."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
HTTP_TIMEOUT = 10


def procfile_lines(name="Procfile"):
    """{process type: command} of a Procfile."""
    lines = {}
    for line in (ROOT / name).read_text().splitlines():
        kind, _, command = line.partition(":")
        if command.strip():
            lines[kind.strip()] = command.strip()
    return lines


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_venv(env):
    """The environment with the interpreter's bin directory first on PATH, so that
    `python`, `gunicorn` and `celery` in the lines are the project's."""
    bin_dir = str(Path(sys.executable).parent)
    return dict(env, PATH=bin_dir + os.pathsep + env.get("PATH", ""))


class Line:
    """One Procfile line running."""

    def __init__(self, kind, env, log_dir):
        self.kind = kind
        self.log = Path(log_dir) / f"{kind}.log"
        self.process = subprocess.Popen(
            ["/bin/sh", "-c", procfile_lines()[kind]],
            cwd=ROOT,
            env=with_venv(env),
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self):
        return self.log.read_text(errors="replace")

    def stop(self):
        """Stop the line and every process it started (its own session)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def run_line(kind, env, *, timeout=180):
    """Run a line to its end (release); its output on failure."""
    result = subprocess.run(
        ["/bin/sh", "-c", procfile_lines()[kind]],
        cwd=ROOT,
        env=with_venv(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def wait_until_answers(url, *, line, headers=None, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert line.process.poll() is None, f"{line.kind} exited:\n{line.output()}"
        try:
            if requests.get(url, headers=headers, timeout=HTTP_TIMEOUT).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer:\n{line.output()}")
