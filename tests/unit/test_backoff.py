"""Backoff, the one retry loop of providers and notifiers, with a recorded sleep: no real
waiting."""

from __future__ import annotations

import asyncio
import math

import pytest

from snapshot_policy.pacing.backoff import (
    MAX_ADVISED_WAIT,
    MAX_ADVISED_WAIT_NOTIFY,
    Backoff,
    WaitRefused,
)


class Later(Exception):
    """A failure worth repeating, optionally advising its own wait."""

    def __init__(self, wait=None):
        super().__init__(f"later ({wait})")
        self.wait = wait


class Never(Exception):
    pass


def failing(errors, result="ok"):
    remaining = list(errors)
    calls = []

    def operation():
        calls.append(1)
        if remaining:
            raise remaining.pop(0)
        return result

    operation.calls = calls
    return operation


def run(backoff, operation, **options):
    return backoff.run(
        operation, retryable=lambda e: isinstance(e, Later), advised=lambda e: e.wait, **options
    )


def backoff(sleeps, **options):
    return Backoff(**{"attempts": 4, "base_delay": 1.5, "sleep": sleeps.append, **options})


def test_backoff_doubles_the_base_delay_exactly_without_jitter():
    sleeps: list[float] = []
    assert run(backoff(sleeps), failing([Later(), Later(), Later()])) == "ok"
    assert sleeps == [1.5, 3.0, 6.0]


def test_backoff_jitter_picks_a_point_in_the_upper_half_and_max_delay_caps():
    sleeps: list[float] = []
    jittered = backoff(sleeps, attempts=6, base_delay=1.0, max_delay=4.0, jitter=lambda: 0.5)
    assert run(jittered, failing([Later()] * 5)) == "ok"
    assert sleeps == [0.75, 1.5, 3.0, 3.0, 3.0]
    assert backoff(sleeps, base_delay=2.0, jitter=lambda: 0.0).delay(3) == 4.0
    assert backoff(sleeps, base_delay=2.0, jitter=lambda: 0.999).delay(3) == pytest.approx(7.996)


def test_backoff_honours_an_advised_wait_instead_of_its_own():
    sleeps: list[float] = []
    assert run(backoff(sleeps), failing([Later(wait=7), Later()])) == "ok"
    assert sleeps == [7, 3.0]


def test_backoff_raises_the_last_failure_once_its_attempts_are_spent():
    sleeps: list[float] = []
    operation = failing([Later()] * 10)
    with pytest.raises(Later):
        run(backoff(sleeps, attempts=3), operation)
    assert (len(operation.calls), sleeps) == (3, [1.5, 3.0])


def test_backoff_with_one_attempt_never_retries():
    sleeps: list[float] = []
    with pytest.raises(Later):
        run(backoff(sleeps, attempts=1), failing([Later()]))
    assert sleeps == []


def test_backoff_raises_what_is_not_retryable_at_once():
    sleeps: list[float] = []
    operation = failing([Never()])
    with pytest.raises(Never):
        run(backoff(sleeps), operation)
    assert (len(operation.calls), sleeps) == (1, [])


def test_backoff_refuses_an_advised_wait_over_its_limit_without_sleeping():
    sleeps: list[float] = []
    first = Later(wait=61)
    with pytest.raises(WaitRefused) as refused:
        run(backoff(sleeps, max_advised_wait=60), failing([first]))
    assert (refused.value.error, refused.value.wait, refused.value.__cause__) == (first, 61, first)
    assert str(refused.value) == "later (61); not waiting 61 s"
    assert sleeps == []
    assert run(backoff(sleeps, max_advised_wait=60), failing([Later(wait=60)])) == "ok"
    assert sleeps == [60]


def test_backoff_spent_attempts_come_before_a_refused_wait():
    """The last try's failure is reported as it is, whatever wait it advises."""
    sleeps: list[float] = []
    with pytest.raises(Later):
        run(backoff(sleeps, attempts=1), failing([Later(wait=3600)]))


def test_backoff_tells_on_retry_before_each_sleep():
    sleeps: list[float] = []
    told = []
    first, second = Later(), Later(wait=2)
    run(
        backoff(sleeps),
        failing([first, second]),
        on_retry=lambda e, wait, n: told.append((e, wait, n, len(sleeps))),
    )
    assert told == [(first, 1.5, 1, 0), (second, 2, 2, 1)]


def test_backoff_for_a_notification_is_retries_plus_one_exact_tries_with_a_one_minute_limit():
    sleeps: list[float] = []
    policy = Backoff.for_notification(retries=3, base_delay=0.5, sleep=sleeps.append)
    assert (policy.attempts, policy.jitter, policy.max_delay, policy.max_advised_wait) == (
        4,
        None,
        math.inf,
        MAX_ADVISED_WAIT_NOTIFY,
    )
    with pytest.raises(Later):
        run(policy, failing([Later()] * 10))
    assert sleeps == [0.5, 1.0, 2.0]
    assert (
        MAX_ADVISED_WAIT_NOTIFY
        < MAX_ADVISED_WAIT
        == Backoff(attempts=1, base_delay=1).max_advised_wait
    )


def run_async(backoff, operation, **options):
    async def awaited():
        return operation()

    return asyncio.run(
        backoff.run_async(
            awaited, retryable=lambda e: isinstance(e, Later), advised=lambda e: e.wait, **options
        )
    )


def test_backoff_run_async_makes_the_same_tries_and_waits_as_run():
    for errors in ([Later(), Later(wait=7), Later()], [Later()] * 10, [Never()], [Later(wait=61)]):
        outcomes = []
        for runner in (run, run_async):
            sleeps: list[float] = []
            operation = failing(errors)
            try:
                outcomes.append(
                    (
                        runner(backoff(sleeps, max_advised_wait=60), operation),
                        len(operation.calls),
                        sleeps,
                    )
                )
            except Exception as error:
                outcomes.append((type(error), len(operation.calls), sleeps))
        assert outcomes[0] == outcomes[1]


def test_backoff_run_async_awaits_an_async_sleep():
    slept: list[float] = []

    async def sleep(seconds):
        await asyncio.sleep(0)
        slept.append(seconds)

    assert (
        run_async(
            Backoff(attempts=3, base_delay=0.25, sleep=sleep), failing([Later(), Later(wait=2)])
        )
        == "ok"
    )
    assert slept == [0.25, 2]


def test_backoff_run_refuses_a_sleep_that_would_need_an_event_loop():
    async def sleep(seconds):
        await asyncio.sleep(0)

    with pytest.raises(TypeError, match="use run_async"):
        run(Backoff(attempts=2, base_delay=0.25, sleep=sleep), failing([Later()]))
