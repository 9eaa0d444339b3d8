"""Every rule of a restore drill's way, as its lifecycle takes events and gives commands
(drill_lifecycle.py; docs/promises.md §5, invariant 14): no sandbox, no threads, no clock.

The property at the end walks every sequence of events up to a length: whatever happens, a
drill that may have made a server ends in Delete (or Find, after a lost reply), the journal
entry is crossed off only after a confirmed deletion or a certain refusal, and the snapshot
is marked only with a verdict on it."""

from __future__ import annotations

import itertools
import logging
from dataclasses import replace
from datetime import timedelta

import pytest

from snapshot_policy.core import drill_lifecycle as d
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import (
    Drill,
    DrillPlan,
    MachineType,
    MadeServer,
    ProviderError,
    ServerRequest,
)
from tests.factories import snap, target, utc

NOW = utc(2026, 12, 7, 3, 0, 0)
SNAPSHOT = snap(NOW - timedelta(hours=3), id="img-9")
REQUEST = ServerRequest("drill-web-1-20261207030000", "img-9", "cx22", "fsn1")
BOOTING = MadeServer("77", REQUEST.name, "starting", "fsn1")
RUNNING = replace(BOOTING, status="running", private_ip="10.0.0.2")


def lifecycle(probe: bool = True, boot_timeout: float = 60.0) -> d.DrillLifecycle:
    drilled = replace(
        target(), drill=Drill(Duration.parse("7d"), probe=("true",) if probe else None)
    )
    plan = DrillPlan(
        drilled,
        True,
        "due",
        SNAPSHOT,
        MachineType("cx22", 40, ("fsn1",), 0.006, "EUR"),
        "fsn1",
        REQUEST.name,
    )
    return d.DrillLifecycle(plan, REQUEST, probe, boot_timeout)


def of(orders, kind):
    return [c for c in orders if isinstance(c, kind)]


def kinds(orders):
    """The commands but the log and progress lines, by type."""
    return [type(c) for c in orders if not isinstance(c, (d.Log, d.Progress))]


def refused(status=422):
    return ProviderError("hetzner", "create server", status, "invalid server type")


def to_booting(life):
    orders = life.on(d.Turn(NOW, 10.0))
    assert kinds(orders) == [d.Journal, d.Create]  # written down before it is asked for
    assert orders.index(d.Journal(REQUEST)) < orders.index(d.Create(REQUEST))
    orders = life.on(d.Created(BOOTING, 10.5))
    assert kinds(orders) == [d.JournalServer, d.Record, d.Boot]
    assert life.stage is d.DrillStage.BOOTING


# -- the whole way -------------------------------------------------------------------------


def test_a_drill_that_passes_creates_boots_probes_deletes_marks_and_records():
    life = lifecycle()
    to_booting(life)
    orders = life.on(d.Running(RUNNING, 52.0))
    assert of(orders, d.Probe) == [d.Probe(RUNNING)] and life.stage is d.DrillStage.PROBING
    assert life.restore_seconds == 42.0
    orders = life.on(d.ProbeRan(None))
    assert kinds(orders) == [d.Delete] and of(orders, d.Delete) == [d.Delete(RUNNING)]
    orders = life.on(d.Deleted())
    assert kinds(orders) == [d.Record, d.CrossOff, d.Mark]
    assert of(orders, d.Mark) == [d.Mark(True)]
    assert of(orders, d.Record)[0].event == "drill server deleted"
    orders = life.on(d.Marked())
    assert kinds(orders) == [d.Record, d.Finished]
    assert of(orders, d.Record)[0] == d.Record("drill passed", "restored to cx22 in fsn1 in 42s")
    assert life.stage is d.DrillStage.DONE
    result = life.result(NOW + timedelta(minutes=1))
    assert (result.passed, result.stage, result.deleted, result.error) == (True, "done", True, None)
    assert (result.server_id, result.server_name, result.restore_seconds) == (
        "77",
        REQUEST.name,
        42,
    )
    assert result.started == NOW and life.recorded


