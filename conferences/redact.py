"""Keep callback URL secrets out of log lines (the development server logs every path).

No Django model imports: the logging configuration loads this before the apps."""

import logging
import re

CALLBACK_PATH = re.compile(r"/callbacks/[^/\s?]+")


def redact(text):
    return CALLBACK_PATH.sub("/callbacks/***", text)


class RedactCallbackSecrets(logging.Filter):
    def filter(self, record):
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True
