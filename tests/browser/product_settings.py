"""Settings of the product the overview's browser tests start (web server, worker, beat):
the test settings, with the poll interval from the environment so that "within two poll
intervals" is a few seconds."""

from dashboard.settings import env_number
from tests.settings import *  # noqa: F403

CONFWATCH_POLL_INTERVAL = env_number("CONFWATCH_POLL_INTERVAL", 10.0, minimum=1)