def test_a_drill_without_a_probe_passes_once_its_server_runs():
    life = lifecycle(probe=False)
    to_booting(life)
    assert kinds(life.on(d.Running(RUNNING, 20.0))) == [d.Delete]
    assert life.verdict is True and life.reached == "done"


def test_a_server_running_at_once_goes_straight_to_its_probe():
    life = lifecycle()
    life.on(d.Turn(NOW, 0.0))
    assert kinds(life.on(d.Created(RUNNING, 3.0))) == [d.JournalServer, d.Record, d.Probe]


# -- failures ------------------------------------------------------------------------------


def test_a_refused_create_crosses_off_marks_nothing_and_deletes_nothing():
    life = lifecycle()
    life.on(d.Turn(NOW, 0.0))
    orders = life.on(d.CreateFailed(refused()))
    assert kinds(orders) == [d.CrossOff, d.Finished]
    result = life.result(NOW)
    assert not result.passed and result.stage == "create" and result.deleted
    assert "the cloud refused the drill server" in result.error
    assert life.recorded  # a drill that could not run is a failed drill for the run state


def test_a_journal_that_cannot_be_written_sends_no_create():
    life = lifecycle()
    life.on(d.Turn(NOW, 0.0))
    orders = life.on(d.JournalFailed("disk full"))
    assert kinds(orders) == [d.Finished] and life.deleted
    assert "journal could not be written" in life.result(NOW).error


@pytest.mark.parametrize("status", [None, 500, 503])
def test_an_uncertain_create_is_looked_for_by_name_and_deleted(status):
    life = lifecycle()
    life.on(d.Turn(NOW, 0.0))
    error = ProviderError("hetzner", "create server", status, "gone away")
    orders = life.on(d.CreateFailed(error))
    assert kinds(orders) == [d.Find] and of(orders, d.Find) == [d.Find(REQUEST.name)]
    orders = life.on(d.Found(BOOTING))
    assert kinds(orders) == [d.JournalServer, d.Delete]
    orders = life.on(d.Deleted())
    assert kinds(orders) == [d.Record, d.CrossOff, d.Finished]  # no verdict: no mark
    result = life.result(NOW)
    assert not result.passed and result.deleted and result.stage == "create"


def test_a_lost_create_not_listed_stays_in_the_journal_for_the_next_run():
    life = lifecycle()
    life.on(d.Turn(NOW, 0.0))
    life.on(d.CreateLost("no response"))
    orders = life.on(d.NotFound())
    assert kinds(orders) == [d.Finished]  # no CrossOff
    result = life.result(NOW)
    assert not result.deleted and "the next run looks for it again" in result.error


@pytest.mark.parametrize(
    "event, words",
    [
        (d.BootFailed("the create action failed"), "did not boot: the create action failed"),
        (d.BootTimeout(), "not running 60s after the create"),
    ],
)
def test_a_server_that_does_not_boot_is_deleted_and_the_snapshot_marked_failed(event, words):
    life = lifecycle()
    to_booting(life)
    orders = life.on(event)
    assert kinds(orders) == [d.Delete] and of(orders, d.Delete) == [d.Delete(BOOTING)]
    assert of(orders, d.Log)[0].level == logging.ERROR
    assert of(life.on(d.Deleted()), d.Mark) == [d.Mark(False)]
    orders = life.on(d.Marked())
    assert of(orders, d.Record)[0].event == "drill failed"
    result = life.result(NOW)
    assert (result.passed, result.stage, result.deleted) == (False, "boot", True)
    assert words in result.error and result.restore_seconds is None


def test_a_server_created_failed_is_deleted_at_once():
    life = lifecycle()
    life.on(d.Turn(NOW, 0.0))
    orders = life.on(d.Created(replace(BOOTING, status="failed"), 1.0))
    assert kinds(orders) == [d.JournalServer, d.Record, d.Delete]
    assert life.verdict is False


