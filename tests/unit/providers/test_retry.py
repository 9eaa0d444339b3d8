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
    assert clock.sleeps == [0.1, 0.15000000000000002]
    slow = iter([None] * 20 + ["done"])
    clock.sleeps.clear()
    policy(clock).poll(lambda: next(slow), timeout=600, interval=5, waiting_for="x")
    assert max(clock.sleeps) == 5 and clock.sleeps[-1] == 5
    with pytest.raises(TimeoutError, match="gave up after 12s waiting for snapshot web"):
        policy(clock).poll(lambda: None, timeout=12, interval=5, waiting_for="snapshot web")


def test_start_once_takes_a_start_found_after_a_lost_reply_and_does_not_repeat_it():
    clock, starts = FakeTime(), []

    def start():
        starts.append(1)
        raise error(None)

    assert policy(clock).start_once(start, lambda: "found", lambda e: False, timeout=60, busy_interval=5) == "found"
    assert len(starts) == 1


def test_start_once_repeats_only_when_nothing_started():
    clock = FakeTime()
    start = failing([error(500), error(None)], result="started")
    assert policy(clock).start_once(start, lambda: None, lambda e: False, timeout=60, busy_interval=5) == "started"
    assert clock.sleeps == [0.75, 1.5]


def test_start_once_waits_while_busy_until_the_timeout():
    clock = FakeTime()
    busy = ProviderError("digitalocean", "start snapshot", 422, "pending event")
    assert policy(clock).start_once(failing([busy, busy]), lambda: None, lambda e: e.status == 422, timeout=60, busy_interval=5) == "ok"
    assert clock.sleeps == [5, 5]
    with pytest.raises(ProviderError):
        policy(clock).start_once(failing([busy] * 20), lambda: None, lambda e: e.status == 422, timeout=12, busy_interval=5)


def test_start_once_does_not_repeat_a_refusal():
    clock = FakeTime()
    with pytest.raises(ProviderError):
        policy(clock).start_once(failing([error(404)]), lambda: "found", lambda e: False, timeout=60, busy_interval=5)
    assert clock.sleeps == []
