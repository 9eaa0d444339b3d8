"""A restore drill's way from request to deletion, as a state machine (docs/promises.md §5,
invariant 14; issue 22, item 2).

Pure: `DrillLifecycle.on(event)` takes what happened to one drill (`drill_events`: the
journal was written, the create answered, the server runs, the probe ran, the delete was
confirmed, the run was told to stop) and returns the commands (`drill_commands`) the executor
(`engine/drill.py`) carries out in order. Times come in with the events; nothing here reads a
clock, sleeps or writes.

    REQUESTED ─Turn→ CREATING ─Created→ BOOTING ─Running→ PROBING ─ProbeRan→ DELETING
                       │                   │                               ─Deleted→ MARKING
                       │                   └ BootFailed, BootTimeout, Signal → DELETING
                       ├ CreateFailed (refused for certain: no server) → DONE
                       └ CreateLost (one may exist) → DELETING: Find it by name, Delete it

The rules it owns:
- the journal holds the drill server before the create is sent (`Journal` comes first and
  the executor sends `Create` only once it was written; `JournalFailed` ends the drill with
  no request);
- every path on which a server may exist ends in `Delete` (or, after a lost reply, `Find`
  by its exact name, then `Delete`): passed, failed, timed out, probe failed, stopped;
- the journal entry is crossed off only once the deletion is confirmed (`Deleted`) or the
  cloud refused the create for certain (`CreateFailed`); a failed delete leaves it for the
  next run;
- the snapshot is marked (`Mark`) only with a verdict on it: its server ran and passed its
  probe (passed), or did not boot or failed its probe (failed). A refused create or a stop
  says nothing about the snapshot;
- a stop starts no drill, kills the probe (the executor's doing), and deletes what exists.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from snapshot_policy.core.commands import Finished, Log, Progress
from snapshot_policy.core.drill_commands import (
    Boot,
    Command,
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
    Event,
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
from snapshot_policy.core.model import (
    DrillPlan,
    DrillResult,
    MadeServer,
    ProviderError,
    ServerRequest,
    Snapshot,
    Target,
)


class DrillStage(Enum):
    REQUESTED = "requested"
    """Planned: waiting for a slot (`drills_per_account`) and the request budget."""
    CREATING = "creating"
    """Journaled, and its create request sent."""
    BOOTING = "booting"
    """Its server exists: waiting until it runs (one listing per account per round)."""
    PROBING = "probing"
    """Its server runs: the probe command runs."""
    DELETING = "deleting"
    """Its server is being deleted (or, after a lost create reply, looked for by name)."""
    MARKING = "marking"
    """Its server is deleted (or left to the next run): the verdict is written on the snapshot."""
    DONE = "done"


@dataclass(eq=False)
class DrillLifecycle:
    """One drill on its way: `plan` is what was decided (core/drills.plan_drills), `request`
    the server to make, `probe` whether a probe command is configured, `boot_timeout` how long
    the server may take to run (seconds from the create)."""

    plan: DrillPlan
    request: ServerRequest
    probe: bool
    boot_timeout: float
    stage: DrillStage = DrillStage.REQUESTED
    server: MadeServer | None = None
    started: datetime | None = None
    sent_at: float | None = None
    restore_seconds: float | None = None
    verdict: bool | None = None
    """On the snapshot: True its server ran (and passed its probe), False it did not boot or
    failed its probe, None nothing was learnt of it (refused, lost, stopped)."""
    reached: str = "create"
    """How far it got: create, boot, probe, done (DrillResult.stage)."""
    deleted: bool = False
    """Its server is confirmed gone, or certainly never existed."""
    errors: list[str] = field(default_factory=list)
    stopped: str = ""

    @property
    def target(self) -> Target:
        return self.plan.target

    @property
    def snapshot(self) -> Snapshot:
        return self.plan.snapshot

    @property
    def label(self) -> str:
        t = self.target
        return f"{t.name} ({t.server_name}, {t.provider} {t.server_id}): drill"

    @property
    def began(self) -> bool:
        """Its create was asked for (or at least journaled): it has a result to record."""
        return self.started is not None

    @property
    def boot_deadline(self) -> float | None:
        """The monotonic time past which a server not yet running has timed out."""
        return None if self.sent_at is None else self.sent_at + self.boot_timeout

    def on(self, event: Event) -> list[Command]:
        """Take `event`; return the commands to carry out, in order."""
        match event:
            case Signal(reason):
                return self._signal(reason)
            case Turn(now, at):
                return self._turn(now, at)
            case NoRoom(reason):
                return self._no_room(reason)
            case JournalFailed(error):
                return self._journal_failed(error)
            case Created(server, at):
                return self._created(server, at)
            case CreateFailed(error):
                return self._create_failed(error)
            case CreateLost(error):
                return self._create_lost(error)
            case Running(server, at):
                return self._running(server, at)
            case BootFailed(reason):
                return self._boot_over(f"its server did not boot: {reason}")
            case BootTimeout():
                return self._boot_over(
                    f"its server was not running {self.boot_timeout:g}s after the create "
                    "(drill.boot_timeout)"
                )
            case ProbeRan(problem):
                return self._probe_ran(problem)
            case Found(server):
                return self._found(server)
            case NotFound():
                return self._not_found()
            case Deleted():
                return self._deleted()
            case DeleteFailed(error):
                return self._delete_failed(error)
            case Marked():
                return self._finish() if self.stage is DrillStage.MARKING else []
            case MarkFailed(error):
                return self._mark_failed(error)
        raise TypeError(f"not a drill event: {event!r}")

    # -- begin and create ---------------------------------------------------------------

    def _turn(self, now: datetime, at: float) -> list[Command]:
        if self.stage is not DrillStage.REQUESTED:
            return []
        self.stage, self.started, self.sent_at = DrillStage.CREATING, now, at
        r = self.request
        return [
            Log(
                logging.INFO,
                f"{self.label}: restoring {self.snapshot.name} ({self.snapshot.id}) to a "
                f"{r.machine_type} in {r.region} as {r.name}",
            ),
            Progress("creating"),
            Journal(r),
            Create(r),
        ]

    def _no_room(self, reason: str) -> list[Command]:
        """Never begun, nothing sent: it stays due for the next run, which deletes what
        holds the slots first."""
        if self.stage is not DrillStage.REQUESTED:
            return []
        self.deleted = True
        problem = f"not started: {reason}"
        return [Log(logging.ERROR, f"{self.label}: {problem}"), *self._fail(problem)]

    def _journal_failed(self, error: str) -> list[Command]:
        """Nothing was sent: no server can exist."""
        self.deleted = True
        problem = f"not started: the journal could not be written ({error})"
        return [Log(logging.ERROR, f"{self.label}: {problem}"), *self._fail(problem)]

    def _created(self, server: MadeServer, at: float) -> list[Command]:
        if self.stage is not DrillStage.CREATING:
            return []
        self.server = server
        orders: list[Command] = [
            JournalServer(server),
            Record("drill server created", f"restore drill of {self.snapshot.name}"),
        ]
        if self.stopped:
            return orders + self._delete()
        if server.status == "running":
            return orders + self._running(server, at)
        if server.status == "failed":
            self.stage = DrillStage.BOOTING
            return orders + self._boot_over("its server did not boot: the create action failed")
        self.stage, self.reached = DrillStage.BOOTING, "boot"
        return orders + [Boot(server), Progress("booting")]

    def _create_failed(self, error: ProviderError) -> list[Command]:
        if not error.refused:  # the cloud may have acted: look for it
            return self._create_lost(str(error))
        self.deleted = True
        problem = f"the cloud refused the drill server: {error}"
        return [
            CrossOff(),
            Log(logging.ERROR, f"{self.label}: {problem}"),
            *self._fail(problem),
        ]

    def _create_lost(self, error: str) -> list[Command]:
        """A server may exist under the name: look for it by that name, then delete it."""
        if self.stage is not DrillStage.CREATING:
            return []
        self.errors.append(f"the create of {self.request.name} got no certain answer: {error}")
        self.stage = DrillStage.DELETING
        return [
            Log(
                logging.WARNING,
                f"{self.label}: the create of {self.request.name} got no certain answer "
                f"({error}); looking for a server of that name to delete",
            ),
            Progress("deleting"),
            Find(self.request.name),
        ]

    # -- boot and probe -----------------------------------------------------------------

    def _running(self, server: MadeServer, at: float) -> list[Command]:
        if self.stage not in (DrillStage.CREATING, DrillStage.BOOTING):
            return []
        self.server = server
        self.restore_seconds = max(0.0, at - self.sent_at) if self.sent_at is not None else None
        ran = Log(
            logging.INFO,
            f"{self.label}: {server.name} ({server.id}) runs, "
            f"{self.restore_seconds or 0:.0f}s after the create",
        )
        if self.stopped:
            return [ran, *self._delete()]
        if not self.probe:
            self.verdict, self.reached = True, "done"
            return [ran, *self._delete()]
        self.stage, self.reached = DrillStage.PROBING, "probe"
        return [ran, Progress("probing"), Probe(server)]

    def _boot_over(self, problem: str) -> list[Command]:
        if self.stage is not DrillStage.BOOTING:
            return []
        self.reached = "boot"
        if not self.stopped:
            self.verdict = False
        self.errors.append(problem)
        return [Log(logging.ERROR, f"{self.label}: {problem}"), *self._delete()]

    def _probe_ran(self, problem: str | None) -> list[Command]:
        if self.stage is not DrillStage.PROBING:
            return []
        if problem is None:
            self.verdict, self.reached = True, "done"
            return [Log(logging.INFO, f"{self.label}: the probe passed"), *self._delete()]
        if not self.stopped:  # a probe killed by the stop says nothing of the snapshot
            self.verdict = False
        self.errors.append(f"the probe failed: {problem}")
        return [Log(logging.ERROR, f"{self.label}: the probe failed: {problem}"), *self._delete()]

    # -- delete -------------------------------------------------------------------------

    def _delete(self) -> list[Command]:
        self.stage = DrillStage.DELETING
        return [Progress("deleting"), Delete(self._as_made(self.server))]

    def _as_made(self, server: MadeServer) -> MadeServer:
        """`server` under the name the journal holds: the delete's last read must find it
        still so named (guard.delete_drill_server), whatever name a listing showed since; a
        server renamed while it booted is someone's now (docs/promises.md §5)."""
        return replace(server, name=self.request.name)

    def _found(self, server: MadeServer) -> list[Command]:
        if self.stage is not DrillStage.DELETING or self.server is not None:
            return []
        self.server = server
        return [
            JournalServer(server),
            Log(logging.INFO, f"{self.label}: found {server.name} ({server.id}); deleting it"),
            Delete(self._as_made(server)),
        ]

    def _not_found(self) -> list[Command]:
        """Listed nowhere yet: the journal keeps the name for the next run to look again."""
        if self.stage is not DrillStage.DELETING:
            return []
        note = (
            f"no server named {self.request.name} is listed; the journal keeps the name and "
            "the next run looks for it again"
        )
        self.errors.append(note)
        return [Log(logging.WARNING, f"{self.label}: {note}"), *self._after_delete()]

    def _deleted(self) -> list[Command]:
        if self.stage is not DrillStage.DELETING:
            return []
        self.deleted = True
        server = self.server
        what = f"{server.name} ({server.id})" if server else self.request.name
        return [  # audited before crossed off: a kill between them loses no audit line
            Record("drill server deleted", self._deleted_reason()),
            CrossOff(),
            Log(logging.INFO, f"{self.label}: deleted its server {what}"),
            *self._after_delete(),
        ]

    def _deleted_reason(self) -> str:
        if self.stopped:
            return f"restore drill stopped by {self.stopped}"
        if self.verdict is None:
            return "restore drill ended without a verdict"
        return f"restore drill {'passed' if self.verdict else 'failed'}"

    def _delete_failed(self, error: str) -> list[Command]:
        if self.stage is not DrillStage.DELETING:
            return []
        server = self.server
        what = f"{server.name} ({server.id})" if server else self.request.name
        problem = f"could not delete its server {what}: {error}; the next run deletes it"
        self.errors.append(problem)
        return [Log(logging.ERROR, f"{self.label}: {problem}"), *self._after_delete()]

    def _after_delete(self) -> list[Command]:
        if self.verdict is None:
            return self._finish()
        self.stage = DrillStage.MARKING
        return [Mark(self.verdict)]

    def _mark_failed(self, error: str) -> list[Command]:
        if self.stage is not DrillStage.MARKING:
            return []
        self.errors.append(f"could not record the result on {self.snapshot.name}: {error}")
        return self._finish()

    # -- stop and end -------------------------------------------------------------------

    def _signal(self, reason: str) -> list[Command]:
        """Start nothing more; delete what exists. A create or delete in flight still
        answers; a probe is killed by the executor and answers too."""
        if self.stopped or self.stage is DrillStage.DONE:
            return []
        self.stopped = reason
        if self.stage is DrillStage.REQUESTED:
            self.deleted = True
            return self._fail(f"{reason} stopped the run before the drill began")
        if self.stage is DrillStage.BOOTING:
            return [
                Log(logging.WARNING, f"{self.label}: {reason}: deleting its server now"),
                *self._delete(),
            ]
        return []

    def _fail(self, problem: str) -> list[Command]:
        self.errors.append(problem)
        return self._finish()

    def _finish(self) -> list[Command]:
        self.stage = DrillStage.DONE
        orders: list[Command] = []
        if self.stopped and self.verdict is None and self.began:
            self.errors.append(f"{self.stopped} stopped the run during the drill ({self.reached})")
        if self.began and self.verdict is not None:
            verdict = "drill passed" if self.verdict else "drill failed"
            reason = (
                f"restored to {self.request.machine_type} in {self.request.region}"
                + (f" in {self.restore_seconds:.0f}s" if self.restore_seconds is not None else "")
                + ("" if self.verdict else f": {self.errors[0]}" if self.errors else "")
            )
            orders.append(Record(verdict, reason))
        return [*orders, Progress("passed" if self.passed else "failed"), Finished()]

    @property
    def passed(self) -> bool:
        """The snapshot restored (and passed its probe); whether its server is gone is
        reported apart (`deleted`)."""
        return self.verdict is True

    @property
    def recorded(self) -> bool:
        """Whether the run state keeps it as the target's last drill: it began, and was not
        cut short by a stop before it learnt anything (then it is still due)."""
        return self.began and not (self.stopped and self.verdict is None)

    def result(self, finished: datetime) -> DrillResult:
        server = self.server
        return DrillResult(
            target=self.target,
            snapshot=self.snapshot,
            passed=self.passed,
            stage=self.reached,
            started=self.started or finished,
            finished=finished,
            server_id=server.id if server else None,
            server_name=server.name if server else self.request.name,
            restore_seconds=self.restore_seconds,
            error="; ".join(self.errors) or None,
            deleted=self.deleted,
            machine_type=self.request.machine_type,
            region=self.request.region,
        )