def test_a_failed_probe_deletes_the_server_and_marks_the_snapshot_failed():
    life = lifecycle()
    to_booting(life)
    life.on(d.Running(RUNNING, 30.0))
    assert kinds(life.on(d.ProbeRan("probe failed (exit status 3)"))) == [d.Delete]
    assert of(life.on(d.Deleted()), d.Mark) == [d.Mark(False)]
    life.on(d.Marked())
    result = life.result(NOW)
    assert (result.passed, result.stage) == (False, "probe")
    assert result.error == "the probe failed: probe failed (exit status 3)"
    assert result.restore_seconds == 20.0  # it did restore: how long that took is known


def test_a_failed_delete_keeps_the_journal_entry_and_still_marks_the_verdict():
    life = lifecycle(probe=False)
    to_booting(life)
    life.on(d.Running(RUNNING, 30.0))
    orders = life.on(d.DeleteFailed("HTTP 500"))
    assert kinds(orders) == [d.Mark]  # no CrossOff: the next run deletes it
    orders = life.on(d.Marked())
    assert of(orders, d.Record) == [d.Record("drill passed", "restored to cx22 in fsn1 in 20s")]
    result = life.result(NOW)
    assert result.passed and not result.deleted
    assert "could not delete its server" in result.error and "the next run deletes it" in (
        result.error
    )


def test_a_mark_that_fails_is_reported_and_changes_no_verdict():
    life = lifecycle(probe=False)
    to_booting(life)
    life.on(d.Running(RUNNING, 30.0))
    life.on(d.Deleted())
    assert kinds(life.on(d.MarkFailed("HTTP 503"))) == [d.Record, d.Finished]
    result = life.result(NOW)
    assert result.passed and "could not record the result" in result.error


# -- stopping ------------------------------------------------------------------------------


def test_a_stop_before_the_drill_began_sends_nothing_and_records_nothing():
    life = lifecycle()
    orders = life.on(d.Signal("SIGTERM"))
    assert kinds(orders) == [d.Finished] and life.stage is d.DrillStage.DONE
    assert life.on(d.Turn(NOW, 0.0)) == []
    assert not life.recorded and life.result(NOW).deleted


def test_a_stop_while_booting_deletes_the_server_at_once_and_marks_nothing():
    life = lifecycle()
    to_booting(life)
    orders = life.on(d.Signal("SIGTERM"))
    assert kinds(orders) == [d.Delete]
    assert life.on(d.Running(RUNNING, 30.0)) == []  # too late: it is being deleted
    assert kinds(life.on(d.Deleted())) == [d.Record, d.CrossOff, d.Finished]
    result = life.result(NOW)
    assert not result.passed and result.deleted and not life.recorded
    assert "SIGTERM stopped the run during the drill (boot)" in result.error


def test_a_stop_while_creating_deletes_the_server_once_the_create_answers():
    life = lifecycle()
    life.on(d.Turn(NOW, 0.0))
    assert life.on(d.Signal("SIGINT")) == []
    assert kinds(life.on(d.Created(BOOTING, 1.0))) == [d.JournalServer, d.Record, d.Delete]


def test_a_stop_while_probing_deletes_the_server_once_the_killed_probe_answers():
    life = lifecycle()
    to_booting(life)
    life.on(d.Running(RUNNING, 30.0))
    assert life.on(d.Signal("SIGTERM")) == []  # the executor kills the probe
    orders = life.on(d.ProbeRan("probe was stopped (killed with its process group)"))
    assert kinds(orders) == [d.Delete]
    assert kinds(life.on(d.Deleted())) == [d.Record, d.CrossOff, d.Finished]  # no mark
    assert not life.recorded


def test_a_probe_that_passed_before_the_stop_keeps_its_verdict():
    life = lifecycle()
    to_booting(life)
    life.on(d.Running(RUNNING, 30.0))
    life.on(d.ProbeRan(None))
    life.on(d.Signal("SIGTERM"))
    assert of(life.on(d.Deleted()), d.Mark) == [d.Mark(True)]
    life.on(d.Marked())
    assert life.result(NOW).passed and life.recorded


# -- whatever happens ----------------------------------------------------------------------

