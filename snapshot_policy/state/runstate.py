"""What earlier runs saw and made, kept beside the lock file: a second source, so that one
odd listing cannot decide alone (docs/promises.md §5).

- When each server with our snapshots was first found missing from its account's listing.
  Its snapshots become prunable orphans only once it has stayed missing for a grace
  period: a listing that comes back empty once proves nothing.
- When this tool last made a snapshot of each server. A snapshot listing that suddenly
  lacks it must not make the schedule think none was made.
- Each target's last run on each server (when, and whether it succeeded, with the error),
  and its last restore drill: what `status` reports, and when the next drill is due.

- What each Hetzner account's price list said, and when it was read (issue 23, item 3): a
  plan within a day of it reads no price again (core/pricing.py).

An unreadable file counts as empty: at worst orphans wait one more grace period and one
extra snapshot is made. Entries older than KEEP are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from snapshot_policy.state import statefiles

KEEP = timedelta(days=400)
Server = tuple[str, str]  # (account, server id)
Subject = tuple[str, str, str]  # (account, server id, target)


@dataclass(frozen=True)
class LastRun:
    """A target's last apply on one server: when it finished, and its error if it failed."""

    when: datetime
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class LastDrill:
    """A target's last restore drill on one server."""

    when: datetime
    passed: bool
    snapshot_id: str
    restore_seconds: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class ReadPrice:
    """What an account's price list said a GB of snapshots costs a month, net, and when."""

    per_gb_month: float
    currency: str
    read: datetime


class RunState:
    def __init__(self, path: str | Path, now: datetime):
        self._path = Path(path)
        document = self._read()
        oldest = now - KEEP
        self.absent_since: dict[Server, datetime] = _times(document.get("absent_since"), oldest)
        self.last_made: dict[Server, datetime] = _times(document.get("last_made"), oldest)
        self.last_runs: dict[Subject, LastRun] = _records(document.get("last_runs"), LastRun)
        self.last_drills: dict[Subject, LastDrill] = _records(
            document.get("last_drills"), LastDrill
        )
        self.prices: dict[str, ReadPrice] = _prices(document.get("prices"))

    def record_made(self, account: str, server_id: str, when: datetime) -> None:
        self.last_made[(account, server_id)] = max(
            when, self.last_made.get((account, server_id), when)
        )

    def record_run(self, account: str, server_id: str, target: str, run: LastRun) -> None:
        self.last_runs[(account, server_id, target)] = run

    def record_drill(self, account: str, server_id: str, target: str, drill: LastDrill) -> None:
        self.last_drills[(account, server_id, target)] = drill

    def record_price(self, account: str, price: ReadPrice) -> None:
        self.prices[account] = price

    def exists(self) -> bool:
        """Whether a run has written the file already."""
        return self._path.exists()

    def save_prices(self) -> None:
        """Write only the prices into the file as it is now: for a plan, which holds the lock
        for no longer than this and must not put back what it read of the rest."""
        document = self._read()
        document["prices"] = self._prices_document()
        statefiles.write_atomic(self._path, json.dumps(document, indent=1), "run state")

    def _prices_document(self) -> list:
        return [
            [account, {**asdict(p), "read": p.read.isoformat()}]
            for account, p in sorted(self.prices.items())
        ]

    def record_absent(self, account: str, absent: Iterable[str], now: datetime) -> None:
        """Set the account's missing servers to `absent`: new ones from `now`, known ones
        from when they were first missed; a server listed again is forgotten."""
        absent = set(absent)
        kept = {k: v for k, v in self.absent_since.items() if k[0] != account or k[1] in absent}
        self.absent_since = kept | {(account, s): now for s in absent if (account, s) not in kept}

    def save(self) -> None:
        document = {
            name: [[a, s, t.isoformat()] for (a, s), t in sorted(entries.items())]
            for name, entries in (
                ("absent_since", self.absent_since),
                ("last_made", self.last_made),
            )
        }
        for name, records in (("last_runs", self.last_runs), ("last_drills", self.last_drills)):
            document[name] = [
                [*subject, {**asdict(record), "when": record.when.isoformat()}]
                for subject, record in sorted(records.items())
            ]
        document["prices"] = self._prices_document()
        statefiles.write_atomic(self._path, json.dumps(document, indent=1), "run state")

    def _read(self) -> dict:
        """Raise UnsafeStateFile if the file is a link, another user's or writable by others:
        its records could be someone else's, and saving would refuse it only after the run."""
        try:
            document = json.loads(statefiles.read_text(self._path, "run state"))
        except statefiles.UnsafeStateFile:
            raise
        except (OSError, ValueError):
            return {}
        return document if isinstance(document, dict) else {}


def _times(entries: object, oldest: datetime) -> dict[Server, datetime]:
    found = {}
    for entry in entries if isinstance(entries, list) else []:
        try:
            account, server_id, text = entry
            when = datetime.fromisoformat(text)
            if when.tzinfo is not None and when > oldest:
                found[(str(account), str(server_id))] = when
        except (TypeError, ValueError):
            continue
    return found


def _records(entries: object, kind: type) -> dict[Subject, object]:
    """Read `[account, server id, target, {fields}]` entries; a malformed one is skipped (at
    worst a drill comes due early, or status says it knows no last run)."""
    found = {}
    for entry in entries if isinstance(entries, list) else []:
        try:
            account, server_id, target, fields = entry
            when = datetime.fromisoformat(fields["when"])
            if when.tzinfo is None:
                continue
            record = kind(**{**fields, "when": when})
            if not _well_typed(record):
                continue
            found[(str(account), str(server_id), str(target))] = record
        except (TypeError, ValueError, KeyError):
            continue
    return found


_TYPES = {
    "ok": (bool,),
    "passed": (bool,),
    "snapshot_id": (str,),
    "error": (str, type(None)),
    "restore_seconds": (int, float, type(None)),
}


def _well_typed(record: object) -> bool:
    """Whether each field of a record read back has the type it is written with: an edited
    one ("passed": "no", a restore time in words) would be believed, or break the status
    that formats it."""
    return all(
        isinstance(value, _TYPES[name])
        and not (name == "restore_seconds" and isinstance(value, bool))
        for name, value in asdict(record).items()
        if name in _TYPES
    )


def _prices(entries: object) -> dict[str, ReadPrice]:
    """Read `[account, {per_gb_month, currency, read}]` entries; a malformed one is skipped
    (the price is read again)."""
    found = {}
    for entry in entries if isinstance(entries, list) else []:
        try:
            account, fields = entry
            read = datetime.fromisoformat(fields["read"])
            amount, currency = float(fields["per_gb_month"]), str(fields["currency"])
            if read.tzinfo is None or not amount >= 0 or len(currency) != 3:
                continue
            found[str(account)] = ReadPrice(amount, currency, read)
        except (TypeError, ValueError, KeyError):
            continue
    return found
