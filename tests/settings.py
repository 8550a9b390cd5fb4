"""Test settings: the real settings, with a Redis database of its own for the broker so
a running `make run` and the tests never share a queue. Under pytest-xdist each worker
(gw0, gw1, ...) gets its own Redis database, counting down from CONFWATCH_TEST_REDIS_DB
(15), as pytest-django gives each its own Postgres database.

The URL goes into the environment, where the processes a test starts (workers, beat,
gunicorn) read it, with the pytest worker it was chosen for. An xdist worker inherits
the controller's environment (chosen for no worker) and chooses its own; a process a test
started keeps what the test gave it (a private Redis in the chaos tests)."""

import os

_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
if os.environ.get("CONFWATCH_TEST_BROKER_FOR") != _worker:
    _first_db = int(os.environ.get("CONFWATCH_TEST_REDIS_DB", "15"))
    _db = _first_db - int(_worker.removeprefix("gw"))
    os.environ["CELERY_BROKER_URL"] = f"redis://127.0.0.1:6379/{_db}"
    os.environ["CONFWATCH_TEST_BROKER_FOR"] = _worker
# The simulator runs on loopback; the real API's host stays allowed too.
os.environ.setdefault(
    "CONFWATCH_ALLOWED_API_HOSTS", "api.catapult.inetwork.com,127.0.0.1,localhost"
)

from dashboard.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CONFWATCH_POLL_INTERVAL = 10.0
CONFWATCH_HTTP_TIMEOUT = (2.0, 3.0)
CONFWATCH_HTTP_TOTAL_TIMEOUT = 5.0
