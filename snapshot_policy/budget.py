"""How fast one account may be asked: a token bucket per account, so a run of a thousand
servers starts and deletes at the pace the cloud allows instead of meeting a storm of 429s.

The bucket's rate and size come from the provider's documented limits (`model.RateLimit`);
the remaining budget each reply reports (`RateLimit-Remaining`) lowers what is left when
the account has less than the bucket thinks — another tool sharing the token, an earlier
run. Time is an injected monotonic clock, so tests step it by hand.
"""

from __future__ import annotations

from collections.abc import Callable

from snapshot_policy.model import RateLimit


class RequestBudget:
    def __init__(self, limit: RateLimit, clock: Callable[[], float]):
        self._rate = limit.per_second
        self._size = limit.burst
        self._tokens = limit.burst if limit.remaining is None else min(limit.burst, limit.remaining)
        self._clock = clock
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._size, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def wait(self) -> float:
        """Return the seconds until a request may be made: 0 when one may be made now."""
        self._refill()
        missing = 1 - self._tokens
        return 0.0 if missing <= 1e-9 else missing / self._rate  # (a rounding error is no wait)

    def spend(self, requests: int = 1) -> None:
        """Count `requests` made (they may take the budget below zero: a poll of many pages)."""
        self._refill()
        self._tokens -= requests

    def heard(self, remaining: int | None) -> None:
        """Take in the remaining requests a reply reported: never more than the account has."""
        if remaining is not None:
            self._refill()
            self._tokens = min(self._tokens, remaining)
