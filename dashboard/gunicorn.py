"""gunicorn's settings for the Procfile's web line (`--config python:dashboard.gunicorn`);
the busy-hour benchmark (tests/bench/bench_desk.py) runs the web with them too.

Two sync worker processes. Threads were tried (2 workers of 4 threads, gthread) in the
busy hour: page p95 went from 114 to 128 ms (the GIL's turns are slower than a
queue's), and 109 viewer requests failed when a kept-alive connection closed as they
reused it.

With PROMETHEUS_MULTIPROC_DIR set, every worker writes its metrics there
(conferences/ops/metrics.py); a worker that exits is marked dead, so that gauges
kept per live process leave /metrics with it (its counters stay counted)."""

import os

from prometheus_client import multiprocess

workers = 2
timeout = 30


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
