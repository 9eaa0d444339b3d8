"""Compare what the policy wants with the snapshots that exist, and decide (docs/promises.md §5).

Pure: the caller passes the observed snapshots and the time. A planned snapshot takes part
in retention as the newest one, so `keep_last N` leaves exactly N including it. Only managed,
finished, unprotected snapshots can ever be planned for deletion.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim

from snapshot_policy.core import copies, pins, retention
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import (
    DEFAULT_CREATION_TIMEOUT,
    ActionKind,
    Plan,
    PlanAction,
    Schedule,
    Snapshot,
    Target,
    TargetPlan,
)

# A run started by cron a little earlier than the last one must still find an interval due.
_EVERY_TOLERANCE = 0.1
_MAX_TOLERANCE = timedelta(hours=1)
# How ownership.classify starts the word on a snapshot another configuration made.
FOREIGN = "another configuration's"
_RAISE = "raise the limit or check the retention rules"
# A snapshot dated this far past `now` says a clock is wrong, ours or the cloud's.
CLOCK_TOLERANCE = timedelta(minutes=5)


def due(
    schedule: Schedule, last_created: datetime | None, now: datetime, zone: ZoneInfo
) -> tuple[bool, str]:
    """Return whether a new snapshot is due, and a sentence saying why or why not."""
    if last_created is None:
        return True, "no managed snapshot exists yet"
    if schedule.cron:
        fired = next(
            CronSim(schedule.cron, (now + timedelta(seconds=1)).astimezone(zone), reverse=True)
        )
        if fired > last_created:
            return (
                True,
                f"{schedule.describe()} fired at {moment_text(fired)} after the last snapshot",
            )
        upcoming = next(CronSim(schedule.cron, now.astimezone(zone)))
        return False, f"not due: {schedule.describe()} fires next at {moment_text(upcoming)}"
    if schedule.every:
        interval = schedule.every.as_timedelta()
        slack = min(interval * _EVERY_TOLERANCE, _MAX_TOLERANCE)
        if now - last_created >= interval - slack:
            return (
                True,
                f"last snapshot {moment_text(last_created)} is {schedule.every} old or more",
            )
        return False, f"not due: last snapshot {moment_text(last_created)}, {schedule.describe()}"
    return True, "a snapshot is made on every run"


def snapshot_name(target: Target, now: datetime) -> str:
    """Return the name of the snapshot made for `target` at `now`, from its name pattern."""
    local = now.astimezone(ZoneInfo(target.timezone))
    return filled_pattern(target, local.strftime("%Y%m%d%H%M%S"))


def filled_pattern(target: Target, timestamp: str = "{timestamp}") -> str:
    """The target's name pattern with its fields filled, `{timestamp}` left for the time the
    snapshot is made unless given."""
    return target.name_pattern.format(
        server_name=target.server_name,
        server_id=target.server_id,
        target=target.name,
        timestamp=timestamp,
    )


def plan_target(
    target: Target,
    observed: Iterable[Snapshot],
    now: datetime,
    created: Snapshot | None = None,
    creation_timeout: timedelta = DEFAULT_CREATION_TIMEOUT,
    last_made: datetime | None = None,
    soft_delete: Duration | None = None,
) -> TargetPlan:
    """Decide for one target, given the snapshots observed for its server.

    `created` is the snapshot this run already made for the target, if any: it counts as
    existing and no second one is planned. Snapshots of other servers are ignored.
    `last_made` is when this tool last made a snapshot of the server, by its own record: a
    second source for the schedule, so a listing that lacks that snapshot makes none undue.

    Inputs may lie (docs/promises.md §5, invariant 9): a managed snapshot dated after `now` (past a
    small tolerance) is kept, left out of retention and the schedule, and makes the target
    fail; so does one still being created past `creation_timeout`, which also holds back a
    new snapshot, every run until it is resolved.
    """
    zone = ZoneInfo(target.timezone)
    own = [s for s in observed if s.server_id == target.server_id]
    if created is not None:
        own = [s for s in own if s.id != created.id] + [created]
    future = [
        s for s in own if s.managed and s is not created and s.created > now + CLOCK_TOLERANCE
    ]
    stuck = [
        s
        for s in own
        if s.managed and s.creating and s not in future and now - s.created > creation_timeout
    ]
    skips = [_skip(s, _unmanaged_reason(s)) for s in own if not s.managed]
    skips += [
        _skip(s, f"clock skew: dated {_ahead(s.created, now)} after this run's clock")
        for s in future
    ]
    skips += [
        _skip(s, "still being created") for s in own if s.managed and s.creating and s not in future
    ]
    finished = [s for s in own if s.managed and not s.creating and s not in future]
    problems = tuple(_skew_problem(s, now) for s in future) + tuple(
        _stuck_problem(s, now, creation_timeout) for s in stuck
    )
    problems += pins.mark_problems(target, finished)

    planned = None
    if created is not None:
        note = "snapshot made in this run"
    elif target.orphan and target.retention.has_rules:
        note = "the server no longer exists; its snapshots are only pruned"
    elif target.orphan:
        note = "the server is missing from its account's listing; its snapshots are kept"
    elif any(s.managed and s.creating for s in own):
        note = "not due: a snapshot is still being created"
    else:
        newest = max((s.created for s in finished), default=None)
        recorded = (
            last_made is not None
            and last_made <= now + CLOCK_TOLERANCE
            and (newest is None or last_made > newest)
        )
        is_due, note = due(target.schedule, last_made if recorded else newest, now, zone)
        if recorded and not is_due:
            note += " (by this tool's own record: the listing lacks that snapshot)"
        if is_due:
            planned = Snapshot(
                "", snapshot_name(target, now), now, target.server_id, True, "to be created"
            )

    actions: list[PlanAction] = []
    deletions: list[PlanAction] = []
    # Pins and soft deletion decide once retention has (docs/promises.md §5.16).
    day, marked_from = pins.today(now, zone), pins.pending_from(now, zone, soft_delete)
    for snapshot, rules in retention.select(
        finished + ([planned] if planned else []), target.retention, zone
    ).items():
        if snapshot is planned:
            actions.append(PlanAction(ActionKind.CREATE, snapshot, note, rules))
            continue
        action = pins.decide(target, snapshot, rules, day, marked_from)
        (deletions if action.kind is ActionKind.DELETE else actions).append(action)

    ordered = sorted(
        actions + deletions + skips, key=lambda a: (a.snapshot.created, a.snapshot.id), reverse=True
    )
    plan = TargetPlan(target, tuple(ordered), note, None, problems)
    hold = copies.held(target, finished) if planned is None and created is None else None
    if hold is not None:  # docs/promises.md §5.15: nothing goes before the copies exist
        return replace(plan, actions=_holding(plan, hold))
    if len(deletions) > target.safety.max_deletions:
        return _refused(
            plan,
            f"refused: {len(deletions)} deletions exceed max_deletions "
            f"{target.safety.max_deletions}; {_RAISE}",
        )
    return plan


def standing_deletions(
    plan: TargetPlan,
    created: Snapshot | None,
    now: datetime,
    soft_delete: Duration | None = None,
) -> tuple[PlanAction, ...]:
    """Return the deletions of `plan` that still stand once `created`, the snapshot this run
    made for its target, exists. It is dated later than the plan's planned one and may land
    in another bucket (a new day, say), so retention re-run with it counted can keep a
    snapshot the plan would delete; such a deletion is dropped, never one added. Without
    `created` every deletion of the plan stands. Under `soft_delete` the marks pending
    (MARK_PENDING) are deletions to come and stand the same way (docs/promises.md §5.16)."""
    deletions = plan.of_kind(ActionKind.DELETE)
    if soft_delete is not None:
        deletions += plan.of_kind(ActionKind.MARK_PENDING)
    if created is None:
        return deletions
    observed = [_as_seen(a) for a in plan.actions if a.kind is not ActionKind.CREATE]
    recheck = plan_target(plan.target, observed, now, created=created, soft_delete=soft_delete)
    doomed = {
        a.snapshot.id
        for a in recheck.actions
        if a.kind in (ActionKind.DELETE, ActionKind.MARK_PENDING)
    }
    return tuple(a for a in deletions if a.snapshot.id in doomed)


def _as_seen(action: PlanAction) -> Snapshot:
    """The snapshot of `action` as it was listed: a MARK_PENDING carries the day it is to be
    marked with, which the cloud does not show yet."""
    if action.kind is ActionKind.MARK_PENDING:
        return replace(action.snapshot, pending_delete=None)
    return action.snapshot


def build_plan(
    observed: Sequence[tuple[Target, Sequence[Snapshot]]],
    now: datetime,
    creation_timeout: timedelta = DEFAULT_CREATION_TIMEOUT,
    last_made: Mapping[tuple[str, str], datetime] | None = None,
    withheld: Mapping[str, str] | None = None,
    max_deletions_per_run: int | None = None,
    soft_delete: Duration | None = None,
) -> Plan:
    """Return the plan for every target, in a stable order, with its fingerprint.

    `last_made` maps (account, server id) to when this tool last made a snapshot of it.
    `withheld` maps an account to why none of its deletions may be made this run (its
    listings disagreed): its targets' deletions become skips that say so, their creates stand.
    Limits refuse rather than truncate (docs/promises.md §5): a target's `max_deletions` counts its
    deletions across all its servers, and `max_deletions_per_run` the whole run's.
    """
    last_made, withheld = last_made or {}, withheld or {}
    plans = [
        plan_target(
            target,
            snapshots,
            now,
            creation_timeout=creation_timeout,
            last_made=last_made.get((target.account, target.server_id)),
            soft_delete=soft_delete,
        )
        for target, snapshots in observed
    ]
    plans = [
        _withheld(p, withheld[p.target.account]) if p.target.account in withheld else p
        for p in plans
    ]
    plans = _within_limits(plans, max_deletions_per_run)
    plans.sort(key=_plan_order)
    return Plan(
        now,
        tuple(plans),
        fingerprint(plans),
        config_fingerprint([p.target for p in plans], creation_timeout, max_deletions_per_run),
    )


def _plan_order(plan: TargetPlan) -> tuple[str, ...]:
    """Targets by name, cloud, account and server; a volume's (volumes: true) right after its
    droplet's, so the plan shows each under it."""
    t = plan.target
    return (
        t.name,
        t.provider,
        t.account,
        t.volume_of or t.server_id,
        t.server_id * bool(t.volume_of),
    )


