"""RetryPolicy.create_once with a fake clock: a server POST is never sent twice where a second
server could result, and a lost reply is looked for by name before anything else."""

from __future__ import annotations

import pytest

from snapshot_policy.core.model import ProviderError
from snapshot_policy.edges.providers.retry import Refused, RetryPolicy, unreadable
from tests.unit.providers.test_retry import FakeTime, failing, policy


def error(status, code=None, retry_after=None):
    return ProviderError("hetzner", "create server", status, "boom", retry_after, code)


def counted(errors, result="made"):
    calls = []
    call = failing(errors, result)

    def create():
        calls.append(1)
        return call()

    return create, calls


def uniqueness(error_: ProviderError) -> bool:
    return error_.code == "uniqueness_error"


@pytest.mark.parametrize("unique", [True, False])
def test_a_lost_reply_is_looked_for_and_the_server_found_is_the_answer(unique):
    clock = FakeTime()
    create, calls = counted([error(None)])
    made = policy(clock).create_once(create, lambda: "found", uniqueness, unique_names=unique)
    assert made == "found" and len(calls) == 1 and clock.sleeps == []


def test_where_names_are_not_unique_a_lost_reply_not_found_is_raised_never_repeated():
    """DigitalOcean takes two droplets of one name: a repeat could make a second server."""
    clock = FakeTime()
    for lost in (error(500), error(None), unreadable("digitalocean", "create", 202, "not JSON")):
        create, calls = counted([lost])
        with pytest.raises(ProviderError) as raised:
            policy(clock).create_once(create, lambda: None, lambda e: False, unique_names=False)
        assert raised.value is lost and len(calls) == 1
    assert clock.sleeps == []


def test_where_names_are_unique_a_lost_reply_not_found_is_repeated_and_a_taken_name_looked_for():
    """Hetzner refuses a second server of one name: the repeat's uniqueness_error means the
    first create made it after all, and looking again finds it."""
    clock = FakeTime()
    create, calls = counted([error(502), error(409, "uniqueness_error")])
    looks = iter([None, "found"])
    made = policy(clock).create_once(create, looks.__next__, uniqueness, unique_names=True)
    assert made == "found" and len(calls) == 2 and clock.sleeps == [0.75]


def test_a_taken_name_on_the_first_try_is_a_refusal_not_looked_for():
    """Someone else's server has the name: it is not taken for ours."""
    clock, looked = FakeTime(), []
    create, calls = counted([error(409, "uniqueness_error")])
    with pytest.raises(ProviderError) as raised:
        policy(clock).create_once(
            create, lambda: looked.append(1) or "theirs", uniqueness, unique_names=True
        )
    assert raised.value.code == "uniqueness_error" and looked == [] and len(calls) == 1


def test_a_rate_limit_and_a_conflict_are_repeated_they_had_no_effect():
    clock, looked = FakeTime(), []
    create, calls = counted([error(429, retry_after=3), error(409, "conflict")])
    made = policy(clock).create_once(
        create, lambda: looked.append(1), uniqueness, unique_names=False
    )
    assert made == "made" and len(calls) == 3 and looked == [] and clock.sleeps == [3, 1.5]


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_a_refusal_is_raised_at_once(status):
    clock = FakeTime()
    create, calls = counted([error(status)])
    with pytest.raises(ProviderError):
        policy(clock).create_once(create, lambda: "found", uniqueness, unique_names=True)
    assert len(calls) == 1 and clock.sleeps == []


def test_a_failure_to_look_ends_the_create_unrepeated():
    clock = FakeTime()
    create, calls = counted([error(503)])

    def look():
        raise error(500)  # a read that failed even after its own retries

    with pytest.raises(ProviderError):
        policy(clock).create_once(create, look, uniqueness, unique_names=True)
    assert len(calls) == 1 and clock.sleeps == []


def test_a_rate_limit_asking_for_an_hour_is_not_waited_for():
    clock = FakeTime()
    create, _ = counted([error(429, retry_after=3600)])
    with pytest.raises(ProviderError) as raised:
        policy(clock).create_once(create, lambda: None, uniqueness, unique_names=True)
    assert raised.value.status == 429 and clock.sleeps == []


def test_repeats_end_after_the_policys_attempts():
    clock = FakeTime()
    create, calls = counted([error(None)] * 10)
    with pytest.raises(ProviderError):
        RetryPolicy(
            attempts=3, sleep=clock.sleep, jitter=lambda: 0.5, clock=lambda: clock.now
        ).create_once(create, lambda: None, uniqueness, unique_names=True)
    assert len(calls) == 3


def test_refused_is_certain_and_final():
    refused = Refused("hetzner", "delete drill server", "not ours", "not_a_drill_server")
    assert refused.refused and not refused.transient and refused.code == "not_a_drill_server"
    assert str(refused) == "hetzner delete drill server failed (refused): not ours"


@pytest.mark.parametrize(
    "later",
    [
        error(409, "uniqueness_error"),  # the name is taken: by the server the first made?
        error(403, "resource_limit_exceeded"),  # the limit is reached: by that server?
        error(429, retry_after=3600),  # a wait too long to take
    ],
)
def test_a_refusal_after_a_create_that_may_have_acted_is_no_certainty_that_none_exists(later):
    """The first POST's reply is lost (the server may exist), the look finds none yet (a
    listing that lags), and the repeat is refused. The refusal speaks only for the repeat:
    raised as certain, the drill crosses its journal entry off and the server the first POST
    made is never deleted (docs/promises.md §5, invariant 14). It stays uncertain."""
    clock = FakeTime()
    lost = error(502)
    create, calls = counted([lost, later])
    with pytest.raises(ProviderError) as raised:
        policy(clock).create_once(create, lambda: None, uniqueness, unique_names=True)
    assert len(calls) == 2 and not raised.value.refused
