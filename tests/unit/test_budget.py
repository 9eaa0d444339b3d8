"""The per-account request budget: a token bucket on an injected clock."""

from __future__ import annotations

import pytest

from snapshot_policy.core.model import RateLimit
from snapshot_policy.pacing.budget import RequestBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_a_burst_go_then_paces_at_the_rate():
    clock = Clock()
    budget = RequestBudget(RateLimit(per_second=2.0, burst=3), clock)
    for _ in range(3):
        assert budget.wait() == 0
        budget.spend()
    assert budget.wait() == pytest.approx(0.5)
    clock.now += 0.5
    assert budget.wait() == 0


def test_the_bucket_never_holds_more_than_its_burst():
    clock = Clock()
    budget = RequestBudget(RateLimit(per_second=1.0, burst=2), clock)
    clock.now += 3600
    budget.spend(3)
    assert budget.wait() == pytest.approx(2.0)  # one short: not an hour of saved-up requests


def test_the_remaining_budget_a_reply_reports_wins_when_lower():
    clock = Clock()
    budget = RequestBudget(RateLimit(per_second=1.0, burst=3600, remaining=1), clock)
    budget.spend()
    assert budget.wait() == pytest.approx(1.0)
    clock.now += 10
    budget.heard(0)  # another user of the token spent it meanwhile
    assert budget.wait() == pytest.approx(1.0)
    budget.heard(500)  # a higher count never adds requests
    assert budget.wait() == pytest.approx(1.0)


def test_digitalocean_pacing_never_exceeds_250_in_any_minute_and_follows_the_reported_hour():
    """DigitalOcean's replies report what is left of the last hour's 5,000 (each request
    expires an hour after it was made); the budget hears each reply, as execute.py does.
    (Once the hour is spent, the cloud's 429 and its retry-after take over: providers.retry.)"""
    from snapshot_policy.edges.providers.digitalocean import _budget

    clock = Clock()
    budget = RequestBudget(_budget(5000, remaining=1000), clock)
    sent: list[float] = []
    while clock.now < 1000 + 600:
        wait = budget.wait()
        if wait:
            clock.now += wait
            continue
        budget.spend()
        sent.append(clock.now)
        budget.heard(1000 - len(sent))
    assert sent[239] == 1000  # a burst of 240 at once
    assert (
        max(sum(1 for t in sent[i : i + 300] if t < start + 60) for i, start in enumerate(sent))
        <= 250
    )
    assert (
        sent[999] < 1000 + 300 and len(sent) < 1000 + 600 * 5000 / 3600
    )  # the reported 1,000, then the hourly pace


def test_a_sliding_window_frees_a_slot_when_its_oldest_counted_event_leaves_it():
    from snapshot_policy.pacing.budget import SlidingWindow

    window = SlidingWindow(3, 60.0)
    window.add(0.0)
    window.add(10.0, 3)  # more than the limit at once (a poll of many pages): the last 3 count
    assert window.wait(10.0) == pytest.approx(60.0)
    assert window.wait(69.0) == pytest.approx(1.0)
    assert window.wait(70.0) == 0
