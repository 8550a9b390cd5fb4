"""Per-user token bucket for ``/conferences`` requests, with counters for tests.

Rate R requests/second, burst capacity max(1, R) tokens; R <= 0 disables the limit.
Counters let a test or benchmark check that a client never exceeded its budget: requests
received, 429s answered, and the most requests accepted in any sliding 1-second window.
"""

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

ARRIVALS_KEPT = 1000
EPSILON = 1e-9


@dataclass
class Bucket:
    tokens: float
    updated: float


@dataclass
class UserCounters:
    requests: int = 0
    accepted: int = 0
    rate_limited: int = 0
    max_accepted_per_second: int = 0
    arrivals: deque = field(default_factory=lambda: deque(maxlen=ARRIVALS_KEPT))
    last_second: deque = field(default_factory=deque)

    def as_dict(self, *, include_arrivals):
        data = {
            "requests": self.requests,
            "accepted": self.accepted,
            "rate_limited": self.rate_limited,
            "max_accepted_per_second": self.max_accepted_per_second,
        }
        if include_arrivals:
            data["arrivals"] = [
                {"time": arrived, "accepted": accepted} for arrived, accepted in self.arrivals
            ]
        return data


class RateLimiter:
    def __init__(self, rate=1.0, *, clock=time.monotonic, wall_clock=time.time):
        self._lock = threading.Lock()
        self._rate = float(rate)
        self._clock = clock
        self._wall_clock = wall_clock
        self._buckets = {}
        self._counters = {}

    @property
    def rate(self):
        with self._lock:
            return self._rate

    def capacity(self):
        return max(1.0, self._rate)

    def set_rate(self, rate):
        rate = float(rate)
        if math.isnan(rate) or math.isinf(rate):
            raise ValueError("rate must be a finite number")
        with self._lock:
            self._rate = rate
            for bucket in self._buckets.values():
                bucket.tokens = min(bucket.tokens, self.capacity())

    def admit(self, user_id):
        """Take a token for one request. Return (accepted, reset epoch ms or None)."""
        with self._lock:
            now = self._clock()
            counters = self._counters.setdefault(user_id, UserCounters())
            counters.requests += 1
            accepted, reset_ms = self._take_token(user_id, now)
            counters.arrivals.append((self._wall_clock(), accepted))
            if accepted:
                counters.accepted += 1
                window = counters.last_second
                window.append(now)
                while window and window[0] <= now - 1.0:
                    window.popleft()
                counters.max_accepted_per_second = max(
                    counters.max_accepted_per_second, len(window)
                )
            else:
                counters.rate_limited += 1
            return accepted, reset_ms

    def record_429(self, user_id):
        """Count a 429 answered for another reason (the rate_limited_seconds fault)."""
        with self._lock:
            self._counters.setdefault(user_id, UserCounters()).rate_limited += 1

    def stats(self, *, include_arrivals=False):
        with self._lock:
            return {
                user_id: counters.as_dict(include_arrivals=include_arrivals)
                for user_id, counters in self._counters.items()
            }

    def reset_stats(self):
        with self._lock:
            self._counters = {}

    def _take_token(self, user_id, now):
        if self._rate <= 0:
            return True, None
        capacity = self.capacity()
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = Bucket(tokens=capacity, updated=now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1.0 - EPSILON:
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            return True, None
        wait_seconds = (1.0 - bucket.tokens) / self._rate
        reset_ms = math.ceil((self._wall_clock() + wait_seconds) * 1000)
        return False, reset_ms
