"""What a plan's snapshots store and cost a month, now and after apply: the cost model.

Pure: the plan and the prices come in as values; the texts and documents that show these
numbers are render's and planfile's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from snapshot_policy.core.model import ActionKind, Plan, Price, Snapshot, TargetPlan
from snapshot_policy.core.pricing import price_key

NO_PRICES: Mapping[str, Price] = {}


@dataclass(frozen=True)
class Storage:
    """Snapshots stored, as billed: how many, the GB of those whose size is known, how many
    sizes are unknown (the GB and costs are then lower bounds), the monthly cost of the known
    sizes per currency, and whether a size in it is an estimate."""

    snapshots: int
    known_gb: float
    unknown: int
    costs: dict[str, float]
    estimated: bool

    @classmethod
    def of(
        cls,
        sizes: Iterable[tuple[str, float | None]],
        prices: Mapping[str, Price],
        estimated: bool = False,
    ) -> Storage:
        """Tally `(provider, size or None)` pairs (or `(pricing.price_key, size)`); a provider
        without a price adds no cost."""
        snapshots, known, unknown, costs = 0, 0.0, 0, {}
        for provider, size in sizes:
            snapshots += 1
            if size is None:
                unknown += 1
                continue
            known += size
            price = prices.get(provider)
            if price is not None:
                costs[price.currency] = costs.get(price.currency, 0.0) + price.monthly(size)
        return cls(snapshots, known, unknown, costs, estimated)


def target_storage(
    plan: TargetPlan, prices: Mapping[str, Price]
) -> tuple[Storage, Storage, float | None]:
    """Return the target's snapshots now and after apply, and the size its new snapshot is
    estimated at: that of the newest snapshot of the server whose size is known (None when
    nothing is to be created or no size is known). Every snapshot of the server is billed,
    managed or not."""
    provider = price_key(prices, plan.target.provider, plan.target.account)
    existing = [a.snapshot for a in plan.actions if a.kind is not ActionKind.CREATE]
    remaining = [
        a.snapshot.size_gb
        for a in plan.actions
        if a.kind not in (ActionKind.CREATE, ActionKind.DELETE)  # a mark deletes nothing
    ]
    estimate = estimated_size(existing) if plan.create else None
    now = Storage.of(((provider, s.size_gb) for s in existing), prices)
    sizes_after = remaining + ([estimate] if plan.create else [])
    after = Storage.of(((provider, size) for size in sizes_after), prices, estimate is not None)
    return now, after, estimate


def estimated_size(snapshots: Iterable[Snapshot]) -> float | None:
    """The size of the newest snapshot whose size is known: a new one of the same disk is
    about as large."""
    sized = [s for s in snapshots if s.size_gb is not None]
    return max(sized, key=lambda s: (s.created, s.id)).size_gb if sized else None


def total_storage(plan: Plan, prices: Mapping[str, Price]) -> tuple[Storage, Storage]:
    """Return the snapshots of every target now and after apply, each counted once even when
    two targets cover one server."""
    now: dict[tuple, tuple[str, float | None]] = {}
    after: dict[tuple, tuple[str, float | None]] = {}
    estimated = False
    for target_plan in plan.targets:
        target = target_plan.target
        existing = [a for a in target_plan.actions if a.kind is not ActionKind.CREATE]
        for action in existing:
            key = (target.provider, target.account, action.snapshot.id)
            priced = price_key(prices, target.provider, target.account)
            now[key] = (priced, action.snapshot.size_gb)
            if action.kind is not ActionKind.DELETE:
                after[key] = now[key]
        if target_plan.create:
            estimate = estimated_size(a.snapshot for a in existing)
            new = (target.provider, target.account, target.server_id, target.name)
            after[new] = (price_key(prices, target.provider, target.account), estimate)
            estimated |= estimate is not None
    return Storage.of(now.values(), prices), Storage.of(after.values(), prices, estimated)
