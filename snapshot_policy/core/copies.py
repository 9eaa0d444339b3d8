"""Copies in other regions (DigitalOcean image transfers): which regions a snapshot still
lacks, which transfers to start, and whether a target's deletions are held until the newest
snapshot has every copy (zrepl's rule; docs/promises.md §5.15).

Pure: the regions come from the listing (`CloudSnapshot.regions`, and `pending_regions` for
transfers running); nothing here asks the cloud.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from snapshot_policy.core.model import ActionKind, Snapshot, Target, TargetPlan

HELD = "held: the newest snapshot has no copy in"


def regions(snapshot: Snapshot) -> tuple[str, ...]:
    """Where the snapshot is now (its listing's regions); () when nothing says."""
    return snapshot.cloud.regions if snapshot.cloud is not None else ()


def pending(snapshot: Snapshot) -> tuple[str, ...]:
    """The regions a transfer of it is running to."""
    return snapshot.cloud.pending_regions if snapshot.cloud is not None else ()


def missing(target: Target, snapshot: Snapshot) -> tuple[str, ...]:
    """The regions of `target.copies` the snapshot is not in yet, in the policy's order (a
    transfer running to one does not make it a copy). The region it was made in counts as a
    copy: it is there."""
    have = set(regions(snapshot))
    return tuple(region for region in target.copies if region not in have)


def to_transfer(target: Target, snapshot: Snapshot) -> tuple[str, ...]:
    """The missing regions no transfer is running to: what apply starts."""
    running = set(pending(snapshot))
    return tuple(region for region in missing(target, snapshot) if region not in running)


def newest(target: Target, snapshots: Iterable[Snapshot]) -> Snapshot | None:
    """The newest finished managed snapshot of the target's server: the one whose copies
    decide (a snapshot still being made, or not ours, decides nothing)."""
    own = [
        s
        for s in snapshots
        if s.managed and not s.creating and s.id and s.server_id == target.server_id
    ]
    return max(own, key=lambda s: (s.created, s.id), default=None)


def held(target: Target, snapshots: Iterable[Snapshot]) -> str | None:
    """Why the target's deletions (and marks for deletion) wait, or None: the newest finished
    managed snapshot lacks a copy. A target without copies, or without a finished snapshot,
    holds nothing."""
    if not target.copies:
        return None
    found = newest(target, snapshots)
    if found is None:
        return None
    lacking = missing(target, found)
    if not lacking:
        return None
    running = [r for r in lacking if r in pending(found)]
    reason = f"{HELD} {', '.join(lacking)} yet"
    if running:
        reason += f" (a transfer to {', '.join(running)} is running)"
    return reason


def plan_newest(plan: TargetPlan) -> Snapshot | None:
    """The newest finished managed snapshot the plan saw (not the one it would create)."""
    return newest(
        plan.target, (a.snapshot for a in plan.actions if a.kind is not ActionKind.CREATE)
    )


def transfers_due(plan: TargetPlan) -> tuple[Snapshot, tuple[str, ...]] | None:
    """When no snapshot is due: the newest snapshot and the regions to start a transfer to
    (a killed run's, or one that failed); None when nothing is to be started."""
    if not plan.target.copies or plan.create is not None:
        return None
    found = plan_newest(plan)
    if found is None:
        return None
    wanted = to_transfer(plan.target, found)
    return (found, wanted) if wanted else None


def describe(target: Target, snapshot: Snapshot) -> str:
    """`in nyc3, ams3; missing fra1 (transfer running)`: a snapshot's regions as the plan
    and status show them."""
    text = "in " + (", ".join(regions(snapshot)) or "no region listed")
    lacking = missing(target, snapshot)
    if lacking:
        running = set(pending(snapshot))
        parts = [f"{r} (transfer running)" if r in running else r for r in lacking]
        text += "; missing copies: " + ", ".join(parts)
    return text


def status_problem(target: Target, snapshot: Snapshot | None) -> str | None:
    """What `status` reports of the newest snapshot's copies: a region it lacks that no
    transfer is running to (a transfer failed, or a run was killed before it started one)."""
    if snapshot is None or not target.copies or snapshot.cloud is None:
        return None
    lacking = to_transfer(target, snapshot)
    if not lacking:
        return None
    return (
        f"the newest snapshot has no copy in {', '.join(lacking)} and no transfer is running; "
        "the next apply starts it, and deletions wait until it exists"
    )


def with_copies(snapshot: Snapshot, regions: Iterable[str]) -> Snapshot:
    """`snapshot` as listed once copied to `regions` (a status after apply)."""
    if snapshot.cloud is None:
        return snapshot
    have = snapshot.cloud.regions
    added = tuple(r for r in regions if r not in have)
    cloud = replace(snapshot.cloud, regions=have + added)
    return replace(snapshot, cloud=cloud)
