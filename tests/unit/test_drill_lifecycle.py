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

from snapshot_policy.core.commands import Finished, Log, Progress
from snapshot_policy.core.drill_commands import (
    Boot,
    Create,
    CrossOff,
    Delete,
    Find,
    Journal,
    JournalServer,
    Mark,
    Probe,
    Record,
)
from snapshot_policy.core.drill_events import (
    BootFailed,
    BootTimeout,
    Created,
    CreateFailed,
    CreateLost,
    Deleted,
    DeleteFailed,
    Found,
    JournalFailed,
    Marked,
    MarkFailed,
    NoRoom,
    NotFound,
    ProbeRan,
    Running,
    Signal,
    Turn,
)
from snapshot_policy.core.drill_lifecycle import DrillLifecycle, DrillStage
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


def lifecycle(probe: bool = True, boot_timeout: float = 60.0) -> DrillLifecycle:
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
    return DrillLifecycle(plan, REQUEST, probe, boot_timeout)


def of(orders, kind):
    return [c for c in orders if isinstance(c, kind)]


def kinds(orders):
    """The commands but the log and progress lines, by type."""
    return [type(c) for c in orders if not isinstance(c, (Log, Progress))]


def refused(status=422):
    return ProviderError("hetzner", "create server", status, "invalid server type")


def to_booting(life):
    orders = life.on(Turn(NOW, 10.0))
    assert kinds(orders) == [Journal, Create]  # written down before it is asked for
    assert orders.index(Journal(REQUEST)) < orders.index(Create(REQUEST))
    orders = life.on(Created(BOOTING, 10.5))
    assert kinds(orders) == [JournalServer, Record, Boot]
    assert life.stage is DrillStage.BOOTING


# -- the whole way -------------------------------------------------------------------------


def test_a_drill_that_passes_creates_boots_probes_deletes_marks_and_records():
    life = lifecycle()
    to_booting(life)
    orders = life.on(Running(RUNNING, 52.0))
    assert of(orders, Probe) == [Probe(RUNNING)] and life.stage is DrillStage.PROBING
    assert life.restore_seconds == 42.0
    orders = life.on(ProbeRan(None))
    assert kinds(orders) == [Delete] and of(orders, Delete) == [Delete(RUNNING)]
    orders = life.on(Deleted())
    assert kinds(orders) == [Record, CrossOff, Mark]
    assert of(orders, Mark) == [Mark(True)]
    assert of(orders, Record)[0].event == "drill server deleted"
    orders = life.on(Marked())
    assert kinds(orders) == [Record, Finished]
    assert of(orders, Record)[0] == Record("drill passed", "restored to cx22 in fsn1 in 42s")
    assert life.stage is DrillStage.DONE
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
    assert kinds(life.on(Running(RUNNING, 20.0))) == [Delete]
    assert life.verdict is True and life.reached == "done"


def test_a_server_running_at_once_goes_straight_to_its_probe():
    life = lifecycle()
    life.on(Turn(NOW, 0.0))
    assert kinds(life.on(Created(RUNNING, 3.0))) == [JournalServer, Record, Probe]


# -- failures ------------------------------------------------------------------------------


def test_a_refused_create_crosses_off_marks_nothing_and_deletes_nothing():
    life = lifecycle()
    life.on(Turn(NOW, 0.0))
    orders = life.on(CreateFailed(refused()))
    assert kinds(orders) == [CrossOff, Finished]
    result = life.result(NOW)
    assert not result.passed and result.stage == "create" and result.deleted
    assert "the cloud refused the drill server" in result.error
    assert life.recorded  # a drill that could not run is a failed drill for the run state


def test_a_journal_that_cannot_be_written_sends_no_create():
    life = lifecycle()
    life.on(Turn(NOW, 0.0))
    orders = life.on(JournalFailed("disk full"))
    assert kinds(orders) == [Finished] and life.deleted
    assert "journal could not be written" in life.result(NOW).error


@pytest.mark.parametrize("status", [None, 500, 503])
def test_an_uncertain_create_is_looked_for_by_name_and_deleted(status):
    life = lifecycle()
    life.on(Turn(NOW, 0.0))
    error = ProviderError("hetzner", "create server", status, "gone away")
    orders = life.on(CreateFailed(error))
    assert kinds(orders) == [Find] and of(orders, Find) == [Find(REQUEST.name)]
    orders = life.on(Found(BOOTING))
    assert kinds(orders) == [JournalServer, Delete]
    orders = life.on(Deleted())
    assert kinds(orders) == [Record, CrossOff, Finished]  # no verdict: no mark
    result = life.result(NOW)
    assert not result.passed and result.deleted and result.stage == "create"


def test_a_lost_create_not_listed_stays_in_the_journal_for_the_next_run():
    life = lifecycle()
    life.on(Turn(NOW, 0.0))
    life.on(CreateLost("no response"))
    orders = life.on(NotFound())
    assert kinds(orders) == [Finished]  # no CrossOff
    result = life.result(NOW)
    assert not result.deleted and "the next run looks for it again" in result.error


