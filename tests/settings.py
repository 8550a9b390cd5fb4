"""Test settings: the real settings, with a Redis database of its own for the broker so
a running `make run` and the tests never share a queue. Under pytest-xdist each worker
(gw0, gw1, ...) gets its own Redis database, counting down from CONFWATCH_TEST_REDIS_DB
(15), as pytest-django gives each its own Postgres database. The URL is set in the
environment, not defaulted: the processes a test starts (workers, beat, gunicorn) read it
there, and a worker inherits the controller's environment, which names database 15."""

import os

_worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
_first_db = int(os.environ.get("CONFWATCH_TEST_REDIS_DB", "15"))
os.environ["CELERY_BROKER_URL"] = f"redis://127.0.0.1:6379/{_first_db - _worker}"
# The simulator runs on loopback; the real API's host stays allowed too.
os.environ.setdefault(
    "CONFWATCH_ALLOWED_API_HOSTS", "api.catapult.inetwork.com,127.0.0.1,localhost"
)

from dashboard.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CONFWATCH_POLL_INTERVAL = 10.0
CONFWATCH_HTTP_TIMEOUT = (2.0, 3.0)
CONFWATCH_HTTP_TOTAL_TIMEOUT = 5.0
