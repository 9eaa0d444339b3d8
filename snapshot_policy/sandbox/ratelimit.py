"""Per-account request budgets, so the fake answers 429 and rate-limit headers like the clouds.

Both clouds grant N requests per hour that recover gradually (Hetzner says so: one request per
3600/N seconds; DigitalOcean expires each request an hour after it was made). A token bucket
of capacity N that refills N per hour models both closely enough for a client that reads the
headers. Real (not injected) time is used: the headers are about the transport, not about the
simulated days the tests step through.

DigitalOcean also caps bursts (250 requests per minute per token; its 429 then says
`retry-after`). `SlidingWindow` counts the requests of the last 60 seconds exactly, so no
60-second span ever holds more than the limit, and knows when the oldest one leaves.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class TokenBucket:
    """`limit` requests per hour, refilled continuously."""

    def __init__(self, limit: int, now: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self._now = now
        self._tokens = float(limit)
        self._stamp = now()

    def _refill(self) -> float:
        now = self._now()
        self._tokens = min(self.limit, self._tokens + (now - self._stamp) * self.limit / 3600)
        self._stamp = now
        return now

    def take(self) -> bool:
        """Spend one request; False (and nothing spent) when the budget is exhausted."""
        self._refill()
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def status(self) -> tuple[int, int, int]:
        """(limit, remaining, reset): reset is the Unix time when the budget is full again."""
        now = self._refill()
        missing = self.limit - self._tokens
        return self.limit, math.floor(self._tokens), math.ceil(now + missing * 3600 / self.limit)

    def retry_after(self) -> int:
        """Whole seconds until one request is available again."""
        self._refill()
        return max(1, math.ceil((1 - self._tokens) * 3600 / self.limit))


class SlidingWindow:
    """At most `limit` requests in any `seconds`-long span (DigitalOcean's per-minute burst
    limit)."""

    def __init__(
        self, limit: int, seconds: float = 60, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.seconds = seconds
        self._now = now
        self._taken: deque[float] = deque()
        """When each request still inside the window was made, oldest first."""

    def _expire(self) -> float:
        now = self._now()
        while self._taken and self._taken[0] <= now - self.seconds:
            self._taken.popleft()
        return now

    def full(self) -> bool:
        self._expire()
        return len(self._taken) >= self.limit

    def take(self) -> None:
        """Count one request (the caller checked `full()` first)."""
        self._taken.append(self._expire())

    def retry_after(self) -> int:
        """Whole seconds until one more request fits (0 if one fits now)."""
        now = self._expire()
        if len(self._taken) < self.limit:
            return 0
        return max(1, math.ceil(self._taken[-self.limit] + self.seconds - now))