def _within_limits(plans: list[TargetPlan], per_run: int | None) -> list[TargetPlan]:
    """Refuse every deletion of a target whose servers together exceed its `max_deletions`,
    then every deletion of the run if it exceeds `per_run`."""
    per_target: dict[tuple[str, str, str], int] = {}
    servers: dict[tuple[str, str, str], int] = {}
    for p in plans:
        key = _target_key(p.target)
        per_target[key] = per_target.get(key, 0) + len(p.of_kind(ActionKind.DELETE))
        servers[key] = servers.get(key, 0) + 1
    checked = []
    for p in plans:
        key, limit = _target_key(p.target), p.target.safety.max_deletions
        if per_target[key] > limit and p.of_kind(ActionKind.DELETE):
            p = _refused(
                p,
                f"refused: {per_target[key]} deletions across the target's {servers[key]} servers "
                f"exceed max_deletions {limit}; {_RAISE}",
            )
        checked.append(p)
    total = sum(len(p.of_kind(ActionKind.DELETE)) for p in checked)
    if per_run is None or total <= per_run:
        return checked
    reason = (
        f"refused: this run's {total} deletions exceed settings.max_deletions_per_run {per_run}; "
        f"{_RAISE}"
    )
    return [_refused(p, reason) if p.of_kind(ActionKind.DELETE) else p for p in checked]


