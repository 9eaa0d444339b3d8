"""A target's way through apply, as a state machine (docs/promises.md §5, §8).

Pure: `Lifecycle.on(event)` takes what happened to the target (its server was found busy,
its snapshot was made, a hook ran, a deletion was confirmed, the run was told to stop) and
returns the commands the executor carries out (start, poll, delete, run a hook, write the
journal, log, audit). Times come in with the events; nothing here reads a clock, sleeps,
logs or writes. The events are in `events`, the commands in `commands`; what a killed run
left open is `settlement.settle`'s.

The rules it owns:
- a failed, timed-out or stopped create deletes nothing; a made one deletes only what
  retention, with it counted, still deletes (`reconcile.standing_deletions`);
- a server already making a snapshot gets no second one; one busy with another action is
  asked again later, until the creation timeout has passed;
- a failed `before` hook starts nothing; the `after` hook runs once the create is over,
  whenever the `before` hook ran (or there is none), and runs again if the stop killed it;
- a stop starts nothing more and leaves a snapshot being made to the next run;
- `consistency: shutdown` (docs/promises.md §5.17, decisions in `consistency`): the server is
  shut down after the `before` hook and before the start, and powered on once the create is
  over however it ended (made, failed, the shutdown wait ran out, stopped); its `after` hook
  runs once it is seen running again (or the power on was given up). A power on overlaps the
  deletions, as the `after` hook does (`power_on_pending`, not a stage). A server a killed run
  left off is powered on first, before this target starts anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from snapshot_policy.core import commands, consistency, copies, events
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import (
    ActionKind,
    Consistency,
    Outcome,
    PlanAction,
    ProviderError,
    Snapshot,
    StartedSnapshot,
    Target,
    TargetPlan,
)
from snapshot_policy.core.reconcile import standing_deletions

# A server busy with another action is asked again after this, doubling up to poll_interval.
BUSY_FIRST_WAIT = 1.0
# The actions that only write marks (docs/promises.md §5.16), and how the audit log names each.
RELABELS = {
    ActionKind.MARK_PENDING: "marked pending deletion",
    ActionKind.UNMARK_PENDING: "unmarked",
    ActionKind.UNPIN: "unpinned",
}
# A power on whose request is out (or asked again later): its reply, not a listing, goes on.
IN_FLIGHT = float("-inf")


class Stage(Enum):
    WAITING = "waiting"
    """Not begun: what an earlier run left in the journal is settled first."""
    OWED_AFTER = "owed after"
    """Due, but the after hook an interrupted run owes runs first."""
    QUEUED = "queued"
    """Due: waiting for its turn to start (a slot in `parallel`, the request budget)."""
    BUSY = "busy"
    """Its server is busy with another action: asked again later."""
    BEFORE = "before"
    """Its before hook runs."""
    STARTING = "starting"
    """Its start request is sent."""
    MAKING = "making"
    """Its snapshot is being made: polled."""
    COPYING = "copying"
    """Its newest snapshot is being copied to other regions (`copies`): deletions wait."""
    DELETING = "deleting"
    """Its snapshot is made (or none was due): the deletions that still stand are under way."""
    OVER = "over"
    """Its create and deletions are over (done, failed or stopped); its after hook may still run."""
    DONE = "done"
    """Over, and no hook runs for it any more: its outcome is final."""
    SHUTTING_DOWN = "shutting down"
    """consistency: shutdown — its server was asked to shut down (or powered off, with
    `force`): waiting, in the account's batched listing, until it is off."""
    OWED_POWER = "owed power on"
    """Due, but the server a killed run shut down is powered on first."""


