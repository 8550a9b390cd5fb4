"""Outages: one clear line when the database (in the worker and in the web server) or the
broker (in beat) stops answering, one summary when it answers again, and nothing in
between (not a traceback per round or per request).

Each process keeps its own record, so a worker, beat or web process logs the start and
the end of an outage once, however many rounds, alert passes or requests failed
meanwhile. In the web server, `RequestsDuringOutage` (a filter on django.request) turns
the requests that failed for the outage into that one line, and the outage ends when a
new database connection opens (Django's connection_created) or /health/ finds the
database answering.
"""

import logging
import threading
import time

import kombu.exceptions
import redis
from celery.beat import PersistentScheduler
from celery.beat import logger as beat_logger
from django.db import InterfaceError, OperationalError
from django.db.backends.signals import connection_created

logger = logging.getLogger(__name__)

# The errors that may mean "the database cannot be reached"; `unreachable` tells.
UNAVAILABLE = (OperationalError, InterfaceError)
# SQLSTATE classes of a lost or refused connection (08) and of a server shutting down or
# starting (57P01-57P03). Any other OperationalError (a deadlock, a cancelled statement)
# is a real error of one request or task, not an outage.
CONNECTION_STATES = ("08", "57P01", "57P02", "57P03")


def unreachable(error):
    """Whether the error means the database cannot be reached (no connection, or the
    server going away), as opposed to one statement failing."""
    if isinstance(error, InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    state = getattr(error.__cause__, "sqlstate", None)
    return state is None or state.startswith(CONNECTION_STATES)


class Outage:
    """One process's record of an outage of `what`. `waits` says what waits meanwhile
    (with the {task} that met it first); `skipped` names what the count counts."""

    def __init__(
        self,
        what,
        *,
        waits="{task} and other periodic work wait until it answers",
        skipped="periodic tasks were skipped",
    ):
        self.what = what
        self.waits = waits
        self.skipped = skipped
        self.since = None
        self.failures = 0
        self.lock = threading.Lock()  # a threaded web server's requests share it

    def failed(self, error, *, task):
        with self.lock:
            self.failures += 1
            if self.since is not None:
                return
            self.since = time.monotonic()
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        logger.error(
            "%s unavailable (%s: %s); %s",
            self.what,
            type(error).__name__,
            first_line,
            self.waits.format(task=task),
        )

    def answered(self):
        with self.lock:
            if self.since is None:
                return
            lasted, failures = time.monotonic() - self.since, self.failures
            self.since = None
            self.failures = 0
        logger.warning(
            "%s answers again after %.0f s; %d %s meanwhile",
            self.what,
            lasted,
            failures,
            self.skipped,
        )


database = Outage("database")


def run(work, *, task):
    """work() through the database outage record: its result, or a short line saying it
    was skipped when the database cannot be reached."""
    try:
        result = work()
    except UNAVAILABLE as error:
        if not unreachable(error):
            raise
        database.failed(error, task=task)
        return f"{task} skipped: the database is unavailable"
    database.answered()
    return result


# --------------------------------------------------------------------------- web requests

requests = Outage(
    "database",
    waits="pages answer 503 until it answers (first: {task})",
    skipped="requests were answered 503",
)


class RequestsDuringOutage(logging.Filter):
    """On the django.request logger (LOGGING): a request that failed because the database
    cannot be reached counts in the web process's outage record, whose first failure is
    one line without traceback; its 503 and any other 503 during the outage (/health/'s)
    are not logged again."""

    def filter(self, record):
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and unreachable(error):
            request = getattr(record, "request", None)
            requests.failed(error, task=getattr(request, "path", "a request"))
            return False
        return not (requests.since is not None and getattr(record, "status_code", 0) == 503)


def database_answers(sender, connection, **kwargs):
    """A new database connection opened: an outage of the web process is over."""
    requests.answered()


connection_created.connect(database_answers, dispatch_uid="confwatch-outages-requests")


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
