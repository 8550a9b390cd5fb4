"""A database outage logs one clear line when it starts and one summary when it ends,
not a traceback per round (worker) or per request (web server)."""

import logging
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import psycopg
import pytest
import requests
from django.db import OperationalError, connection

from conferences import tasks
from conferences.ops import outages
from mailsink.server import free_port
from tests.conftest import make_account, make_conference, process_env, wait_for

pytestmark = pytest.mark.django_db


def real_connection_error():
    """The OperationalError psycopg raises for a server that does not answer, as Django
    raises it."""
    try:
        psycopg.connect("host=127.0.0.1 port=9 user=postgres connect_timeout=2")
    except psycopg.OperationalError as error:
        return OperationalError(*error.args)
    raise AssertionError("something answered on port 9")


@contextmanager
def database_down():
    """Every query fails the way it does when the server is gone."""
    error = real_connection_error()

    def refuse(execute, sql, params, many, context):
        raise error

    with connection.execute_wrapper(refuse):
        yield


@pytest.fixture(autouse=True)
def fresh_outage_record(monkeypatch):
    monkeypatch.setattr(outages, "database", outages.Outage("database"))


def test_an_outage_logs_one_line_at_its_start_and_a_summary_at_its_end(caplog):
    make_conference(make_account(), "conf-a")
    caplog.set_level(logging.INFO, logger="conferences")

    with database_down():
        answers = [tasks.poll_round() for _ in range(30)] + [tasks.send_alerts()]
    tasks.poll_round()

    lines = [record for record in caplog.records if record.name == "conferences.ops.outages"]
    assert [record.levelname for record in lines] == ["ERROR", "WARNING"]
    assert "database unavailable (OperationalError: connection" in lines[0].getMessage()
    assert "answers again after" in lines[1].getMessage()
    assert "31 periodic tasks were skipped" in lines[1].getMessage()
    assert not [record for record in caplog.records if record.exc_info]
    assert answers[0] == "polling round skipped: the database is unavailable"
    assert answers[-1] == "alert pass skipped: the database is unavailable"


def test_a_bug_is_not_taken_for_an_outage(monkeypatch):
    monkeypatch.setattr(tasks.rounds, "poll_round", lambda: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        tasks.poll_round()

    assert outages.database.since is None


def test_a_deadlock_is_not_taken_for_an_outage(monkeypatch):
    def deadlock():
        try:
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        except psycopg.Error as error:
            raise OperationalError(*error.args) from error

    monkeypatch.setattr(tasks.rounds, "poll_round", deadlock)

    with pytest.raises(OperationalError):
        tasks.poll_round()

    assert outages.database.since is None


class Forwarder:
    """A TCP port that forwards to the real PostgreSQL while open; closed, it refuses
    connections and cuts the ones it forwarded, as a server that went down."""

    def __init__(self):
        self.port = free_port("127.0.0.1")
        self.listener = None
        self.sockets = []

    def open(self):
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self.accept, args=(self.listener,), daemon=True).start()

    def accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection((connection.settings_dict["HOST"], 5432))
            self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self.pump, args=(source, target), daemon=True).start()

    @staticmethod
    def pump(source, target):
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            try:
                target.shutdown(socket.SHUT_RDWR)  # close() would not end the connection
            except OSError:
                pass
            target.close()

    def close(self):
        if self.listener is not None:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            self.listener.close()
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.sockets = []


def test_a_web_server_logs_a_database_outage_once_when_it_starts_and_once_when_it_ends(
    tmp_path,
):
    database = Forwarder()
    port = free_port("127.0.0.1")
    name = connection.settings_dict["NAME"]
    env = process_env(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{database.port}/{name}",
        DEBUG="false",
        SECRET_KEY="k3y-" + "x1y2z3" * 10,
        LOG_LEVEL="WARNING",  # as the demo runs it: request lines only for failures
    )
    log = tmp_path / "web.log"
    database.open()  # the web server checks its migrations at startup
    with log.open("w") as stderr:
        web = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "runserver",
                f"127.0.0.1:{port}",
                "--noreload",
                "--skip-checks",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    base = f"http://127.0.0.1:{port}"
    signed_in = {"sessionid": "s" * 32}  # a session to look up: every page needs the database
    try:
        wait_for(lambda: answers(base), timeout=30, what="the web server")
        before = requests.get(f"{base}/", cookies=signed_in, timeout=10, allow_redirects=False)
        database.close()
        statuses = [
            requests.get(f"{base}{path}", cookies=cookies, timeout=10, allow_redirects=False)
            for path, cookies in [("/", signed_in), ("/health/", {})] * 10
        ]
        database.open()
        after = [
            requests.get(f"{base}/", cookies=signed_in, timeout=10, allow_redirects=False)
            for _ in range(3)
        ]
        time.sleep(0.3)
    finally:
        web.terminate()
        web.wait(timeout=10)
        database.close()

    assert before.status_code == 302  # to sign-in: the session is unknown
    assert [response.status_code for response in statuses] == [503] * 20
    assert [response.status_code for response in after] == [302] * 3
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert len(lines) == 2, lines
    assert "ERROR conferences.ops.outages: database unavailable (OperationalError:" in lines[0]
    assert "pages answer 503 until it answers (first: /)" in lines[0]
    assert "WARNING conferences.ops.outages: database answers again after" in lines[1]
    assert "20 requests were answered 503 meanwhile" in lines[1]


def answers(base):
    try:
        requests.get(f"{base}/accounts/login/", timeout=2)
    except requests.ConnectionError:
        return False
    return True
