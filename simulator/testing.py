"""Start a simulator for a test: ``with running_simulator(rate_limit=0) as sim: ...``.

The simulator listens on 127.0.0.1 on a free port; ``sim.url`` is e.g.
``http://127.0.0.1:54321``. It is stopped and its threads joined on exit.

Options are the ``Simulator`` ones (users, rate_limit, seed, scenario, speed,
callback_url, time_format, faults, log_requests, hostile, drip_seconds, huge_bytes).
Fault settings may also be passed directly: ``running_simulator(latency_ms=50)`` is
``faults={"latency_ms": 50}``. Hostile shapes: ``running_simulator(hostile={"*":
"drip"}, drip_seconds=0.2)``, or ``sim.set_hostile(conference_id, "nul-text")`` once
the conference exists.
"""

from contextlib import contextmanager

from simulator.faults import FaultSettings
from simulator.server import Simulator

FAULT_OPTIONS = set(FaultSettings.__dataclass_fields__) - {"rate_limited_until"}
FAULT_OPTIONS.add("rate_limited_seconds")


@contextmanager
def running_simulator(**options):
    faults = dict(options.pop("faults", None) or {})
    for name in list(options):
        if name in FAULT_OPTIONS:
            faults[name] = options.pop(name)
    options.setdefault("host", "127.0.0.1")
    options.setdefault("port", 0)
    sim = Simulator(faults=faults, **options)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
