"""Test settings: the real settings, with a Redis database of its own for the broker so
a running `make run` and the tests never share a queue."""

import os

os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
# The simulator runs on loopback; the real API's host stays allowed too.
os.environ.setdefault(
    "CONFWATCH_ALLOWED_API_HOSTS", "api.catapult.inetwork.com,127.0.0.1,localhost"
)

from dashboard.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CONFWATCH_POLL_INTERVAL = 10.0
CONFWATCH_HTTP_TIMEOUT = (2.0, 3.0)
CONFWATCH_HTTP_TOTAL_TIMEOUT = 5.0
