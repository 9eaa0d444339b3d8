"""Retention over simulated time: what `apply` would leave behind, with no cloud at all.

Each simulated run goes through the real reconciler, exactly as apply would: plan, make the
due snapshot, delete what the plan deletes. So the survivors shown are the ones a real
schedule would keep, including restic's "oldest" rule applied run after run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from snapshot_policy.model import ActionKind, RetentionPolicy, Safety, Snapshot, Target
from snapshot_policy.reconcile import plan_target


@dataclass(frozen=True)
class Simulation:
    policy: RetentionPolicy
    zone: ZoneInfo
    start: datetime
    days: int
    runs_per_day: int
    created: int
    deleted: int
    survivors: tuple[tuple[Snapshot, tuple[str, ...]], ...]

    def months(self) -> list[tuple[date, list[date]]]:
        """Return the simulated days grouped by month, each month with its first day."""
        first = self.start.astimezone(self.zone).date()
        grouped: dict[date, list[date]] = {}
        for offset in range(self.days):
            day = first + timedelta(days=offset)
            grouped.setdefault(day.replace(day=1), []).append(day)
        return list(grouped.items())


def simulate(policy: RetentionPolicy, zone: ZoneInfo, start: datetime, days: int, runs_per_day: int) -> Simulation:
    """Run `days * runs_per_day` evenly spaced applies from `start` and return the survivors."""
    target = Target(
        name="simulation",
        provider="simulation",
        account="simulation",
        server_id="1",
        server_name="server",
        retention=policy,
        safety=Safety(max_deletions=days * runs_per_day + 1),
        timezone=zone.key,
    )
    step = timedelta(days=1) / runs_per_day
    existing: list[Snapshot] = []
    deleted = 0
    survivors: tuple[tuple[Snapshot, tuple[str, ...]], ...] = ()
    for run in range(days * runs_per_day):
        now = start + run * step
        made = Snapshot(str(run), f"run-{run}", now, target.server_id, True, "simulated")
        plan = plan_target(target, existing, now, created=made)
        kept = plan.of_kind(ActionKind.KEEP)
        deleted += len(plan.of_kind(ActionKind.DELETE))
        existing = [a.snapshot for a in kept]
        survivors = tuple((a.snapshot, a.rules) for a in kept)
    return Simulation(policy, zone, start, days, runs_per_day, days * runs_per_day, deleted, survivors)
