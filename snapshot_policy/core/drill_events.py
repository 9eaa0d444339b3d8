"""What happens to a restore drill: the events its lifecycle takes
(`drill_lifecycle.DrillLifecycle.on`). The executor (`engine/drill.py`) makes them from
replies, boot polls, the probe and the stop; times come with them, so the lifecycle reads no
clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from snapshot_policy.core.model import MadeServer, ProviderError


@dataclass(frozen=True)
class Turn:
    """A slot is free and the budget allows a request: begin. `now` dates the drill, `at` is
    the executor's monotonic time (the restore time runs from it)."""

    now: datetime
    at: float


@dataclass(frozen=True)
class JournalFailed:
    """The journal could not be written: no create may be sent."""

    error: str


@dataclass(frozen=True)
class Created:
    """The create answered with the server (its id)."""

    server: MadeServer
    at: float


@dataclass(frozen=True)
class CreateFailed:
    """The cloud refused the create for certain: no server exists."""

    error: ProviderError


@dataclass(frozen=True)
class CreateLost:
    """The create failed without certainty (no reply, a 5xx) and the provider found no
    server of that name: one may yet appear."""

    error: str


@dataclass(frozen=True)
class Running:
    """The listing shows the server running."""

    server: MadeServer
    at: float


@dataclass(frozen=True)
class BootFailed:
    """The server will not run: its create action failed, or it vanished from the listing."""

    reason: str


@dataclass(frozen=True)
class BootTimeout:
    """It was not running `boot_timeout` seconds after the create was sent."""


@dataclass(frozen=True)
class ProbeRan:
    """The probe is over: `problem` says how it failed, None when it succeeded."""

    problem: str | None


@dataclass(frozen=True)
class Found:
    """After a lost create reply, the listing names a server with the drill's exact name."""

    server: MadeServer


@dataclass(frozen=True)
class NotFound:
    """After a lost create reply, a complete listing names no server with the drill's name."""


@dataclass(frozen=True)
class Deleted:
    """The server is confirmed gone (deleted, or already absent: 404)."""


@dataclass(frozen=True)
class DeleteFailed:
    """The delete failed (or was refused): the server may still exist."""

    error: str


@dataclass(frozen=True)
class Marked:
    """The verdict is on the snapshot."""


@dataclass(frozen=True)
class MarkFailed:
    error: str


@dataclass(frozen=True)
class NoRoom:
    """The drill cannot begin: the account's slots are held by drill servers that could not
    be deleted (`reason` says which), and no slot will free in this run."""

    reason: str


@dataclass(frozen=True)
class Signal:
    """The run was told to stop (SIGTERM, SIGINT): `reason` names the signal."""

    reason: str


Event = (
    Turn
    | JournalFailed
    | Created
    | CreateFailed
    | CreateLost
    | Running
    | BootFailed
    | BootTimeout
    | ProbeRan
    | Found
    | NotFound
    | Deleted
    | DeleteFailed
    | Marked
    | MarkFailed
    | NoRoom
    | Signal
)
