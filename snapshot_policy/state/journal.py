"""Snapshots this tool started but has not yet marked as its own, and deletions it sent
but has not yet seen confirmed.

DigitalOcean lets a snapshot be tagged only once it exists, so a run killed while waiting
leaves an untagged snapshot that nothing proves is ours. Each start is written here first
and crossed off once the snapshot is marked; the next run adopts a snapshot with exactly a
pending name, of the same server, and marks it — never duplicating it, never leaking it.
A start that is not listed yet counts as a snapshot still being created, but only while it
is younger than the creation timeout: after that it can no longer be running. Entries are
kept for a month, so a snapshot that finished unmarked is adopted however late the next run.

A deletion is written here before it is sent and crossed off once confirmed: a run killed
in between leaves the next run to see the snapshot gone and write the audit line.

A start dated in the future (written while the clock ran ahead) is not taken as still
running: it would block its server for as long as the clock was ahead. `future_starts` names
it for a warning, and apply crosses it off once its server was listed: no snapshot the cloud
dates can fit its creation window (ownership.classify), so it can adopt nothing.

A target's `before` hook is written here before it runs, and crossed off once its `after`
hook has run: a run killed in between (SIGKILL, a power cut) leaves the next run to run the
`after` hook first, so a database frozen by `before` is thawed.

A restore drill's server is written here before its create is sent (`drill_requested`),
given its id once the cloud answered (`drill_created`) and crossed off only once its deletion
is confirmed (`drill_gone`): whatever killed a run, the next one finds every drill server it
may have left, by id or by its exact name, and deletes it (docs/promises.md §5, invariant 14).
These entries never expire: a server left running costs money until someone deletes it.

A server `consistency: shutdown` shuts down is written here before the shutdown request is
sent (`powering_off`, at once, even inside `batch()`: no request if it cannot be written) and
crossed off only once the server is seen running again (`powered_on`): a run killed while it
was off leaves the next run to power it on first (docs/promises.md §5.17). These never expire
either: a server left off is an outage until someone powers it on.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from snapshot_policy.core.model import OpenDrill
from snapshot_policy.core.reconcile import CLOCK_TOLERANCE
from snapshot_policy.state import statefiles

log = logging.getLogger(__name__)

KEEP = timedelta(days=31)


class Journal:
    def __init__(self, path: str | Path, in_flight: timedelta, now: datetime):
        self._path = Path(path)
        self._lock = threading.RLock()
        self._batching = threading.local()  # this thread's depth of `batch()` blocks
        self._entries = self._read(now - KEEP)
        self._unwritten = False
        self._running_since = now - in_flight
        self._latest = (
            now + CLOCK_TOLERANCE
        )  # a start dated later was written by a clock that ran ahead
        future = self.future_starts()
        if future:
            log.warning(
                "journal %s: %d snapshot start(s) dated after this run's clock (%s), up to %s: "
                "the clock was ahead when they were written; they are not taken as still running, "
                "and apply crosses them off",
                self._path,
                len(future),
                now.isoformat(),
                max(started for *_, started in future).isoformat(),
            )

    def pending(self, account: str, server_id: str) -> dict[str, datetime]:
        """Return the names started for this server and not yet marked, with their start times."""
        return {
            e["name"]: datetime.fromisoformat(e["started"])
            for e in self._mine(account, server_id)
            if _kind(e) == "start"
        }

    def future_starts(self) -> list[tuple[str, str, str, datetime]]:
        """Return (account, server id, name, start time) of each pending start dated after this
        run's clock (past CLOCK_TOLERANCE): written while the clock ran ahead."""
        with self._lock:
            starts = [
                (e["account"], e["server_id"], e["name"], datetime.fromisoformat(e["started"]))
                for e in self._entries
                if _kind(e) == "start"
            ]
        return [start for start in starts if start[3] > self._latest]

    def deletions(self, account: str, server_id: str) -> dict[str, tuple[str, str]]:
        """Return the snapshot ids whose deletion was sent and not confirmed, with name and
        reason."""
        return {
            e["deleting"]: (e["name"], e.get("reason", ""))
            for e in self._mine(account, server_id)
            if _kind(e) == "deleting"
        }

    def in_flight(self, account: str, server_id: str) -> dict[str, datetime]:
        """Return the pending starts that may still be running: younger than the creation
        timeout, and not dated in the future (a clock that ran ahead proves nothing runs)."""
        return {
            name: started
            for name, started in self.pending(account, server_id).items()
            if self._running_since < started <= self._latest
        }

    def before_ran(
        self, account: str, server_id: str, target: str, name: str, when: datetime
    ) -> None:
        """Note that `target`'s before hook (for snapshot `name`) runs now: its after hook is
        owed."""
        entry = {
            "account": account,
            "server_id": server_id,
            "name": name,
            "started": when.isoformat(),
            "after": target,
        }
        self._change(lambda entries: entries + [entry])

    def after_ran(self, account: str, server_id: str, target: str) -> None:
        key = (account, server_id, target)
        self._change(
            lambda entries: [
                e for e in entries if (e["account"], e["server_id"], e.get("after")) != key
            ]
        )

    def afters_pending(self, account: str, server_id: str) -> dict[str, tuple[str, datetime]]:
        """Return the targets of this server whose before hook ran and after hook has not,
        with the snapshot name and when the before hook began."""
        return {
            e["after"]: (e["name"], datetime.fromisoformat(e["started"]))
            for e in self._mine(account, server_id)
            if _kind(e) == "after"
        }

    def afters_owed(self, account: str, target: str) -> dict[str, tuple[str, datetime]]:
        """Return the servers of `target` whose before hook ran and after hook has not, with
        the snapshot name and when the before hook began."""
        with self._lock:
            owed = [
                e
                for e in self._entries
                if _kind(e) == "after" and (e["account"], e["after"]) == (account, target)
            ]
        return {e["server_id"]: (e["name"], datetime.fromisoformat(e["started"])) for e in owed}

    def started(self, account: str, server_id: str, name: str, when: datetime) -> None:
        self._change(
            lambda entries: (
                entries
                + [
                    {
                        "account": account,
                        "server_id": server_id,
                        "name": name,
                        "started": when.isoformat(),
                    }
                ]
            )
        )

    def marked(self, account: str, server_id: str, name: str) -> None:
        key = (account, server_id, name)
        self._change(
            lambda entries: [
                e
                for e in entries
                if _kind(e) != "start" or (e["account"], e["server_id"], e["name"]) != key
            ]
        )

    def deleting(
        self, account: str, server_id: str, snapshot_id: str, name: str, reason: str, when: datetime
    ) -> None:
        entry = {
            "account": account,
            "server_id": server_id,
            "name": name,
            "started": when.isoformat(),
            "deleting": snapshot_id,
            "reason": reason,
        }
        self._change(lambda entries: entries + [entry])

    def deleted(self, account: str, server_id: str, snapshot_id: str) -> None:
        key = (account, server_id, snapshot_id)
        self._change(
            lambda entries: [
                e for e in entries if (e["account"], e["server_id"], e.get("deleting")) != key
            ]
        )

    def powering_off(self, account: str, server_id: str, target: str, when: datetime) -> None:
        """Note that `target` is about to shut its server down. Written to disk at once, even
        inside `batch()`: the shutdown may be sent only once this returns. Raise
        StateFileError (an OSError) if it cannot be written; the entry is then not kept."""
        entry = {
            "account": account,
            "server_id": server_id,
            "name": target,
            "started": when.isoformat(),
            "powered_off": target,
        }
        with self._lock:
            before = self._entries
            self._entries = [e for e in before if not _is_powered_off(e, account, server_id)]
            self._entries.append(entry)
            try:
                self._write()
            except OSError:
                self._entries = before
                raise

    def powered_on(self, account: str, server_id: str) -> None:
        """Cross off the server's `powered_off` entry: it was seen running again (nothing is
        written when there is none: a journal that could not take it may not take this)."""
        if self.powered_off(account, server_id) is None:
            return
        self._change(
            lambda entries: [e for e in entries if not _is_powered_off(e, account, server_id)]
        )

    def powered_off(self, account: str, server_id: str) -> tuple[str, datetime] | None:
        """The target that shut this server down and when, if it was not seen running since."""
        for e in self._mine(account, server_id):
            if _kind(e) == "powered_off":
                return e["powered_off"], datetime.fromisoformat(e["started"])
        return None

    def left_off(self) -> list[tuple[str, str, str, datetime]]:
        """Every `powered_off` entry: (account, server id, target, when it was shut down)."""
        with self._lock:
            found = [e for e in self._entries if _kind(e) == "powered_off"]
        return [
            (e["account"], e["server_id"], e["powered_off"], datetime.fromisoformat(e["started"]))
            for e in found
        ]

    def drill_requested(
        self,
        account: str,
        target: str,
        server_id: str,
        name: str,
        snapshot_id: str,
        when: datetime,
    ) -> None:
        """Note that a drill server `name` is about to be requested for `target`'s server
        `server_id`, from `snapshot_id`. Written to disk at once, even inside `batch()`: the
        create may be sent only once this returns. Raise StateFileError (an OSError) if it
        cannot be written; the entry is then not kept either."""
        entry = {
            "account": account,
            "server_id": server_id,
            "name": name,
            "started": when.isoformat(),
            "drill": target,
            "snapshot": snapshot_id,
            "drill_server": "",
        }
        with self._lock:
            before = self._entries
            self._entries = before + [entry]
            try:
                self._write()
            except OSError:
                self._entries = before
                raise

    def drill_created(self, account: str, name: str, server_id: str) -> None:
        """Note the id the cloud gave the drill server `name`."""

        def named(entries: list[dict]) -> list[dict]:
            return [
                {**e, "drill_server": server_id} if _is_drill(e, account, name) else e
                for e in entries
            ]

        self._change(named)

    def drill_deleting(self, account: str, name: str) -> None:
        """Note that the DELETE of the drill server `name` is about to be sent: if the run dies
        before it hears the answer, the next run, finding it gone, audits the deletion."""

        def deleting(entries: list[dict]) -> list[dict]:
            return [{**e, "deleting": True} if _is_drill(e, account, name) else e for e in entries]

        self._change(deleting)

    def drill_gone(self, account: str, name: str) -> None:
        """Cross off the drill server `name`: its deletion is confirmed (or it was certainly
        never made)."""
        self._change(lambda entries: [e for e in entries if not _is_drill(e, account, name)])

    def open_drills(self, account: str) -> list[OpenDrill]:
        """Return the drill servers of `account` not yet confirmed gone, oldest first."""
        with self._lock:
            found = [e for e in self._entries if _kind(e) == "drill" and e["account"] == account]
        return sorted(
            (
                OpenDrill(
                    account=e["account"],
                    target=e["drill"],
                    source_server_id=e["server_id"],
                    name=e["name"],
                    snapshot_id=e["snapshot"],
                    when=datetime.fromisoformat(e["started"]),
                    server_id=e["drill_server"] or None,
                    deleting=bool(e.get("deleting")),
                )
                for e in found
            ),
            key=lambda drill: drill.when,
        )

    def drill_accounts(self) -> list[str]:
        """Return the accounts with an open drill server, each once."""
        with self._lock:
            return sorted({e["account"] for e in self._entries if _kind(e) == "drill"})

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Write the changes made in this block once, at its end, instead of once each: a
        run starting a hundred snapshots writes (and syncs) the journal once before sending
        them, not a hundred times."""
        depth = getattr(self._batching, "depth", 0)
        self._batching.depth = depth + 1
        try:
            yield
        finally:
            self._batching.depth = depth
            if depth == 0:
                with self._lock:
                    if self._unwritten:
                        self._write()

    def _mine(self, account: str, server_id: str) -> list[dict]:
        with self._lock:
            return [
                e for e in self._entries if (e["account"], e["server_id"]) == (account, server_id)
            ]

    def _change(self, edit) -> None:
        with self._lock:
            self._entries = edit(self._entries)
            self._unwritten = True
            if not getattr(self._batching, "depth", 0):
                self._write()

    def _write(self) -> None:
        self._unwritten = False
        # Never a half-written journal, even if killed here; never written through a link.
        statefiles.write_atomic(self._path, json.dumps(self._entries, indent=1), "journal")

    def _read(self, oldest: datetime) -> list[dict]:
        """Raise UnsafeStateFile if a symbolic link stands where the journal belongs: the run
        would have to write through it."""
        try:
            entries = json.loads(statefiles.read_text(self._path, "journal"))
        except FileNotFoundError:
            return []
        except statefiles.UnsafeStateFile:
            raise
        except (OSError, ValueError):
            return []  # unreadable: at worst an interrupted snapshot stays unadopted
        fresh = []
        for entry in entries if isinstance(entries, list) else []:
            try:
                # An owed after hook never expires: a frozen server stays frozen however long ago;
                # nor does a drill server: it costs money until it is deleted.
                kind = _kind(entry)
                if datetime.fromisoformat(entry["started"]) > oldest or kind in NEVER_EXPIRE:
                    extra = {
                        "deleting": ("deleting", "reason"),
                        "after": ("after",),
                        "drill": ("drill", "snapshot", "drill_server"),
                        "powered_off": ("powered_off",),
                        "start": (),
                    }[kind]
                    fresh.append(
                        {
                            k: str(entry[k])
                            for k in ("account", "server_id", "name", "started", *extra)
                        }
                    )
                    if kind == "drill" and entry.get("deleting") is True:  # drill_deleting
                        fresh[-1]["deleting"] = True
            except (KeyError, TypeError, ValueError):
                continue
        return fresh


NEVER_EXPIRE = ("after", "drill", "powered_off")


def _kind(entry: dict) -> str:
    """What an entry records: a snapshot start, a deletion sent, an after hook owed, or a
    drill server that may exist."""
    if "drill" in entry:
        return "drill"
    if "powered_off" in entry:
        return "powered_off"
    return "deleting" if "deleting" in entry else "after" if "after" in entry else "start"


def _is_powered_off(entry: dict, account: str, server_id: str) -> bool:
    return _kind(entry) == "powered_off" and (entry["account"], entry["server_id"]) == (
        account,
        server_id,
    )


def _is_drill(entry: dict, account: str, name: str) -> bool:
    return _kind(entry) == "drill" and (entry["account"], entry["name"]) == (account, name)