@pytest.mark.parametrize(
    "event, words",
    [
        (BootFailed("the create action failed"), "did not boot: the create action failed"),
        (BootTimeout(), "not running 60s after the create"),
    ],
)
def test_a_server_that_does_not_boot_is_deleted_and_the_snapshot_marked_failed(event, words):
    life = lifecycle()
    to_booting(life)
    orders = life.on(event)
    assert kinds(orders) == [Delete] and of(orders, Delete) == [Delete(BOOTING)]
    assert of(orders, Log)[0].level == logging.ERROR
    assert of(life.on(Deleted()), Mark) == [Mark(False)]
    orders = life.on(Marked())
    assert of(orders, Record)[0].event == "drill failed"
    result = life.result(NOW)
    assert (result.passed, result.stage, result.deleted) == (False, "boot", True)
    assert words in result.error and result.restore_seconds is None


def test_a_server_created_failed_is_deleted_at_once():
    life = lifecycle()
    life.on(Turn(NOW, 0.0))
    orders = life.on(Created(replace(BOOTING, status="failed"), 1.0))
    assert kinds(orders) == [JournalServer, Record, Delete]
    assert life.verdict is False


def test_a_failed_probe_deletes_the_server_and_marks_the_snapshot_failed():
    life = lifecycle()
    to_booting(life)
    life.on(Running(RUNNING, 30.0))
    assert kinds(life.on(ProbeRan("probe failed (exit status 3)"))) == [Delete]
    assert of(life.on(Deleted()), Mark) == [Mark(False)]
    life.on(Marked())
    result = life.result(NOW)
    assert (result.passed, result.stage) == (False, "probe")
    assert result.error == "the probe failed: probe failed (exit status 3)"
    assert result.restore_seconds == 20.0  # it did restore: how long that took is known


def test_a_failed_delete_keeps_the_journal_entry_and_still_marks_the_verdict():
    life = lifecycle(probe=False)
    to_booting(life)
    life.on(Running(RUNNING, 30.0))
    orders = life.on(DeleteFailed("HTTP 500"))
    assert kinds(orders) == [Mark]  # no CrossOff: the next run deletes it
    orders = life.on(Marked())
    assert of(orders, Record) == [Record("drill passed", "restored to cx22 in fsn1 in 20s")]
    result = life.result(NOW)
    assert result.passed and not result.deleted
    assert "could not delete its server" in result.error and "the next run deletes it" in (
        result.error
    )


def test_a_mark_that_fails_is_reported_and_changes_no_verdict():
    life = lifecycle(probe=False)
    to_booting(life)
    life.on(Running(RUNNING, 30.0))
    life.on(Deleted())
    assert kinds(life.on(MarkFailed("HTTP 503"))) == [Record, Finished]
    result = life.result(NOW)
    assert result.passed and "could not record the result" in result.error


# -- stopping ------------------------------------------------------------------------------


def test_a_stop_before_the_drill_began_sends_nothing_and_records_nothing():
    life = lifecycle()
    orders = life.on(Signal("SIGTERM"))
    assert kinds(orders) == [Finished] and life.stage is DrillStage.DONE
    assert life.on(Turn(NOW, 0.0)) == []
    assert not life.recorded and life.result(NOW).deleted


def test_a_stop_while_booting_deletes_the_server_at_once_and_marks_nothing():
    life = lifecycle()
    to_booting(life)
    orders = life.on(Signal("SIGTERM"))
    assert kinds(orders) == [Delete]
    assert life.on(Running(RUNNING, 30.0)) == []  # too late: it is being deleted
    assert kinds(life.on(Deleted())) == [Record, CrossOff, Finished]
    result = life.result(NOW)
    assert not result.passed and result.deleted and not life.recorded
    assert "SIGTERM stopped the run during the drill (boot)" in result.error


def test_a_stop_while_creating_deletes_the_server_once_the_create_answers():
    life = lifecycle()
    life.on(Turn(NOW, 0.0))
    assert life.on(Signal("SIGINT")) == []
    assert kinds(life.on(Created(BOOTING, 1.0))) == [JournalServer, Record, Delete]


def test_a_stop_while_probing_deletes_the_server_once_the_killed_probe_answers():
    life = lifecycle()
    to_booting(life)
    life.on(Running(RUNNING, 30.0))
    assert life.on(Signal("SIGTERM")) == []  # the executor kills the probe
    orders = life.on(ProbeRan("probe was stopped (killed with its process group)"))
    assert kinds(orders) == [Delete]
    assert kinds(life.on(Deleted())) == [Record, CrossOff, Finished]  # no mark
    assert not life.recorded


def test_a_probe_that_passed_before_the_stop_keeps_its_verdict():
    life = lifecycle()
    to_booting(life)
    life.on(Running(RUNNING, 30.0))
    life.on(ProbeRan(None))
    life.on(Signal("SIGTERM"))
    assert of(life.on(Deleted()), Mark) == [Mark(True)]
    life.on(Marked())
    assert life.result(NOW).passed and life.recorded


