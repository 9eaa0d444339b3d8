"""Snapshots or the cloud's own backups, for the same retention rules: which is cheaper, and
can the backups keep what the rules keep at all (docs/promises.md §3, `simulate`).

Pure: the policy's steady state, the server's monthly price and the snapshot size come in.
The backup plans are the clouds' documented ones, each with the page and the day it was read
(7 December 2026). A backup plan keeps the rules when it makes a backup at least as often as
the finest spacing the rules keep, and keeps backups at least as far back as the oldest
snapshot the rules keep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from snapshot_policy.core.model import DIGITALOCEAN, HETZNER, RetentionPolicy
from snapshot_policy.core.simulate import fill_days, replay, simulate

HETZNER_FAQ = "Hetzner Docs, Cloud FAQ (docs.hetzner.com/cloud/general/faq), read 2026-12-07"
DO_PRICING = (
    "DigitalOcean Backups pricing (docs.digitalocean.com/products/backups/details/pricing, "
    "validated 9 Mar 2026), read 2026-12-07"
)


@dataclass(frozen=True)
class BackupPlan:
    """One way a cloud backs a server up: a backup `every`, `keeps` of them (None: the
    retention is set by the operator), priced as a `share` of the server's monthly price or
    `per_gb_month` (in USD) of the backups stored."""

    provider: str
    name: str
    every: timedelta
    keeps: int | None
    share: float | None
    per_gb_month: float | None
    source: str

    def reach(self) -> timedelta | None:
        """How far back its oldest backup goes just before the next one replaces it (seven
        daily slots: six days); None: as far as configured."""
        return None if self.keeps is None else self.every * (self.keeps - 1)


DAY = timedelta(days=1)
PLANS = (
    # "For every server, there are seven slots for backups" (daily); the price, 20 % of the
    # server's, is also the API's pricing.server_backup.percentage.
    BackupPlan(HETZNER, "Hetzner backups", DAY, 7, 0.20, None, HETZNER_FAQ),
    # Basic plans: weekly kept four weeks, daily kept seven days (DigitalOcean's Backups
    # features page); usage-based plans: the retention is the operator's.
    BackupPlan(DIGITALOCEAN, "weekly backups", 7 * DAY, 4, 0.20, None, DO_PRICING),
    BackupPlan(DIGITALOCEAN, "daily backups", DAY, 7, 0.30, None, DO_PRICING),
    BackupPlan(DIGITALOCEAN, "usage-based weekly", 7 * DAY, None, None, 0.04, DO_PRICING),
    BackupPlan(DIGITALOCEAN, "usage-based daily", DAY, None, None, 0.03, DO_PRICING),
    BackupPlan(DIGITALOCEAN, "usage-based every 12 hours", DAY / 2, None, None, 0.02, DO_PRICING),
    BackupPlan(DIGITALOCEAN, "usage-based every 6 hours", DAY / 4, None, None, 0.015, DO_PRICING),
    BackupPlan(DIGITALOCEAN, "usage-based every 4 hours", DAY / 6, None, None, 0.01, DO_PRICING),
)
_PERIODS = {"hourly": timedelta(hours=1), "daily": DAY, "weekly": 7 * DAY}
_LONG = {"monthly": 28 * DAY, "yearly": 365 * DAY}  # one a month, a year: at least this often


@dataclass(frozen=True)
class Needs:
    """What the rules keep: a snapshot at least `every` apart, reaching back `reach`."""

    every: timedelta
    reach: timedelta


@dataclass(frozen=True)
class Option:
    """A backup plan for these rules: its monthly cost, how many backups it keeps, and
    whether it keeps what the rules keep (`why_not` says what it misses)."""

    plan: BackupPlan
    monthly: float
    currency: str
    backups: int
    why_not: str | None


@dataclass(frozen=True)
class Comparison:
    """Snapshots at `snapshots_monthly` against the provider's backup `options`."""

    provider: str
    server_price: float
    currency: str
    needs: Needs
    snapshots_monthly: float
    options: tuple[Option, ...]

    def cheaper(self) -> Option | None:
        """The cheapest backup plan that keeps the rules, when it is cheaper than snapshots
        in the same currency; None: snapshots are."""
        fits = [
            o
            for o in self.options
            if o.why_not is None
            and o.currency == self.currency
            and o.monthly < self.snapshots_monthly
        ]
        return min(fits, key=lambda o: o.monthly, default=None)


