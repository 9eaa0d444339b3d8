"""How fast one account may be asked: a token bucket per account, so a run of a thousand
servers starts and deletes at the pace the cloud allows instead of meeting a storm of 429s.

The bucket's rate and size come from the provider's documented limits (`model.RateLimit`);
the remaining budget each reply reports (`RateLimit-Remaining`) lowers what is left when
the account has less than the bucket thinks — another tool sharing the token, an earlier
run. A provider that also limits each minute (DigitalOcean) gets a sliding window of the
last minute's requests besides: `SlidingWindow`, which also paces the Telegram notifier's
messages per bot and per chat. Time is an injected monotonic clock, so tests step it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from snapshot_policy.core.model import RateLimit


class RequestBudget:
    def __init__(self, limit: RateLimit, clock: Callable[[], float]):
        self._rate = limit.per_second
        self._size = limit.burst
        self._tokens = limit.burst if limit.remaining is None else min(limit.burst, limit.remaining)
        self._clock = clock
        self._stamp = clock()
        per_minute = limit.per_minute
        self._last_minute = None if per_minute is None else SlidingWindow(per_minute, 60.0)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._size, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def wait(self) -> float:
        """Return the seconds until a request may be made: 0 when one may be made now."""
        self._refill()
        missing = 1 - self._tokens
        bucket = 0.0 if missing <= 1e-9 else missing / self._rate  # (a rounding error is no wait)
        return max(bucket, self._minute_wait())

    def _minute_wait(self) -> float:
        return 0.0 if self._last_minute is None else self._last_minute.wait(self._clock())

    def spend(self, requests: int = 1) -> None:
        """Count `requests` made (they may take the budget below zero: a poll of many pages)."""
        self._refill()
        self._tokens -= requests
        if self._last_minute is not None:
            self._last_minute.add(self._clock(), requests)

    def heard(self, remaining: int | None) -> None:
        """Take in the remaining requests a reply reported: never more than the account has."""
        if remaining is not None:
            self._refill()
            self._tokens = min(self._tokens, remaining)


class SlidingWindow:
    """At most `limit` events in any `period` seconds. Only the times of the last `limit`
    events are kept: the oldest of them says when one more keeps to the limit."""

    def __init__(self, limit: int, period: float):
        self.period = period
        self.times: deque[float] = deque(maxlen=limit)

    def wait(self, now: float) -> float:
        """Return the seconds from `now` until one more event keeps to the limit."""
        if len(self.times) < (self.times.maxlen or 0):
            return 0.0
        return max(0.0, self.times[0] + self.period - now)

    def add(self, now: float, events: int = 1) -> None:
        """Count `events` made at `now`."""
        self.times.extend([now] * events)
