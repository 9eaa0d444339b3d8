"""The audit log: one JSON line per snapshot created, adopted or deleted, appended as it happens;
and per restore drill, its server created and deleted and its verdict (issue 22).

So an operator can always answer "who deleted this snapshot, and why": each line names the
time, target, provider, snapshot, the reason and the fingerprint of the plan that decided
it. Lines are written the moment the cloud confirmed the change, so a killed run leaves
a true record up to its last action. The file is created readable by its owner only, each line
appended in one write, never through a symbolic link (docs/promises.md §5, invariant 10).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from snapshot_policy.core.model import Snapshot, Target
from snapshot_policy.state import statefiles


@dataclass(frozen=True)
class DrillServer:
    """A drill server as an audit line names it: the target and server it restores, the
    snapshot, and the server made (its id None while the create's reply is not known)."""

    target: str
    provider: str
    account: str
    source_server_id: str
    snapshot_id: str
    server_name: str
    server_id: str | None = None


class AuditLog:
    def __init__(self, path: str | Path, fingerprint: str):
        """Raise UnsafeStateFile if a symbolic link, or a file of another user or writable by
        others, stands at `path`, so a run refuses before it changes anything rather than lose
        its record or add to a forged one."""
        self._path = Path(path)
        self._fingerprint = fingerprint
        self._lock = threading.Lock()
        statefiles.refuse_unsafe(self._path, "audit log")

    def record(
        self, event: str, target: Target, snapshot: Snapshot, reason: str, when: datetime
    ) -> None:
        """Append one line; `event` is created, adopted or deleted. Raise StateFileError (an
        OSError) if it cannot be written."""
        line = {
            "time": when.isoformat(),
            "event": event,
            "target": target.name,
            "provider": target.provider,
            "account": target.account,
            "server_id": target.server_id,
            "server_name": target.server_name,
            "snapshot_id": snapshot.id,
            "snapshot_name": snapshot.name,
            "reason": reason,
            "plan_fingerprint": self._fingerprint,
        }
        with self._lock:
            statefiles.append_text(
                self._path, json.dumps(line, ensure_ascii=False) + "\n", "audit log"
            )

    def record_power(self, event: str, target: Target, reason: str, when: datetime) -> None:
        """Append one line about a server's power (consistency: shutdown): `event` is "server
        shut down", "server powered off", "server powered on" or "server running again".
        Raise StateFileError (an OSError) if it cannot be written."""
        line = {
            "time": when.isoformat(),
            "event": event,
            "target": target.name,
            "provider": target.provider,
            "account": target.account,
            "server_id": target.server_id,
            "server_name": target.server_name,
            "reason": reason,
            "plan_fingerprint": self._fingerprint,
        }
        with self._lock:
            statefiles.append_text(
                self._path, json.dumps(line, ensure_ascii=False) + "\n", "audit log"
            )

    def record_server(
        self,
        event: str,
        drill: DrillServer,
        reason: str,
        when: datetime,
    ) -> None:
        """Append one line about a drill server: `event` is "drill server created" or "drill
        server deleted" (also one an earlier run left). Raise StateFileError (an OSError) if
        it cannot be written."""
        line = {
            "time": when.isoformat(),
            "event": event,
            "target": drill.target,
            "provider": drill.provider,
            "account": drill.account,
            "server_id": drill.source_server_id,
            "drill_server_id": drill.server_id,
            "drill_server_name": drill.server_name,
            "snapshot_id": drill.snapshot_id,
            "reason": reason,
            "plan_fingerprint": self._fingerprint,
        }
        with self._lock:
            statefiles.append_text(
                self._path, json.dumps(line, ensure_ascii=False) + "\n", "audit log"
            )

    def recorded(self, event: str, snapshot_id: str, key: str = "snapshot_id") -> bool:
        """Whether a line already says `event` of the snapshot (or, by `key`, of another
        thing: `drill_server_id`): a run killed between writing it and crossing off its
        journal entry must not have the next run write it again. Read only for what a killed
        run left open, so the whole file is read."""
        try:
            text = statefiles.read_text(self._path, "audit log")
        except FileNotFoundError:
            return False
        except UnicodeDecodeError as error:  # a line cut inside a character (a full disk)
            text = error.object.decode("utf-8", errors="replace")
        quoted = json.dumps(snapshot_id)
        for raw in text.splitlines():
            if quoted not in raw:
                continue
            try:
                line = json.loads(raw)
            except ValueError:  # a line cut short by a crash says nothing
                continue
            if (
                isinstance(line, dict)
                and line.get("event") == event
                and line.get(key) == snapshot_id
            ):
                return True
        return False