EVENTS = [
    d.Turn(NOW, 0.0),
    d.JournalFailed("disk full"),
    d.Created(BOOTING, 1.0),
    d.Created(RUNNING, 1.0),
    d.CreateFailed(refused()),
    d.CreateFailed(ProviderError("hetzner", "create server", None, "timed out")),
    d.Running(RUNNING, 2.0),
    d.BootFailed("error"),
    d.BootTimeout(),
    d.ProbeRan(None),
    d.ProbeRan("exit 1"),
    d.Found(BOOTING),
    d.NotFound(),
    d.Deleted(),
    d.DeleteFailed("HTTP 500"),
    d.Marked(),
    d.MarkFailed("HTTP 500"),
    d.Signal("SIGTERM"),
]

# What the executor can send in each stage (it never invents a reply to a request not sent).
POSSIBLE = {
    d.DrillStage.REQUESTED: (d.Turn, d.Signal),
    d.DrillStage.CREATING: (d.Created, d.CreateFailed, d.CreateLost, d.JournalFailed, d.Signal),
    d.DrillStage.BOOTING: (d.Running, d.BootFailed, d.BootTimeout, d.Signal),
    d.DrillStage.PROBING: (d.ProbeRan, d.Signal),
    d.DrillStage.DELETING: (d.Deleted, d.DeleteFailed, d.Found, d.NotFound, d.Signal),
    d.DrillStage.MARKING: (d.Marked, d.MarkFailed, d.Signal),
    d.DrillStage.DONE: (d.Signal,),
}


def walks(life_of, depth):
    """Every sequence of possible events, each walked on a fresh lifecycle, to its end."""
    stack = [[]]
    while stack:
        events = stack.pop()
        life, orders = life_of(), []
        for event in events:
            orders.append(life.on(event))
        if life.stage is d.DrillStage.DONE or len(events) >= depth:
            yield events, orders, life
            continue
        for event in EVENTS:
            if isinstance(event, POSSIBLE[life.stage]) and not (
                isinstance(event, d.JournalFailed) and len(events) > 1
            ):
                stack.append([*events, event])


@pytest.mark.parametrize("probe", [True, False])
def test_every_way_that_may_have_made_a_server_ends_in_its_deletion(probe):
    ended = 0
    for events, orders, life in walks(lambda: lifecycle(probe), depth=9):
        flat = list(itertools.chain.from_iterable(orders))
        if life.stage is not d.DrillStage.DONE:
            continue
        ended += 1
        assert sum(isinstance(c, d.Finished) for c in flat) == 1, events
        may_exist = any(isinstance(e, (d.Created, d.CreateLost)) for e in events) or any(
            isinstance(e, d.CreateFailed) and not e.error.refused for e in events
        )
        deletes = [c for c in flat if isinstance(c, (d.Delete, d.Find))]
        if may_exist:
            assert deletes, events  # a server that may exist is always deleted (or looked for)
        crossed = [i for i, c in enumerate(flat) if isinstance(c, d.CrossOff)]
        if crossed:  # crossed off only after a confirmed deletion, or a certain refusal
            assert any(isinstance(e, (d.Deleted,)) for e in events) or (
                not may_exist and any(isinstance(e, d.CreateFailed) for e in events)
            ), events
        if any(isinstance(e, d.Deleted) for e in events):
            assert crossed and life.deleted
        if any(isinstance(e, (d.DeleteFailed, d.NotFound)) for e in events):
            assert not crossed and not life.deleted
        marks = of(flat, d.Mark)
        assert len(marks) <= 1
        if marks:  # only with a verdict: its server ran, or failed to boot or to probe
            assert any(isinstance(e, (d.Running, d.BootFailed, d.BootTimeout)) for e in events) or (
                any(isinstance(e, d.Created) and e.server.status == "running" for e in events)
            )
        if of(flat, d.Create):
            assert flat.index(of(flat, d.Journal)[0]) < flat.index(of(flat, d.Create)[0])
        result = life.result(NOW)
        assert result.deleted == life.deleted
        assert not result.passed or result.stage == "done"
    assert ended > 50
