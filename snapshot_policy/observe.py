"""Reading the clouds for a run: which servers each target covers, and their snapshots.

Each account is read once — its servers, its snapshots — however many targets use it
(docs/promises.md §8). Failures stay with the targets they concern: a bad token fails that account's
targets; a missing server fails its target. A server claimed by two targets fails both,
since two retention policies over one server's snapshots would delete each other's.

Snapshots carrying our marker whose server is missing from the listing are orphans (docs/promises.md §5):
each such server becomes an orphan target that keeps them all and never gets a new snapshot.
They are pruned to `orphans_keep_last` only when the server's absence is certain: its
account's listing completed, every server a target of that account names was found, and
the server was already missing `ORPHAN_GRACE` before (`absent_since`, from earlier runs).
An empty listing that an API returns once therefore prunes nothing.

Views disagree (docs/promises.md §5, invariant 12): a listing that changed while its pages were read, and
was still changing when read again (`provider.unsettled`), withholds every deletion of its
account this run — creates go on — and makes no absence certain. A DigitalOcean droplet that
names a snapshot its account's listing lacks fails its target: the listing is incomplete
for that server, so nothing is created or deleted for it.

Anything that goes wrong while reading one account, even an exception an SDK was not meant
to raise, becomes that account's targets' failure; the other accounts carry on.

Accounts are read concurrently (up to `ACCOUNT_READERS` at a time; each has its own provider
object), their results then taken in the order the specs name the accounts, so the outcome
does not depend on which answers first. Within an account the listings stay in sequence:
servers, one listing per distinct label selector, snapshots (the adapters read the pages of
each a few at a time, in page order: providers/paging.py). The snapshot listing is grouped
by server once, so each target classifies its own server's snapshots only.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from snapshot_policy.journal import Journal
from snapshot_policy.model import (
    DEFAULT_CREATION_TIMEOUT,
    Account,
    CloudSnapshot,
    ProviderError,
    RetentionPolicy,
    Server,
    Snapshot,
    Target,
    TargetFailure,
    TargetSpec,
)
from snapshot_policy.ownership import by_server, has_marker, snapshots_for
from snapshot_policy.providers import Provider

log = logging.getLogger(__name__)
ORPHAN_GRACE = timedelta(hours=24)
ACCOUNT_READERS = 8
"""Accounts read at the same time: each is a few paginated listings, mostly waiting."""


@dataclass
class Observation:
    """The observed state: targets with their snapshots, and the targets that failed.

    `absent` names, per account whose listing was certain, the servers missing from it that
    have our snapshots: what the run state records for the next run. `withheld` says, per
    account whose listings changed while read, why its deletions are withheld this run.
    """

    observed: list[tuple[Target, list[Snapshot]]] = field(default_factory=list)
    failures: list[TargetFailure] = field(default_factory=list)
    providers: dict[str, Provider] = field(default_factory=dict)
    absent: dict[str, set[str]] = field(default_factory=dict)
    withheld: dict[str, str] = field(default_factory=dict)


def observe(
    specs: Sequence[TargetSpec],
    connect: Callable[[Account], Provider],
    orphans: bool = True,
    orphans_keep_last: int | None = None,
    journal: Journal | None = None,
    absent_since: Mapping[tuple[str, str], datetime] | None = None,
    now: datetime | None = None,
    creation_timeout: timedelta = DEFAULT_CREATION_TIMEOUT,
) -> Observation:
    """Resolve every spec to its servers and classify their snapshots, one listing per account.

    With `orphans`, each account's marked snapshots of missing servers are added as orphan
    targets, prunable only once `absent_since` (account, server id → first missed) shows the
    absence is certain at `now`. The `journal` names snapshots this tool started but could
    not mark: found, and made within `creation_timeout` of their start, they are adopted;
    not listed yet but recent, they count as still being created.
    """
    result = Observation()
    by_account: dict[Account, list[TargetSpec]] = defaultdict(list)
    for spec in specs:
        by_account[spec.account].append(spec)
    reads = _read_accounts(by_account, connect)
    for (account, account_specs), read in zip(by_account.items(), reads):
        if isinstance(read, Exception):
            reason = str(read) if isinstance(read, (ProviderError, ValueError)) else f"unexpected {type(read).__name__} while reading it"
            result.failures += [_failure(s, f"cannot read account {account.name}: {reason}") for s in account_specs]
            continue
        result.providers[account.name] = read.provider
        unsettled = list(read.provider.unsettled)
        if unsettled:
            result.withheld[account.name] = f"deletions withheld: {'; '.join(unsettled)}; two views of account {account.name} disagree"
        targets, incomplete = _listed_completely(read.targets, read.servers, read.listing)
        result.failures += read.failures + incomplete
        if orphans:
            missing = _missing(account, account_specs[0].owner, read.servers, read.listing)
            certain = not read.failures and not unsettled and not incomplete
            if certain:
                result.absent[account.name] = set(missing)
            prunable = {
                server_id for server_id in missing
                if certain and now is not None and absent_since is not None
                and (account.name, server_id) in absent_since and now - absent_since[(account.name, server_id)] >= ORPHAN_GRACE
            }
            targets += _orphans(account, missing, prunable, orphans_keep_last)
        grouped = by_server(read.listing)
        result.observed += [(t, _with_pending(t, grouped.get(t.server_id, []), journal, creation_timeout)) for t in targets]
    return result


@dataclass
class _AccountRead:
    """What one account's listings gave: its provider, servers, resolved targets, snapshots."""

    provider: Provider
    servers: list[Server]
    targets: list[Target]
    failures: list[TargetFailure]
    listing: list[CloudSnapshot]


