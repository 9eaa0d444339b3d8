"""RetryPolicy with a fake clock: which failures are repeated, and how long it waits."""

from __future__ import annotations

import pytest

from snapshot_policy.core.model import ProviderError
from snapshot_policy.edges.providers.retry import (
    RetryPolicy,
    ServerBusy,
    advised_wait,
    timed_out,
    unreadable,
)


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


def test_start_once_takes_a_start_found_after_a_lost_reply_and_does_not_repeat_it():
    clock, starts = FakeTime(), []

    def start():
        starts.append(1)
        raise error(None)

    assert policy(clock).start_once(start, lambda: "found", lambda e: False, timeout=60) == "found"
    assert len(starts) == 1


def test_start_once_repeats_only_when_nothing_started():
    clock = FakeTime()
    start = failing([error(500), error(None)], result="started")
    assert policy(clock).start_once(start, lambda: None, lambda e: False, timeout=60) == "started"
    assert clock.sleeps == [0.75, 1.5]


def test_start_once_raises_a_busy_refusal_at_once_holding_no_thread():
    """A busy server is asked again by the executor later, not by sleeping in a request thread."""
    clock = FakeTime()
    busy = ProviderError(
        "digitalocean", "start snapshot", 422, "Droplet already has a pending event."
    )
    with pytest.raises(ServerBusy) as raised:
        policy(clock).start_once(
            failing([busy, busy]), lambda: None, lambda e: e.status == 422, timeout=60
        )
    assert clock.sleeps == [] and raised.value.status == 422 and raised.value.no_snapshot


def test_start_once_busy_after_a_lost_reply_finds_its_own_snapshot():
    clock = FakeTime()
    lost = ProviderError("hetzner", "start snapshot", None, "connection dropped")
    locked = ProviderError("hetzner", "start snapshot", 423, "locked", code="locked")
    assert (
        policy(clock).start_once(
            failing([lost, locked]),
            iter([None, "ours"]).__next__,
            lambda e: e.code == "locked",
            timeout=60,
        )
        == "ours"
    )


def test_start_once_does_not_repeat_a_refusal():
    clock = FakeTime()
    with pytest.raises(ProviderError):
        policy(clock).start_once(
            failing([error(404)]), lambda: "found", lambda e: False, timeout=60
        )
    assert clock.sleeps == []


def test_an_uncertain_outcome_is_transient_even_with_a_refusals_status():
    garbled = unreadable("digitalocean", "start snapshot", 201, ValueError("Expecting value"))
    assert garbled.transient and garbled.status == 201
    assert str(garbled) == (
        "digitalocean start snapshot failed (HTTP 201): "
        "the API's reply could not be understood (ValueError: Expecting value)"
    )
    proxy = unreadable("hetzner", "list servers", 403, "an HTTP 403 without Hetzner's error body")
    assert proxy.transient and proxy.status == 403
    assert unreadable("hetzner", "list servers", None, KeyError("x")).transient
    late = timed_out("hetzner", "snapshot web-1", 20)
    assert late.transient and str(late) == (
        "hetzner wait for snapshot failed (timed out after 20s): "
        "snapshot web-1 is still not finished"
    )


def test_an_unreadable_reply_is_not_repeated_at_once():
    clock = FakeTime()
    with pytest.raises(ProviderError):
        policy(clock).call(failing([unreadable("hetzner", "list servers", 200, TypeError("x"))]))
    assert clock.sleeps == []


def test_start_once_looks_for_a_start_whose_reply_was_not_understood():
    clock, starts = FakeTime(), []

    def start():
        starts.append(1)
        raise unreadable("hetzner", "start snapshot", 201, "its body is not JSON")

    assert policy(clock).start_once(start, lambda: "found", lambda e: False, timeout=60) == "found"
    assert len(starts) == 1


def test_start_once_does_not_repeat_a_start_when_looking_for_it_fails():
    """Looking is a read already retried on its own: its failure ends the start, which may
    have taken effect, rather than sending it again."""
    clock, starts = FakeTime(), []

    def start():
        starts.append(1)
        raise error(500)

    def started_meanwhile():
        raise unreadable("hetzner", "list snapshots", 200, "its body is not JSON")

    with pytest.raises(ProviderError, match="list snapshots"):
        policy(clock).start_once(start, started_meanwhile, lambda e: False, timeout=60)
    assert len(starts) == 1 and clock.sleeps == []


