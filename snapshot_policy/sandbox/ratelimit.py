"""Per-account request budgets, so the fake answers 429 and rate-limit headers like the clouds.

Both clouds grant N requests per hour that recover gradually (Hetzner says so: one request per
3600/N seconds; DigitalOcean expires each request an hour after it was made). A token bucket
of capacity N that refills N per hour models both closely enough for a client that reads the
headers. Real (not injected) time is used: the headers are about the transport, not about the
simulated days the tests step through.
"""

from __future__ import annotations

import math
import time
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