def _read_accounts(by_account: Mapping[Account, Sequence[TargetSpec]], connect: Callable[[Account], Provider]) -> list[_AccountRead | Exception]:
    """Read every account, several at a time; return each one's read or its exception, in
    the order of `by_account`."""
    if len(by_account) <= 1:
        return [_read_account(account, specs, connect) for account, specs in by_account.items()]
    with ThreadPoolExecutor(max_workers=min(ACCOUNT_READERS, len(by_account)), thread_name_prefix="observe") as pool:
        return list(pool.map(lambda item: _read_account(item[0], item[1], connect), by_account.items()))


def _read_account(account: Account, specs: Sequence[TargetSpec], connect: Callable[[Account], Provider]) -> _AccountRead | Exception:
    """Connect, list the servers, resolve the specs, list the snapshots; any exception is
    returned, not raised: it is this account's alone."""
    try:
        provider = connect(account)
        servers = provider.servers()
        targets, failures = _resolve(provider, servers, account, specs)
        listing = provider.snapshots()
    except Exception as error:  # noqa: BLE001 — one account's surprise stays that account's
        log.debug("reading account %s failed", account.name, exc_info=True)
        return error
    return _AccountRead(provider, list(servers), targets, failures, list(listing))


def _with_pending(target: Target, listing: Sequence[CloudSnapshot], journal: Journal | None, creation_timeout: timedelta) -> list[Snapshot]:
    if journal is None:
        return snapshots_for(target, listing)
    snapshots = snapshots_for(target, listing, journal.pending(target.account, target.server_id), creation_timeout)
    seen = {s.name for s in snapshots}
    in_flight = journal.in_flight(target.account, target.server_id)
    snapshots += [
        Snapshot("", name, started, target.server_id, True, "started by an interrupted run; not listed yet", creating=True)
        for name, started in sorted(in_flight.items())
        if name not in seen
    ]
    return snapshots


def _listed_completely(
    targets: Sequence[Target], servers: Sequence[Server], listing: Sequence[CloudSnapshot]
) -> tuple[list[Target], list[TargetFailure]]:
    """Split the targets into those whose server's own list of snapshots (DigitalOcean's
    `snapshot_ids`) the account listing holds in full, and failures for the others."""
    listed = {s.id for s in listing}
    named = {s.id: s.snapshot_ids for s in servers if s.snapshot_ids is not None}
    complete, failures = [], []
    for target in targets:
        lacking = sorted(set(named.get(target.server_id, ())) - listed)
        if not lacking:
            complete.append(target)
            continue
        ids = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
        reason = (
            f"server {target.server_name} ({target.server_id}) names snapshot(s) {ids} that the account's snapshot "
            "listing lacks: the listing is incomplete, so nothing is created or deleted for it this run"
        )
        failures.append(TargetFailure(target.name, reason, target.account, target.notify, target.server_name, target.provider, target.hooks))
    return complete, failures


