"""What every log line carries, and LOG_FORMAT=json: one JSON object per line (the
standard library's logging with python-json-logger's formatter) with time, level,
logger, message, and where known the request id, account and conference.

The context is a few context variables: a request sets its id (middleware.RequestId), a
conference view names its conference, a Celery task starts with its task id as its
request id, a poll's request thread names what it fetches (`bind`). A single log line
about an account says so itself with `extra=about(account=...)`. No Django model
imports: the logging configuration loads this before the apps.
"""

import contextvars
import logging

from pythonjsonlogger.json import JsonFormatter

from conferences.redact import redact

FIELDS = ("request_id", "account", "conference")
_context = {name: contextvars.ContextVar(f"confwatch_log_{name}", default=None) for name in FIELDS}


def start(*, request_id=None):
    """A new unit of work (a request, a task): nothing known yet but its request id."""
    for name, variable in _context.items():
        variable.set(request_id if name == "request_id" else None)


def bind(*, account=None, conference=None):
    """Name the account and conference the rest of this unit of work is about."""
    _context["account"].set(account)
    _context["conference"].set(conference)


def current():
    return {name: variable.get() for name, variable in _context.items()}


def about(*, account=None, conference=None):
    """`extra=` for one log line about an account or a conference."""
    return {"account": account, "conference": conference}


class LogContext(logging.Filter):
    """On the console handler: each record gets the context's fields; a log call that
    said what it is about (`about`) keeps its account and conference."""

    def filter(self, record):
        said = "account" in record.__dict__ or "conference" in record.__dict__
        for name, value in current().items():
            if name == "request_id" or not said:
                record.__dict__.setdefault(name, value)
        return True


class JsonLines(JsonFormatter):
    """LOG_FORMAT=json: time (ISO 8601, UTC), level, logger, message, request_id,
    account, conference, and the traceback when there is one. Nothing else a record
    carries is written (Django's request log records hold the request, and its path
    may hold a link's key); the message and traceback are redacted again."""

    KEPT = ("time", "level", "logger", "message", *FIELDS, "exc_info", "stack_info")

    def __init__(self, *args, **kwargs):
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )

    def process_log_record(self, log_data):
        kept = {name: log_data.get(name) for name in self.KEPT if name in log_data}
        for name in FIELDS:
            kept.setdefault(name, None)
        for name in ("message", "exc_info", "stack_info"):
            if isinstance(kept.get(name), str):
                kept[name] = redact(kept[name])
        return kept
