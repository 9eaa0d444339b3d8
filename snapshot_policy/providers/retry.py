"""Repeating calls: reads and deletes when the API says "later", and polls until an action ends.

One policy for both providers: the SDKs' own retries are switched off because both would
repeat a snapshot POST after a lost response (pydo on 500/503/504, hcloud on timeouts),
which can start a second snapshot; and neither lets tests replace the clock.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from snapshot_policy.model import ProviderError

log = logging.getLogger(__name__)
T = TypeVar("T")

# A Retry-After beyond this is not waited for: a cron run should fail and say so instead.
MAX_ADVISED_WAIT = 300.0
FIRST_POLL = 0.1


@dataclass(frozen=True)
class Timing:
    """How long to wait: per HTTP request, for a snapshot to finish, and between polls."""

    request_timeout: float = 60.0
    creation_timeout: float = 3600.0
    poll_interval: float = 5.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring the wait an API asks for (SPEC §8)."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random
    clock: Callable[[], float] = time.monotonic

    def delay(self, attempt: int, error: ProviderError) -> float:
        """Return how long to wait before retry number `attempt + 1` after `error`."""
        if error.retry_after is not None:
            return error.retry_after
        backoff = min(self.max_delay, self.base_delay * 2**attempt)
        return backoff / 2 + self.jitter() * backoff / 2

    def call(self, operation: Callable[[], T]) -> T:
        """Return `operation()`, retrying transient ProviderErrors. Raise the last error."""
        for attempt in range(self.attempts):
            try:
                return operation()
            except ProviderError as error:
                last = attempt == self.attempts - 1
                if not error.transient or last or (error.retry_after or 0) > MAX_ADVISED_WAIT:
                    raise
                wait = self.delay(attempt, error)
                log.warning("%s; retrying in %.1fs (attempt %d of %d)", error, wait, attempt + 2, self.attempts)
                self.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def poll(self, probe: Callable[[], T | None], timeout: float, interval: float, waiting_for: str) -> T:
        """Return the first result of `probe()` that is not None.

        Polls start quick and slow down by half each time up to `interval`, so a short
        action is noticed at once and a long one does not flood the API. Each probe is
        itself retried when transient. Raise TimeoutError when `timeout` seconds pass first.
        """
        deadline = self.clock() + timeout
        wait = min(FIRST_POLL, interval)
        while True:
            result = self.call(probe)
            if result is not None:
                return result
            if self.clock() + wait > deadline:
                raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {waiting_for}")
            self.sleep(wait)
            wait = min(interval, wait * 1.5)

    def start_once(
        self,
        start: Callable[[], T],
        started_meanwhile: Callable[[], T | None],
        busy: Callable[[ProviderError], bool],
        timeout: float,
        busy_interval: float,
    ) -> T:
        """Return `start()` for a call that must not take effect twice, such as a snapshot POST.

        After a transient failure the cloud may have acted and only the reply been lost, so
        `started_meanwhile()` looks first, and only when it finds nothing is `start` repeated.
        A `busy` refusal (the server is doing something else) is asked again every
        `busy_interval` until `timeout` — after a lost reply, only once `started_meanwhile()`
        has found that the something else is not our own snapshot.
        """
        deadline = self.clock() + timeout
        failures = 0
        while True:
            try:
                return start()
            except ProviderError as error:
                if busy(error) and failures:
                    # Busy after a lost reply: the server may be busy with our own snapshot.
                    found = started_meanwhile()
                    if found is not None:
                        return found
                if busy(error) and self.clock() + busy_interval < deadline:
                    self.sleep(busy_interval)
                    continue
                if not error.transient:
                    raise
                found = started_meanwhile()
                if found is not None:
                    return found
                failures += 1
                if failures >= self.attempts or self.clock() > deadline:
                    raise
                self.sleep(self.delay(failures - 1, error))
