"""One log line per refused request (4xx): method, path, status and who asked.

Django writes a 4xx up to three times: django.request's "Not Found: /x" (a 403 or 400
with the exception's traceback), django.security's line for a suspicious request, and the
development server's request line. `OneLinePerRefusedRequest`, on the console handler
(LOGGING), turns the first two into

    GET /conferences/7/share/ 403 Forbidden (viewer)

and drops the third. The path comes without its query (where a key could be) and is
masked by the redact filter that runs after it. Errors (5xx) keep their traceback.

No Django model imports: the logging configuration loads this before the apps."""

import logging
from http import HTTPStatus

SERVER_LOGGER = "django.server"
SECURITY_LOGGER = "django.security"


def refused(record):
    return 400 <= getattr(record, "status_code", 0) < 500


def who(request):
    """The signed-in user's name, "anonymous", or "-" when the request never reached
    the authentication middleware (a bad Host header)."""
    user = getattr(request, "user", None)
    if user is None:
        return "-"
    try:
        return user.get_username() if user.is_authenticated else "anonymous"
    except Exception:  # the session or user could not be read (the database is down)
        return "-"


def escaped(text):
    """Control characters shown as escapes, so a path cannot forge a log line."""
    return text.encode("unicode_escape").decode("ascii")


def request_line(request, status_code):
    try:
        reason = HTTPStatus(status_code).phrase
    except ValueError:
        reason = ""
    return " ".join(
        part
        for part in (
            getattr(request, "method", None) or "-",
            escaped(getattr(request, "path", "") or "-"),
            str(status_code),
            reason,
            f"({who(request)})",
        )
        if part
    )


class OneLinePerRefusedRequest(logging.Filter):
    """On the console handler, and on the django.request and DisallowedHost loggers
    (LOGGING), so that the record is one WARNING line before any handler sees it: a
    client's error is no ERROR to mail the admins about. Running twice changes nothing."""

    def filter(self, record):
        if not refused(record):
            return True
        if record.name == SERVER_LOGGER:
            return False  # django.request (or django.security) already wrote it
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        if getattr(record, "one_line", False):
            return True
        record.one_line = True
        request = getattr(record, "request", None)
        if request is None:
            return True
        line = request_line(request, record.status_code)
        if record.name.startswith(SECURITY_LOGGER):
            # What was suspicious ("Invalid HTTP_HOST header: ..."), on the same line.
            first = record.getMessage().strip().splitlines()
            line = f"{line}: {escaped(first[0])}" if first else line
        record.msg, record.args = line, ()
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True
