"""gunicorn's settings for the Procfile's web line (`--config python:dashboard.gunicorn`).

With PROMETHEUS_MULTIPROC_DIR set, every worker writes its metrics there
(conferences/ops/metrics.py); a worker that exits is marked dead, so that gauges
kept per live process leave /metrics with it (its counters stay counted)."""

import os

from prometheus_client import multiprocess


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
