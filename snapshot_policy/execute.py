"""Carrying a plan out — the only code that changes anything in a cloud (SPEC §5, §8).

Per target: mark what an interrupted run left unmarked, create the due snapshot and wait
for it, then delete — only what the plan deletes *and* a fresh look at retention, with
the new snapshot counted, still deletes (reconcile.standing_deletions decides which). A
failed create deletes nothing. Targets run concurrently, at most `parallel` at a time per
account; snapshot starts on one account are spaced by `delay_between_servers`, while the
waits overlap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from snapshot_policy.audit import AuditLog
from snapshot_policy.journal import Journal
from snapshot_policy.model import ActionKind, Clock, Outcome, Plan, ProviderError, RunReport, Snapshot, Target, TargetFailure, TargetPlan
from snapshot_policy.ownership import classify, marker_labels
from snapshot_policy.providers import Provider
from snapshot_policy.reconcile import standing_deletions

log = logging.getLogger(__name__)


class StartPacer:
    """Spaces snapshot starts on one account by `spacing` seconds without holding up waits."""

    def __init__(self, spacing: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._spacing = spacing
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait_turn(self) -> None:
        with self._lock:
            now = self._clock()
            turn = max(now, self._next)
            self._next = turn + self._spacing
        if turn > now:
            self._sleep(turn - now)


@dataclass
class Executor:
    providers: Mapping[str, Provider]
    journal: Journal
    audit: AuditLog
    now: Clock
    parallel: int = 4
    delay_between_servers: float = 0.0
    progress: Callable[[Target, str], None] = lambda target, stage: None
    """Told each target's stage as it changes: waiting, creating, deleting, done, failed."""
    _pacers: dict[str, StartPacer] = field(default_factory=dict)

    def _record(self, event: str, target: Target, snapshot: Snapshot, reason: str) -> None:
        try:
            self.audit.record(event, target, snapshot, reason, self.now())
        except OSError as error:  # the change happened; failing to write it down must not undo the run
            log.error("%s: could not write the audit log: %s", target.name, error)

    def apply(self, plan: Plan, failures: Sequence[TargetFailure] = ()) -> RunReport:
        """Apply every target of `plan`; failures stay with their target."""
        started = self.now()
        by_account: dict[str, list[TargetPlan]] = defaultdict(list)
        for target_plan in plan.targets:
            by_account[target_plan.target.account].append(target_plan)
        self._pacers = {a: StartPacer(self.delay_between_servers) for a in by_account}
        gates = {a: threading.Semaphore(self.parallel) for a in by_account}

        def run(target_plan: TargetPlan) -> Outcome:
            self.progress(target_plan.target, "waiting")
            with gates[target_plan.target.account]:
                try:
                    outcome = self._apply_target(target_plan)
                except Exception as error:  # a bug must fail one target, not the whole run
                    log.exception("%s: unexpected error", target_plan.target.name)
                    outcome = Outcome(target_plan, ok=False, remaining=_managed(target_plan), error=f"unexpected error: {type(error).__name__}: {error}")
            self.progress(target_plan.target, "done" if outcome.ok else "failed")
            return outcome

        workers = max(1, min(len(plan.targets), self.parallel * len(by_account)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="target") as pool:
            outcomes = tuple(pool.map(run, plan.targets))
        return RunReport(started, self.now(), outcomes, tuple(failures))

    def _apply_target(self, plan: TargetPlan) -> Outcome:
        target = plan.target
        provider = self.providers[target.account]
        name = f"{target.name} ({target.server_name}, {target.provider} {target.server_id})"
        try:
            self._settle_journal(plan, provider)
            created = self._create(plan, provider, name)
        except ProviderError as error:
            log.error("%s: snapshot failed, nothing deleted: %s", name, error)
            return Outcome(plan, ok=False, remaining=_managed(plan), error=str(error))
        if plan.of_kind(ActionKind.DELETE):
            self.progress(target, "deleting")
        standing = standing_deletions(plan, created, self.now())
        deleted, errors = [], []
        for action in plan.of_kind(ActionKind.DELETE):
            snapshot = action.snapshot
            if action not in standing:
                log.info("%s: keeping %s after all: retention with the new snapshot keeps it", name, snapshot.name)
                continue
            # Written down first: a run killed after sending leaves the next run to audit it.
            self.journal.deleting(target.account, target.server_id, snapshot.id, snapshot.name, action.reason, self.now())
            try:
                provider.delete_snapshot(snapshot.id)
            except ProviderError as error:
                log.error("%s: could not delete %s (%s): %s", name, snapshot.name, snapshot.id, error)
                errors.append(f"delete {snapshot.name}: {error}")
                if error.refused:  # refused for certain: the snapshot is still there
                    self.journal.deleted(target.account, target.server_id, snapshot.id)
                continue
            log.info("%s: deleted %s (%s): %s", name, snapshot.name, snapshot.id, action.reason)
            self._record("deleted", target, snapshot, action.reason)
            self.journal.deleted(target.account, target.server_id, snapshot.id)
            deleted.append(snapshot)
        for action in plan.of_kind(ActionKind.KEEP):
            log.debug("%s: keeping %s: %s", name, action.snapshot.name, action.reason)
        remaining = _managed(plan, created) - len(deleted)
        for problem in filter(None, (plan.refusal, *plan.problems)):
            log.error("%s: %s", name, problem)
            errors.append(problem)
        return Outcome(plan, ok=not errors, created=created, deleted=tuple(deleted), remaining=remaining, error="; ".join(errors) or None)

    def _settle_journal(self, plan: TargetPlan, provider: Provider) -> None:
        """Close what an earlier run left open, on positive evidence only: a start whose
        snapshot this run's listing shows is marked if it must be, audited and crossed off; a
        deletion is audited if its snapshot is gone from the listing, and crossed off. A
        placeholder for a start not listed yet proves nothing and stays open."""
        target = plan.target
        listed = {a.snapshot.name: a.snapshot for a in plan.actions if a.kind is not ActionKind.CREATE and a.snapshot.id}
        for name in self.journal.pending(target.account, target.server_id):
            snapshot = listed.get(name)
            if snapshot is None:
                continue
            if snapshot.unmarked:
                provider.mark_snapshot(snapshot.id, marker_labels(target))
                log.info("%s: marked %s (%s), started by an interrupted run", target.name, snapshot.name, snapshot.id)
                self._record("adopted", target, snapshot, snapshot.ownership)
            else:
                self._record("created", target, snapshot, "made by an earlier run that could not see it finish")
            self.journal.marked(target.account, target.server_id, name)
        present = {a.snapshot.id for a in plan.actions if a.snapshot.id}
        for snapshot_id, (name, reason) in self.journal.deletions(target.account, target.server_id).items():
            if snapshot_id not in present:
                gone = Snapshot(snapshot_id, name, self.now(), target.server_id, True, "")
                log.info("%s: %s (%s) was deleted by an earlier run that could not see it done", target.name, name, snapshot_id)
                self._record("deleted", target, gone, f"{reason} (deleted by an interrupted run)")
            self.journal.deleted(target.account, target.server_id, snapshot_id)

    def _create(self, plan: TargetPlan, provider: Provider, name: str) -> Snapshot | None:
        if plan.create is None:
            log.info("%s: no snapshot: %s", name, plan.schedule_note)
            return None
        target, wanted = plan.target, plan.create.snapshot.name
        self._pacers[target.account].wait_turn()
        self.progress(target, "creating")
        self.journal.started(target.account, target.server_id, wanted, self.now())
        log.info("%s: creating %s (%s)", name, wanted, plan.create.reason)
        try:
            made = classify(target, provider.create_snapshot(target.server_id, wanted, marker_labels(target)))
        except ProviderError as error:
            if error.no_snapshot:  # certain: no snapshot will appear under this name
                self.journal.marked(target.account, target.server_id, wanted)
            raise
        self.journal.marked(target.account, target.server_id, wanted)
        log.info("%s: created %s (%s)", name, made.name, made.id)
        self._record("created", target, made, plan.create.reason)
        return made


def _managed(plan: TargetPlan, created: Snapshot | None = None) -> int:
    """How many managed snapshots the plan saw, the one it would create not counted, and
    `created` if this run made it."""
    seen = sum(1 for a in plan.actions if a.snapshot.managed and a.kind is not ActionKind.CREATE)
    return seen + (created is not None and created.managed)
