"""Deleting the drill servers earlier runs left, before a run drills (docs/promises.md §5,
invariant 14): no drill server outlives the next run.

Per account, the journal's open drill entries and one listing of its drill servers go to
`drills.leftovers`, which says what to delete (journaled, listed, carrying our marks), what to
cross off (certainly gone), what to wait for, and what to report only (our drill marks and no
journal entry; renamed; marked another owner's). Deletion goes through
`provider.delete_drill_server`, which reads the server again first. What cannot be deleted,
or cannot be listed, is a `Leftover` with an error: its target fails, and the next run tries
again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from snapshot_policy.core import drills
from snapshot_policy.core.model import Clock, MadeServer, ProviderError
from snapshot_policy.edges.providers import Provider
from snapshot_policy.state.audit import AuditLog, DrillServer
from snapshot_policy.state.journal import Journal

log = logging.getLogger(__name__)
KILLED_DELETE = "its DELETE was sent by an interrupted run (deleted by an interrupted run)"
"""The reason audited for a drill server a killed run sent the DELETE of and did not audit."""


@dataclass(frozen=True)
class Leftover:
    """A drill server an earlier run left, and what this run did about it: `deleted`, or
    `error` says why not (a failed delete; a server we may not delete, reported only)."""

    account: str
    target: str
    name: str
    server_id: str | None
    deleted: bool
    error: str | None = None


@dataclass
class Cleanup:
    """The clearing of what earlier runs left, for one run (see the module docstring)."""

    providers: Mapping[str, Provider]
    """By account name."""
    journal: Journal
    audit: AuditLog
    now: Clock
    owner: str

    def run(self, accounts: Iterable[str]) -> list[Leftover]:
        """Delete the drill servers earlier runs left in `accounts` (those with a provider
        here), and those with open journal entries: journaled, listed, and carrying our
        marks (`drills.leftovers`). Cross off what is certainly gone; report servers with
        our drill marks the journal does not name, never deleting them."""
        names = sorted({*accounts, *self.journal.drill_accounts()})
        found: list[Leftover] = []
        for account in names:
            provider = self.providers.get(account)
            open_entries = self.journal.open_drills(account)
            if provider is None:
                for entry in open_entries:
                    log.warning(
                        "drill server %s (account %s) left by an earlier run: the account is "
                        "not in this run; a run that includes it deletes it",
                        entry.name,
                        account,
                    )
                continue
            found += self._clear_account(account, provider, open_entries)
        return found

    def _clear_account(self, account: str, provider: Provider, open_entries) -> list[Leftover]:
        try:
            listed = provider.drill_servers()
        except ProviderError as error:
            return self._unlisted(account, open_entries, error)
        now = self.now()
        sorted_out = drills.leftovers(open_entries, listed, True, self.owner, provider.name, now)
        found = []
        delete, settle = list(sorted_out.delete), []
        for entry in sorted_out.settle:
            # Absent from the listing: the cloud's word by id first (a listing may lag, or
            # filter by a tag's other capitalization), as the boot poll asks it.
            seen = self._read_by_id(account, provider, entry)
            if seen is None:
                settle.append(entry)
            elif seen is not False:
                delete.append((entry, replace(seen, name=entry.name)))
        for entry, server in delete:
            reason = f"left by an earlier run (requested {entry.when.isoformat()})"
            try:
                journal_deleting(self.journal, account, entry.name)
                provider.delete_drill_server(server, self.owner)
            except ProviderError as error:
                problem = (
                    f"could not delete drill server {server.name} ({server.id}) an earlier run "
                    f"left: {error}; the next run tries again"
                )
                log.error("%s: %s", account, problem)
                found.append(Leftover(account, entry.target, entry.name, server.id, False, problem))
                continue
            self._audit_server(provider, entry, server.id, "drill server deleted", reason)
            self.journal.drill_gone(account, entry.name)  # audited first: a kill loses no line
            log.warning(
                "%s: deleted drill server %s (%s) %s", account, server.name, server.id, reason
            )
            found.append(Leftover(account, entry.target, entry.name, server.id, True))
        for entry in settle:
            if entry.deleting and not self.audit.recorded(
                "drill server deleted", entry.server_id, key="drill_server_id"
            ):  # its DELETE was sent by a run that died before it heard the answer
                self._audit_server(
                    provider, entry, entry.server_id, "drill server deleted", KILLED_DELETE
                )
            self.journal.drill_gone(account, entry.name)
            log.info(
                "%s: drill server %s of an earlier run is not listed: it is gone",
                account,
                entry.name,
            )
        for entry in sorted_out.waiting:
            log.info(
                "%s: drill server %s of an earlier run is not settled yet; the journal keeps it",
                account,
                entry.name,
            )
        for server in sorted_out.unknown:
            problem = (
                f"server {server.name} ({server.id}) carries this configuration's drill marks "
                "but no journal entry names it: not deleted; delete it yourself if it is yours"
            )
            log.warning("%s: %s", account, problem)
            found.append(Leftover(account, "", server.name, server.id, False, problem))
        for server, why in sorted_out.refused:
            problem = f"drill server {server.name} ({server.id}): {why}"
            log.warning("%s: %s", account, problem)
            found.append(Leftover(account, "", server.name, server.id, False, problem))
        return found

    def _unlisted(self, account: str, open_entries, error: ProviderError) -> list[Leftover]:
        """The drill servers could not be listed: what earlier runs left stays, each failing
        its target (like a failed delete: someone should look), and the next run tries again."""
        if not open_entries:
            log.warning("%s: could not list the drill servers: %s", account, error)
            return []
        log.warning(
            "%s: could not list the drill servers (%s): %s, left by earlier runs, not deleted; "
            "the next run tries again",
            account,
            error,
            ", ".join(entry.name for entry in open_entries),
        )
        return [
            Leftover(
                account,
                entry.target,
                entry.name,
                entry.server_id,
                False,
                f"drill server {entry.name} an earlier run left is not deleted: the drill servers "
                f"could not be listed ({error}); the next run tries again",
            )
            for entry in open_entries
        ]

    def _read_by_id(self, account: str, provider: Provider, entry) -> MadeServer | None | bool:
        """The server an entry names by id as the cloud describes it now: None when it is
        certainly gone (or the entry has no id), False when it cannot be read."""
        if not entry.server_id:
            return None
        try:
            return provider.get_server(entry.server_id)
        except ProviderError as error:
            log.warning("%s: could not read drill server %s: %s", account, entry.server_id, error)
            return False

    def _audit_server(self, provider: Provider, entry, server_id, event: str, reason: str) -> None:
        drill = DrillServer(
            entry.target,
            provider.name,
            entry.account,
            entry.source_server_id,
            entry.snapshot_id,
            entry.name,
            server_id,
        )
        try:
            self.audit.record_server(event, drill, reason, self.now())
        except OSError as error:
            log.error("could not write the audit log: %s", error)


def journal_deleting(journal: Journal, account: str, name: str) -> None:
    """Journal that a drill server's DELETE is about to go out, so a run killed before the
    answer leaves the next run to audit it; if that cannot be written, the deletion goes
    ahead (a drill server is better gone) and only its audit may be lost."""
    try:
        journal.drill_deleting(account, name)
    except OSError as error:
        log.error("%s: could not write the journal before deleting %s: %s", account, name, error)
