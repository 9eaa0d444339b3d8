"""consistency: shutdown's promise (docs/promises.md §5.17) over random runs, checked with
hypothesis: a fake executor answers the lifecycle's commands in a random order with random
replies (power actions refused or lost, the server seen in any state, the snapshot failing,
the run stopped at any moment). Whatever happens, once the target is done: a server this run
may have shut down was seen running again, or the target failed saying the journal keeps it;
its power was never cut without `force`; no snapshot was started before it was seen off; and
nothing was deleted without a new snapshot."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from snapshot_policy.core import commands, events
from snapshot_policy.core.lifecycle import Lifecycle, Stage
from snapshot_policy.core.model import Consistency, Hooks, ProviderError, StartedSnapshot
from snapshot_policy.core.reconcile import plan_target
from tests.factories import snap, target, utc

NOW = utc(2026, 11, 26, 3, 0, 5)
HISTORY = [snap(utc(2026, 11, 25, 3) - timedelta(days=n), id=f"d{n + 1}") for n in range(3)]
STATUSES = ["off", "running", "active", "stopping", None]


def answer(command, life, data, at):
    """The fake executor's reply to `command` (an event), or None when none comes."""
    match command:
        case commands.Queue() | commands.AskAgain():
            return events.Turn() if isinstance(command, commands.Queue) else events.WaitOver()
        case commands.Power(kind):
            if data.draw(st.booleans()):
                return events.PowerSent(kind, at)
            return events.PowerFailed(kind, "refused", data.draw(st.booleans()), at)
        case commands.PowerLater(kind, _):
            return ("power", kind)
        case commands.WatchPower():
            return events.PowerSeen(data.draw(st.sampled_from(STATUSES)), at)
        case commands.Start(name, _):
            if data.draw(st.booleans()):
                return events.Started(StartedSnapshot("1", name, "a-1"), at)
            return events.CreateFailed(ProviderError("hetzner", "start snapshot", 422, "no"))
        case commands.Poll():
            if data.draw(st.booleans()):
                name = life.plan.create.snapshot.name
                return events.Made(replace(snap(NOW, id="new"), name=name), NOW)
            return events.CreateFailed(ProviderError("hetzner", "wait for snapshot", 500, "x"))
        case commands.Delete(action):
            return events.Deleted(action)
        case commands.RunBefore():
            return events.BeforeRan(None)
        case commands.RunAfter():
            return events.AfterRan(None)
        case commands.CheckBusy():
            return events.BusyListed("resize", at)
    return None


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    force=st.booleans(),
    hooks=st.booleans(),
    status=st.sampled_from(["running", "active", "off"]),
)
def test_a_server_shut_down_is_powered_on_or_left_to_the_journal(data, force, hooks, status):
    rule = Consistency(force=force, timeout=60.0)
    t = replace(
        target(keep_last=2),
        consistency=rule,
        server_status=status,
        hooks=Hooks(before=("freeze",), after=("thaw",)) if hooks else None,
    )
    life = Lifecycle(plan_target(t, HISTORY, NOW), poll_interval=10.0, creation_timeout=300.0)
    at, seen_off, sent, stopped = 0.0, False, [], False
    pending = list(life.on(events.Begin(NOW, at)))
    emitted = list(pending)
    for _ in range(400):
        if life.stage is Stage.DONE:
            break
        if not stopped and data.draw(st.integers(0, 20)) == 0:
            stopped = True
            pending += life.on(events.Signal("SIGTERM"))
            continue
        if not pending:
            break
        command = pending.pop(data.draw(st.integers(0, len(pending) - 1)))
        at += data.draw(st.floats(5.0, 90.0))  # time goes on: every wait ends
        sent.append(command)
        if isinstance(command, commands.Start):
            assert status == "off" or seen_off, "a snapshot started before the server was off"
        if isinstance(command, commands.Queue) and stopped:
            continue  # once stopped the executor gives a queued target no turn
        reply = answer(command, life, data, at)
        if isinstance(reply, tuple):  # asked later: the executor sends it then
            pending.append(commands.Power(reply[1]))
            continue
        if reply is None:
            continue
        if isinstance(reply, events.PowerSeen) and reply.status == "off":
            seen_off = seen_off or life.stage is Stage.SHUTTING_DOWN
        orders = life.on(reply)
        pending += orders
        emitted += orders
    else:
        raise AssertionError("the lifecycle never finished")
    if life.stage is not Stage.DONE:  # stopped with nothing left to answer
        assert stopped and not life.power_on_pending, life.stage
        return
    outcome = life.outcome()
    assert not life.power_on_pending
    shut = commands.Power("shutdown") in emitted
    if shut:
        crossed = commands.CrossOffPoweredOff() in emitted
        assert crossed or "the next run powers it on" in (outcome.error or "")
    if status == "off":
        assert not any(isinstance(c, commands.Power) for c in emitted)  # left off, untouched
    if not force:
        assert commands.Power("power_off") not in emitted
    if outcome.created is None:
        assert outcome.deleted == ()
