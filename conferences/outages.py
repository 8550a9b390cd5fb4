"""Outages in periodic work: one clear line when the database (in the worker) or the
broker (in beat) stops answering, one summary when it answers again, and nothing in
between (not a traceback per round).

Each process keeps its own record, so a worker or beat logs the start and the end of an
outage once, however many rounds and alert passes failed meanwhile.
"""

import logging
import time

import kombu.exceptions
import redis
from celery.beat import PersistentScheduler
from celery.beat import logger as beat_logger
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)

# The errors that mean "the database cannot be reached", not a bug.
UNAVAILABLE = (OperationalError, InterfaceError)


class Outage:
    def __init__(self, what):
        self.what = what
        self.since = None
        self.failures = 0

    def failed(self, error, *, task):
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            logger.error(
                "%s unavailable (%s: %s); %s and other periodic work wait until it answers",
                self.what,
                type(error).__name__,
                first_line,
                task,
            )

    def answered(self):
        if self.since is None:
            return
        logger.warning(
            "%s answers again after %.0f s; %d periodic tasks were skipped meanwhile",
            self.what,
            time.monotonic() - self.since,
            self.failures,
        )
        self.since = None
        self.failures = 0


database = Outage("database")


def run(work, *, task):
    """work() through the database outage record: its result, or a short line saying it
    was skipped when the database cannot be reached."""
    try:
        result = work()
    except UNAVAILABLE as error:
        database.failed(error, task=task)
        return f"{task} skipped: the database is unavailable"
    database.answered()
    return result


broker = Outage("broker")
BROKER_ERRORS = (kombu.exceptions.OperationalError, redis.ConnectionError, ConnectionError)


def caused_by_broker(error):
    while error is not None:
        if isinstance(error, BROKER_ERRORS):
            return True
        error = error.__cause__ or error.__context__
    return False


class BeatScheduler(PersistentScheduler):
    """Celery beat's scheduler (CELERY_BEAT_SCHEDULER), quiet through a broker outage:
    the tasks it could not send are skipped (they expire anyway; the next ones come on
    time once the broker answers, so there is no burst), logged as one outage."""

    def apply_entry(self, entry, producer=None):
        beat_logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except Exception as error:
            if not caused_by_broker(error):
                logger.exception("beat could not send %s", entry.name)
                return
            broker.failed(error, task=f"beat's {entry.name!r}")
        else:
            broker.answered()
