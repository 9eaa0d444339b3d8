"""What happens to a target during apply: the events its lifecycle takes
(`lifecycle.Lifecycle.on`). The executor makes them from replies, hook results and the stop;
times come with them, so the lifecycle reads no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from snapshot_policy.core.model import (
    PlanAction,
    ProviderError,
    Snapshot,
    StartedSnapshot,
)


@dataclass(frozen=True)
class Begin:
    """The journal is settled: begin. `busy` is what the server is busy with ("snapshot" or
    the cloud's action type; None: free or unknown). `at` is the executor's monotonic time."""

    now: datetime
    at: float
    busy: str | None = None


@dataclass(frozen=True)
class AfterOwed:
    """An interrupted run ran the before hook for `snapshot_name` at `began`, never the after."""

    snapshot_name: str
    began: datetime


@dataclass(frozen=True)
class MarkFailed:
    """Marking the snapshot an interrupted run left (`Mark`) failed."""

    error: ProviderError


@dataclass(frozen=True)
class WaitOver:
    """A busy server's wait is over: ask again."""


@dataclass(frozen=True)
class Turn:
    """Its turn to start came: a slot is free and the budget allows a request."""


@dataclass(frozen=True)
class BeforeRan:
    """The before hook is over: `problem` says how it failed (None: it succeeded); `ran` is
    False when it was not run because the run was stopping. `stopped` names the stop, if any."""

    problem: str | None
    ran: bool = True
    stopped: str = ""


@dataclass(frozen=True)
class AfterRan:
    problem: str | None
    stopped: str = ""


@dataclass(frozen=True)
class Started:
    """The start was accepted; it was sent at `sent` (monotonic)."""

    started: StartedSnapshot
    sent: float


@dataclass(frozen=True)
class Refused:
    """The start was refused because the server is busy: nothing was started. `at` is monotonic."""

    error: ProviderError
    at: float


@dataclass(frozen=True)
class BusyListed:
    """After a refusal (`CheckBusy`): what the busy listing says the server is busy with."""

    busy: str
    at: float


@dataclass(frozen=True)
class Made:
    snapshot: Snapshot
    now: datetime


@dataclass(frozen=True)
class CreateFailed:
    """The start or the wait failed (or timed out): the snapshot was not confirmed."""

    error: ProviderError


@dataclass(frozen=True)
class StartCrashed:
    """A bug while starting: `reason` says what it was."""

    reason: str


@dataclass(frozen=True)
class Deleted:
    action: PlanAction


@dataclass(frozen=True)
class DeleteFailed:
    action: PlanAction
    error: ProviderError


@dataclass(frozen=True)
class DeleteCrashed:
    """A bug while deleting: the journal keeps the deletion for the next run to check."""

    reason: str


@dataclass(frozen=True)
class Relabelled:
    """The marks of a MARK_PENDING, UNMARK_PENDING or UNPIN action are written."""

    action: PlanAction


@dataclass(frozen=True)
class RelabelFailed:
    action: PlanAction
    error: ProviderError


@dataclass(frozen=True)
class Copied:
    """The transfer of its snapshot to `region` finished: the copy exists."""

    region: str
    now: datetime


@dataclass(frozen=True)
class CopyFailed:
    """The transfer to `region` could not be started, ended errored, or timed out."""

    region: str
    error: ProviderError
    now: datetime


@dataclass(frozen=True)
class Signal:
    """The run was told to stop (`reason` names the signal) and the hooks running then were
    killed. `unsent` is how many of its deletions were queued and not yet sent."""

    reason: str
    unsent: int = 0


@dataclass(frozen=True)
class Abandon:
    """A bug stopped the account: what is unfinished fails with `error`."""

    error: str


@dataclass(frozen=True)
class PoweredOffOwed:
    """The journal says a killed run shut this server down at `since` (for `target`) and never
    saw it running again (docs/promises.md §5.17)."""

    target: str
    since: datetime


@dataclass(frozen=True)
class PowerSent:
    """A power action (`kind`: shutdown, power_off, power_on) was accepted; sent at `at`."""

    kind: str
    at: float


@dataclass(frozen=True)
class PowerFailed:
    """A power action failed: `certain` when it surely had no effect (refused, or the journal
    could not be written before a shutdown, so none was sent)."""

    kind: str
    problem: str
    certain: bool
    at: float


@dataclass(frozen=True)
class PowerSeen:
    """One round of the account's server listing: the server's power state (None: not listed,
    or the listing failed). Each answers one `WatchPower`."""

    status: str | None
    at: float


Event = (
    Begin
    | AfterOwed
    | MarkFailed
    | WaitOver
    | Turn
    | BeforeRan
    | AfterRan
    | Started
    | Refused
    | BusyListed
    | Made
    | CreateFailed
    | StartCrashed
    | Deleted
    | DeleteFailed
    | DeleteCrashed
    | Relabelled
    | RelabelFailed
    | Copied
    | CopyFailed
    | Signal
    | Abandon
    | PoweredOffOwed
    | PowerSent
    | PowerFailed
    | PowerSeen
)
