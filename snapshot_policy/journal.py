"""Snapshots this tool started but has not yet marked as its own.

DigitalOcean lets a snapshot be tagged only once it exists, so a run killed while waiting
leaves an untagged snapshot that nothing proves is ours. Each start is written here first
and crossed off once the snapshot is marked; the next run adopts a snapshot with exactly a
pending name, of the same server, and marks it — never duplicating it, never leaking it.
A start that is not listed yet counts as a snapshot still being created, but only while it
is younger than the creation timeout: after that it can no longer be running. Entries are
kept for a month, so a snapshot that finished unmarked is adopted however late the next run.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timedelta
from pathlib import Path


KEEP = timedelta(days=31)


class Journal:
    def __init__(self, path: str | Path, in_flight: timedelta, now: datetime):
        self._path = Path(path)
        self._lock = threading.Lock()
        self._entries = self._read(now - KEEP)
        self._running_since = now - in_flight

    def pending(self, account: str, server_id: str) -> dict[str, datetime]:
        """Return the names started for this server and not yet marked, with their start times."""
        with self._lock:
            mine = (e for e in self._entries if (e["account"], e["server_id"]) == (account, server_id))
            return {e["name"]: datetime.fromisoformat(e["started"]) for e in mine}

    def in_flight(self, account: str, server_id: str) -> dict[str, datetime]:
        """Return the pending starts that may still be running: younger than the creation timeout."""
        return {name: started for name, started in self.pending(account, server_id).items() if started > self._running_since}

    def started(self, account: str, server_id: str, name: str, when: datetime) -> None:
        self._change(lambda entries: entries + [{"account": account, "server_id": server_id, "name": name, "started": when.isoformat()}])

    def marked(self, account: str, server_id: str, name: str) -> None:
        key = (account, server_id, name)
        self._change(lambda entries: [e for e in entries if (e["account"], e["server_id"], e["name"]) != key])

    def _change(self, edit) -> None:
        with self._lock:
            self._entries = edit(self._entries)
            self._path.parent.mkdir(parents=True, exist_ok=True)
            spare = self._path.with_name(self._path.name + ".tmp")
            spare.write_text(json.dumps(self._entries, indent=1), encoding="utf-8")
            os.replace(spare, self._path)  # never a half-written journal, even if killed here

    def _read(self, oldest: datetime) -> list[dict]:
        try:
            entries = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            return []  # unreadable: at worst an interrupted snapshot stays unadopted
        fresh = []
        for entry in entries if isinstance(entries, list) else []:
            try:
                if datetime.fromisoformat(entry["started"]) > oldest:
                    fresh.append({k: str(entry[k]) for k in ("account", "server_id", "name", "started")})
            except (KeyError, TypeError, ValueError):
                continue
        return fresh
