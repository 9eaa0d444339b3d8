"""What a target's lifecycle asks the executor to do: the commands `lifecycle.Lifecycle.on`
and `settlement.settle` return, carried out in order by `execute.AccountRun`."""

from __future__ import annotations

from dataclasses import dataclass

from snapshot_policy.core.model import (
    PlanAction,
    Snapshot,
    StartedSnapshot,
)


@dataclass(frozen=True)
class Log:
    level: int
    message: str


@dataclass(frozen=True)
class Record:
    """Write an audit line; with `once`, not if a line already says it (a killed run's)."""

    event: str
    snapshot: Snapshot
    reason: str
    once: bool = False


@dataclass(frozen=True)
class Mark:
    """Give a snapshot an interrupted run started the target's marker; if that fails, tell
    the lifecycle (`MarkFailed`) and carry out nothing more of the settlement."""

    snapshot: Snapshot


@dataclass(frozen=True)
class CrossOffStart:
    """Cross the start of `name` off the journal: marked, or certainly never made."""

    name: str


@dataclass(frozen=True)
class CrossOffDeletion:
    snapshot_id: str


@dataclass(frozen=True)
class CrossOffAfter:
    """Cross off the target's owed after hook: it ran."""


@dataclass(frozen=True)
class Queue:
    """Queue it to start, at the front when its before hook just ran."""

    front: bool = False


@dataclass(frozen=True)
class AskAgain:
    """Its server is busy: `WaitOver` once the monotonic time `at` has come."""

    at: float


@dataclass(frozen=True)
class CheckBusy:
    """Read what its server is busy with (one listing for every refusal), then `BusyListed`."""


@dataclass(frozen=True)
class RunBefore:
    """Write the owed after hook in the journal (when one is configured), run the before hook
    unless the run is stopping, then `BeforeRan`."""


@dataclass(frozen=True)
class Start:
    """Write the start in the journal, then send it; then `Started`, `Refused`, `CreateFailed`."""

    name: str
    reason: str


@dataclass(frozen=True)
class Poll:
    """Poll the snapshot until `Made` or `CreateFailed` (a timeout, counted from `sent`, too)."""

    started: StartedSnapshot
    sent: float


@dataclass(frozen=True)
class RunAfter:
    status: str
    snapshot_name: str


@dataclass(frozen=True)
class Delete:
    """Write the deletion in the journal, then send it; then `Deleted` or `DeleteFailed`."""

    action: PlanAction


@dataclass(frozen=True)
class Relabel:
    """Write the marks a MARK_PENDING, UNMARK_PENDING or UNPIN action asks for (and for UNPIN
    lift the delete protection the pin set); then `Relabelled` or `RelabelFailed`. Sent where
    deletions are, in the same budget; nothing is deleted (docs/promises.md §5.16)."""

    action: PlanAction


@dataclass(frozen=True)
class Transfer:
    """Copy the snapshot to `region` (DigitalOcean's image transfer), then wait for it with
    the account's batched polls; then `Copied` or `CopyFailed`."""

    snapshot: Snapshot
    region: str


@dataclass(frozen=True)
class Progress:
    stage: str


@dataclass(frozen=True)
class Finished:
    """The target is done: report it done, or failed if its outcome has errors."""


@dataclass(frozen=True)
class Power:
    """Send a power action (`kind`: shutdown, power_off, power_on); a shutdown is written in
    the journal first (`powered_off`), and not sent if it cannot be; then `PowerSent` or
    `PowerFailed`."""

    kind: str


@dataclass(frozen=True)
class PowerLater:
    """Send the power action `kind` once the monotonic time `at` has come."""

    kind: str
    at: float


@dataclass(frozen=True)
class WatchPower:
    """Read the server's power state in the account's next listing round: one `PowerSeen`."""


@dataclass(frozen=True)
class CrossOffPoweredOff:
    """Cross the server's `powered_off` entry off the journal: it was seen running again."""


@dataclass(frozen=True)
class RecordPower:
    """Write an audit line about the server's power (`event`: "server shut down", …)."""

    event: str
    reason: str


Command = (
    Log
    | Record
    | Mark
    | CrossOffStart
    | CrossOffDeletion
    | CrossOffAfter
    | Queue
    | AskAgain
    | CheckBusy
    | RunBefore
    | Start
    | Poll
    | RunAfter
    | Delete
    | Relabel
    | Transfer
    | Progress
    | Finished
    | Power
    | PowerLater
    | WatchPower
    | CrossOffPoweredOff
    | RecordPower
)
