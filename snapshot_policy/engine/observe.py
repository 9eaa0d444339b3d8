"""Reading the clouds for a run: each account's servers and snapshots, then what they show.

Each account is read once — its servers, its snapshots — however many targets use it
(docs/promises.md §8). Failures stay with the targets they concern: a bad token fails that
account's targets. Which servers a target covers (a missing server fails its target, a server
claimed by two targets fails both) is decided by `resolve`; which of our snapshots are
orphans, and when a server's absence is certain enough to prune them, by `orphans`. Both are
pure: this module reads, and hands them the listings.

Views disagree (docs/promises.md §5, invariant 12): a listing that changed while its pages were
read, and was still changing when read again (`provider.unsettled`), withholds every deletion
of its account this run — creates go on — and makes no absence certain.

Anything that goes wrong while reading one account, even an exception an SDK was not meant
to raise, becomes that account's targets' failure; the other accounts carry on.

Accounts are read concurrently (up to `ACCOUNT_READERS` at a time; each has its own provider
object), their results then taken in the order the specs name the accounts, so the outcome
does not depend on which answers first. Within an account the listings stay in sequence:
servers, one listing per distinct label selector, snapshots (the adapters read the pages of
each a few at a time, in page order: edges/providers/paging.py). The snapshot listing is grouped
by server once, so each target classifies its own server's snapshots only.

`status` (issue 22) also needs what the listings already hold: each account's servers and
snapshots (the uncovered servers, the count against `snapshot_limit`), the servers each
label selector of `settings.uncovered.ignore` matches (`also_select`: one listing each, as
a target's selector), and which account could not be read at all.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from snapshot_policy.core import copies
from snapshot_policy.core.model import (
    DEFAULT_CREATION_TIMEOUT,
    DIGITALOCEAN,
    Account,
    CloudSnapshot,
    ProviderError,
    Server,
    Snapshot,
    Target,
    TargetFailure,
    TargetSpec,
    Volume,
)
from snapshot_policy.core.orphans import absence_certain, find_orphans, listed_completely
from snapshot_policy.core.ownership import by_server, snapshots_for
from snapshot_policy.core.resolve import failure, label_selectors, resolve
from snapshot_policy.core.volumes import as_servers, volume_targets
from snapshot_policy.edges.providers import Provider
from snapshot_policy.state.journal import Journal

log = logging.getLogger(__name__)
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
    servers: dict[str, list[Server]] = field(default_factory=dict)
    """Per account read, its whole server listing."""
    snapshots: dict[str, list[CloudSnapshot]] = field(default_factory=dict)
    """Per account read, its whole snapshot listing, whoever made them."""
    selected: dict[str, dict[str, list[Server]]] = field(default_factory=dict)
    """Per account read, the servers each label selector listed (the targets' and
    `also_select`'s)."""
    unreadable: dict[str, str] = field(default_factory=dict)
    """Per account that could not be read, why."""


def observe(
    specs: Sequence[TargetSpec],
    connect: Callable[[Account], Provider],
    orphans: bool = True,
    orphans_keep_last: int | None = None,
    journal: Journal | None = None,
    absent_since: Mapping[tuple[str, str], datetime] | None = None,
    now: datetime | None = None,
    creation_timeout: timedelta = DEFAULT_CREATION_TIMEOUT,
    also_select: Sequence[str] = (),
) -> Observation:
    """Resolve every spec to its servers and classify their snapshots, one listing per account.

    With `orphans`, each account's marked snapshots of missing servers are added as orphan
    targets, prunable only once `absent_since` (account, server id → first missed) shows the
    absence is certain at `now`. The `journal` names snapshots this tool started but could
    not mark: found, and made within `creation_timeout` of their start, they are adopted;
    not listed yet but recent, they count as still being created. `also_select` names label
    selectors to list in every account besides the targets'.
    """
    result = Observation()
    by_account: dict[Account, list[TargetSpec]] = defaultdict(list)
    for spec in specs:
        by_account[spec.account].append(spec)
    reads = _read_accounts(by_account, connect, tuple(also_select))
    for (account, account_specs), read in zip(by_account.items(), reads, strict=True):
        if not isinstance(read, Exception):
            try:
                seen = _account_seen(
                    account,
                    account_specs,
                    read,
                    orphans,
                    orphans_keep_last,
                    journal,
                    absent_since,
                    now,
                    creation_timeout,
                )
            except Exception as error:  # noqa: BLE001 — one account's surprise stays that account's
                log.debug("reading account %s failed", account.name, exc_info=True)
                read = error
        if isinstance(read, Exception):
            reason = _reason(read)
            cannot = f"cannot read account {account.name}: {reason}"
            result.failures += [failure(s, cannot) for s in account_specs]
            result.unreadable[account.name] = reason
            continue
        result.observed += seen.observed
        result.failures += seen.failures
        result.providers.update(seen.providers)
        result.absent.update(seen.absent)
        result.withheld.update(seen.withheld)
        result.servers[account.name] = read.servers
        result.snapshots[account.name] = read.listing
        result.selected[account.name] = read.selected
    return result


def _reason(error: Exception) -> str:
    """What went wrong, for a sentence: a cloud's or a value's own words, else the kind of a
    surprise (its traceback is in the debug log)."""
    if isinstance(error, (ProviderError, ValueError)):
        return str(error)
    return f"unexpected {type(error).__name__} while reading it"


def _account_seen(
    account: Account,
    specs: Sequence[TargetSpec],
    read: _AccountRead,
    orphans: bool,
    orphans_keep_last: int | None,
    journal: Journal | None,
    absent_since: Mapping[tuple[str, str], datetime] | None,
    now: datetime | None,
    creation_timeout: timedelta,
) -> Observation:
    """One account's part of the observation, from its listings (the decisions are the pure
    core's: `resolve`, `orphans`)."""
    seen = Observation(providers={account.name: read.provider})
    unsettled = list(read.provider.unsettled)
    if unsettled:
        seen.withheld[account.name] = (
            f"deletions withheld: {'; '.join(unsettled)}; "
            f"two views of account {account.name} disagree"
        )
    targets, unresolved = resolve(specs, read.servers, read.selected)
    targets, incomplete = listed_completely(targets, read.servers, read.listing)
    # volumes: true — each attached volume a target of its own (core/volumes.py)
    targets, lacking = volume_targets(specs, targets, read.servers, read.volumes)
    seen.failures += unresolved + incomplete + lacking
    if orphans:
        certain = absence_certain(bool(unresolved), bool(unsettled), bool(incomplete or lacking))
        found, absent = find_orphans(
            account,
            specs[0].owner,
            read.servers + as_servers(read.volumes),
            read.listing,
            certain,
            absent_since,
            now,
            orphans_keep_last,
        )
        if absent is not None:
            seen.absent[account.name] = absent
        targets += found
    grouped = by_server(read.listing)
    seen.observed += [
        (t, _with_pending(t, grouped.get(t.server_id, []), journal, creation_timeout))
        for t in targets
    ]
    seen.observed = _with_transfers(read.provider, seen.observed)
    return seen


def _with_transfers(
    provider: Provider, observed: list[tuple[Target, list[Snapshot]]]
) -> list[tuple[Target, list[Snapshot]]]:
    """Each target's newest snapshot that lacks a copy (`copies`), with the regions a
    transfer is running to (`CloudSnapshot.pending_regions`): one look for all of them, and
    none when every copy exists (docs/promises.md §5.15). Transfers that cannot be read count
    as running: nothing is started twice, and the deletions wait as they would anyway."""
    lacking: dict[str, tuple[Target, Snapshot]] = {}
    for target, snapshots in observed:
        found = copies.newest(target, snapshots) if target.copies else None
        if found is not None and found.cloud is not None and copies.missing(target, found):
            lacking[found.id] = (target, found)
    if not lacking:
        return observed
    try:
        running = provider.transfers(sorted(lacking))
    except ProviderError as error:
        log.warning("could not read the transfers of %d snapshot(s): %s", len(lacking), error)
        running = {
            image: dict.fromkeys(copies.missing(target, snapshot), "in-progress")
            for image, (target, snapshot) in lacking.items()
        }
    updated = {}
    for image, (_, snapshot) in lacking.items():
        pending = sorted(
            r for r, status in running.get(image, {}).items() if status == "in-progress"
        )
        cloud = replace(snapshot.cloud, pending_regions=tuple(pending))
        updated[image] = replace(snapshot, cloud=cloud)
    return [
        (target, [updated.get(s.id, s) if s.id else s for s in snapshots])
        for target, snapshots in observed
    ]


@dataclass
class _AccountRead:
    """What one account's listings gave: its provider, its servers, the servers each label
    selector its specs use matched, and its snapshots."""

    provider: Provider
    servers: list[Server]
    selected: dict[str, list[Server]]
    listing: list[CloudSnapshot]
    volumes: list[Volume] = field(default_factory=list)
    """The account's volumes, read only when a spec says `volumes: true` (DigitalOcean);
    its volume snapshots are then in `listing` too."""


def _read_accounts(
    by_account: Mapping[Account, Sequence[TargetSpec]],
    connect: Callable[[Account], Provider],
    also_select: tuple[str, ...] = (),
) -> list[_AccountRead | Exception]:
    """Read every account, several at a time; return each one's read or its exception, in
    the order of `by_account`."""

    def read(item: tuple[Account, Sequence[TargetSpec]]) -> _AccountRead | Exception:
        return _read_account(item[0], item[1], connect, also_select)

    if len(by_account) <= 1:
        return [read(item) for item in by_account.items()]
    with ThreadPoolExecutor(
        max_workers=min(ACCOUNT_READERS, len(by_account)), thread_name_prefix="observe"
    ) as pool:
        return list(pool.map(read, by_account.items()))


def _read_account(
    account: Account,
    specs: Sequence[TargetSpec],
    connect: Callable[[Account], Provider],
    also_select: tuple[str, ...] = (),
) -> _AccountRead | Exception:
    """Connect, list the servers, each label selector the specs (and `also_select`) use, then
    the snapshots; any exception is returned, not raised: it is this account's alone."""
    try:
        provider = connect(account)
        servers = provider.servers()
        selectors = dict.fromkeys([*label_selectors(specs), *also_select])
        selected = {s: list(provider.servers(s)) for s in selectors}
        with_volumes = account.provider == DIGITALOCEAN and any(s.volumes for s in specs)
        # One volume listing and one volume-snapshot listing per account (§5.18, §8).
        volumes = list(provider.volumes()) if with_volumes else []
        listing = provider.snapshots(volumes=True) if with_volumes else provider.snapshots()
    except Exception as error:  # noqa: BLE001 — one account's surprise stays that account's
        log.debug("reading account %s failed", account.name, exc_info=True)
        return error
    return _AccountRead(provider, list(servers), selected, list(listing), volumes)


def _with_pending(
    target: Target,
    listing: Sequence[CloudSnapshot],
    journal: Journal | None,
    creation_timeout: timedelta,
) -> list[Snapshot]:
    if journal is None:
        return snapshots_for(target, listing)
    snapshots = snapshots_for(
        target, listing, journal.pending(target.account, target.server_id), creation_timeout
    )
    seen = {s.name for s in snapshots}
    in_flight = journal.in_flight(target.account, target.server_id)
    snapshots += [
        Snapshot(
            "",
            name,
            started,
            target.server_id,
            True,
            "started by an interrupted run; not listed yet",
            creating=True,
        )
        for name, started in sorted(in_flight.items())
        if name not in seen
    ]
    return snapshots