@dataclass(eq=False)
class Lifecycle:
    """One target on its way through apply. `poll_interval` and `creation_timeout` (seconds)
    pace and bound its waits for a busy server."""

    plan: TargetPlan
    poll_interval: float
    creation_timeout: float
    stage: Stage = Stage.WAITING
    created: Snapshot | None = None
    deleted: list[Snapshot] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    deletions_left: int = 0
    before_done: bool = False
    """Its `before` hook ran (successfully or not): its `after` hook must run."""
    after_pending: bool = False
    after_for: tuple[str, str] = ("", "")
    """The status and snapshot name its after hook was given."""
    rerun_after: bool = False
    """Its `after` hook ran when the hooks were killed at a stop: if it failed, it runs again."""
    busy_since: float | None = None
    """When its server was first found busy with another action (monotonic); None: never."""
    busy_waits: int = 0
    """How often it was asked to wait: the next wait doubles."""
    refusal: ProviderError | None = None
    """The last refusal of its start as busy."""
    making: StartedSnapshot | None = None
    """The snapshot it waits for, once started."""
    stopped: str = ""
    """The signal that stopped the run, once it did."""
    soft_delete: Duration | None = None
    """`settings.soft_delete`: its MARK_PENDINGs stand as its deletions do (§5.16)."""
    relabelled: list[PlanAction] = field(default_factory=list)
    """Its MARK_PENDING, UNMARK_PENDING and UNPIN actions carried out."""
    copying: set[str] = field(default_factory=set)
    """Regions its snapshot is being copied to (docs/promises.md §5.15)."""
    copied: list[str] = field(default_factory=list)
    copy_of: Snapshot | None = None
    copy_failed: bool = False
    was_off: bool = False
    """consistency: shutdown — its server was off when listed: left off, no journal entry."""
    shut_at: float | None = None
    """When the shutdown was sent (monotonic); None: this run did not shut the server down."""
    forced_at: float | None = None
    """When it was powered off (`force`) after the shutdown wait ran out."""
    seen_off: bool = False
    """Its server was seen off after the shutdown: no shutdown is still under way."""
    power_on_pending: bool = False
    """It owes its server a power on (this run shut it down, or a killed run did) not yet
    seen done: the target is not finished before it is."""
    powering_on_since: float | None = None
    """When the first power on was answered (monotonic): the power on is given up after
    `consistency.power_on_given_up`."""
    power_on_sent: float | None = None
    """When the last power on was answered (monotonic); IN_FLIGHT while one is out."""
    power_on_tries: int = 0
    power_on_later: bool = False
    """A refused power on is asked again later (`PowerLater`): no other is sent meanwhile."""
    after_deferred: bool = False
    """Its `after` hook waits for the server to run again."""
    downtime: float | None = None
    """Seconds from the shutdown request until its server was seen running again."""

    def __post_init__(self) -> None:
        self.was_off = consistency.left_off(self.target)

    @property
    def target(self) -> Target:
        return self.plan.target

    @property
    def label(self) -> str:
        return target_label(self.plan)

    @property
    def before_owed(self) -> bool:
        """Its before hook runs when its turn comes, before its snapshot is started."""
        hooks = self.target.hooks
        return bool(hooks and hooks.before and not self.before_done)

    def on(self, event: events.Event) -> list[commands.Command]:
        """Take `event`; return the commands to carry out, in order."""
        match event:
            case events.Begin():
                return self._begin(event)
            case events.AfterOwed():
                return self._after_owed(event)
            case events.MarkFailed(error):
                return self._mark_failed(error)
            case events.WaitOver():
                self.stage = Stage.QUEUED
                return [commands.Queue()]
            case events.Turn():
                return self._turn()
            case events.BeforeRan():
                return self._before_ran(event)
            case events.AfterRan():
                return self._after_ran(event)
            case events.Started(started, sent):
                return self._started(started, sent)
            case events.Refused(error, at):
                return self._refused(error, at)
            case events.BusyListed():
                return self._busy_listed(event)
            case events.Made():
                return self._made(event)
            case events.CreateFailed(error):
                return self._create_failed(error)
            case events.StartCrashed(reason):
                return [*self._create_over("failure"), *self._fail(reason)]
            case events.Deleted(action):
                return self._deleted(action)
            case events.DeleteFailed(action, error):
                return self._delete_failed(action, error)
            case events.DeleteCrashed(reason):
                self.errors.append(reason)
                return self._deletions_over()
            case events.Relabelled(action):
                return self._relabelled(action)
            case events.RelabelFailed(action, error):
                return self._relabel_failed(action, error)
            case events.Copied(region, now):
                return self._copy_over(region, now)
            case events.CopyFailed(region, error, now):
                return self._copy_failed(region, error, now)
            case events.Signal():
                return self._signal(event)
            case events.Abandon(error):
                return self._abandon(error)
            case events.PoweredOffOwed():
                return self._powered_off_owed(event)
            case events.PowerSent(kind, at):
                return self._power_sent(kind, at)
            case events.PowerFailed():
                return self._power_failed(event)
            case events.PowerSeen(status, at):
                return self._power_seen(status, at)
        raise TypeError(f"not a lifecycle event: {event!r}")

    # -- beginning ------------------------------------------------------------------------

    def _after_owed(self, event: events.AfterOwed) -> list[commands.Command]:
        """Run first the after hook an interrupted run owes this target (journal.py): its
        before hook may have frozen what only the after hook thaws."""
        hooks = self.target.hooks
        if not (hooks and hooks.after):
            problem = (
                f"an interrupted run ran the before hook for {event.snapshot_name} at "
                f"{event.began.isoformat()} and never its after hook, "
                "which is no longer configured: check the server by hand"
            )
            return [
                commands.CrossOffAfter(),
                commands.Log(logging.ERROR, f"{self.label}: {problem}"),
                *self._fail(problem),
            ]
        note = (
            f"{self.label}: running first the after hook an interrupted run owes "
            f"(its before hook ran for {event.snapshot_name} at {event.began.isoformat()})"
        )
        return [
            commands.Log(logging.WARNING, note),
            *self._run_after("failure", event.snapshot_name),
        ]

    def _begin(self, event: events.Begin) -> list[commands.Command]:
        """Begin, unless the settlement already failed it. One already making a snapshot gets
        no second one; one busy with another action waits."""
        if self.stage is not Stage.WAITING:
            return []
        if self.plan.create is None:
            due = copies.transfers_due(self.plan)
            return [
                commands.Log(logging.INFO, f"{self.label}: no snapshot: {self.plan.schedule_note}"),
                *(self._copy(*due) if due else self._confirmed(None, event.now)),
            ]
        if event.busy == "snapshot":
            return self._fail(self._second_snapshot())
        if event.busy is not None:
            return self._wait_while_busy(event.busy, event.at)
        if self.power_on_pending:  # a killed run left it off: powered on first
            self.stage = Stage.OWED_POWER
            return []
        if self.after_pending:
            self.stage = Stage.OWED_AFTER
            return []
        unknown = consistency.unknown_power(self.target)
        if unknown is not None:
            return self._fail(unknown)
        self.stage = Stage.QUEUED
        if self.was_off:
            left = "consistency: shutdown — the server is already off: snapshot as it is, left off"
            return [commands.Log(logging.INFO, f"{self.label}: {left}"), commands.Queue()]
        return [commands.Queue()]

    # -- busy servers ---------------------------------------------------------------------

    def _second_snapshot(self) -> str:
        t = self.target
        return (
            f"{t.provider}: server {t.server_id} already has a snapshot in progress; "
            "not starting a second one"
        )

    def _wait_while_busy(self, kind: str, at: float) -> list[commands.Command]:
        """Ask again later: after BUSY_FIRST_WAIT, doubling up to poll_interval, until the
        creation timeout has passed since the server was first busy."""
        self.busy_since = at if self.busy_since is None else self.busy_since
        wait_for = min(self.poll_interval, BUSY_FIRST_WAIT * 2**self.busy_waits)
        self.busy_waits += 1
        self.stage = Stage.BUSY
        return [
            commands.Log(
                logging.INFO,
                f"{self.label}: the server is busy ({kind}); asking again in {wait_for:.1f}s",
            ),
            commands.AskAgain(at + wait_for),
        ]

    def _busy_listed(self, event: events.BusyListed) -> list[commands.Command]:
        """After a refusal: a snapshot in progress fails it, another action makes it wait."""
        if event.busy == "snapshot":
            return [*self._create_over("failure"), *self._fail(self._second_snapshot())]
        if event.at - self.busy_since > self.creation_timeout:  # since it was first busy
            return [
                *self._create_over("failure"),
                *self._fail(f"{self.refusal} (still busy after {self.creation_timeout:g}s)"),
            ]
        return self._wait_while_busy(event.busy, event.at)

    # -- hooks ----------------------------------------------------------------------------

    def _before_ran(self, event: events.BeforeRan) -> list[commands.Command]:
        self.before_done = event.ran
        if not event.ran:
            return self._fail(
                f"{event.stopped} stopped the run before its before hook ran; no snapshot"
            )
        problem = event.problem
        if problem is None and event.stopped:
            problem = self._not_started(event.stopped)
        if problem is None:
            self.stage = Stage.QUEUED
            return [commands.Queue(front=True)]
        return [
            commands.Log(logging.ERROR, f"{self.label}: {problem}; no snapshot, nothing deleted"),
            *self._create_over("failure"),
            *self._fail(problem),
        ]

    def _after_ran(self, event: events.AfterRan) -> list[commands.Command]:
        problem = event.problem
        if problem is not None and self.rerun_after:  # killed at the stop: a thaw must still happen
            self.rerun_after = False
            return [
                commands.Log(logging.WARNING, f"{self.label}: {problem}; running it again"),
                *self._run_after(*self.after_for),
            ]
        self.after_pending = False
        orders: list[commands.Command] = [commands.CrossOffAfter()]
        if problem is not None:
            orders.append(commands.Log(logging.ERROR, f"{self.label}: {problem}"))
            self.errors.append(problem)
        if self.stage is Stage.OWED_AFTER:
            if problem is not None:
                return orders + self._fail(
                    "the after hook an interrupted run owed did not succeed; no snapshot this run"
                )
            if event.stopped:
                return orders + self._fail(self._not_started(event.stopped))
            self.stage = Stage.QUEUED
            return orders + [commands.Queue()]
        return orders + self._maybe_finish()

    def _create_over(self, status: str) -> list[commands.Command]:
        """The snapshot is made, failed or will not be made: the `after` hook runs, once the
        `before` hook ran (or there is none)."""
        hooks = self.target.hooks
        power = self._power_on() if self.power_on_pending and not self.powering_on else []
        if hooks and hooks.after and (self.before_done or not hooks.before):
            if self.power_on_pending:  # the after hook runs once the server runs again
                self.after_pending, self.after_deferred = True, True
                self.after_for = (status, self.plan.create.snapshot.name)
                return power
            return power + self._run_after(status)
        return power

    def _run_after(self, status: str, snapshot_name: str = "") -> list[commands.Command]:
        self.after_pending = True
        self.after_for = (status, snapshot_name or self.plan.create.snapshot.name)
        return [commands.RunAfter(*self.after_for)]

    # -- starting -----------------------------------------------------------------------

    def _turn(self) -> list[commands.Command]:
        """Its turn came: its before hook runs first, if it has one that has not run."""
        if self.before_owed:
            self.stage = Stage.BEFORE
            return [commands.RunBefore()]
        if consistency.shuts_down(self.target) and self.shut_at is None and not self.was_off:
            self.stage = Stage.SHUTTING_DOWN
            return [commands.Power("shutdown")]
        self.stage = Stage.STARTING
        return [commands.Start(self.plan.create.snapshot.name, self.plan.create.reason)]

    def _started(self, started: StartedSnapshot, sent: float) -> list[commands.Command]:
        if self.stopped:
            return self._stopped_while_made(started)
        self.stage, self.making = Stage.MAKING, started
        return [commands.Poll(started, sent)]

    def _refused(self, error: ProviderError, at: float) -> list[commands.Command]:
        """Refused as busy: nothing was started, for certain. Ask what the server is busy with."""
        self.busy_since = at if self.busy_since is None else self.busy_since
        self.stage, self.refusal = Stage.BUSY, error
        crossed = commands.CrossOffStart(self.plan.create.snapshot.name)
        if self.stopped:
            return [crossed, *self._create_over("failure"), *self._fail(self._not_started())]
        return [crossed, commands.CheckBusy()]

    def _create_failed(self, error: ProviderError) -> list[commands.Command]:
        # Certain that no snapshot appears under the name: its start is crossed off.
        crossed = (
            [commands.CrossOffStart(self.plan.create.snapshot.name)] if error.no_snapshot else []
        )
        failed = commands.Log(
            logging.ERROR, f"{self.label}: snapshot failed, nothing deleted: {error}"
        )
        return [*crossed, failed, *self._create_over("failure"), *self._fail(str(error))]

    def _mark_failed(self, error: ProviderError) -> list[commands.Command]:
        failed = commands.Log(
            logging.ERROR, f"{self.label}: snapshot failed, nothing deleted: {error}"
        )
        return [failed, *self._fail(str(error))]

    # -- made, and the deletions that stand -----------------------------------------------

    def _made(self, event: events.Made) -> list[commands.Command]:
        made, create = event.snapshot, self.plan.create
        self.created = made
        return [
            commands.CrossOffStart(create.snapshot.name),
            commands.Log(logging.INFO, f"{self.label}: created {made.name} ({made.id})"),
            commands.Record("created", made, create.reason),
            *self._create_over("success"),
            *self._copies_first(made, event.now),
        ]

    # -- copies in other regions (docs/promises.md §5.15) ---------------------------------

    def _copies_first(self, made: Snapshot, now: datetime) -> list[commands.Command]:
        """The new snapshot is copied to each region it lacks before any deletion: the
        deletions are decided again once every copy exists."""
        wanted = copies.to_transfer(self.target, made) if self.target.copies else ()
        if not wanted:
            return self._confirmed(made, now)
        return self._copy(made, wanted)

    def _copy(self, snapshot: Snapshot, regions: tuple[str, ...]) -> list[commands.Command]:
        self.stage, self.copy_of, self.copying = Stage.COPYING, snapshot, set(regions)
        what = f"{snapshot.name} ({snapshot.id})"
        return [
            commands.Log(logging.INFO, f"{self.label}: copying {what} to {', '.join(regions)}"),
            *(commands.Transfer(snapshot, region) for region in regions),
            commands.Progress("copying"),
        ]

    def _copy_over(self, region: str, now: datetime) -> list[commands.Command]:
        self.copying.discard(region)
        self.copied.append(region)
        what = f"{self.copy_of.name} ({self.copy_of.id})" if self.copy_of else "the snapshot"
        orders: list[commands.Command] = [
            commands.Log(logging.INFO, f"{self.label}: copied {what} to {region}")
        ]
        return orders + self._copies_settled(now)

    def _copy_failed(
        self, region: str, error: ProviderError, now: datetime
    ) -> list[commands.Command]:
        """A failed or timed-out transfer fails the target and deletes nothing."""
        self.copying.discard(region)
        self.copy_failed = True
        problem = f"copy to {region} failed, nothing deleted: {error}"
        self.errors.append(problem)
        return [commands.Log(logging.ERROR, f"{self.label}: {problem}"), *self._copies_settled(now)]

    def _copies_settled(self, now: datetime) -> list[commands.Command]:
        if self.copying or self.stage is not Stage.COPYING:
            return []
        if self.copy_failed or self.stopped:
            self.stage = Stage.OVER
            return self._maybe_finish()
        made = self.created  # None: the copies were a killed run's; the plan's deletions stand
        return self._confirmed(made, now)

    def _confirmed(self, made: Snapshot | None, now: datetime) -> list[commands.Command]:
        """The create is over and succeeded (or none was due): delete what still stands."""
        orders: list[commands.Command] = []
        standing = standing_deletions(self.plan, made, now, self.soft_delete)
        for action in self.plan.of_kind(ActionKind.DELETE):
            if action in standing:
                orders.append(commands.Delete(action))
                self.deletions_left += 1
            else:
                orders.append(
                    commands.Log(
                        logging.INFO,
                        f"{self.label}: keeping {action.snapshot.name} after all: "
                        "retention with the new snapshot keeps it",
                    )
                )
        orders += self._relabels(standing)
        for action in self.plan.of_kind(ActionKind.KEEP):
            orders.append(
                commands.Log(
                    logging.DEBUG, f"{self.label}: keeping {action.snapshot.name}: {action.reason}"
                )
            )
        if self.deletions_left:
            self.stage = Stage.DELETING
            return orders + [commands.Progress("deleting")]
        self.stage = Stage.OVER
        return orders + self._maybe_finish()

    def _relabels(self, standing: tuple[PlanAction, ...]) -> list[commands.Command]:
        """The marks to write, where the deletions go (docs/promises.md §5.16): a mark pending
        only while it stands as a deletion would; an unmark or an unpin always (each only
        delays a deletion)."""
        orders: list[commands.Command] = []
        for action in self.plan.actions:
            if action.kind not in RELABELS:
                continue
            if action.kind is ActionKind.MARK_PENDING and action not in standing:
                orders.append(
                    commands.Log(
                        logging.INFO,
                        f"{self.label}: not marking {action.snapshot.name} pending deletion "
                        "after all: retention with the new snapshot keeps it",
                    )
                )
                continue
            orders.append(commands.Relabel(action))
            self.deletions_left += 1
        return orders

    def _relabelled(self, action: PlanAction) -> list[commands.Command]:
        snapshot = action.snapshot
        self.relabelled.append(action)
        event = RELABELS[action.kind]
        return [
            commands.Log(
                logging.INFO,
                f"{self.label}: {event} {snapshot.name} ({snapshot.id}): {action.reason}",
            ),
            commands.Record(event, snapshot, action.reason),
            *self._deletions_over(),
        ]

    def _relabel_failed(self, action: PlanAction, error: ProviderError) -> list[commands.Command]:
        snapshot = action.snapshot
        what = f"{snapshot.name} ({snapshot.id})"
        self.errors.append(f"{RELABELS[action.kind]} {snapshot.name}: {error}")
        failed = commands.Log(
            logging.ERROR, f"{self.label}: could not write the marks of {what}: {error}"
        )
        return [failed, *self._deletions_over()]

    def _deleted(self, action: PlanAction) -> list[commands.Command]:
        snapshot = action.snapshot
        self.deleted.append(snapshot)
        what = f"{snapshot.name} ({snapshot.id})"
        return [
            commands.Log(logging.INFO, f"{self.label}: deleted {what}: {action.reason}"),
            commands.Record("deleted", snapshot, action.reason),
            commands.CrossOffDeletion(snapshot.id),
            *self._deletions_over(),
        ]

    def _delete_failed(self, action: PlanAction, error: ProviderError) -> list[commands.Command]:
        """A deletion refused for certain is crossed off (the snapshot is still there); one
        that may have happened stays in the journal for the next run to check."""
        snapshot = action.snapshot
        self.errors.append(f"delete {snapshot.name}: {error}")
        refused = [commands.CrossOffDeletion(snapshot.id)] if error.refused else []
        what = f"{snapshot.name} ({snapshot.id})"
        failed = commands.Log(logging.ERROR, f"{self.label}: could not delete {what}: {error}")
        return [failed, *refused, *self._deletions_over()]

    def _deletions_over(self, count: int = 1) -> list[commands.Command]:
        self.deletions_left -= count
        if not self.deletions_left:
            self.stage = Stage.OVER
        return self._maybe_finish()

    # -- stopping -------------------------------------------------------------------------

    def _signal(self, event: events.Signal) -> list[commands.Command]:
        """Give up what has not begun, and leave a snapshot being made to the journal: the
        next run adopts it (or sees it failed). Replies to requests already sent still come."""
        self.stopped = event.reason
        self.rerun_after = self.after_pending  # it may have been killed with the others
        if self.stage in (Stage.QUEUED, Stage.BUSY):
            return [*self._create_over("failure"), *self._fail(self._not_started())]
        if self.stage is Stage.SHUTTING_DOWN and self.shut_at is not None:
            return [*self._create_over("failure"), *self._fail(self._not_started())]
        if self.stage is Stage.MAKING:
            return self._stopped_while_made(self.making)
        if self.stage is Stage.COPYING:
            regions, self.copying = ", ".join(sorted(self.copying)), set()
            what = self.copy_of.name if self.copy_of else "its snapshot"
            self.stage = Stage.OVER
            return self._fail(
                f"{event.reason} stopped the run while {what} was being copied to {regions}; "
                "nothing deleted, the next run checks the copies"
            )
        if self.stage is Stage.DELETING and event.unsent:
            self.errors.append(f"{event.reason} stopped the run before {event.unsent} deletion(s)")
            return self._deletions_over(event.unsent)
        return []

    def _not_started(self, reason: str = "") -> str:
        return f"{reason or self.stopped} stopped the run before its snapshot was started"

    def _stopped_while_made(self, started: StartedSnapshot) -> list[commands.Command]:
        note = f"stopped the run while {started.name} was being made; the next run adopts it"
        return [
            commands.Log(logging.WARNING, f"{self.label}: {self.stopped} {note}"),
            *self._create_over("failure"),
            *self._fail(
                f"{self.stopped} stopped the run while its snapshot {started.name} "
                "was being made; the next run adopts it"
            ),
        ]

    # -- consistency: shutdown (docs/promises.md §5.17) ----------------------------------

    @property
    def powering_on(self) -> bool:
        return self.power_on_sent is not None or self.powering_on_since is not None

    def _power_on(self) -> list[commands.Command]:
        self.power_on_tries = 0
        self.power_on_sent = IN_FLIGHT
        return [commands.Power("power_on")]

    def _powered_off_owed(self, event: events.PoweredOffOwed) -> list[commands.Command]:
        """A killed run shut this server down and never saw it running again: power it on
        first (seen running already: crossed off)."""
        self.was_off = False  # off because of us: the shutdown rule applies again
        when = event.since.isoformat()
        if consistency.is_running(self.target.server_status):
            return [
                commands.Log(
                    logging.INFO,
                    f"{self.label}: the server an interrupted run shut down at {when} runs again",
                ),
                commands.CrossOffPoweredOff(),
                commands.RecordPower(
                    "server running again", f"shut down at {when} by a killed run"
                ),
            ]
        self.power_on_pending = True
        return [
            commands.Log(
                logging.WARNING,
                f"{self.label}: powering on first the server an interrupted run shut down at "
                f"{when}",
            ),
            *self._power_on(),
        ]

    def _power_sent(self, kind: str, at: float) -> list[commands.Command]:
        if kind == "shutdown":
            self.shut_at, self.power_on_pending = at, True
            orders: list[commands.Command] = [
                commands.Progress("shutting down"),
                commands.Log(logging.INFO, f"{self.label}: shutting the server down"),
                commands.RecordPower("server shut down", "consistency: shutdown"),
            ]
            if self.stopped:  # stopped while the request was out: no snapshot, power on
                return orders + self._create_over("failure") + self._fail(self._not_started())
            return orders + [commands.WatchPower()]
        if kind == "power_off":
            self.forced_at = at
            return [commands.WatchPower()]
        if not self.power_on_pending:  # seen running meanwhile
            return []
        self.power_on_sent, self.power_on_later = at, False
        self.powering_on_since = self.powering_on_since or at
        return [commands.WatchPower()]

    def _power_failed(self, event: events.PowerFailed) -> list[commands.Command]:
        kind, problem = event.kind, event.problem
        if kind == "shutdown":
            self.stage = Stage.OVER
            if event.certain:  # nothing was sent, or it was refused: the server runs as it did
                crossed: list[commands.Command] = [commands.CrossOffPoweredOff()]
            else:  # it may have gone out: power on all the same
                self.shut_at, self.power_on_pending = event.at, True
                crossed = []
            failed = f"could not shut the server down: {problem}; no snapshot"
            return [
                *crossed,
                commands.Log(logging.ERROR, f"{self.label}: {failed}"),
                *self._create_over("failure"),
                *self._fail(failed),
            ]
        if kind == "power_off":
            failed = f"could not power the server off: {problem}; no snapshot"
            return [
                commands.Log(logging.ERROR, f"{self.label}: {failed}"),
                *self._create_over("failure"),
                *self._fail(failed),
            ]
        if not self.power_on_pending:  # seen running meanwhile
            return []
        self.powering_on_since = self.powering_on_since or event.at
        self.power_on_sent, self.power_on_later = event.at, True
        if self._power_on_given_up(event.at):
            return self._power_on_over(f"could not power the server on: {problem}")
        wait_for = consistency.power_on_wait(self.power_on_tries, self.poll_interval)
        self.power_on_tries += 1
        return [
            commands.Log(
                logging.WARNING,
                f"{self.label}: could not power the server on ({problem}); "
                f"asking again in {wait_for:.1f}s",
            ),
            commands.PowerLater("power_on", event.at + wait_for),
            commands.WatchPower(),  # refused, perhaps, because an earlier one worked
        ]

    def _power_on_given_up(self, at: float) -> bool:
        rule = consistency.shuts_down(self.target) or Consistency()
        since = self.powering_on_since if self.powering_on_since is not None else at
        return consistency.power_on_given_up(rule, self.creation_timeout, since, at)

    def _power_seen(self, status: str | None, at: float) -> list[commands.Command]:
        if self.stage is Stage.SHUTTING_DOWN and not self.powering_on:
            return self._shutdown_seen(status, at)
        if not self.power_on_pending or self.power_on_sent is None:
            return []
        if self.power_on_sent == IN_FLIGHT:
            return []  # a power on is on its way: its reply watches again
        if consistency.is_running(status):
            rule = consistency.shuts_down(self.target) or Consistency()
            sure = self.shut_at is None or self.seen_off
            if consistency.running_for_sure(rule, sure, self.power_on_sent, at):
                return self._power_on_over(None, at)
            return [commands.WatchPower()]  # its shutdown may still be under way
        if self._power_on_given_up(at):
            return self._power_on_over(f"server still {status or 'not listed'}")
        if self.power_on_later:
            return [commands.WatchPower()]
        if consistency.is_off(status) and consistency.power_on_again(self.power_on_sent, at):
            # off still, a while after the power on: it failed, or never arrived; again
            self.power_on_sent = IN_FLIGHT
            return [commands.Power("power_on")]
        return [commands.WatchPower()]

    def _shutdown_seen(self, status: str | None, at: float) -> list[commands.Command]:
        rule = consistency.shuts_down(self.target)
        if consistency.is_off(status):
            self.stage, self.seen_off = Stage.QUEUED, True
            off = f"off after {at - self.shut_at:.1f}s"
            return [
                commands.Log(logging.INFO, f"{self.label}: the server is {off}"),
                commands.Queue(front=True),
            ]
        if self.forced_at is not None:
            if consistency.wait_ran_out(rule, self.forced_at, at):
                failed = (
                    f"the server was not off {rule.timeout:g}s after its power off; no snapshot"
                )
                return self._shutdown_over(failed)
            return [commands.WatchPower()]
        if not consistency.wait_ran_out(rule, self.shut_at, at):
            return [commands.WatchPower()]
        if rule.force:
            return [
                commands.Log(
                    logging.WARNING,
                    f"{self.label}: the server did not shut down within {rule.timeout:g}s; "
                    "powering it off (force)",
                ),
                commands.RecordPower("server powered off", "consistency: shutdown, force"),
                commands.Power("power_off"),
            ]
        return self._shutdown_over(
            f"the server did not shut down within {rule.timeout:g}s; no snapshot "
            "(consistency: {mode: shutdown, force: true} powers it off then)"
        )

    def _shutdown_over(self, failed: str) -> list[commands.Command]:
        self.stage = Stage.OVER
        return [
            commands.Log(logging.ERROR, f"{self.label}: {failed}"),
            *self._create_over("failure"),
            *self._fail(failed),
        ]

    def _power_on_over(self, problem: str | None, at: float = 0.0) -> list[commands.Command]:
        """The power on is over: seen running (`problem` None), or given up (the journal
        keeps the entry; the next run powers it on). The after hook waiting for it runs."""
        self.power_on_pending, self.power_on_later = False, False
        self.power_on_sent = self.powering_on_since = None
        orders: list[commands.Command] = []
        if problem is None:
            if self.shut_at is not None:
                self.downtime = round(at - self.shut_at, 1)
            note = "" if self.downtime is None else f" ({self.downtime:g}s off)"
            why = (
                "left off by an interrupted run"
                if self.shut_at is None
                else "consistency: shutdown"
            )
            orders += [
                commands.CrossOffPoweredOff(),
                commands.Log(logging.INFO, f"{self.label}: the server runs again{note}"),
                commands.RecordPower("server powered on", f"{why}{note}"),
            ]
        else:
            problem = f"{problem}; the journal keeps it: the next run powers it on"
            self.errors.append(problem)
            orders.append(commands.Log(logging.ERROR, f"{self.label}: {problem}"))
        if self.after_deferred:
            self.after_deferred = False
            orders.append(commands.RunAfter(*self.after_for))
        if self.stage is Stage.OWED_POWER:
            if problem is not None:
                return orders + self._fail("no snapshot while its server is off")
            if self.stopped:
                return orders + self._fail(self._not_started())
            if self.after_pending:
                self.stage = Stage.OWED_AFTER
                return orders
            self.stage = Stage.QUEUED
            return orders + [commands.Queue()]
        return orders + self._maybe_finish()

    # -- the end --------------------------------------------------------------------------

    def _abandon(self, error: str) -> list[commands.Command]:
        if self.stage is Stage.DONE:
            return []
        self.errors.append(error)
        self.stage, self.deletions_left, self.after_pending = Stage.OVER, 0, False
        if self.power_on_pending:
            self.power_on_pending = False
            self.errors.append(
                f"server {self.target.server_id} may still be off: the journal keeps it and the "
                "next run powers it on"
            )
        return self._maybe_finish()

    def _fail(self, error: str) -> list[commands.Command]:
        if self.stage is not Stage.DONE:  # already done: it fails, but is not finished again
            self.stage = Stage.OVER
        self.errors.append(error)
        return self._maybe_finish()

    def _maybe_finish(self) -> list[commands.Command]:
        """Finish the target once its create, its deletions and its after hook are all over."""
        if (
            self.stage is not Stage.OVER
            or self.deletions_left
            or self.after_pending
            or self.power_on_pending
        ):
            return []
        self.stage = Stage.DONE
        problems = filter(None, (self.plan.refusal, *self.plan.problems))
        return [
            *(commands.Log(logging.ERROR, f"{self.label}: {problem}") for problem in problems),
            commands.Finished(),
        ]

    def outcome(self) -> Outcome:
        errors = list(self.errors)
        for problem in filter(None, (self.plan.refusal, *self.plan.problems)):
            errors.append(problem)
        remaining = _managed(self.plan, self.created) - len(self.deleted)
        # in the plan's order
        deleted = tuple(
            a.snapshot for a in self.plan.of_kind(ActionKind.DELETE) if a.snapshot in self.deleted
        )
        # Withheld deletions alone make it partial: done as far as it safely could, not failed.
        partial = self.plan.withheld is not None and not errors
        if self.plan.withheld is not None:
            errors.append(f"deletions withheld: {self.plan.withheld}")
        return Outcome(
            self.plan,
            ok=not errors,
            created=self.created,
            deleted=deleted,
            remaining=remaining,
            error="; ".join(errors) or None,
            partial=partial,
            relabelled=tuple(a for a in self.plan.actions if a in self.relabelled),
            copied_to=tuple(r for r in self.target.copies if r in self.copied),
            downtime_seconds=self.downtime,
        )


def target_label(plan: TargetPlan) -> str:
    """How log lines name a target: its name, server and cloud."""
    t = plan.target
    return f"{t.name} ({t.server_name}, {t.provider} {t.server_id})"


def _managed(plan: TargetPlan, created: Snapshot | None = None) -> int:
    """How many managed snapshots the plan saw, the one it would create not counted, and
    `created` if this run made it."""
    seen = sum(1 for a in plan.actions if a.snapshot.managed and a.kind is not ActionKind.CREATE)
    return seen + (created is not None and created.managed)
