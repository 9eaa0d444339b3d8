"""Is every server safe to restore, and from what? The facts `status` reports
(docs/promises.md §10).

Pure: the listings an observation read, the run state's last runs and drills, and `now`
come in as values. Per target and server: the newest managed snapshot and its age against
the schedule (ok, late, none), the snapshots and their cost, the last run, the last restore
drill and the age of the newest snapshot a drill verified. Per account: the servers no
target covers and the snapshot count against the limit the operator set.

"Late" follows the schedule apply follows (`reconcile.due`): a snapshot due for longer than
a grace (the creation timeout, at least an hour) is late — for an interval, counted from the
interval's end, not from the little earlier a run may already make it. A schedule of every
run has no due time of its own; it is late once its newest snapshot is older than 25 hours
(a daily cron line that missed a night). `late_after` sets either.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from snapshot_policy.core import copies
from snapshot_policy.core.cost import NO_PRICES, Storage
from snapshot_policy.core.model import (
    DEFAULT_CREATION_TIMEOUT,
    Account,
    Outcome,
    Price,
    Selector,
    Server,
    Snapshot,
    Target,
    TargetFailure,
    TargetSpec,
)
from snapshot_policy.core.ownership import DRILL_LABEL, DRILL_TAG
from snapshot_policy.core.pricing import price_key
from snapshot_policy.core.reconcile import CLOCK_TOLERANCE, due, duration_text, moment_text

OK, LATE, NONE = "ok", "late", "none"
EVERY_RUN_LATE = timedelta(hours=25)
"""A schedule of every run (a snapshots.py layout's cron line) is late past this age."""
MIN_GRACE = timedelta(hours=1)
# The drill marks (core/ownership: DRILL_LABEL, DRILL_TAG): a drill server lives minutes and
# is nobody's to cover, so it is never counted as uncovered.
FROM_RUN_STATE, FROM_MARK = "run state", "snapshot mark"


class RunRecord(Protocol):
    """A target's last apply on a server (state/runstate.LastRun)."""

    when: datetime
    ok: bool
    error: str | None


class DrillRecord(Protocol):
    """A target's last restore drill on a server (state/runstate.LastDrill)."""

    when: datetime
    passed: bool
    snapshot_id: str
    restore_seconds: float | None
    error: str | None


Subject = tuple[str, str, str]  # (account, server id, target), as the run state keys it


@dataclass(frozen=True)
class LastDrill:
    """The last restore drill of a target's server, from the run state (`when` known) or,
    when the run state has none, from the newest result marked on its snapshots (the day
    only)."""

    passed: bool
    on: date
    source: str
    when: datetime | None = None
    restore_seconds: float | None = None
    snapshot_id: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class TargetStatus:
    """One target's server: `state` is ok, late or none, `note` says why."""

    target: Target
    state: str
    note: str
    newest: Snapshot | None
    age: timedelta | None
    managed: int
    storage: Storage
    """Every snapshot of the server that is listed, managed or not: all are billed."""
    last_run: RunRecord | None
    last_drill: LastDrill | None
    verified: Snapshot | None
    """The newest managed snapshot whose last drill passed."""
    verified_age: timedelta | None
    problems: tuple[str, ...]
    pinned: tuple[Snapshot, ...] = ()
    """Its managed snapshots whose pin holds today (docs/promises.md §5.16), newest first."""
    pending: tuple[Snapshot, ...] = ()
    """Its managed snapshots marked pending deletion, soonest first."""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class AccountStatus:
    """One account: its servers, those no target covers (None when not judged: a run limited
    by --target sees only some targets), and its snapshots against `account.snapshot_limit`."""

    account: Account
    servers: int
    uncovered: tuple[Server, ...] | None
    ignored: int
    snapshots: int
    unreadable: str | None
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Status:
    """Everything `status` says, and its exit code: 0 all well, 2 something to look at, 1
    a configuration file or an account could not be read."""

    made_at: datetime
    targets: tuple[TargetStatus, ...]
    accounts: tuple[AccountStatus, ...]
    failures: tuple[TargetFailure, ...]
    """Targets that could not be judged: a file that is invalid, an account unreadable, a
    server missing or claimed twice."""
    unreadable_config: bool = False
    prices: tuple[tuple[str, Price], ...] = ()
    """The prices the costs are at (pricing.price_key, price), each with its source."""

    @property
    def exit_code(self) -> int:
        if self.unreadable_config or any(a.unreadable for a in self.accounts):
            return 1
        if self.failures or any(t.problems for t in self.targets):
            return 2
        return 2 if any(a.problems for a in self.accounts) else 0


def target_status(
    target: Target,
    snapshots: Sequence[Snapshot],
    now: datetime,
    last_run: RunRecord | None = None,
    last_drill: DrillRecord | None = None,
    prices: Mapping[str, Price] = NO_PRICES,
    creation_timeout: timedelta = DEFAULT_CREATION_TIMEOUT,
    late_after: timedelta | None = None,
) -> TargetStatus:
    """Judge one target's server from its classified snapshots at `now`."""
    own = [s for s in snapshots if s.server_id == target.server_id]
    finished = [
        s for s in own if s.managed and not s.creating and s.created <= now + CLOCK_TOLERANCE
    ]
    newest = max(finished, key=lambda s: (s.created, s.id), default=None)
    state, note = freshness(
        target, newest.created if newest else None, now, creation_timeout, late_after
    )
    drilled = _last_drill(finished, last_drill)
    verified = max(
        (s for s in finished if s.drilled is not None and s.drilled.passed),
        key=lambda s: (s.created, s.id),
        default=None,
    )
    problems = [note] if state != OK else []
    if last_run is not None and not last_run.ok:
        problems.append(
            f"last run {moment_text(last_run.when)} failed"
            + (f": {last_run.error}" if last_run.error else "")
        )
    copy_problem = copies.status_problem(target, newest)  # docs/promises.md §5.15
    problems += [copy_problem] if copy_problem else []
    if drilled is not None and not drilled.passed:
        problems.append(
            f"last restore drill {_drill_day(drilled)} failed"
            + (f": {drilled.error}" if drilled.error else "")
        )
    listed = [s for s in own if s.id]  # a start not listed yet is not billed yet
    return TargetStatus(
        target,
        state,
        note,
        newest,
        now - newest.created if newest else None,
        len(finished),
        Storage.of(
            ((price_key(prices, target.provider, target.account), s.size_gb) for s in listed),
            prices,
        ),
        last_run,
        drilled,
        verified,
        now - verified.created if verified else None,
        tuple(problems),
        *_marked(target, finished, now),
    )


def _marked(
    target: Target, finished: Sequence[Snapshot], now: datetime
) -> tuple[tuple[Snapshot, ...], tuple[Snapshot, ...]]:
    """Its pinned snapshots (the pin holding today in its timezone) and those pending
    deletion (docs/promises.md §5.16)."""
    today = now.astimezone(ZoneInfo(target.timezone)).date()
    newest_first = sorted(finished, key=lambda s: (s.created, s.id), reverse=True)
    pinned = tuple(s for s in newest_first if s.pin is not None and s.pin.until >= today)
    pending = tuple(
        sorted(
            (s for s in finished if s.pending_delete is not None),
            key=lambda s: (s.pending_delete, s.id),
        )
    )
    return pinned, pending


def freshness(
    target: Target,
    newest: datetime | None,
    now: datetime,
    creation_timeout: timedelta = DEFAULT_CREATION_TIMEOUT,
    late_after: timedelta | None = None,
) -> tuple[str, str]:
    """Return ok, late or none for a server whose newest managed snapshot was made at
    `newest`, and a sentence saying why."""
    if newest is None:
        return NONE, "no managed snapshot"
    schedule = target.schedule
    age = now - newest
    if not schedule.every and not schedule.cron:
        limit = late_after or EVERY_RUN_LATE
        if age > limit:
            return LATE, (
                f"late: the newest snapshot is {duration_text(age)} old, "
                f"older than {duration_text(limit)} "
                "(a snapshot is made every run)"
            )
        return OK, "a snapshot is made every run"
    grace = late_after or max(creation_timeout, MIN_GRACE)
    zone = ZoneInfo(target.timezone)
    if schedule.every:  # due once the interval has passed (apply's slack aside), late after
        overdue = age > schedule.every.as_timedelta() + grace
    else:  # the cron expression fired after the newest snapshot, longer ago than the grace
        overdue = due(schedule, newest, now - grace, zone)[0]
    if overdue:
        return LATE, (
            f"late: a snapshot has been due for more than {duration_text(grace)} "
            f"({schedule.describe()})"
        )
    is_due, why = due(schedule, newest, now, zone)
    if is_due:
        return OK, f"due now, not late yet: {why}"
    return OK, why


def _last_drill(snapshots: Sequence[Snapshot], recorded: DrillRecord | None) -> LastDrill | None:
    """The run state's last drill, else the newest drill result marked on a snapshot (a later
    day wins; a failure on the same day as a pass wins, as the marks say)."""
    if recorded is not None:
        return LastDrill(
            recorded.passed,
            recorded.when.date(),
            FROM_RUN_STATE,
            recorded.when,
            recorded.restore_seconds,
            recorded.snapshot_id,
            recorded.error,
        )
    marked = [s for s in snapshots if s.drilled is not None]
    if not marked:
        return None
    newest = max(marked, key=lambda s: (s.drilled.on, not s.drilled.passed, s.created))
    return LastDrill(newest.drilled.passed, newest.drilled.on, FROM_MARK, snapshot_id=newest.id)


def account_status(
    account: Account,
    specs: Sequence[TargetSpec],
    servers: Sequence[Server] | None,
    selected: Mapping[str, Sequence[Server]],
    snapshots: int,
    ignore: Sequence[Selector] = (),
    whole: bool = True,
    unreadable: str | None = None,
) -> AccountStatus:
    """Judge one account: the servers none of its `specs` names (unless an `ignore` selector
    does, or it is a drill server), judged only when the run is `whole`; its `snapshots`
    against the limit set."""
    if unreadable is not None or servers is None:
        return AccountStatus(account, 0, None, 0, 0, unreadable or "not read", ())
    uncovered: tuple[Server, ...] | None = None
    ignored = 0
    problems = []
    if whole:
        loose = [
            s
            for s in servers
            if not any(names(spec.selector, s, selected) for spec in specs)
            and not (DRILL_LABEL in s.labels or DRILL_TAG in s.labels)
        ]
        uncovered = tuple(s for s in loose if not any(names(i, s, selected) for i in ignore))
        ignored = len(loose) - len(uncovered)
        if uncovered:
            problems.append(
                f"{len(uncovered)} server(s) no target covers: "
                + ", ".join(f"{s.name} ({s.id})" for s in uncovered)
            )
    limit = account.snapshot_limit
    if limit is not None and snapshots >= limit:  # at it, the next snapshot is refused
        where = "over" if snapshots > limit else "at"
        problems.append(
            f"{snapshots} snapshots, {where} the limit of {limit} set in "
            f"accounts.{account.name}.snapshot_limit"
        )
    return AccountStatus(
        account, len(servers), uncovered, ignored, snapshots, None, tuple(problems)
    )


def names(selector: Selector, server: Server, selected: Mapping[str, Sequence[Server]]) -> bool:
    """Whether `selector` names `server`: by id, by name, or among the servers its label
    selector listed (the cloud's own reading of it, `selected`)."""
    if selector.ids:
        return server.id in selector.ids
    if selector.names:
        return server.name in selector.names
    listed = selected.get(selector.label_selector or "", ())
    return any(s.id == server.id for s in listed)


def build(
    specs: Sequence[TargetSpec],
    observed: Sequence[tuple[Target, Sequence[Snapshot]]],
    failures: Sequence[TargetFailure],
    now: datetime,
    *,
    servers: Mapping[str, Sequence[Server]],
    selected: Mapping[str, Mapping[str, Sequence[Server]]],
    snapshot_counts: Mapping[str, int],
    unreadable: Mapping[str, str] | None = None,
    last_runs: Mapping[Subject, RunRecord] | None = None,
    last_drills: Mapping[Subject, DrillRecord] | None = None,
    prices: Mapping[str, Price] = NO_PRICES,
    creation_timeout: timedelta = DEFAULT_CREATION_TIMEOUT,
    late_after: timedelta | None = None,
    ignore: Sequence[Selector] = (),
    whole: bool = True,
    config_failures: Collection[TargetFailure] = (),
) -> Status:
    """The whole status: each observed target (orphans left out: they belong to none), each
    account the specs use, in a stable order. `config_failures` are the configuration's own
    (a file that could not be read): they make the exit code 1."""
    unreadable, last_runs, last_drills = unreadable or {}, last_runs or {}, last_drills or {}
    targets = []
    for target, snapshots in observed:
        if target.orphan:
            continue
        subject = (target.account, target.server_id, target.name)
        targets.append(
            target_status(
                target,
                snapshots,
                now,
                last_runs.get(subject),
                last_drills.get(subject),
                prices,
                creation_timeout,
                late_after,
            )
        )
    targets.sort(
        key=lambda t: (t.target.name, t.target.provider, t.target.account, t.target.server_id)
    )
    accounts: dict[Account, list[TargetSpec]] = {}
    for spec in specs:
        accounts.setdefault(spec.account, []).append(spec)
    judged = [
        account_status(
            account,
            account_specs,
            servers.get(account.name),
            selected.get(account.name, {}),
            snapshot_counts.get(account.name, 0),
            ignore,
            whole,
            unreadable.get(account.name),
        )
        for account, account_specs in sorted(accounts.items(), key=lambda a: a[0].name)
    ]
    used = {price_key(prices, t.target.provider, t.target.account) for t in targets}
    return Status(
        now,
        tuple(targets),
        tuple(judged),
        tuple(config_failures) + tuple(f for f in failures if f not in config_failures),
        bool(config_failures),
        prices=tuple((key, prices[key]) for key in sorted(used & set(prices))),
    )


def after_apply(
    observed: Sequence[tuple[Target, Sequence[Snapshot]]],
    snapshot_counts: Mapping[str, int],
    outcomes: Sequence[Outcome],
) -> tuple[list[tuple[Target, list[Snapshot]]], dict[str, int]]:
    """What the observation would show once apply's `outcomes` are counted: each target's
    new snapshot added and its deleted ones gone, and each account's count with them."""
    made = {(o.plan.target.account, o.plan.target.server_id): o for o in outcomes}
    counts = dict(snapshot_counts)
    for outcome in outcomes:
        account = outcome.plan.target.account
        counts[account] = (
            counts.get(account, 0) + (outcome.created is not None) - len(outcome.deleted)
        )
    now_seen = []
    for target, snapshots in observed:
        outcome = made.get((target.account, target.server_id))
        if outcome is None:
            now_seen.append((target, list(snapshots)))
            continue
        gone = {s.id for s in outcome.deleted}
        kept = [s for s in snapshots if s.id not in gone]
        if outcome.created is not None:  # and the start an interrupted run left, if it was that
            kept = [s for s in kept if s.name != outcome.created.name]
            created = replace(outcome.created, managed=True, creating=False)
            kept.append(copies.with_copies(created, outcome.copied_to))
        now_seen.append((target, kept))
    return now_seen, counts


def _drill_day(drill: LastDrill) -> str:
    return moment_text(drill.when) if drill.when is not None else drill.on.isoformat()
