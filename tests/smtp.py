"""Start a local SMTP server for a test: ``with running_mailsink() as sink: ...``.

The sink listens on 127.0.0.1 on a free port (``sink.host``, ``sink.port``) and is
stopped on exit. Options are the ``MailSink`` ones (directory, out). Read what arrived
with ``sink.messages()`` or ``sink.wait_for(count, timeout)``; make it refuse with
``sink.refuse(address, code=550)`` and ``sink.fail_next(count, code=451)``.

``mail_settings(sink)`` gives the Django settings that send mail to the sink.
"""

from contextlib import contextmanager

from mailsink import MailSink


@contextmanager
def running_mailsink(**options):
    options.setdefault("host", "127.0.0.1")
    options.setdefault("port", 0)
    with MailSink(**options) as sink:
        yield sink


def mail_settings(sink):
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": sink.host,
        "EMAIL_PORT": sink.port,
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
    }
