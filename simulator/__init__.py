"""A standalone simulator of the Bandwidth Catapult v1 conference API.

Standard library only (no Django). "The reference" and its sections (§n) in these modules
mean ``docs/catapult-api.md``, the facts about the API that the simulator and the client
share. Run it with ``python -m simulator --help`` or start it
from a test with ``simulator.testing.running_simulator()``.

Modules, by role:
- ``state``: the in-memory conferences and members, and the rules that change them.
- ``validation``: turns request bodies into typed changes (or 400 errors).
- ``render``: JSON for responses and callback events; ``timestamps`` formats times.
- ``auth``: registered users and Basic credentials; ``ratelimit``: per-user token bucket.
- ``faults``: injected latency, errors, malformed bodies, hangs and 429 periods.
- ``hostile``: chosen conferences answer with hostile values (NUL characters, a 500
  character state, a 300 character call id, a 10 MB body) or drip their answers.
- ``callbacks``: background delivery of events to ``callbackUrl`` / ``fallbackUrl``.
- ``scenario``: a seeded plan of realistic conference lifecycles, played in a thread.
- ``api`` (``/v1/`` routes) and ``control`` (``/_sim/`` endpoints) turn a request into a
  ``responses.Response``; ``handler`` is the ThreadingHTTPServer that reads and writes them.
- ``server``: the ``Simulator`` object that wires it all together.
"""

from simulator.server import Simulator

__all__ = ["Simulator"]