def _target_key(target: Target) -> tuple[str, str, str]:
    """A target as configured: its servers' plans share its `max_deletions` (an account's
    orphans count as one target)."""
    return (target.name, target.provider, target.account)


def _refused(plan: TargetPlan, reason: str) -> TargetPlan:
    """`plan` with its deletions turned into skips saying `reason`, and the target failed by it."""
    return replace(plan, actions=_skipping_deletions(plan, reason), refusal=plan.refusal or reason)


def _withheld(plan: TargetPlan, reason: str) -> TargetPlan:
    """`plan` with its deletions turned into skips saying `reason`; its create stands."""
    return replace(plan, actions=_skipping_deletions(plan, reason), withheld=reason)


def _holding(plan: TargetPlan, reason: str) -> tuple[PlanAction, ...]:
    """The plan's deletions (and marks for deletion) as skips saying why they wait."""
    waiting = (ActionKind.DELETE, ActionKind.MARK_PENDING)
    return tuple(_skip(a.snapshot, reason) if a.kind in waiting else a for a in plan.actions)


def _skipping_deletions(plan: TargetPlan, reason: str) -> tuple[PlanAction, ...]:
    return tuple(
        _skip(a.snapshot, reason) if a.kind is ActionKind.DELETE else a for a in plan.actions
    )


