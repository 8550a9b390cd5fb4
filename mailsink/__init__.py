"""A local SMTP sink for the demo and the tests (aiosmtpd; no Django)."""

from mailsink.server import MailSink

__all__ = ["MailSink"]
