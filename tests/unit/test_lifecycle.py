"""Every apply rule, as a target's lifecycle takes events and gives commands (lifecycle.py,
settlement.py; docs/promises.md §5, §8): no sandbox, no threads, no clock."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import pytest

from snapshot_policy.core import commands, events
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.lifecycle import (
    Lifecycle,
    Stage,
)
from snapshot_policy.core.model import ActionKind, Hooks, ProviderError, Schedule, StartedSnapshot
from snapshot_policy.core.reconcile import plan_target
from snapshot_policy.core.settlement import (
    settle,
)
from tests.factories import snap, target, utc

NOW = utc(2026, 11, 26, 3, 0, 5)
HISTORY = [snap(utc(2026, 11, 25, 3) - timedelta(days=n), id=f"d{n + 1}") for n in range(3)]
BOTH = Hooks(before=("freeze",), after=("thaw",))
AFTER_ONLY = Hooks(after=("thaw",))
STOP = "SIGTERM"


def lifecycle(hooks=None, **rules):
    """A target keeping the last 2 by default: its plan creates one and deletes d2 and d3."""
    rules = rules or {"keep_last": 2}
    plan = plan_target(replace(target(**rules), hooks=hooks), HISTORY, NOW)
    return Lifecycle(plan, poll_interval=10.0, creation_timeout=60.0)


def failure(status=500, operation="wait for snapshot", code=None):
    return ProviderError("hetzner", operation, status, "boom", code=code)


def of(orders, kind):
    return [c for c in orders if isinstance(c, kind)]


def started(life):
    return StartedSnapshot("1", life.plan.create.snapshot.name, "action-1")


def made(life, at=NOW + timedelta(minutes=1)):
    return replace(snap(at, id="new"), name=life.plan.create.snapshot.name)


def to_making(life):
    """Begin, take the turn (running a before hook if there is one) and be started."""
    assert life.on(events.Begin(NOW, 0.0)) == [commands.Queue()]
    if life.before_owed:
        assert life.on(events.Turn()) == [commands.RunBefore()]
        assert life.on(events.BeforeRan(None)) == [commands.Queue(front=True)]
    create = life.plan.create
    assert life.on(events.Turn()) == [commands.Start(create.snapshot.name, create.reason)]
    assert life.on(events.Started(started(life), sent=1.0)) == [commands.Poll(started(life), 1.0)]
    assert life.stage is Stage.MAKING


# -- create, then delete -------------------------------------------------------------------


def test_lifecycle_deletes_the_planned_snapshots_once_its_snapshot_is_made():
    life = lifecycle()
    to_making(life)
    orders = life.on(events.Made(made(life), NOW + timedelta(minutes=1)))
    assert orders[:3] == [
        commands.CrossOffStart(life.plan.create.snapshot.name),
        commands.Log(logging.INFO, f"{life.label}: created {life.plan.create.snapshot.name} (new)"),
        commands.Record("created", made(life), life.plan.create.reason),
    ]
    assert [c.action.snapshot.id for c in of(orders, commands.Delete)] == ["d2", "d3"]
    assert orders[-1] == commands.Progress("deleting") and life.stage is Stage.DELETING
    d2, d3 = (c.action for c in of(orders, commands.Delete))
    assert of(life.on(events.Deleted(d2)), commands.Finished) == []
    last = life.on(events.Deleted(d3))
    assert last[-3:] == [
        commands.Record("deleted", d3.snapshot, d3.reason),
        commands.CrossOffDeletion("d3"),
        commands.Finished(),
    ]
    outcome = life.outcome()
    assert outcome.ok and outcome.created.id == "new"
    assert [s.id for s in outcome.deleted] == ["d2", "d3"] and life.stage is Stage.DONE


@pytest.mark.parametrize(
    ("event", "crossed_off"),
    [
        (
            events.CreateFailed(failure(422, "start snapshot")),
            True,
        ),  # refused: certainly no snapshot
        (events.CreateFailed(failure(None)), False),  # timed out or lost: one may still appear
        (events.StartCrashed("unexpected error: KeyError: 'id'"), False),
    ],
    ids=["refused", "timed-out", "bug"],
)
def test_lifecycle_a_failed_create_deletes_nothing(event, crossed_off):
    life = lifecycle(hooks=AFTER_ONLY)
    to_making(life)
    orders = life.on(event)
    assert of(orders, commands.Delete) == [] and life.deletions_left == 0
    assert bool(of(orders, commands.CrossOffStart)) is crossed_off
    assert of(orders, commands.RunAfter) == [
        commands.RunAfter("failure", life.plan.create.snapshot.name)
    ]
    assert life.on(events.AfterRan(None)) == [commands.CrossOffAfter(), commands.Finished()]
    assert not life.outcome().ok and life.outcome().deleted == ()


def test_lifecycle_deletes_only_what_retention_still_deletes_with_the_new_snapshot():
    # Planned a minute before midnight; made after it: "today" is now its day's newest, kept.
    late = utc(2026, 11, 26, 23, 59)
    observed = [
        snap(utc(2026, 11, 26, 10), id="today"),
        snap(utc(2026, 11, 25, 10), id="yesterday"),
    ]
    life = Lifecycle(plan_target(target(keep_daily=2), observed, late), 10.0, 60.0)
    assert [a.snapshot.id for a in life.plan.of_kind(ActionKind.DELETE)] == ["today"]
    to_making(life)
    after_midnight = late + timedelta(minutes=5)
    orders = life.on(events.Made(made(life, after_midnight), after_midnight))
    assert of(orders, commands.Delete) == []
    assert any(
        "keeping" in c.message and "after all" in c.message for c in of(orders, commands.Log)
    )
    assert orders[-1] == commands.Finished() and life.outcome().ok


def test_lifecycle_with_nothing_due_deletes_at_once():
    daily = target(keep_last=1, schedule=Schedule(every=Duration(days=1)))
    plan = plan_target(daily, [snap(NOW - timedelta(hours=n), id=f"h{n}") for n in (1, 2, 3)], NOW)
    assert plan.create is None
    life = Lifecycle(plan, 10.0, 60.0)
    orders = life.on(events.Begin(NOW, 0.0))
    assert orders[0].message.endswith(f"no snapshot: {plan.schedule_note}")
    assert [c.action.snapshot.id for c in of(orders, commands.Delete)] == [
        a.snapshot.id for a in plan.of_kind(ActionKind.DELETE)
    ]


@pytest.mark.parametrize(
    ("failed", "crossed_off"),
    [
        (
            lambda action: events.DeleteFailed(action, failure(404, "delete snapshot")),
            True,
        ),  # still there
        (
            lambda action: events.DeleteFailed(action, failure(None, "delete snapshot")),
            False,
        ),  # may be gone
        (lambda action: events.DeleteCrashed("unexpected error: boom"), False),
    ],
    ids=["refused", "lost-reply", "bug"],
)
def test_lifecycle_a_failed_deletion_fails_the_target_and_stays_journalled_unless_refused(
    failed, crossed_off
):
    life = lifecycle()
    to_making(life)
    d2, d3 = (c.action for c in of(life.on(events.Made(made(life), NOW)), commands.Delete))
    life.on(events.Deleted(d2))
    orders = life.on(failed(d3))
    assert (
        of(orders, commands.CrossOffDeletion) == [commands.CrossOffDeletion("d3")]
    ) is crossed_off  # else the next run checks
    assert orders[-1] == commands.Finished()
    assert not life.outcome().ok and [s.id for s in life.outcome().deleted] == ["d2"]


# -- busy servers --------------------------------------------------------------------------


def test_lifecycle_a_server_making_a_snapshot_gets_no_second_one():
    life = lifecycle(hooks=AFTER_ONLY)
    orders = life.on(events.Begin(NOW, 0.0, busy="snapshot"))
    assert (
        of(orders, commands.Start) == of(orders, commands.RunAfter) == []
        and orders[-1] == commands.Finished()
    )
    assert "already has a snapshot in progress" in life.outcome().error


def test_lifecycle_a_start_refused_as_busy_with_a_snapshot_fails_and_runs_after():
    life = lifecycle(hooks=AFTER_ONLY)
    life.on(events.Begin(NOW, 0.0))
    life.on(events.Turn())
    name = life.plan.create.snapshot.name
    assert life.on(events.Refused(failure(423, "start snapshot", "locked"), at=5.0)) == [
        commands.CrossOffStart(name),
        commands.CheckBusy(),
    ]
    orders = life.on(events.BusyListed("snapshot", at=5.0))
    assert orders == [commands.RunAfter("failure", name)] and of(orders, commands.Start) == []


def test_lifecycle_a_server_busy_with_another_action_is_asked_again_doubling_until_the_timeout():
    life = lifecycle()
    assert of(life.on(events.Begin(NOW, 100.0, busy="rebuild")), commands.AskAgain) == [
        commands.AskAgain(101.0)
    ]
    assert life.stage is Stage.BUSY
    assert life.on(events.WaitOver()) == [commands.Queue()]
    life.on(events.Turn())
    refusal = failure(423, "start snapshot", "locked")
    assert life.on(events.Refused(refusal, at=102.0))[-1] == commands.CheckBusy()
    assert of(life.on(events.BusyListed("rebuild", at=102.0)), commands.AskAgain) == [
        commands.AskAgain(104.0)
    ]
    for _ in range(4):
        life.on(events.WaitOver())
        life.on(events.Turn())
        life.on(events.Refused(refusal, at=110.0))
        waits = of(life.on(events.BusyListed("an action", at=110.0)), commands.AskAgain)
    assert waits == [commands.AskAgain(120.0)]  # capped at poll_interval
    life.on(events.WaitOver())
    life.on(events.Turn())
    life.on(events.Refused(refusal, at=161.0))
    assert (
        life.on(events.BusyListed("rebuild", at=161.0))[-1] == commands.Finished()
    )  # busy > 60 s since 100
    assert life.outcome().error == f"{refusal} (still busy after 60s)"


# -- hooks ---------------------------------------------------------------------------------


def test_lifecycle_a_failed_before_hook_starts_nothing_and_deletes_nothing():
    life = lifecycle(hooks=BOTH)
    life.on(events.Begin(NOW, 0.0))
    assert life.on(events.Turn()) == [commands.RunBefore()] and life.stage is Stage.BEFORE
    orders = life.on(events.BeforeRan("before hook exited with status 1"))
    assert of(orders, commands.Start) == of(orders, commands.Delete) == []
    assert orders[-1] == commands.RunAfter(
        "failure", life.plan.create.snapshot.name
    )  # it may have frozen half
    assert life.on(events.AfterRan(None)) == [commands.CrossOffAfter(), commands.Finished()]
    assert life.outcome().error == "before hook exited with status 1"


@pytest.mark.parametrize("hooks", [BOTH, AFTER_ONLY], ids=["before-and-after", "after-only"])
def test_lifecycle_runs_after_once_the_snapshot_is_confirmed_and_finishes_after_it(hooks):
    life = lifecycle(hooks=hooks)
    to_making(life)
    orders = life.on(events.Made(made(life), NOW))
    assert of(orders, commands.RunAfter) == [
        commands.RunAfter("success", life.plan.create.snapshot.name)
    ]
    assert orders.index(of(orders, commands.RunAfter)[0]) < orders.index(
        of(orders, commands.Delete)[0]
    )
    for delete in of(orders, commands.Delete):
        assert (
            of(life.on(events.Deleted(delete.action)), commands.Finished) == []
        )  # its after hook still runs
    assert life.on(events.AfterRan(None)) == [commands.CrossOffAfter(), commands.Finished()]
    assert life.outcome().ok


def test_lifecycle_a_failed_after_hook_fails_the_target_but_undoes_nothing():
    life = lifecycle(hooks=AFTER_ONLY, keep_last=5)
    to_making(life)
    life.on(events.Made(made(life), NOW))
    orders = life.on(events.AfterRan("after hook exited with status 2"))
    assert orders == [
        commands.CrossOffAfter(),
        commands.Log(logging.ERROR, f"{life.label}: after hook exited with status 2"),
        commands.Finished(),
    ]
    assert not life.outcome().ok and life.outcome().created.id == "new"


def test_lifecycle_runs_first_the_after_hook_an_interrupted_run_owes():
    life = lifecycle(hooks=BOTH)
    orders = life.on(events.AfterOwed("web-old", NOW - timedelta(hours=1)))
    assert orders[-1] == commands.RunAfter("failure", "web-old")
    assert life.on(events.Begin(NOW, 0.0)) == [] and life.stage is Stage.OWED_AFTER  # held
    assert life.on(events.AfterRan(None)) == [commands.CrossOffAfter(), commands.Queue()]


@pytest.mark.parametrize(
    ("problem", "stopped", "error"),
    [
        (
            "after hook exited with status 1",
            "",
            "the after hook an interrupted run owed did not succeed",
        ),
        (None, STOP, "SIGTERM stopped the run before its snapshot was started"),
    ],
)
def test_lifecycle_an_owed_after_hook_that_fails_or_is_stopped_starts_nothing(
    problem, stopped, error
):
    life = lifecycle(hooks=BOTH)
    life.on(events.AfterOwed("web-old", NOW))
    life.on(events.Begin(NOW, 0.0))
    orders = life.on(events.AfterRan(problem, stopped))
    assert of(orders, commands.Queue) == [] and orders[-1] == commands.Finished()
    assert error in life.outcome().error


def test_lifecycle_an_owed_after_hook_no_longer_configured_fails_the_target():
    life = lifecycle()
    orders = life.on(events.AfterOwed("web-old", NOW))
    assert orders[0] == commands.CrossOffAfter() and orders[-1] == commands.Finished()
    assert life.on(events.Begin(NOW, 0.0)) == []
    assert "no longer configured: check the server by hand" in life.outcome().error


# -- a stop --------------------------------------------------------------------------------


def test_lifecycle_a_stop_starts_nothing_more_but_runs_the_after_hook_owed():
    life = lifecycle(hooks=BOTH)
    life.on(events.Begin(NOW, 0.0))
    life.on(events.Turn())
    life.on(events.BeforeRan(None))  # frozen, queued to start
    orders = life.on(events.Signal(STOP))
    assert orders[0] == commands.RunAfter("failure", life.plan.create.snapshot.name)
    assert of(orders, commands.Start) == of(orders, commands.Delete) == []
    assert life.on(events.AfterRan(None, STOP))[-1] == commands.Finished()
    assert life.outcome().error == "SIGTERM stopped the run before its snapshot was started"


def test_lifecycle_a_stop_during_the_before_hook_starts_nothing():
    life = lifecycle(hooks=BOTH)
    life.on(events.Begin(NOW, 0.0))
    life.on(events.Turn())
    assert life.on(events.Signal(STOP)) == []
    assert (
        of(life.on(events.BeforeRan(None, stopped=STOP)), commands.RunAfter) != []
    )  # it ran: thaw
    other = lifecycle(hooks=BOTH)
    other.on(events.Begin(NOW, 0.0))
    other.on(events.Turn())
    assert (
        other.on(events.BeforeRan(None, ran=False, stopped=STOP))[-1] == commands.Finished()
    )  # never ran: no after
    assert (
        other.outcome().error == "SIGTERM stopped the run before its before hook ran; no snapshot"
    )


def test_lifecycle_a_stop_while_made_leaves_the_snapshot_to_the_next_run():
    life = lifecycle(hooks=AFTER_ONLY)
    to_making(life)
    orders = life.on(events.Signal(STOP))
    assert (
        of(orders, commands.CrossOffStart) == of(orders, commands.Delete) == []
    )  # the journal keeps the start
    assert of(orders, commands.RunAfter) == [
        commands.RunAfter("failure", life.plan.create.snapshot.name)
    ]
    assert "the next run adopts it" in life.outcome().error


def test_lifecycle_a_start_accepted_or_refused_after_a_stop_goes_no_further():
    accepted, refused = lifecycle(), lifecycle()
    for life in (accepted, refused):
        life.on(events.Begin(NOW, 0.0))
        life.on(events.Turn())
        life.on(events.Signal(STOP))
    assert of(accepted.on(events.Started(started(accepted), 1.0)), commands.Poll) == []
    assert "the next run adopts it" in accepted.outcome().error
    orders = refused.on(events.Refused(failure(423, "start snapshot", "locked"), at=1.0))
    assert of(orders, commands.CheckBusy) == [] and orders[-1] == commands.Finished()


def test_lifecycle_a_stop_gives_up_the_deletions_not_sent_and_waits_for_those_sent():
    life = lifecycle(keep_last=1)
    to_making(life)
    deletes = of(life.on(events.Made(made(life), NOW)), commands.Delete)
    assert len(deletes) == 3
    assert life.on(events.Signal(STOP, unsent=2)) == []  # one was sent: its reply still comes
    assert life.on(events.Deleted(deletes[0].action))[-1] == commands.Finished()
    assert life.outcome().error == "SIGTERM stopped the run before 2 deletion(s)"


def test_lifecycle_an_after_hook_killed_at_the_stop_runs_again_once():
    life = lifecycle(hooks=AFTER_ONLY)
    to_making(life)
    life.on(events.Made(made(life), NOW))  # its after hook runs
    life.on(events.Signal(STOP))
    again = life.on(events.AfterRan("after hook killed by signal 15", STOP))
    assert again[-1] == commands.RunAfter("success", life.plan.create.snapshot.name)
    assert (
        life.on(events.AfterRan("after hook killed by signal 15", STOP))[0]
        == commands.CrossOffAfter()
    )


def test_lifecycle_abandon_fails_what_is_unfinished_only():
    done, busy = lifecycle(keep_last=5), lifecycle()
    to_making(done)
    assert done.on(events.Made(made(done), NOW))[-1] == commands.Finished()
    to_making(busy)
    assert done.on(events.Abandon("unexpected error: boom")) == []
    assert busy.on(events.Abandon("unexpected error: boom")) == [commands.Finished()]
    assert done.outcome().ok and busy.outcome().error == "unexpected error: boom"


# -- what a killed run left ----------------------------------------------------------------


def listed(**flags):
    return snap(utc(2026, 11, 25, 3), id="s1", **flags)


def test_settle_marks_and_adopts_a_listed_start_without_a_marker():
    snapshot = listed(unmarked=True)
    plan = plan_target(target(keep_last=9), [snapshot], NOW)
    assert settle(plan, [snapshot.name], [], {}, NOW) == [
        commands.Mark(snapshot),
        commands.Log(
            logging.INFO, f"web: marked {snapshot.name} (s1), started by an interrupted run"
        ),
        commands.Record("adopted", snapshot, snapshot.ownership, once=True),
        commands.CrossOffStart(snapshot.name),
    ]


def test_settle_audits_a_listed_start_already_marked_as_created():
    snapshot = listed()
    plan = plan_target(target(keep_last=9), [snapshot], NOW)
    assert settle(plan, [snapshot.name], [], {}, NOW) == [
        commands.Record(
            "created", snapshot, "made by an earlier run that could not see it finish", once=True
        ),
        commands.CrossOffStart(snapshot.name),
    ]


def test_settle_leaves_open_a_start_not_listed_yet():
    plan = plan_target(target(keep_last=9), [listed()], NOW)
    assert settle(plan, ["web-20261126030000"], [], {}, NOW) == []


def test_settle_crosses_off_a_start_dated_by_a_clock_that_ran_ahead():
    plan = plan_target(target(keep_last=9), [], NOW)
    ahead = NOW + timedelta(days=400)
    orders = settle(plan, ["web-future"], [("web-future", ahead)], {}, NOW)
    assert orders[-1] == commands.CrossOffStart("web-future")
    assert orders[0].level == logging.WARNING and ahead.isoformat() in orders[0].message


def test_settle_audits_a_journalled_deletion_whose_snapshot_is_gone():
    plan = plan_target(target(keep_last=9), [listed()], NOW)
    orders = settle(plan, [], [], {"gone": ("web-old", "no retention rule keeps it")}, NOW)
    record = of(orders, commands.Record)[0]
    assert (record.event, record.snapshot.id, record.once) == ("deleted", "gone", True)
    assert record.reason == "no retention rule keeps it (deleted by an interrupted run)"
    assert orders[-1] == commands.CrossOffDeletion("gone")


def test_settle_only_crosses_off_a_journalled_deletion_whose_snapshot_is_still_there():
    plan = plan_target(target(keep_last=9), [listed()], NOW)
    assert settle(plan, [], [], {"s1": ("web-old", "reason")}, NOW) == [
        commands.CrossOffDeletion("s1")
    ]


def test_lifecycle_a_mark_that_fails_fails_the_target_before_it_begins():
    life = lifecycle()
    orders = life.on(events.MarkFailed(failure(503, "mark snapshot")))
    assert orders[-1] == commands.Finished()
    assert life.on(events.Begin(NOW, 0.0)) == []  # nothing created or deleted for it


def test_lifecycle_a_target_that_failed_to_mark_finishes_once_whatever_fails_after():
    life = lifecycle()
    assert life.on(events.MarkFailed(failure(503, "mark snapshot")))[-1] == commands.Finished()
    owed = life.on(events.AfterOwed("web-old", NOW))  # owed, but no longer configured
    assert of(owed, commands.Finished) == [] and "check the server by hand" in life.outcome().error