def fingerprint(plans: Iterable[TargetPlan]) -> str:
    """Return a digest of every observed snapshot in `plans`: it changes when the cloud does."""
    seen = sorted(
        (
            p.target.provider,
            p.target.account,
            p.target.server_id,
            s.id,
            s.name,
            s.created.isoformat(),
            s.protected,
            s.creating,
            s.managed,
        )
        for p in plans
        for s in (a.snapshot for a in p.actions if a.kind is not ActionKind.CREATE)
    )
    return _digest(seen)


def config_fingerprint(
    targets: Iterable[Target], creation_timeout: timedelta, max_deletions_per_run: int | None = None
) -> str:
    """Return a digest of everything in the configuration that decides what a plan does:
    each target's rules, server and snapshot names (the pattern as it renders, so
    `db-1-{timestamp}` and `{server_name}-{timestamp}` agree for db-1), its owner and the
    hooks it runs and its restore drill (only when it has one, so configurations without
    drills keep the digest they had), not its notification channels, which hold secrets."""
    decisive = sorted(
        repr(
            (
                t.name,
                t.provider,
                t.account,
                t.server_id,
                t.retention,
                t.schedule,
                t.safety,
                t.timezone,
                filled_pattern(t),
                t.adopt_legacy_names,
                t.orphan,
                t.owner,
                t.hooks,
            )
            + ((t.drill,) if t.drill is not None else ())
            + ((t.copies,) if t.copies else ())
            # consistency: shutdown decides a downtime the plan announced (§5.17)
            + (("consistency", t.consistency) if t.consistency is not None else ())
        )
        for t in targets
    )
    return _digest([decisive, creation_timeout.total_seconds(), max_deletions_per_run])


def _digest(value: object) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(value).encode()).hexdigest()


def _skip(snapshot: Snapshot, reason: str) -> PlanAction:
    return PlanAction(ActionKind.SKIP, snapshot, reason)


def _unmanaged_reason(snapshot: Snapshot) -> str:
    if snapshot.ownership.startswith(FOREIGN):
        return snapshot.ownership  # it says whose: another configuration keeps it
    return (
        f"protected, and not this tool's: {snapshot.ownership}"
        if snapshot.protected
        else f"unmanaged: {snapshot.ownership}"
    )


def _skew_problem(snapshot: Snapshot, now: datetime) -> str:
    return (
        f"clock skew: snapshot {snapshot.name} ({snapshot.id}) is dated "
        f"{moment_text(snapshot.created)}, {_ahead(snapshot.created, now)} after this run's clock; "
        "it is kept and left out of retention and the schedule. "
        "Check this machine's clock (timedatectl) and the snapshot"
    )


def _stuck_problem(snapshot: Snapshot, now: datetime, timeout: timedelta) -> str:
    return (
        f"snapshot {snapshot.name} ({snapshot.id}) has been creating for "
        f"{duration_text(now - snapshot.created)}, "
        f"past snapshot_creation_timeout ({duration_text(timeout)}); "
        "no new snapshot is made until it finishes or is deleted in the cloud console"
    )


def _ahead(moment: datetime, now: datetime) -> str:
    return duration_text(moment - now)


def duration_text(span: timedelta) -> str:
    """`13 d 4 h`, `2 h 5 min`, `40 min`: a duration (an age, a timeout) as a person reads
    it, in the plan and in status."""
    minutes = int(span.total_seconds() // 60)
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def moment_text(moment: datetime) -> str:
    """`2026-12-07 03:00 UTC`: a moment to the minute, in its own timezone, named."""
    return moment.strftime("%Y-%m-%d %H:%M %Z")