def test_start_once_gives_up_once_its_timeout_has_passed():
    clock, starts = FakeTime(), []

    def start():
        starts.append(1)
        raise error(503, retry_after=40)

    with pytest.raises(ProviderError):
        policy(clock).start_once(start, lambda: None, lambda e: False, timeout=60)
    assert clock.sleeps == [40, 40] and len(starts) == 3  # past the timeout after the second wait


def test_a_failure_ends_with_the_request_id_the_cloud_gave():
    refused = ProviderError("hetzner", "list snapshots", 403, "forbidden", request_id="a1b2")
    assert str(refused) == "hetzner list snapshots failed (HTTP 403): forbidden (request id a1b2)"
    assert str(ServerBusy(refused)) == str(refused) and ServerBusy(refused).request_id == "a1b2"
    garbled = unreadable("digitalocean", "start snapshot", 502, "no error body", "5158-50a0")
    assert str(garbled).endswith("(no error body) (request id 5158-50a0)")
    assert str(error(403)) == "hetzner list snapshots failed (HTTP 403): boom"  # none given


DATE = "Mon, 01 Jan 2001 00:00:00 GMT"  # the server's clock, far from this machine's
SENT = 978307200


@pytest.mark.parametrize(
    "headers, spread, wait",
    [
        ({"Retry-After": "8"}, False, 8),
        (
            {
                "retry-after": "8",
                "ratelimit-remaining": "0",
                "ratelimit-reset": str(SENT + 60),
                "date": DATE,
            },
            False,
            8,
        ),
        ({"Retry-After": "Mon, 01 Jan 2001 00:00:30 GMT", "Date": DATE}, False, 30),
        (
            {"Retry-After": "Mon, 01 Jan 2001 00:00:30 GMT"},
            False,
            None,
        ),  # no Date to measure it from
        (
            {"ratelimit-remaining": "0", "ratelimit-reset": str(SENT + 29), "date": DATE},
            False,
            29,
        ),  # DigitalOcean
        (
            {
                "RateLimit-Limit": "3600",
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(SENT + 28800),
                "Date": DATE,
            },
            True,
            8,
        ),  # Hetzner
        (
            {
                "RateLimit-Limit": "3600",
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(SENT + 28800),
            },
            True,
            None,
        ),
        (
            {
                "RateLimit-Limit": "3600",
                "RateLimit-Remaining": "5",
                "RateLimit-Reset": str(SENT + 60),
                "Date": DATE,
            },
            True,
            None,
        ),
        ({"ratelimit-remaining": "0", "ratelimit-reset": str(SENT - 5), "date": DATE}, False, 0),
        ({"Retry-After": "soon"}, False, None),
        ({"Retry-After": "-3"}, False, None),
        ({}, False, None),
    ],
)
def test_advised_wait_reads_the_headers_against_the_replys_own_date(headers, spread, wait):
    assert advised_wait(headers, spread_over_limit=spread) == wait


@pytest.mark.parametrize(
    ("failure", "refused"),
    [
        (ProviderError("hetzner", "start snapshot", 429, "rate limit"), True),
        (ProviderError("hetzner", "start snapshot", 403, "forbidden"), True),
        (ProviderError("hetzner", "start snapshot", 422, "locked"), True),
        (ProviderError("hetzner", "wait for snapshot", None, "failed", code="action_failed"), True),
        (ProviderError("hetzner", "start snapshot", 500, "server error"), False),
        (ProviderError("hetzner", "start snapshot", None, "connection dropped"), False),
        (unreadable("hetzner", "start snapshot", 201, "cut short"), False),
        (unreadable("hetzner", "start snapshot", 400, "no error body"), False),
    ],
    ids=[
        "429",
        "403",
        "422",
        "action-failed",
        "500",
        "no-response",
        "garbled-201",
        "4xx-without-api-body",
    ],
)
def test_a_failure_is_a_certain_refusal_only_when_the_api_says_so(failure, refused):
    """A journal entry is closed on a refusal, so only a certain one may count."""
    assert failure.refused is refused
