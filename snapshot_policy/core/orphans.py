"""Our snapshots of servers that are gone, and when their absence is certain (docs/promises.md §5).

Snapshots carrying our marker (not another configuration's) whose server is missing from its
account's listing are orphans: each such server becomes an orphan target that keeps them all
and never gets a new snapshot. They are pruned to `orphans_keep_last` only when the server's
absence is certain: its account's listings settled and were read completely, every server a
target of that account names was found, and the server was already missing `ORPHAN_GRACE`
before (`absent_since`, from earlier runs). An empty listing that an API returns once
therefore prunes nothing.

A listing is incomplete for a server when the server names a snapshot (DigitalOcean's
`snapshot_ids`, a second view of the listing) that the listing lacks: that server's target
fails, since nothing can be decided from a partial view, and no absence is certain.

Pure: the caller passes the listings, what it knows about them, the run state and the time.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from snapshot_policy.core.model import (
    Account,
    CloudSnapshot,
    RetentionPolicy,
    Server,
    Target,
    TargetFailure,
)
from snapshot_policy.core.ownership import has_marker

ORPHAN_GRACE = timedelta(hours=24)


def listed_completely(
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
        more = f" and {len(lacking) - 5} more" if len(lacking) > 5 else ""
        ids = ", ".join(lacking[:5]) + more
        reason = (
            f"server {target.server_name} ({target.server_id}) names snapshot(s) {ids} that "
            "the account's snapshot listing lacks: the listing is incomplete, so nothing is "
            "created or deleted for it this run"
        )
        failures.append(
            TargetFailure(
                target.name,
                reason,
                target.account,
                target.notify,
                target.server_name,
                target.provider,
                target.hooks,
            )
        )
    return complete, failures


def absence_certain(unresolved: bool, unsettled: bool, incomplete: bool) -> bool:
    """Whether an account's listings prove that a server missing from them is gone: not when
    a server a target names was `unresolved`, nor when the listing was `unsettled` (changed
    while read, and again when read twice) or `incomplete` for a server."""
    return not (unresolved or unsettled or incomplete)


def find_orphans(
    account: Account,
    owner: str,
    servers: Sequence[Server],
    listing: Sequence[CloudSnapshot],
    certain: bool,
    absent_since: Mapping[tuple[str, str], datetime] | None,
    now: datetime | None,
    keep_last: int | None,
) -> tuple[list[Target], set[str] | None]:
    """Return one orphan target per server missing from `servers` whose snapshots in `listing`
    carry `owner`'s marker, and — when the absence is `certain` — those servers' ids, for the
    run state to record. An orphan target is pruned to `keep_last` only if its server's
    absence is certain and `absent_since` ((account, server id) → first missed) shows it
    missing at least `ORPHAN_GRACE` before `now`; otherwise it keeps everything."""
    missing = _missing(account, owner, servers, listing)
    since = absent_since or {}
    prunable = {
        server_id
        for server_id in missing
        if certain
        and now is not None
        and (account.name, server_id) in since
        and now - since[(account.name, server_id)] >= ORPHAN_GRACE
    }
    return _orphan_targets(account, missing, prunable, keep_last), set(missing) if certain else None


def _missing(
    account: Account, owner: str, servers: Sequence[Server], listing: Sequence[CloudSnapshot]
) -> dict[str, list[CloudSnapshot]]:
    """Our snapshots (not another configuration's) of servers that the account's listing
    lacks, by server id."""
    existing = {s.id for s in servers}
    marked: dict[str, list[CloudSnapshot]] = defaultdict(list)
    for snapshot in listing:
        gone = snapshot.server_id and snapshot.server_id not in existing
        if gone and has_marker(account.provider, snapshot, owner):
            marked[snapshot.server_id].append(snapshot)
    return marked


def _orphan_targets(
    account: Account,
    missing: Mapping[str, list[CloudSnapshot]],
    prunable: set[str],
    keep_last: int | None,
) -> list[Target]:
    """One orphan target per missing server: pruned to `keep_last` if `prunable`, else all kept."""
    targets = []
    pruned = RetentionPolicy(keep_last=keep_last or 0)
    for server_id, snapshots in sorted(missing.items()):
        newest = max(snapshots, key=lambda s: s.created)
        targets.append(
            Target(
                name="(orphans)",
                provider=account.provider,
                account=account.name,
                server_id=server_id,
                # Our names end in -YYYYmmddHHMMSS; what stands before it was the server's name.
                server_name=re.sub(r"-\d{14}$", "", newest.name),
                retention=pruned if server_id in prunable else RetentionPolicy(),
                orphan=True,
            )
        )
    return targets
