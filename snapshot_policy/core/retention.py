"""Which snapshots a retention policy keeps, and why: restic `forget` semantics
(docs/promises.md §6).

The walk goes from the newest snapshot to the oldest. Each counted rule (`keep_daily 7`, …)
keeps the newest snapshot of every period it has not seen yet, until its count runs out; a
period without snapshots uses up nothing. A rule that still has count left when the walk
reaches the oldest snapshot keeps that one too ("oldest daily"), so history reaches as far
back as the counts allow. `keep_within` keeps everything newer than the newest snapshot
minus the duration. The duration-bounded rules (`keep_within_daily 7d`, …) walk like the
counted ones but stop at that same cutoff instead of after a count; the oldest snapshot,
if it lies inside the duration, is theirs too ("oldest daily within 7d"), exactly as restic
has it. The result is the union. Periods are read on the calendar of the policy's time zone.

`keep_verified N` (issue 22) keeps the newest N snapshots whose last restore drill passed
(`Snapshot.drilled`), as "verified", whatever the other rules say. It only adds: a snapshot
the other rules keep stays kept, and a policy with no other rule still keeps everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from snapshot_policy.core.model import RetentionPolicy, Snapshot

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
# The duration-bounded rules on the same periods: `keep_within_daily` keeps as "daily within 7d".
WITHIN_PERIODS: tuple[tuple[str, str, PeriodKey], ...] = tuple(
    (rule, f"keep_within_{rule}", period_of)
    for rule, _, period_of in RULE_PERIODS
    if rule != "last"
)


def newest_first(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    """Order snapshots newest first; equal times are ordered by id so the result is stable."""
    return sorted(snapshots, key=lambda s: (s.created, s.id), reverse=True)


def select(
    snapshots: Iterable[Snapshot], policy: RetentionPolicy, zone: ZoneInfo
) -> dict[Snapshot, tuple[str, ...]]:
    """Given snapshots of one server, return each (newest first) with the rules that keep it.

    An empty tuple means no rule keeps the snapshot. The newest snapshot is always kept; a
    policy with no rule at all keeps everything rather than nothing.
    """
    ordered = newest_first(snapshots)
    if not ordered:
        return {}
    verified = [s for s in ordered if s.drilled is not None and s.drilled.passed]
    verified = verified[: policy.keep_verified]
    if not replace(policy, keep_verified=0).has_rules:
        return {
            s: ("no retention rule", *(("verified",) if s in verified else ())) for s in ordered
        }

    reasons: dict[Snapshot, list[str]] = {s: [] for s in ordered}
    newest = ordered[0].created
    if policy.keep_within is not None:
        cutoff = policy.keep_within.before(newest, zone)
        for snapshot in ordered:
            if snapshot.created > cutoff:
                reasons[snapshot].append(f"within {policy.keep_within}")

    for rule, attribute, period_of in RULE_PERIODS:
        count = getattr(policy, attribute)
        if count:
            for snapshot, oldest in _period_heads(ordered, period_of, zone, count=count):
                reasons[snapshot].append(f"oldest {rule}" if oldest else rule)
    for rule, attribute, period_of in WITHIN_PERIODS:
        within = getattr(policy, attribute)
        if within is not None:
            for snapshot, oldest in _period_heads(
                ordered, period_of, zone, cutoff=within.before(newest, zone)
            ):
                reasons[snapshot].append(f"{'oldest ' if oldest else ''}{rule} within {within}")

    for snapshot in verified:
        reasons[snapshot].append("verified")

    if not reasons[ordered[0]]:
        reasons[ordered[0]].append("newest")
    return {s: tuple(r) for s, r in reasons.items()}


def _period_heads(
    ordered: list[Snapshot],
    period_of: PeriodKey,
    zone: ZoneInfo,
    count: int | None = None,
    cutoff: datetime | None = None,
) -> Iterator[tuple[Snapshot, bool]]:
    """Walk `ordered` (newest first) and yield each snapshot that opens a period, with False,
    and the oldest snapshot with True when its period is already open: restic's walk. Stop
    after `count` snapshots, or at the first one no newer than `cutoff`."""
    last_period = None
    for position, snapshot in enumerate(ordered):
        if count == 0 or (cutoff is not None and snapshot.created <= cutoff):
            return
        period = period_of(position, snapshot.created.astimezone(zone))
        if period != last_period:
            yield snapshot, False
        elif position == len(ordered) - 1:
            yield snapshot, True
        else:
            continue
        last_period = period
        if count is not None:
            count -= 1
