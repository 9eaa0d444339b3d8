"""Retention over simulated time: what `apply` would leave behind, with no cloud at all.

Each simulated run goes through the real reconciler, exactly as apply would: plan, make the
due snapshot, delete what the plan deletes. So the survivors shown are the ones a real
schedule would keep, including restic's "oldest" rule applied run after run.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from snapshot_policy.core import retention
from snapshot_policy.core.duration import MAX_DAYS, Duration
from snapshot_policy.core.model import (
    ActionKind,
    Price,
    RetentionPolicy,
    Safety,
    Snapshot,
    Target,
    TargetPlan,
)
from snapshot_policy.core.reconcile import plan_target


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
        """Return the days with a run, from the first run's to the last run's (a start in the
        middle of a day ends in the middle of another), grouped by month, each month with its
        first day."""
        first = self.start.astimezone(self.zone).date()
        last_run = self.start + (self.days * self.runs_per_day - 1) * (
            timedelta(days=1) / self.runs_per_day
        )
        grouped: dict[date, list[date]] = {}
        for offset in range((last_run.astimezone(self.zone).date() - first).days + 1):
            day = first + timedelta(days=offset)
            grouped.setdefault(day.replace(day=1), []).append(day)
        return list(grouped.items())


def simulate(
    policy: RetentionPolicy, zone: ZoneInfo, start: datetime, days: int, runs_per_day: int
) -> Simulation:
    """Run `days * runs_per_day` evenly spaced applies from `start` and return the survivors.

    Every run but the last is replayed incrementally (see `replay`); the
    last goes through the real reconciler, from exactly the snapshots the runs before it
    left, so the survivors and the rules that keep them are what `apply` itself says.
    """
    runs = days * runs_per_day
    step = timedelta(days=1) / runs_per_day
    if runs < 1 or not policy.has_rules:
        return simulate_reference(policy, zone, start, days, runs_per_day)
    existing: list[int] = []
    for survivors in replay(policy, zone, start, step, runs - 1):
        if survivors is None:
            return simulate_reference(policy, zone, start, days, runs_per_day)
        existing = survivors
    existing = list(existing)
    target = _target(policy, zone, runs)
    last = runs - 1
    plan = plan_target(
        target,
        [_made(i, start, step) for i in existing],
        start + last * step,
        created=_made(last, start, step),
    )
    survivors = tuple((a.snapshot, a.rules) for a in plan.of_kind(ActionKind.KEEP))
    # Every snapshot made is deleted exactly once, or survives (max_deletions never refuses).
    return Simulation(
        policy, zone, start, days, runs_per_day, runs, runs - len(survivors), survivors
    )


def simulate_reference(
    policy: RetentionPolicy, zone: ZoneInfo, start: datetime, days: int, runs_per_day: int
) -> Simulation:
    """The straightforward simulation: the whole reconciler on every run. Slow (it re-plans
    every kept snapshot on every run), and the definition `simulate` must agree with."""
    deleted = 0
    survivors: tuple[tuple[Snapshot, tuple[str, ...]], ...] = ()
    for plan in _reference_plans(
        policy, zone, start, timedelta(days=1) / runs_per_day, days * runs_per_day
    ):
        deleted += len(plan.of_kind(ActionKind.DELETE))
        survivors = tuple((a.snapshot, a.rules) for a in plan.of_kind(ActionKind.KEEP))
    return Simulation(
        policy, zone, start, days, runs_per_day, days * runs_per_day, deleted, survivors
    )


def _reference_plans(
    policy: RetentionPolicy, zone: ZoneInfo, start: datetime, step: timedelta, runs: int
) -> Iterator[TargetPlan]:
    """The reconciler's plan of each run, every run making one snapshot and keeping what its plan
    keeps."""
    target = _target(policy, zone, runs)
    existing: list[Snapshot] = []
    for run in range(runs):
        plan = plan_target(target, existing, start + run * step, created=_made(run, start, step))
        existing = [a.snapshot for a in plan.of_kind(ActionKind.KEEP)]
        yield plan


@dataclass(frozen=True)
class SteadyState:
    """How many snapshots a policy leaves after each run once every rule is full: the fewest,
    the most and the average, counted over `observed_days` from `filled_days` after the first
    run on. The average is what storage is billed for over time."""

    fewest: int
    most: int
    average: float
    filled_days: int
    observed_days: int


@dataclass(frozen=True)
class Projection:
    """A policy's steady state for snapshots of `size_gb` each, priced at each of `prices`
    (a label, such as the provider, with its price)."""

    steady: SteadyState
    size_gb: float
    prices: tuple[tuple[str, Price], ...]


_PERIOD_DAYS = {"hourly": 1 / 24, "daily": 1, "weekly": 7, "monthly": 31, "yearly": 366}


def steady_state(
    policy: RetentionPolicy, zone: ZoneInfo, start: datetime, runs_per_day: int
) -> SteadyState:
    """Run the policy from `start` until every rule is full, then count what survives each run
    for as long as it takes the count to go through its whole pattern: four weeks, or a year
    when a rule counts months or years (months differ in length). The policy must have a rule.
    Raise ValueError if that is more than a century: no calendar goes that far.
    """
    filled = math.ceil(fill_days(policy, runs_per_day))
    by_calendar = any(
        getattr(policy, f"keep_{unit}") or getattr(policy, f"keep_within_{unit}")
        for unit in ("monthly", "yearly")
    )
    by_calendar |= any(
        getattr(policy, rule) is not None and getattr(policy, rule).is_calendar
        for rule in RetentionPolicy.DURATION_RULES
    )
    observed = 366 if by_calendar else 28
    if filled + observed > MAX_DAYS:
        raise ValueError(
            f"{policy.describe()} fills only after {filled} days; "
            f"a steady state is projected within {MAX_DAYS} days"
        )
    step = timedelta(days=1) / runs_per_day
    counts = list(
        islice(
            survivor_counts(policy, zone, start, step, (filled + observed) * runs_per_day),
            filled * runs_per_day,
            None,
        )
    )
    return SteadyState(min(counts), max(counts), sum(counts) / len(counts), filled, observed)


def fill_days(policy: RetentionPolicy, runs_per_day: int) -> float:
    """Return a number of days after which every rule of `policy` is full, with runs
    `runs_per_day` apart: a counted rule needs its count of periods that hold a snapshot (a
    run apart at least) and one more, for restic's "oldest" to age out; a duration its length
    (months and years at their longest) and a period more."""
    run = 1 / runs_per_day
    spans = [policy.keep_last * run]
    for unit, days in _PERIOD_DAYS.items():
        count = getattr(policy, f"keep_{unit}")
        if count:
            spans.append((count + 1) * max(days, run))
        within = getattr(policy, f"keep_within_{unit}")
        if within is not None:
            spans.append(_longest_days(within) + max(days, run))
    if policy.keep_within is not None:
        spans.append(_longest_days(policy.keep_within) + run)
    return max(spans)


def _longest_days(duration: Duration) -> float:
    return duration.years * 366 + duration.months * 31 + duration.days + duration.hours / 24


def survivor_counts(
    policy: RetentionPolicy, zone: ZoneInfo, start: datetime, step: timedelta, runs: int
) -> Iterator[int]:
    """Yield how many snapshots survive each of `runs` runs `step` apart: as `replay` counts
    them, or where its shortcut does not apply, the reference simulation. The policy must
    have a rule."""
    done = 0
    for survivors in replay(policy, zone, start, step, runs):
        if survivors is None:
            yield from (
                len(p.of_kind(ActionKind.KEEP))
                for p in islice(_reference_plans(policy, zone, start, step, runs), done, None)
            )
            return
        done += 1
        yield len(survivors)


def _target(policy: RetentionPolicy, zone: ZoneInfo, runs: int) -> Target:
    return Target(
        name="simulation",
        provider="simulation",
        account="simulation",
        server_id="1",
        server_name="server",
        retention=policy,
        safety=Safety(max_deletions=runs + 1),
        timezone=zone.key,
    )


def _made(run: int, start: datetime, step: timedelta) -> Snapshot:
    return Snapshot(str(run), f"run-{run}", start + run * step, "1", True, "simulated")


def replay(
    policy: RetentionPolicy, zone: ZoneInfo, start: datetime, step: timedelta, runs: int
) -> Iterator[Collection[int] | None]:
    """Replay `runs` runs without the reconciler; after each, yield the runs (oldest first)
    whose snapshots survive it: a live view, valid until the next step. Yield None and stop
    when this shortcut does not apply and the reference simulation must run instead. The
    policy must have a rule.

    The reconciler keeps, per counted rule, the newest snapshot of each of the newest N
    periods among the snapshots that exist (`retention.select`). Each run adds one snapshot,
    newer than all others, so a rule's kept list changes only at its ends: the new snapshot
    either joins the newest period (it replaces that period's snapshot, which was the one
    made by the previous run; with a single survivor, that one stays as the rule's
    "oldest") or opens a new period (the rule's oldest kept snapshot drops off when the
    count is full). `keep_within` keeps the survivors newer than a cutoff, and a
    duration-bounded rule the newest survivor of each period newer than its cutoff, plus
    the oldest survivor while it is inside (`_PeriodsWithin`). A snapshot survives while
    any rule holds it; the newest is always held. Snapshots deleted never come back, so the
    kept lists follow from the survivors alone.

    That argument needs every period to be one unbroken stretch of time. Hours (keyed with
    the UTC offset) always are; days, weeks, months and years are while the local date
    never goes backwards, which a DST change across midnight could do: then return None,
    whichever rules the policy has. No rule needs the fallback otherwise.
    """
    counted = []  # (count, period key or None for keep_last, kept runs newest first)
    for rule, attribute, period_of in retention.RULE_PERIODS:
        count = getattr(policy, attribute)
        if count:
            counted.append([count, None if rule == "last" else period_of, deque(), None])
    spans = [
        _PeriodsWithin(getattr(policy, attribute), period_of, zone)
        for _, attribute, period_of in retention.WITHIN_PERIODS
        if getattr(policy, attribute) is not None
    ]
    within = policy.keep_within
    window: deque[int] = deque()  # runs kept by keep_within, oldest first
    window_cutoff: datetime | None = None
    created: list[datetime] = []
    # run -> how many rules hold it; its keys are the survivors, oldest first
    holds: dict[int, int] = {}
    newest_only: int | None = None
    last_date = None
    for run in range(runs):
        now = start + run * step
        created.append(now)
        local = now.astimezone(zone)
        today = local.date()
        if last_date is not None and today < last_date:
            yield None
            return
        last_date = today
        single = len(holds) == 1
        first = not holds
        released: list[int] = []
        if newest_only is not None:
            released.append(newest_only)
            newest_only = None
        held = 0
        for rule in counted:
            count, period_of, kept, last_key = rule
            key = None if period_of is None else period_of(0, local)
            rule[3] = key
            if not first and period_of is not None and key == last_key:
                if single:
                    if count == 1:
                        released.append(kept.pop())
                else:
                    released.append(kept.popleft())
            elif len(kept) == count:
                released.append(kept.pop())
            kept.appendleft(run)
            held += 1
        if within is not None:
            cutoff = within.before(now, zone)
            if window_cutoff is not None and cutoff < window_cutoff:
                oldest = window[0] if window else run
                returning = [i for i in holds if i < oldest and created[i] > cutoff]
                for i in returning:
                    holds[i] += 1
                window.extendleft(reversed(returning))
            window_cutoff = cutoff
            while window and created[window[0]] <= cutoff:
                released.append(window.popleft())
            if now > cutoff:
                window.append(run)
                held += 1
        for span in spans:
            starts, stops = span.step(run, now, created, holds)
            for i in starts:
                if i == run:
                    held += 1
                else:
                    holds[i] += 1
            released += stops
        if not held:
            newest_only = run
            held = 1
        holds[run] = held
        for i in released:
            holds[i] -= 1
            if not holds[i]:
                del holds[i]
        yield holds.keys()


class _PeriodsWithin:
    """One duration-bounded rule (`keep_within_daily 7d`) in `replay`: it holds the newest
    survivor of each period newer than its cutoff, and the oldest survivor while that one
    is newer than the cutoff too (restic's "oldest daily within 7d")."""

    def __init__(self, duration: Duration, period_of: retention.PeriodKey, zone: ZoneInfo) -> None:
        self.duration, self.period_of, self.zone = duration, period_of, zone
        self.heads: deque[tuple[int, object]] = deque()  # (run, its period), newest first
        self.cutoff: datetime | None = None
        self.oldest: int | None = None  # the oldest survivor, when held for being the oldest

    def step(
        self, run: int, now: datetime, created: list[datetime], survivors: Collection[int]
    ) -> tuple[list[int], list[int]]:
        """Given the runs that survive so far (oldest first) and a new `run` made at `now`,
        return the runs this rule starts holding and those it stops holding."""
        starts, stops = [run], []
        period = self._period(now)
        if self.heads and self.heads[0][1] == period:
            stops.append(self.heads.popleft()[0])
        self.heads.appendleft((run, period))
        cutoff = self.duration.before(now, self.zone)
        while created[self.heads[-1][0]] <= cutoff:
            stops.append(self.heads.pop()[0])
        if self.cutoff is not None and cutoff < self.cutoff:
            # The cutoff went back (a DST change): survivors it had passed are inside again,
            # and each that opens a period, walking from the newest, is that period's newest.
            oldest_head, last = self.heads[-1]
            for i in reversed([i for i in survivors if i < oldest_head and created[i] > cutoff]):
                if (period := self._period(created[i])) != last:
                    self.heads.append((i, period))
                    starts.append(i)
                    last = period
        self.cutoff = cutoff
        first = next(iter(survivors), None)
        oldest = (
            first
            if first is not None and created[first] > cutoff and first != self.heads[-1][0]
            else None
        )
        if oldest != self.oldest:
            if self.oldest is not None:
                stops.append(self.oldest)
            if oldest is not None:
                starts.append(oldest)
            self.oldest = oldest
        return starts, stops

    def _period(self, moment: datetime) -> object:
        return self.period_of(0, moment.astimezone(self.zone))
