"""A database outage logs one clear line when it starts and one summary when it ends,
not a traceback per round."""

import logging
from contextlib import contextmanager

import psycopg
import pytest
from django.db import OperationalError, connection

from conferences import outages, tasks
from tests.conftest import make_account, make_conference

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

    lines = [record for record in caplog.records if record.name == "conferences.outages"]
    assert [record.levelname for record in lines] == ["ERROR", "WARNING"]
    assert "database unavailable (OperationalError: connection" in lines[0].getMessage()
    assert "answers again after" in lines[1].getMessage()
    assert "31 periodic tasks were skipped" in lines[1].getMessage()
    assert not [record for record in caplog.records if record.exc_info]
    assert answers[0] == "polling round skipped: the database is unavailable"
    assert answers[-1] == "alert pass skipped: the database is unavailable"


def test_a_bug_is_not_taken_for_an_outage(monkeypatch):
    monkeypatch.setattr(tasks.polling, "poll_round", lambda: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        tasks.poll_round()

    assert outages.database.since is None
