"""RetryPolicy with a fake clock: which failures are repeated, and how long it waits."""

from __future__ import annotations

import pytest

from snapshot_policy.model import ProviderError
from snapshot_policy.providers.retry import RetryPolicy


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def policy(clock, **options):
    return RetryPolicy(sleep=clock.sleep, jitter=lambda: 0.5, clock=lambda: clock.now, **options)


def failing(errors, result="ok"):
    remaining = list(errors)

    def call():
        if remaining:
            raise remaining.pop(0)
        return result

    return call


def error(status, retry_after=None):
    return ProviderError("hetzner", "list snapshots", status, "boom", retry_after)


def test_retry_honours_retry_after_then_succeeds():
    clock = FakeTime()
    assert policy(clock).call(failing([error(429, retry_after=7)])) == "ok"
    assert clock.sleeps == [7]


def test_retry_backs_off_exponentially_with_jitter_on_server_errors_and_lost_replies():
    clock = FakeTime()
    assert policy(clock).call(failing([error(500), error(503), error(None), error(502)])) == "ok"
    assert clock.sleeps == [0.75, 1.5, 3.0, 6.0]


def test_retry_gives_up_after_its_attempts():
    clock = FakeTime()
    with pytest.raises(ProviderError):
        policy(clock, attempts=3).call(failing([error(500)] * 5))
    assert len(clock.sleeps) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 423])
def test_retry_does_not_repeat_what_will_fail_again(status):
    clock = FakeTime()
    with pytest.raises(ProviderError):
        policy(clock).call(failing([error(status)]))
    assert clock.sleeps == []


def test_retry_does_not_wait_an_hour_for_a_rate_limit():
    clock = FakeTime()
    with pytest.raises(ProviderError):
        policy(clock).call(failing([error(429, retry_after=3600)]))
    assert clock.sleeps == []


def test_poll_returns_the_first_answer_and_times_out():
    clock = FakeTime()
    answers = iter([None, None, "done"])
    assert policy(clock).poll(lambda: next(answers), timeout=60, interval=5, waiting_for="x") == "done"
    assert clock.sleeps == [5, 5]
    with pytest.raises(TimeoutError, match="gave up after 12s waiting for snapshot web"):
        policy(clock).poll(lambda: None, timeout=12, interval=5, waiting_for="snapshot web")
