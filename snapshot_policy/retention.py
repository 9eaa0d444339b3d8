"""Which snapshots a retention policy keeps, and why: restic `forget` semantics (SPEC §6).

The walk goes from the newest snapshot to the oldest. Each counted rule (`keep_daily 7`, …)
keeps the newest snapshot of every period it has not seen yet, until its count runs out; a
period without snapshots uses up nothing. A rule that still has count left when the walk
reaches the oldest snapshot keeps that one too ("oldest daily"), so history reaches as far
back as the counts allow. `keep_within` keeps everything newer than the newest snapshot
minus the duration. The result is the union. Periods are read on the calendar of the
policy's time zone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from snapshot_policy.model import RetentionPolicy, Snapshot

PeriodKey = Callable[[int, datetime], object]

# Rule name, policy attribute, and the period a snapshot falls in (position, local time).
# The hourly key carries the UTC offset so the hour repeated when DST ends counts twice.
RULE_PERIODS: tuple[tuple[str, str, PeriodKey], ...] = (
    ("last", "keep_last", lambda position, local: position),
    ("hourly", "keep_hourly", lambda p, t: (t.date(), t.hour, t.utcoffset())),
    ("daily", "keep_daily", lambda p, t: t.date()),
    ("weekly", "keep_weekly", lambda p, t: t.isocalendar()[:2]),
    ("monthly", "keep_monthly", lambda p, t: (t.year, t.month)),
    ("yearly", "keep_yearly", lambda p, t: t.year),
)


def newest_first(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    """Order snapshots newest first; equal times are ordered by id so the result is stable."""
    return sorted(snapshots, key=lambda s: (s.created, s.id), reverse=True)


def select(snapshots: Iterable[Snapshot], policy: RetentionPolicy, zone: ZoneInfo) -> dict[Snapshot, tuple[str, ...]]:
    """Given snapshots of one server, return each (newest first) with the rules that keep it.

    An empty tuple means no rule keeps the snapshot. The newest snapshot is always kept; a
    policy with no rule at all keeps everything rather than nothing.
    """
    ordered = newest_first(snapshots)
    if not ordered:
        return {}
    if not policy.has_rules:
        return {s: ("no retention rule",) for s in ordered}

    reasons: dict[Snapshot, list[str]] = {s: [] for s in ordered}
    if policy.keep_within is not None:
        cutoff = policy.keep_within.before(ordered[0].created, zone)
        for snapshot in ordered:
            if snapshot.created > cutoff:
                reasons[snapshot].append(f"within {policy.keep_within}")

    oldest = len(ordered) - 1
    for rule, attribute, period_of in RULE_PERIODS:
        left = getattr(policy, attribute)
        last_period = None
        for position, snapshot in enumerate(ordered):
            if left == 0:
                break
            period = period_of(position, snapshot.created.astimezone(zone))
            if period != last_period:
                reasons[snapshot].append(rule)
            elif position == oldest:
                reasons[snapshot].append(f"oldest {rule}")
            else:
                continue
            last_period = period
            left -= 1

    if not reasons[ordered[0]]:
        reasons[ordered[0]].append("newest")
    return {s: tuple(r) for s, r in reasons.items()}