def test_a_server_renamed_while_it_booted_is_deleted_only_under_the_name_it_was_made_with():
    """The delete's last check (guard.delete_drill_server) compares the server's name now with
    the one it is given: that must be the name the journal holds, not the one the boot poll
    last listed, or a drill server someone renamed to keep it is deleted all the same."""
    life = lifecycle()
    to_booting(life)
    renamed = replace(RUNNING, name="db-1-kept-for-debugging")
    life.on(Running(renamed, 30.0))
    (delete,) = of(life.on(ProbeRan(None)), Delete)
    assert (delete.server.id, delete.server.name) == ("77", REQUEST.name)


def test_a_drill_with_no_room_left_sends_nothing_and_stays_due():
    """Its account's slots are held by servers that could not be deleted."""
    life = lifecycle()
    orders = life.on(NoRoom("2 drill servers of account main could not be deleted"))
    assert kinds(orders) == [Finished] and life.stage is DrillStage.DONE
    assert not life.began and not life.recorded and life.deleted
    assert life.on(Turn(NOW, 0.0)) == []


# -- whatever happens ----------------------------------------------------------------------

EVENTS = [
    Turn(NOW, 0.0),
    JournalFailed("disk full"),
    Created(BOOTING, 1.0),
    Created(RUNNING, 1.0),
    CreateFailed(refused()),
    CreateFailed(ProviderError("hetzner", "create server", None, "timed out")),
    Running(RUNNING, 2.0),
    BootFailed("error"),
    BootTimeout(),
    ProbeRan(None),
    ProbeRan("exit 1"),
    Found(BOOTING),
    NotFound(),
    Deleted(),
    DeleteFailed("HTTP 500"),
    Marked(),
    MarkFailed("HTTP 500"),
    NoRoom("2 drill servers could not be deleted"),
    Signal("SIGTERM"),
]

# What the executor can send in each stage (it never invents a reply to a request not sent).
POSSIBLE = {
    DrillStage.REQUESTED: (Turn, NoRoom, Signal),
    DrillStage.CREATING: (Created, CreateFailed, CreateLost, JournalFailed, Signal),
    DrillStage.BOOTING: (Running, BootFailed, BootTimeout, Signal),
    DrillStage.PROBING: (ProbeRan, Signal),
    DrillStage.DELETING: (Deleted, DeleteFailed, Found, NotFound, Signal),
    DrillStage.MARKING: (Marked, MarkFailed, Signal),
    DrillStage.DONE: (Signal,),
}


def walks(life_of, depth):
    """Every sequence of possible events, each walked on a fresh lifecycle, to its end."""
    stack = [[]]
    while stack:
        events = stack.pop()
        life, orders = life_of(), []
        for event in events:
            orders.append(life.on(event))
        if life.stage is DrillStage.DONE or len(events) >= depth:
            yield events, orders, life
            continue
        for event in EVENTS:
            if isinstance(event, POSSIBLE[life.stage]) and not (
                isinstance(event, JournalFailed) and len(events) > 1
            ):
                stack.append([*events, event])


@pytest.mark.parametrize("probe", [True, False])
def test_every_way_that_may_have_made_a_server_ends_in_its_deletion(probe):
    ended = 0
    for events, orders, life in walks(lambda: lifecycle(probe), depth=9):
        flat = list(itertools.chain.from_iterable(orders))
        if life.stage is not DrillStage.DONE:
            continue
        ended += 1
        assert sum(isinstance(c, Finished) for c in flat) == 1, events
        may_exist = any(isinstance(e, (Created, CreateLost)) for e in events) or any(
            isinstance(e, CreateFailed) and not e.error.refused for e in events
        )
        deletes = [c for c in flat if isinstance(c, (Delete, Find))]
        if may_exist:
            assert deletes, events  # a server that may exist is always deleted (or looked for)
        crossed = [i for i, c in enumerate(flat) if isinstance(c, CrossOff)]
        if crossed:  # crossed off only after a confirmed deletion, or a certain refusal
            assert any(isinstance(e, (Deleted,)) for e in events) or (
                not may_exist and any(isinstance(e, CreateFailed) for e in events)
            ), events
        if any(isinstance(e, Deleted) for e in events):
            assert crossed and life.deleted
        if any(isinstance(e, (DeleteFailed, NotFound)) for e in events):
            assert not crossed and not life.deleted
        marks = of(flat, Mark)
        assert len(marks) <= 1
        if marks:  # only with a verdict: its server ran, or failed to boot or to probe
            assert any(isinstance(e, (Running, BootFailed, BootTimeout)) for e in events) or (
                any(isinstance(e, Created) and e.server.status == "running" for e in events)
            )
        if of(flat, Create):
            assert flat.index(of(flat, Journal)[0]) < flat.index(of(flat, Create)[0])
        result = life.result(NOW)
        assert result.deleted == life.deleted
        assert not result.passed or result.stage == "done"
    assert ended > 50
