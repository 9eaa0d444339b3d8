"""The audit log: one JSON line per snapshot created, adopted or deleted, appended as it happens.

So an operator can always answer "who deleted this snapshot, and why": each line names the
time, target, provider, snapshot, the reason and the fingerprint of the plan that decided
it. Lines are written the moment the cloud confirmed the change, so a killed run leaves
a true record up to its last action.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

from snapshot_policy.model import Snapshot, Target


class AuditLog:
    def __init__(self, path: str | Path, fingerprint: str):
        self._path = Path(path)
        self._fingerprint = fingerprint
        self._lock = threading.Lock()

    def record(self, event: str, target: Target, snapshot: Snapshot, reason: str, when: datetime) -> None:
        """Append one line; `event` is created, adopted or deleted."""
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
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