def needs(policy: RetentionPolicy, zone: ZoneInfo, start: datetime, runs_per_day: int) -> Needs:
    """The finest spacing the rules keep snapshots at, and how far back the oldest goes once
    every rule is full (the real reconciler over simulated runs). The policy must have a
    rule."""
    run = DAY / runs_per_day
    spacing = [run] if policy.keep_last > 1 or policy.keep_within is not None else []
    for unit, period in _PERIODS.items():
        if getattr(policy, f"keep_{unit}") or getattr(policy, f"keep_within_{unit}"):
            spacing.append(max(period, run))
    for unit, period in _LONG.items():
        if getattr(policy, f"keep_{unit}") or getattr(policy, f"keep_within_{unit}"):
            spacing.append(max(period, run))
    every = min(spacing, default=run)
    return Needs(every, _reach(policy, zone, start, runs_per_day))


def _reach(
    policy: RetentionPolicy, zone: ZoneInfo, start: datetime, runs_per_day: int
) -> timedelta:
    """The oldest survivor's age at its most, over a year of runs once every rule is full:
    restic keeps the newest snapshot of each month, so `keep_monthly 6` reaches back five
    months at a month's start and six at its end."""
    run = DAY / runs_per_day
    filled = math.ceil(fill_days(policy, runs_per_day)) * runs_per_day
    runs = filled + 366 * runs_per_day
    reach = 0
    for index, survivors in enumerate(replay(policy, zone, start, run, runs)):
        if survivors is None:  # a DST change the shortcut cannot follow: the real reconciler
            days = math.ceil(fill_days(policy, runs_per_day)) + 1
            result = simulate(policy, zone, start, days, runs_per_day)
            last = start + (days * runs_per_day - 1) * run
            return last - min((s.created for s, _ in result.survivors), default=last)
        if index >= filled:
            reach = max(reach, index - next(iter(survivors)))
    return reach * run


def compare(
    provider: str,
    need: Needs,
    server_price: float,
    currency: str,
    snapshot_gb: float,
    snapshots_monthly: float,
) -> Comparison:
    """What each of `provider`'s backup plans costs for a server of `server_price` a month
    whose backups are `snapshot_gb` each, and whether it keeps the rules."""
    options = []
    for plan in PLANS:
        if plan.provider != provider:
            continue
        reach = plan.reach()
        count = plan.keeps or math.ceil(need.reach / plan.every) + 1
        if plan.share is not None:
            monthly, paid_in = plan.share * server_price, currency
        else:
            monthly, paid_in = count * snapshot_gb * (plan.per_gb_month or 0.0), "USD"
        why_not = None
        if plan.every > need.every:
            why_not = (
                f"a backup every {span_text(plan.every)}; "
                f"the rules keep one every {span_text(need.every)}"
            )
        elif reach is not None and reach < need.reach:
            why_not = f"it reaches back {span_text(reach)}; the rules {span_text(need.reach)}"
        options.append(Option(plan, monthly, paid_in, count, why_not))
    return Comparison(provider, server_price, currency, need, snapshots_monthly, tuple(options))


def span_text(span: timedelta) -> str:
    """`7 days`, `12 hours`, `1 day`, `2.5 hours`."""
    hours = round(span.total_seconds() / 3600, 1)
    if hours < 48 and (hours < 24 or hours % 24):
        return f"{hours:g} hour{'' if hours == 1 else 's'}"
    days = round(hours / 24, 1)
    return f"{days:g} day{'' if days == 1 else 's'}"
