"""What must never be shown: the keys in the paths that request logs carry, API tokens,
and the credentials a URL from the API may hold.

No Django model imports: the logging configuration loads this before the apps."""

import logging
import re

MASK = "…"
# Path segments that are keys: a callback URL's secret, a share link's token, an
# acknowledge or unsubscribe link's signed token (conferences/web/urls.py).
KEY_PATHS = re.compile(r"/(callbacks|share|acknowledge|unsubscribe)/[^/\s?#\"']+")
# Query parameters that carry a key, should a link ever put one there.
KEY_QUERIES = re.compile(r"([?&](?:token|key|secret|signature)=)[^&\s#\"']+", re.IGNORECASE)
# An API token (conferences/registry/tokens.py), should one ever be written anywhere.
API_TOKENS = re.compile(r"\bcw_[A-Za-z0-9_-]{8,}")
# A URL's scheme and authority up to its last "@" (the authority ends at the first /, ?,
# # or \): what comes before that "@" is a user name and perhaps a password.
USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)[^/?#\\]*@")


def redact(text):
    """The text with every key in a link path or query, and every API token, replaced
    by MASK."""
    text = KEY_PATHS.sub(rf"/\1/{MASK}", text)
    text = API_TOKENS.sub(f"cw_{MASK}", text)
    return KEY_QUERIES.sub(rf"\1{MASK}", text)


def without_userinfo(url):
    """The URL with its user name and password (if any) shown as ***:
    https://user:password@host/path becomes https://***@host/path. Used wherever a URL
    from the API is shown (the `without_userinfo` template filter)."""
    if not url:
        return url
    return USERINFO.sub(r"\1***@", str(url), count=1)


class RedactRequestSecrets(logging.Filter):
    """On the console handler, so every request log line (django.server's, and
    django.request's "Not Found: /share/...") goes out without the link's key."""

    def filter(self, record):
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, dict):
            record.args = {
                name: redact(value) if isinstance(value, str) else value
                for name, value in record.args.items()
            }
        elif record.args:
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True
