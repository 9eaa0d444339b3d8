"""One retry policy for everything that talks to a server: how often to try, how long to wait
between tries, and when a wait the server asks for is too long to be worth it.

The providers' reads and snapshot starts (`providers.retry.RetryPolicy`) repeat through
`Backoff.run`, both notifiers (`notify.telegram`, `notify.webhook`, which send from one event
loop) through `Backoff.run_async`, whose loop `run` drives; they differ only in what they
pass: how many tries, the base delay, jitter or none, which failures are worth repeating and
how a failure says how long to wait. Sleeping and randomness are parameters, so tests never
wait.

Why not the SDKs' retries: pydo's and hcloud's are switched off (they would repeat a snapshot
POST after a lost reply, see `providers.retry`); python-telegram-bot's `Bot` has none (its
rate limiter belongs to `Application`); httpx's transport retries only failed connects. Why not
tenacity or stamina: see `Backoff.run_async`.
"""

from __future__ import annotations

import inspect
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

# An advised wait (Retry-After, Telegram's retry_after, a rate-limit reset) longer than this is
# not waited for: a cron run should fail and say so instead.
MAX_ADVISED_WAIT = 300.0
# Notifications are best effort and sent after the snapshots are done: they wait at most a minute.
MAX_ADVISED_WAIT_NOTIFY = 60.0


class WaitRefused(Exception):
    """A failure worth repeating, but only after a wait the server advised that is longer than
    the policy allows. `error` is that failure (also the `__cause__`), `wait` the seconds asked."""

    def __init__(self, error: BaseException, wait: float):
        super().__init__(f"{error}; not waiting {wait:g} s")
        self.error = error
        self.wait = wait


def _no_advice(error: BaseException) -> float | None:
    return None


@dataclass(frozen=True)
class Backoff:
    """Up to `attempts` tries in all, waiting `base_delay * 2**(n-1)` (at most `max_delay`)
    before retry n — or, with `jitter`, a point in the upper half of that, `jitter()` in [0, 1)
    choosing where — unless the failure advises its own wait, which is honoured up to
    `max_advised_wait`.
    """

    attempts: int
    base_delay: float
    max_delay: float = math.inf
    jitter: Callable[[], float] | None = None
    max_advised_wait: float = MAX_ADVISED_WAIT
    sleep: Callable[[float], object] = time.sleep

    @classmethod
    def for_notification(
        cls, retries: int, base_delay: float, sleep: Callable[[float], object]
    ) -> Backoff:
        """Return the policy of one notification (docs/promises.md §7): `retries` retries after
        the first try, exactly `base_delay * 2**(n-1)` before retry n, advised waits over a
        minute refused."""
        return cls(
            attempts=retries + 1,
            base_delay=base_delay,
            max_advised_wait=MAX_ADVISED_WAIT_NOTIFY,
            sleep=sleep,
        )

    def delay(self, retry: int, advised: float | None = None) -> float:
        """Return the seconds to wait before retry number `retry` (1 for the first retry):
        `advised` when given, else the capped exponential backoff, jittered if configured."""
        if advised is not None:
            return advised
        backoff = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        if self.jitter is None:
            return backoff
        return backoff / 2 + self.jitter() * backoff / 2

    def run(
        self,
        operation: Callable[[], T],
        *,
        retryable: Callable[[Exception], bool],
        advised: Callable[[Exception], float | None] = _no_advice,
        on_retry: Callable[[Exception, float, int], None] | None = None,
    ) -> T:
        """Return `operation()`, repeating it after each failure that `retryable` accepts.

        Before retry n, `on_retry(error, wait, n)` is called (to log it) and `sleep(wait)`,
        with `wait = delay(n, advised(error))`. Raise the failure itself when `retryable`
        rejects it or the last try has failed; raise `WaitRefused` from it when the wait it
        advises is over `max_advised_wait`.

        The loop is `run_async`'s, the only one: a synchronous `operation` and `sleep` never
        suspend its coroutine, so it is driven here to its end in one step, without an
        event loop.
        """

        async def call() -> T:
            return operation()

        loop = self.run_async(call, retryable=retryable, advised=advised, on_retry=on_retry)
        try:
            loop.send(None)
        except StopIteration as done:
            return done.value
        loop.close()
        raise TypeError("Backoff.run needs a sleep that returns no awaitable: use run_async")

    async def run_async(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        retryable: Callable[[Exception], bool],
        advised: Callable[[Exception], float | None] = _no_advice,
        on_retry: Callable[[Exception, float, int], None] | None = None,
    ) -> T:
        """`run` for a coroutine function, inside an event loop: the same tries, waits and
        refusals, awaiting `operation()` and each wait through `pause(sleep, wait)` (so with
        `asyncio.sleep` the loop's other tasks go on meanwhile).

        A hand-written loop rather than tenacity or stamina: every delay here must be exact
        under an injected sleep and jitter (the tests assert them), so tenacity would need a
        custom wait, retry test and stop anyway, around a loop this short; stamina's waits and
        sleeping are global settings, not per-call parameters.
        """
        for retry in itertools.count(1):
            try:
                return await operation()
            except Exception as error:
                wait = self._wait_before(retry, error, retryable, advised)
                if wait is None:
                    raise
                if on_retry is not None:
                    on_retry(error, wait, retry)
                await pause(self.sleep, wait)
        raise AssertionError("unreachable: the last try returns or raises")

    def _wait_before(
        self,
        retry: int,
        error: Exception,
        retryable: Callable[[Exception], bool],
        advised: Callable[[Exception], float | None],
    ) -> float | None:
        """Return the wait before retry `retry` after `error`, or None when `error` is final
        (not retryable, or the last try). Raise `WaitRefused` from `error` when the wait it
        advises is over `max_advised_wait`."""
        if not retryable(error) or retry >= self.attempts:
            return None
        advice = advised(error)
        if advice is not None and advice > self.max_advised_wait:
            raise WaitRefused(error, advice) from error
        return self.delay(retry, advice)


async def pause(sleep: Callable[[float], object], seconds: float) -> None:
    """Wait `seconds` through `sleep` from a coroutine: await what `sleep(seconds)` returns when
    it is awaitable (`asyncio.sleep`); a sleep that returns nothing — a test's recorder — has
    done its waiting when it returns (a blocking `time.sleep` would stall the whole loop)."""
    outcome = sleep(seconds)
    if inspect.isawaitable(outcome):
        await outcome
