"""consistency: shutdown, rule by rule, as a target's lifecycle takes events and gives
commands (lifecycle.py, consistency.py; docs/promises.md §5.17): no sandbox, no threads, no
clock. The server is shut down after the before hook and before the start, powered on once
the create is over however it ended, and a server that was off is left off."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from snapshot_policy.core import commands, consistency, events
from snapshot_policy.core.lifecycle import Lifecycle, Stage
from snapshot_policy.core.model import (
    ActionKind,
    Consistency,
    Hooks,
    ProviderError,
    StartedSnapshot,
)
from snapshot_policy.core.reconcile import config_fingerprint, plan_target
from tests.factories import snap, target, utc

NOW = utc(2026, 11, 26, 3, 0, 5)
HISTORY = [snap(utc(2026, 11, 25, 3) - timedelta(days=n), id=f"d{n + 1}") for n in range(3)]
SHUTDOWN = Consistency()
FORCE = Consistency(force=True, timeout=60.0)
BOTH = Hooks(before=("freeze",), after=("thaw",))


def lifecycle(rule=SHUTDOWN, status="running", hooks=None, history=HISTORY):
    """keep_last 2: the plan creates one and deletes d2 and d3."""
    t = replace(target(keep_last=2), consistency=rule, server_status=status, hooks=hooks)
    return Lifecycle(plan_target(t, history, NOW), poll_interval=10.0, creation_timeout=600.0)


def of(orders, kind):
    return [c for c in orders if isinstance(c, kind)]


def started(life):
    return StartedSnapshot("1", life.plan.create.snapshot.name, "action-1")


def made(life):
    return replace(snap(NOW + timedelta(minutes=1), id="new"), name=life.plan.create.snapshot.name)


def to_off(life, sent=100.0, off=130.0):
    """Begin, take the turn, shut down, be seen off, take the turn again: the Start."""
    life.on(events.Begin(NOW, 0.0))
    assert life.on(events.Turn()) == [commands.Power("shutdown")]
    assert life.stage is Stage.SHUTTING_DOWN
    orders = life.on(events.PowerSent("shutdown", sent))
    assert of(orders, commands.WatchPower) and of(orders, commands.RecordPower)
    orders = life.on(events.PowerSeen("off", off))
    assert of(orders, commands.Queue) == [commands.Queue(front=True)]
    (start,) = life.on(events.Turn())
    assert isinstance(start, commands.Start)
    return life.on(events.Started(started(life), off))


def test_the_server_is_shut_down_before_the_start_and_the_start_waits_until_it_is_off():
    life = lifecycle()
    life.on(events.Begin(NOW, 0.0))
    assert life.on(events.Turn()) == [commands.Power("shutdown")]
    life.on(events.PowerSent("shutdown", 100.0))
    for status in ("running", "stopping", "active", None):  # not yet, or not listed
        assert life.on(events.PowerSeen(status, 150.0)) == [commands.WatchPower()]
        assert life.stage is Stage.SHUTTING_DOWN
    orders = life.on(events.PowerSeen("off", 160.0))
    assert life.stage is Stage.QUEUED and commands.Queue(front=True) in orders


def test_the_before_hook_runs_before_the_shutdown():
    life = lifecycle(hooks=BOTH)
    life.on(events.Begin(NOW, 0.0))
    assert life.on(events.Turn()) == [commands.RunBefore()]
    assert life.on(events.BeforeRan(None)) == [commands.Queue(front=True)]
    assert life.on(events.Turn()) == [commands.Power("shutdown")]


def test_once_made_it_is_powered_on_deletes_and_finishes_only_once_it_runs_again():
    life = lifecycle(hooks=BOTH)
    life.on(events.Begin(NOW, 0.0))
    life.on(events.Turn())
    life.on(events.BeforeRan(None))
    life.on(events.Turn())
    life.on(events.PowerSent("shutdown", 100.0))
    life.on(events.PowerSeen("off", 130.0))
    life.on(events.Turn())
    life.on(events.Started(started(life), 130.0))
    orders = life.on(events.Made(made(life), NOW))
    assert commands.Power("power_on") in orders
    assert not of(orders, commands.RunAfter)  # the after hook waits for the server to run
    assert len(of(orders, commands.Delete)) == 2  # deletions overlap the power on
    for action in life.plan.of_kind(ActionKind.DELETE):
        life.on(events.Deleted(action))
    assert life.stage is Stage.OVER  # not done: the power on is pending
    assert life.on(events.PowerSent("power_on", 200.0)) == [commands.WatchPower()]
    assert life.on(events.PowerSeen("off", 201.0)) == [commands.WatchPower()]
    orders = life.on(events.PowerSeen("running", 230.0))
    assert commands.CrossOffPoweredOff() in orders
    assert commands.RunAfter("success", life.plan.create.snapshot.name) in orders
    assert not of(orders, commands.Finished)
    assert of(life.on(events.AfterRan(None)), commands.Finished)
    outcome = life.outcome()
    assert outcome.ok and outcome.downtime_seconds == 130.0  # shutdown sent → seen running


def test_a_shutdown_that_does_not_finish_without_force_fails_without_a_snapshot_and_powers_on():
    life = lifecycle(rule=Consistency(timeout=60.0))
    life.on(events.Begin(NOW, 0.0))
    life.on(events.Turn())
    life.on(events.PowerSent("shutdown", 100.0))
    assert life.on(events.PowerSeen("running", 160.0)) == [commands.WatchPower()]  # 60s: not past
    orders = life.on(events.PowerSeen("running", 161.0))
    assert commands.Power("power_on") in orders
    assert not of(orders, commands.Start) and not of(orders, commands.Delete)
    assert commands.Power("power_off") not in orders  # never without force
    life.on(events.PowerSent("power_on", 162.0))
    # never seen off: its shutdown may still be under way, so running counts only a while on
    assert life.on(events.PowerSeen("running", 163.0)) == [commands.WatchPower()]
    assert of(life.on(events.PowerSeen("running", 192.0)), commands.Finished)
    outcome = life.outcome()
    assert not outcome.ok and outcome.created is None and outcome.deleted == ()
    assert "did not shut down within 60s; no snapshot" in outcome.error


def test_with_force_it_is_powered_off_once_the_wait_runs_out_then_snapshotted():
    life = lifecycle(rule=FORCE)
    life.on(events.Begin(NOW, 0.0))
    life.on(events.Turn())
    life.on(events.PowerSent("shutdown", 100.0))
    orders = life.on(events.PowerSeen("running", 161.0))
    assert commands.Power("power_off") in orders
    assert commands.RecordPower("server powered off", "consistency: shutdown, force") in orders
    assert life.on(events.PowerSent("power_off", 162.0)) == [commands.WatchPower()]
    assert commands.Queue(front=True) in life.on(events.PowerSeen("off", 170.0))


def test_with_force_a_server_still_not_off_after_the_power_off_fails_and_is_powered_on():
    life = lifecycle(rule=FORCE)
    life.on(events.Begin(NOW, 0.0))
    life.on(events.Turn())
    life.on(events.PowerSent("shutdown", 100.0))
    life.on(events.PowerSeen("running", 161.0))
    life.on(events.PowerSent("power_off", 162.0))
    assert life.on(events.PowerSeen("running", 200.0)) == [commands.WatchPower()]
    orders = life.on(events.PowerSeen("running", 223.0))
    assert commands.Power("power_on") in orders and not of(orders, commands.Start)


def test_a_server_already_off_is_snapshotted_as_it_is_and_left_off():
    life = lifecycle(status="off")
    assert life.was_off
    orders = life.on(events.Begin(NOW, 0.0))
    assert commands.Queue() in orders and "left off" in of(orders, commands.Log)[0].message
    (start,) = life.on(events.Turn())
    assert isinstance(start, commands.Start)
    life.on(events.Started(started(life), 1.0))
    orders = life.on(events.Made(made(life), NOW))
    assert not of(orders, commands.Power) and not of(orders, commands.CrossOffPoweredOff)
    assert life.outcome().downtime_seconds is None


@pytest.mark.parametrize(
    "event",
    [
        events.CreateFailed(ProviderError("hetzner", "wait for snapshot", 500, "boom")),
        events.StartCrashed("a bug"),
        events.Signal("SIGTERM"),
    ],
    ids=["failed", "crashed", "stopped"],
)
def test_a_failed_or_stopped_snapshot_still_powers_the_server_on_and_deletes_nothing(event):
    life = lifecycle()
    to_off(life)
    orders = life.on(event)
    assert commands.Power("power_on") in orders and not of(orders, commands.Delete)
    assert not of(orders, commands.Finished)  # not before it runs again
    life.on(events.PowerSent("power_on", 300.0))
    assert of(life.on(events.PowerSeen("running", 310.0)), commands.Finished)
    assert not life.outcome().ok and life.outcome().deleted == ()


def test_a_stop_while_it_shuts_down_powers_it_on_at_once():
    life = lifecycle()
    life.on(events.Begin(NOW, 0.0))
    life.on(events.Turn())
    life.on(events.PowerSent("shutdown", 100.0))
    orders = life.on(events.Signal("SIGTERM"))
    assert commands.Power("power_on") in orders and not of(orders, commands.Start)


def test_a_stop_while_the_shutdown_request_is_out_powers_on_once_it_is_answered():
    life = lifecycle()
    life.on(events.Begin(NOW, 0.0))
    life.on(events.Turn())
    assert life.on(events.Signal("SIGTERM")) == []
    orders = life.on(events.PowerSent("shutdown", 100.0))
    assert commands.Power("power_on") in orders and not of(orders, commands.WatchPower)


def test_a_shutdown_refused_for_certain_is_crossed_off_and_nothing_is_powered_on():
    life = lifecycle()
    life.on(events.Begin(NOW, 0.0))
    life.on(events.Turn())
    orders = life.on(events.PowerFailed("shutdown", "locked", True, 100.0))
    assert commands.CrossOffPoweredOff() in orders and not of(orders, commands.Power)
    assert (
        of(orders, commands.Finished) and "could not shut the server down" in life.outcome().error
    )


def test_a_shutdown_that_may_have_gone_out_is_followed_by_a_power_on():
    life = lifecycle()
    life.on(events.Begin(NOW, 0.0))
    life.on(events.Turn())
    orders = life.on(events.PowerFailed("shutdown", "timed out", False, 100.0))
    assert commands.Power("power_on") in orders and not of(orders, commands.CrossOffPoweredOff)


def test_a_refused_power_on_is_asked_again_doubling_until_given_up_and_stays_journalled():
    life = lifecycle(rule=Consistency(timeout=60.0))
    to_off(life)
    life.on(events.Made(made(life), NOW))
    waits = []
    for at in (200.0, 201.0, 203.0):
        (_, again, watch) = life.on(events.PowerFailed("power_on", "locked", True, at))
        waits.append(again.at - at)
        assert again == commands.PowerLater("power_on", again.at)
        assert watch == commands.WatchPower()  # refused, perhaps, as an earlier one worked
    assert waits == [1.0, 2.0, 4.0]
    assert life.on(events.PowerSeen("off", 250.0)) == [commands.WatchPower()]  # no second one
    orders = life.on(events.PowerFailed("power_on", "locked", True, 801.0))  # creation_timeout
    assert not of(orders, commands.PowerLater) and not of(orders, commands.CrossOffPoweredOff)
    assert "the next run powers it on" in life.outcome().error


def test_a_server_still_off_a_while_after_its_power_on_is_sent_it_again():
    life = lifecycle()
    to_off(life)
    life.on(events.Made(made(life), NOW))
    life.on(events.PowerSent("power_on", 200.0))
    assert life.on(events.PowerSeen("off", 205.0)) == [commands.WatchPower()]
    assert life.on(events.PowerSeen("off", 200.0 + consistency.POWER_ON_AGAIN)) == [
        commands.Power("power_on")
    ]


def test_a_server_a_killed_run_left_off_is_powered_on_first_then_shut_down_again():
    life = lifecycle(status="off")  # off because the killed run shut it down
    orders = life.on(events.PoweredOffOwed("web", NOW - timedelta(hours=1)))
    assert commands.Power("power_on") in orders and not life.was_off
    assert life.on(events.Begin(NOW, 0.0)) == [] and life.stage is Stage.OWED_POWER
    life.on(events.PowerSent("power_on", 10.0))
    orders = life.on(events.PowerSeen("running", 20.0))
    assert commands.CrossOffPoweredOff() in orders and orders[-1] == commands.Queue()
    assert life.on(events.Turn()) == [commands.Power("shutdown")]  # the rule applies again


def test_a_server_a_killed_run_left_off_that_runs_again_is_only_crossed_off():
    life = lifecycle(status="active")
    orders = life.on(events.PoweredOffOwed("web", NOW - timedelta(hours=1)))
    assert commands.CrossOffPoweredOff() in orders and not of(orders, commands.Power)
    assert life.on(events.Begin(NOW, 0.0)) == [commands.Queue()]


def test_an_owed_power_on_given_up_fails_the_target_without_a_snapshot():
    life = lifecycle(rule=Consistency(timeout=30.0), status="off")
    life.on(events.PoweredOffOwed("web", NOW))
    life.on(events.Begin(NOW, 0.0))
    life.on(events.PowerSent("power_on", 10.0))
    orders = life.on(events.PowerSeen("off", 700.0))
    assert of(orders, commands.Finished) and not of(orders, commands.Queue)
    assert not life.outcome().ok


def test_a_target_without_consistency_never_touches_the_power():
    t = target(keep_last=2)
    life = Lifecycle(plan_target(t, HISTORY, NOW), poll_interval=10.0, creation_timeout=60.0)
    life.on(events.Begin(NOW, 0.0))
    (start,) = life.on(events.Turn())
    assert isinstance(start, commands.Start)


# -- the pure decisions (consistency.py) ---------------------------------------------------


@pytest.mark.parametrize(
    "status, off, running",
    [
        ("off", True, False),
        ("archive", True, False),
        ("active", False, True),
        ("running", False, True),
        ("stopping", False, False),
        ("new", False, False),
        (None, False, False),
    ],
)
def test_the_clouds_power_words(status, off, running):
    assert consistency.is_off(status) is off and consistency.is_running(status) is running


def test_left_off_needs_consistency_and_an_off_server():
    t = target(keep_last=1)
    assert not consistency.left_off(replace(t, server_status="off"))
    assert consistency.left_off(replace(t, consistency=SHUTDOWN, server_status="off"))
    assert not consistency.left_off(replace(t, consistency=SHUTDOWN, server_status="active"))


def test_the_plan_note():
    t = replace(target(keep_last=1), consistency=SHUTDOWN, server_status="running")
    assert consistency.plan_note(replace(t, consistency=None)) is None
    assert consistency.plan_note(t) == (
        "consistency: shutdown — the server will be off for about the snapshot's duration"
    )
    assert consistency.plan_note(replace(t, consistency=FORCE)).endswith(
        "(then powered off: force)"
    )
    assert "already off; it is left off" in consistency.plan_note(replace(t, server_status="off"))
    assert "no snapshot due" in consistency.plan_note(t, due=False)


def test_waits_and_give_ups():
    assert not consistency.wait_ran_out(SHUTDOWN, 0.0, 300.0)
    assert consistency.wait_ran_out(SHUTDOWN, 0.0, 300.5)
    assert not consistency.power_on_given_up(SHUTDOWN, 3600.0, 0.0, 3600.0)
    assert consistency.power_on_given_up(SHUTDOWN, 3600.0, 0.0, 3601.0)
    assert [consistency.power_on_wait(n, 15.0) for n in range(6)] == [1, 2, 4, 8, 15, 15]


def test_a_saved_plan_without_consistency_does_not_agree_with_a_configuration_that_has_it():
    t = target(keep_last=1)
    window = timedelta(hours=1)
    assert config_fingerprint([t], window) == config_fingerprint([replace(t)], window)
    with_it = config_fingerprint([replace(t, consistency=SHUTDOWN)], window)
    assert with_it != config_fingerprint([t], window)
    assert with_it != config_fingerprint([replace(t, consistency=FORCE)], window)


def test_a_server_seen_running_while_a_power_on_is_asked_again_later_is_done():
    life = lifecycle()
    to_off(life)
    life.on(events.Made(made(life), NOW))
    life.on(events.PowerFailed("power_on", "pending event", True, 200.0))
    assert commands.CrossOffPoweredOff() in life.on(events.PowerSeen("active", 201.0))
    assert life.on(events.PowerFailed("power_on", "already on", True, 202.0)) == []
    assert life.on(events.PowerSent("power_on", 202.0)) == []
    assert life.outcome().ok


def test_a_server_never_seen_off_that_goes_off_after_the_power_on_is_powered_on_again():
    life = lifecycle(rule=Consistency(timeout=60.0))
    life.on(events.Begin(NOW, 0.0))
    life.on(events.Turn())
    life.on(events.PowerSent("shutdown", 100.0))
    life.on(events.PowerSeen("active", 161.0))  # DigitalOcean: active while shutting down
    life.on(events.PowerSent("power_on", 162.0))
    assert life.on(events.PowerSeen("active", 164.0)) == [commands.WatchPower()]
    assert life.on(events.PowerSeen("off", 166.0)) == [commands.WatchPower()]
    assert life.on(events.PowerSeen("off", 162.0 + consistency.POWER_ON_AGAIN)) == [
        commands.Power("power_on")
    ]


@pytest.mark.parametrize("status", [None, "new", "starting", "migrating", "unknown"])
def test_a_server_neither_running_nor_off_is_not_shut_down_and_gets_no_snapshot(status):
    """A listing without a status (or one of a server starting, migrating) says nothing of
    whether it was meant to run: shut down, it would be powered on afterwards."""
    life = lifecycle(status=status)
    orders = life.on(events.Begin(NOW, 0.0))
    assert not of(orders, commands.Power) and not of(orders, commands.Queue)
    assert life.stage is Stage.DONE or life.stage is Stage.OVER
    outcome = life.outcome()
    assert not outcome.ok and "neither running nor off" in outcome.error
    assert outcome.created is None and outcome.deleted == ()


def test_the_plan_says_a_server_in_an_unknown_power_state_is_not_shut_down():
    t = replace(target(keep_last=2), consistency=SHUTDOWN, server_status=None)
    assert "neither running nor off" in consistency.plan_note(t)
    assert "will be off" in consistency.plan_note(replace(t, server_status="active"))