def _missing(account: Account, owner: str, servers: Sequence[Server], listing: Sequence[CloudSnapshot]) -> dict[str, list[CloudSnapshot]]:
    """Our snapshots (not another configuration's) of servers that the account's listing lacks, by server id."""
    existing = {s.id for s in servers}
    marked: dict[str, list[CloudSnapshot]] = defaultdict(list)
    for snapshot in listing:
        if snapshot.server_id and snapshot.server_id not in existing and has_marker(account.provider, snapshot, owner):
            marked[snapshot.server_id].append(snapshot)
    return marked


def _orphans(account: Account, missing: Mapping[str, list[CloudSnapshot]], prunable: set[str], keep_last: int | None) -> list[Target]:
    """One orphan target per missing server: pruned to `keep_last` if `prunable`, else all kept."""
    targets = []
    for server_id, snapshots in sorted(missing.items()):
        newest = max(snapshots, key=lambda s: s.created)
        targets.append(Target(
            name="(orphans)",
            provider=account.provider,
            account=account.name,
            server_id=server_id,
            # Our names end in -YYYYmmddHHMMSS; what stands before it was the server's name.
            server_name=re.sub(r"-\d{14}$", "", newest.name),
            retention=RetentionPolicy(keep_last=keep_last or 0) if server_id in prunable else RetentionPolicy(),
            orphan=True,
        ))
    return targets


def _resolve(provider: Provider, servers: Sequence[Server], account: Account, specs: Sequence[TargetSpec]) -> tuple[list[Target], list[TargetFailure]]:
    claimed: dict[str, list[TargetSpec]] = defaultdict(list)
    servers_of: dict[str, list[Server]] = {}
    failures: list[TargetFailure] = []
    selected: dict[str, list[Server]] = {}  # one listing per distinct selector, not per target
    index = _ServerIndex(servers)
    for spec in specs:
        if spec.selector.label_selector:
            selector = spec.selector.label_selector
            if selector not in selected:
                selected[selector] = provider.servers(selector)
            found = selected[selector]
            missing = [] if found else [f"no server matches {spec.selector.describe()}"]
        else:
            found, missing = _pick(index, spec)
        if missing:  # the servers that exist are still snapshotted; the target fails for the rest
            failures.append(_failure(spec, "; ".join(missing)))
        servers_of[spec.name] = found
        for server in found:
            claimed[server.id].append(spec)
    targets = []
    for spec in specs:
        for server in servers_of.get(spec.name, []):
            owners = claimed[server.id]
            if len(owners) > 1:
                names = " and ".join(sorted({o.name for o in owners}))
                failures.append(_failure(spec, f"server {server.name} ({server.id}) is selected by targets {names}; a server may belong to one target only"))
                continue
            targets.append(_target(spec, server))
    return targets, failures


class _ServerIndex:
    """An account's servers by id (the last listed wins) and by name (all, in listing order),
    built once per account so resolving many specs stays linear in the fleet."""

    def __init__(self, servers: Sequence[Server]):
        self.by_id = {s.id: s for s in servers}
        self.by_name: dict[str, list[Server]] = defaultdict(list)
        for server in servers:
            self.by_name[server.name].append(server)


def _pick(index: _ServerIndex, spec: TargetSpec) -> tuple[list[Server], list[str]]:
    """Return the servers a spec names by id or by name, and a sentence for each one missing."""
    if spec.selector.ids:
        by_id = index.by_id
        return [by_id[i] for i in spec.selector.ids if i in by_id], [f"no server with id {i}" for i in spec.selector.ids if i not in by_id]
    found, missing = [], []
    for name in spec.selector.names:
        named = index.by_name.get(name, [])
        found += named
        if not named:
            close = difflib.get_close_matches(name, list(index.by_name), n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            missing.append(f"no server named {name!r}{hint}")
    return found, missing


def _failure(spec: TargetSpec, reason: str) -> TargetFailure:
    return TargetFailure(spec.name, reason, spec.account.name, spec.notify, spec.server_name or "", spec.account.provider, spec.hooks)


def _target(spec: TargetSpec, server: Server) -> Target:
    return Target(
        name=spec.name,
        provider=spec.account.provider,
        account=spec.account.name,
        server_id=server.id,
        server_name=spec.server_name or server.name,
        retention=spec.retention,
        schedule=spec.schedule,
        safety=spec.safety,
        timezone=spec.timezone,
        name_pattern=spec.name_pattern,
        adopt_legacy_names=spec.adopt_legacy_names,
        notify=spec.notify,
        hooks=spec.hooks,
        owner=spec.owner,
    )

