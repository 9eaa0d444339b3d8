"""What a restore drill's lifecycle asks the executor to do: the commands
`drill_lifecycle.DrillLifecycle.on` returns, carried out in order by `engine/drill.py`.

`Log`, `Progress` and `Finished` are the snapshot lifecycle's (core/commands.py): a drill
logs, shows its stage and ends as a target does. `Record`, `Mark` and `Delete` only share
their names with those: a drill's audit line, verdict and server are other things."""

from __future__ import annotations

from dataclasses import dataclass

from snapshot_policy.core.commands import Finished, Log, Progress
from snapshot_policy.core.model import MadeServer, ServerRequest


@dataclass(frozen=True)
class Journal:
    """Write the drill server to the journal, on disk, before anything else of this list;
    if it cannot be, take `JournalFailed` and carry out nothing more of the list."""

    request: ServerRequest


@dataclass(frozen=True)
class JournalServer:
    """Note the id the cloud gave the server."""

    server: MadeServer


@dataclass(frozen=True)
class Create:
    request: ServerRequest


@dataclass(frozen=True)
class Boot:
    """Watch the server in the account's boot polls until it runs, fails or times out."""

    server: MadeServer


@dataclass(frozen=True)
class Probe:
    server: MadeServer


@dataclass(frozen=True)
class Find:
    """Look for a server named `name` in the next listing of drill servers (`Found` or
    `NotFound`)."""

    name: str


@dataclass(frozen=True)
class Delete:
    """Delete the server (provider.delete_drill_server: re-read, checked, by id)."""

    server: MadeServer


@dataclass(frozen=True)
class Mark:
    """Write the verdict on the drilled snapshot (ownership.drill_result_labels)."""

    passed: bool


@dataclass(frozen=True)
class Record:
    """Write an audit line: `event` of the drill server, or of the drill's verdict."""

    event: str
    reason: str


@dataclass(frozen=True)
class CrossOff:
    """Cross the drill server off the journal: it is gone, or was never made."""


Command = (
    Journal
    | JournalServer
    | Create
    | Boot
    | Probe
    | Find
    | Delete
    | Mark
    | Record
    | CrossOff
    | Log
    | Progress
    | Finished
)
