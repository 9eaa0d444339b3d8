"""Copies in other regions (core/copies.py, and the rules reconcile and the lifecycle take from
it; docs/promises.md §5.15): which regions a snapshot lacks, when deletions are held, and a
target's way through COPYING. No sandbox, no threads, no clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from snapshot_policy.core import commands, copies, events, status
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.lifecycle import Lifecycle, Stage
from snapshot_policy.core.model import (
    ActionKind,
    CloudSnapshot,
    ProviderError,
    Schedule,
    StartedSnapshot,
)
from snapshot_policy.core.reconcile import plan_target, standing_deletions
from tests.factories import snap, target, utc

NOW = utc(2026, 11, 26, 3, 0, 5)
SOON = utc(2026, 11, 25, 9)  # six hours after the newest: a daily snapshot is not due
DAILY = Schedule(every=Duration.parse("24h"))
STOP = "SIGTERM"


def web(**rules):
    rules = rules or {"keep_last": 2}
    return replace(target(**rules), provider="digitalocean", copies=("ams3", "fra1"))


def listed(snapshot, regions=("nyc3",), pending=()):
    """`snapshot` as the DigitalOcean listing shows it: in `regions`, transfers to `pending`."""
    cloud = CloudSnapshot(
        snapshot.id,
        snapshot.name,
        snapshot.created,
        snapshot.server_id,
        regions=tuple(regions),
        pending_regions=tuple(pending),
    )
    return replace(snapshot, cloud=cloud)


def history(newest_regions=("nyc3",), pending=()):
    """Three daily snapshots; the newest (d1) in `newest_regions`, the others everywhere."""
    everywhere = ("nyc3", "ams3", "fra1")
    return [
        listed(
            snap(utc(2026, 11, 25, 3) - timedelta(days=n), id=f"d{n + 1}"),
            newest_regions if n == 0 else everywhere,
            pending if n == 0 else (),
        )
        for n in range(3)
    ]


# -- the pure rules ------------------------------------------------------------------------


def test_missing_lists_the_policys_regions_the_snapshot_is_not_in_in_the_policys_order():
    s = listed(snap(NOW), ("nyc3", "fra1"), pending=("ams3",))
    assert copies.missing(web(), s) == ("ams3",)  # a running transfer is no copy yet
    assert copies.to_transfer(web(), s) == ()  # but nothing is started twice
    assert copies.missing(web(), listed(snap(NOW), ("nyc3",))) == ("ams3", "fra1")
    assert copies.to_transfer(web(), listed(snap(NOW), ("nyc3",), ("fra1",))) == ("ams3",)


def test_the_region_a_snapshot_is_made_in_counts_as_a_copy():
    s = listed(snap(NOW), ("ams3",))
    assert copies.missing(web(), s) == ("fra1",)


def test_held_says_why_and_names_the_running_transfers():
    t = web()
    assert copies.held(t, history()) == "held: the newest snapshot has no copy in ams3, fra1 yet"
    assert copies.held(t, history(pending=("fra1",))) == (
        "held: the newest snapshot has no copy in ams3, fra1 yet (a transfer to fra1 is running)"
    )
    assert copies.held(t, history(("nyc3", "ams3", "fra1"))) is None
    assert copies.held(replace(t, copies=()), history()) is None  # no copies: nothing held


def test_only_the_newest_finished_managed_snapshot_decides():
    t = web()
    snapshots = history(("nyc3", "ams3", "fra1"))
    creating = listed(snap(NOW, id="c", creating=True), ("nyc3",))
    foreign = listed(snap(NOW, id="f", managed=False), ("nyc3",))
    assert copies.held(t, [*snapshots, creating, foreign]) is None
    assert copies.newest(t, [*snapshots, creating, foreign]).id == "d1"


def test_describe_shows_where_it_is_and_what_it_lacks():
    s = listed(snap(NOW), ("nyc3", "ams3"), pending=("fra1",))
    assert copies.describe(web(), s) == "in nyc3, ams3; missing copies: fra1 (transfer running)"
    assert copies.describe(web(), listed(snap(NOW), ("nyc3", "ams3", "fra1"))) == (
        "in nyc3, ams3, fra1"
    )


def test_status_counts_a_missing_copy_only_when_no_transfer_makes_it():
    assert copies.status_problem(web(), listed(snap(NOW), ("nyc3",), ("ams3", "fra1"))) is None
    problem = copies.status_problem(web(), listed(snap(NOW), ("nyc3", "ams3")))
    assert problem.startswith("the newest snapshot has no copy in fra1 and no transfer is running")


# -- reconcile: deletions wait -------------------------------------------------------------


def test_a_plan_with_nothing_due_holds_its_deletions_while_the_newest_lacks_a_copy():
    plan = plan_target(replace(web(), schedule=DAILY), history(), SOON)
    assert plan.create is None and plan.of_kind(ActionKind.DELETE) == ()
    (held,) = [a for a in plan.of_kind(ActionKind.SKIP) if a.snapshot.id == "d3"]
    assert held.reason == "held: the newest snapshot has no copy in ams3, fra1 yet"
    assert plan.refusal is None and plan.withheld is None  # held is not failed
    assert copies.transfers_due(plan) == (plan.actions[0].snapshot, ("ams3", "fra1"))


def test_a_held_plan_is_not_refused_by_max_deletions():
    plan = plan_target(replace(web(keep_last=1), schedule=DAILY, safety=_one()), history(), SOON)
    assert plan.refusal is None and plan.of_kind(ActionKind.DELETE) == ()


def _one():
    return replace(target().safety, max_deletions=1)


def test_a_plan_whose_newest_has_every_copy_deletes_as_ever():
    plan = plan_target(replace(web(), schedule=DAILY), history(("nyc3", "ams3", "fra1")), SOON)
    assert [a.snapshot.id for a in plan.of_kind(ActionKind.DELETE)] == ["d3"]
    assert copies.transfers_due(plan) is None and plan.create is None


def test_a_plan_that_creates_keeps_its_deletions_for_after_the_copies():
    plan = plan_target(web(), history(), NOW)
    assert plan.create is not None
    assert [a.snapshot.id for a in plan.of_kind(ActionKind.DELETE)] == ["d2", "d3"]
    assert copies.transfers_due(plan) is None  # the new one is copied instead


def test_running_transfers_are_not_started_again():
    plan = plan_target(replace(web(), schedule=DAILY), history(pending=("ams3", "fra1")), SOON)
    assert copies.transfers_due(plan) is None
    assert plan.of_kind(ActionKind.DELETE) == ()


# -- the lifecycle: Made, COPYING, then the deletions ---------------------------------------


def lifecycle(t=None, snapshots=None, now=NOW):
    plan = plan_target(t or web(), snapshots or history(), now)
    return Lifecycle(plan, poll_interval=10.0, creation_timeout=60.0)


def made_and_copying(life):
    assert life.on(events.Begin(NOW, 0.0)) == [commands.Queue()]
    create = life.plan.create
    assert life.on(events.Turn()) == [commands.Start(create.snapshot.name, create.reason)]
    started = StartedSnapshot("1", create.snapshot.name, "action-1")
    life.on(events.Started(started, sent=1.0))
    new = listed(replace(snap(NOW + timedelta(minutes=1), id="new"), name=create.snapshot.name))
    orders = life.on(events.Made(new, NOW + timedelta(minutes=1)))
    return new, orders


def of(orders, kind):
    return [c for c in orders if isinstance(c, kind)]


def test_a_made_snapshot_is_copied_before_any_deletion():
    life = lifecycle()
    new, orders = made_and_copying(life)
    assert of(orders, commands.Delete) == []
    assert of(orders, commands.Transfer) == [
        commands.Transfer(new, "ams3"),
        commands.Transfer(new, "fra1"),
    ]
    assert life.stage is Stage.COPYING and orders[-1] == commands.Progress("copying")
    assert of(life.on(events.Copied("ams3", NOW)), commands.Delete) == []  # one still missing
    last = life.on(events.Copied("fra1", NOW + timedelta(minutes=2)))
    assert [c.action.snapshot.id for c in of(last, commands.Delete)] == ["d2", "d3"]
    assert life.stage is Stage.DELETING
    for delete in of(last, commands.Delete):
        life.on(events.Deleted(delete.action))
    outcome = life.outcome()
    assert outcome.ok and outcome.copied_to == ("ams3", "fra1")
    assert [s.id for s in outcome.deleted] == ["d2", "d3"]


def test_a_failed_transfer_fails_the_target_and_deletes_nothing():
    life = lifecycle()
    made_and_copying(life)
    error = ProviderError("digitalocean", "wait for transfer", None, "ended errored")
    orders = life.on(events.CopyFailed("ams3", error, NOW))
    assert of(orders, commands.Finished) == []  # fra1 still has its say
    orders = life.on(events.Copied("fra1", NOW))
    assert of(orders, commands.Delete) == [] and of(orders, commands.Finished)
    outcome = life.outcome()
    assert not outcome.ok and outcome.deleted == () and outcome.copied_to == ("fra1",)
    assert "copy to ams3 failed, nothing deleted" in outcome.error


def test_a_stop_while_copying_deletes_nothing_and_leaves_the_copies_to_the_next_run():
    life = lifecycle()
    made_and_copying(life)
    orders = life.on(events.Signal(STOP))
    assert of(orders, commands.Delete) == [] and of(orders, commands.Finished)
    assert "SIGTERM stopped the run while" in life.outcome().error
    assert of(life.on(events.Copied("ams3", NOW)), commands.Delete) == []  # a late reply


def test_a_target_with_nothing_due_starts_the_missing_transfers_and_deletes_nothing():
    life = lifecycle(replace(web(), schedule=DAILY), now=SOON)
    orders = life.on(events.Begin(SOON, 0.0))
    newest = life.plan.actions[0].snapshot
    assert of(orders, commands.Transfer) == [
        commands.Transfer(newest, "ams3"),
        commands.Transfer(newest, "fra1"),
    ]
    life.on(events.Copied("ams3", NOW))
    orders = life.on(events.Copied("fra1", NOW))
    assert of(orders, commands.Delete) == [] and of(orders, commands.Finished)
    assert life.outcome().ok and life.outcome().copied_to == ("ams3", "fra1")


def test_a_target_without_copies_goes_from_made_to_its_deletions_as_ever():
    life = lifecycle(replace(web(), copies=()))
    _, orders = made_and_copying(life)
    assert of(orders, commands.Transfer) == [] and len(of(orders, commands.Delete)) == 2


def test_standing_deletions_after_the_copies_ignore_the_hold():
    plan = plan_target(web(), history(), NOW)
    new = listed(
        replace(snap(NOW + timedelta(minutes=1), id="new"), name=plan.create.snapshot.name)
    )
    assert [a.snapshot.id for a in standing_deletions(plan, new, NOW)] == ["d2", "d3"]


def test_a_status_after_apply_counts_the_copies_made():
    life = lifecycle()
    new, _ = made_and_copying(life)
    life.on(events.Copied("ams3", NOW))
    for delete in of(life.on(events.Copied("fra1", NOW)), commands.Delete):
        life.on(events.Deleted(delete.action))
    seen, _ = status.after_apply([(web(), history())], {"main": 3}, [life.outcome()])
    ((_, snapshots),) = seen
    newest = copies.newest(web(), snapshots)
    assert newest.id == "new" and copies.missing(web(), newest) == ()
    assert status.target_status(web(), snapshots, NOW + timedelta(minutes=5)).problems == ()
