"""Carrying a plan out — the only code that changes anything in a cloud (docs/promises.md §5, §8).

Each account runs on its own, in three overlapping phases:

(a) start every due snapshot, as fast as the account's request budget allows (`budget`),
    no closer together than `delay_between_servers`, and, with `parallel`, with no more
    than that many in flight;
(b) wait for all started snapshots together: one round of batched polls at a time, spaced
    by how long the oldest has been running;
(c) as each snapshot is confirmed, delete what still stands for its target — the plan's
    deletions that retention, with the new snapshot counted, still makes
    (`reconcile.standing_deletions`). A failed create deletes nothing.

Requests go out through a few threads per account, so one slow reply holds up nothing else;
the account's own thread takes every result, writes the journal (once per batch, before
the requests it covers) and moves each target on. What to create and delete was decided
by the plan: nothing here decides it again.

Told to stop (`Stop`, set by the CLI on SIGTERM or SIGINT), the run starts no hook, snapshot
or deletion more; it kills the hooks still running (`hooks.stop_all`), runs the `after` hook
of every target whose `before` hook ran, lets the requests already sent finish, and leaves
each snapshot still being made in the journal for the next run to adopt. A `before` hook is
journalled before it runs and crossed off once its `after` hook ran, so a run killed outright
leaves the next run to run that `after` hook first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import timedelta

from snapshot_policy import hooks
from snapshot_policy.audit import AuditLog
from snapshot_policy.budget import RequestBudget
from snapshot_policy.journal import Journal
from snapshot_policy.model import ActionKind, Clock, Outcome, Plan, PlanAction, ProviderError, RetentionPolicy, RunReport, Snapshot, StartedSnapshot, Target, TargetFailure, TargetPlan
from snapshot_policy.ownership import classify, marker_labels
from snapshot_policy.providers import Provider
from snapshot_policy.providers.retry import FIRST_POLL, ServerBusy, Timing, timed_out
from snapshot_policy.reconcile import standing_deletions

log = logging.getLogger(__name__)

# Requests in flight at once per account, at most: each also waits for the account's request
# budget (`budget`), which is what paces the run. Neither cloud documents a limit on requests
# in flight, only on their rate; 32 lets 100-ms replies use Hetzner's burst (and DigitalOcean's
# 250 a minute) without a thread per server.
REQUESTS_AT_ONCE = 32
# A server busy with another action is asked again after this, doubling up to poll_interval.
BUSY_FIRST_WAIT = 1.0
# A poll round waits this share of the oldest snapshot's age: a snapshot is seen done at most
# a quarter of its duration late, and a long one is polled rarely (at most every poll_interval).
POLL_SPACING = 0.25
# Poll rounds in a row that may fail before the snapshots they wait for are given up.
FAILED_ROUNDS = 3
# Hooks running at once per account, apart from the requests: a slow hook holds up no request.
HOOKS_AT_ONCE = 4


class Stop:
    """A request to stop the run, set by the thread that takes the signals, read by every
    account. `stopped` is done once it is set, so an account waiting for its replies wakes at
    once: a wait's timeout is not to be relied on (under a C library that shifts the clock, as
    the tests run, it may never run out)."""

    def __init__(self) -> None:
        self.reason = ""
        self.stopped: Future[None] = Future()

    def set(self, reason: str) -> None:
        """`reason` names the signal; it completes "… stopped the run". The first one counts."""
        if not self.reason:
            self.reason = reason
            self.stopped.set_result(None)

    def is_set(self) -> bool:
        return bool(self.reason)


@dataclass
class Executor:
    providers: Mapping[str, Provider]
    journal: Journal
    audit: AuditLog
    now: Clock
    parallel: int | None = None
    """At most this many snapshots in flight per account; None: as the request budget allows."""
    delay_between_servers: float = 0.0
    timing: Timing = Timing()
    progress: Callable[[Target, str], None] = lambda target, stage: None
    """Told each target's stage as it changes: waiting, creating, deleting, done, failed."""
    monotonic: Callable[[], float] = time.monotonic
    stop: Stop = field(default_factory=Stop)
    halted: threading.Event = field(default_factory=threading.Event)
    """Set once the hooks running at the stop were killed: only then do the accounts run the
    after hooks owed, so none of those is killed."""
    _halting: threading.Lock = field(default_factory=threading.Lock)

    def apply(self, plan: Plan, failures: Sequence[TargetFailure] = ()) -> RunReport:
        """Apply every target of `plan`, the accounts at the same time; failures stay with their target."""
        started = self.now()
        by_account: dict[str, list[TargetPlan]] = defaultdict(list)
        for target_plan in plan.targets:
            by_account[target_plan.target.account].append(target_plan)
            self.progress(target_plan.target, "waiting")
        failures = list(failures) + self._run_afters_owed_to_unread(failures)
        outcomes: dict[int, Outcome] = {}
        with ThreadPoolExecutor(max_workers=max(1, len(by_account)), thread_name_prefix="account") as pool:
            for found in pool.map(self._run_account, by_account.values()):
                outcomes.update(found)
        return RunReport(started, self.now(), tuple(outcomes[id(p)] for p in plan.targets), tuple(failures))

    def _run_afters_owed_to_unread(self, failures: Sequence[TargetFailure]) -> list[TargetFailure]:
        """Run first the after hooks a killed run owes targets this run could not read: such a
        hook needs no cloud, and what its before hook froze must not wait for a listing.
        Return a failure for each that failed or is no longer configured."""
        found = []
        for failure in failures:
            for server_id, (name, began) in (self.journal.afters_owed(failure.account, failure.target) if failure.account else {}).items():
                owed = f"the after hook an interrupted run owed (its before hook ran for {name} at {began.isoformat()})"
                self.journal.after_ran(failure.account, server_id, failure.target)
                if not (failure.hooks and failure.hooks.after):
                    problem = f"it is no longer configured: check server {server_id} by hand"
                else:
                    target = Target(failure.target, failure.provider, failure.account, server_id, failure.server_name, RetentionPolicy(), hooks=failure.hooks)
                    log.warning("%s (server %s): running %s", failure.target, server_id, owed)
                    problem = hooks.run("after", failure.hooks, target, hooks.environment(target, name, "failure"))
                if problem is not None:
                    log.error("%s (server %s): %s: %s", failure.target, server_id, owed, problem)
                    found.append(replace(failure, reason=f"{owed}: {problem}"))
        return found

    def halt_once_stopped(self) -> None:
        """Once the run is told to stop, kill the hooks running then, once for all accounts
        (an account's after hooks that run later must not be killed by another's halt)."""
        with self._halting:
            if self.stop.is_set() and not self.halted.is_set():
                hooks.stop_all()
                self.halted.set()

    def _run_account(self, plans: list[TargetPlan]) -> dict[int, Outcome]:
        run = AccountRun(self, self.providers[plans[0].target.account], plans)
        try:
            run.run()
        except Exception as error:  # a bug must fail this account's unfinished targets, not the run
            log.exception("%s: unexpected error", plans[0].target.account)
            run.fail_unfinished(f"unexpected error: {type(error).__name__}: {error}")
        return {id(state.plan): state.outcome() for state in run.targets}

    def record(self, event: str, state: TargetState, snapshot: Snapshot, reason: str, once: bool = False) -> None:
        """Audit a change. One that cannot be written down fails its target: the change
        stands, but the trail an operator relies on lacks it. With `once` (what a killed run
        left open), not if a line already says it."""
        try:
            if once and self.audit.recorded(event, snapshot.id):
                return
            self.audit.record(event, state.target, snapshot, reason, self.now())
        except OSError as error:
            log.error("%s: could not write the audit log: %s", state.target.name, error)
            state.errors.append(f"{event} {snapshot.name} ({snapshot.id}) but could not write the audit log: {error}")


@dataclass(eq=False)
class TargetState:
    """One target on its way through the phases."""

    plan: TargetPlan
    created: Snapshot | None = None
    deleted: list[Snapshot] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    settled: bool = False
    """Its create is over: made, failed, or none was due."""
    deletions_left: int = 0
    before_done: bool = False
    """Its `before` hook ran (successfully or not): its `after` hook must run."""
    after_pending: bool = False
    after_for: tuple[str, str] = ("", "")
    """The status and snapshot name its after hook was given."""
    rerun_after: bool = False
    """Its `after` hook ran when the hooks were killed at a stop: if it failed, it runs again."""
    busy_since: float | None = None
    """When its server was first found busy with another action (monotonic); None: never."""
    busy_waits: int = 0
    """How often it was asked to wait: the next wait doubles."""
    finished: bool = False

    @property
    def target(self) -> Target:
        return self.plan.target

    @property
    def label(self) -> str:
        t = self.target
        return f"{t.name} ({t.server_name}, {t.provider} {t.server_id})"

    def outcome(self) -> Outcome:
        errors = list(self.errors)
        for problem in filter(None, (self.plan.refusal, *self.plan.problems)):
            errors.append(problem)
        remaining = _managed(self.plan, self.created) - len(self.deleted)
        deleted = tuple(a.snapshot for a in self.plan.of_kind(ActionKind.DELETE) if a.snapshot in self.deleted)  # in the plan's order
        # Withheld deletions alone make it partial: done as far as it safely could, not failed.
        partial = self.plan.withheld is not None and not errors
        if self.plan.withheld is not None:
            errors.append(f"deletions withheld: {self.plan.withheld}")
        return Outcome(self.plan, ok=not errors, created=self.created, deleted=deleted, remaining=remaining, error="; ".join(errors) or None, partial=partial)


class AccountRun:
    """The three phases for the targets of one account (see the module docstring)."""

    def __init__(self, executor: Executor, provider: Provider, plans: Sequence[TargetPlan]):
        self.executor = executor
        self.provider = provider
        self.targets = [TargetState(plan) for plan in plans]
        self.budget = RequestBudget(provider.rate_limit, executor.monotonic)
        self.budget.spend(provider.requests)  # the listings just read count in this minute too
        self.to_start: deque[TargetState] = deque()
        self.in_flight: dict[StartedSnapshot, tuple[TargetState, float]] = {}
        self.to_delete: deque[tuple[TargetState, PlanAction]] = deque()
        self.requests: dict[Future, Callable[[Future], None]] = {}
        self.hook_runs: dict[Future, Callable[[Future], None]] = {}
        self.starting = 0
        self.next_start = float("-inf")
        self.next_poll = float("-inf")
        self.failed_rounds = 0
        self.busy: list[tuple[float, TargetState]] = []
        """Targets whose server is busy with another action, and when to ask again."""
        self.refused_busy: list[tuple[TargetState, ProviderError]] = []
        """Starts refused as busy since the busy listing was last read."""
        self.held: set[TargetState] = set()
        """Due targets waiting for the after hook an interrupted run owes."""
        self.halted = False

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        account = self.targets[0].target.account
        with ThreadPoolExecutor(REQUESTS_AT_ONCE, f"{account}") as pool, ThreadPoolExecutor(HOOKS_AT_ONCE, f"{account}-hook") as hook_pool:
            self.pool, self.hook_pool = pool, hook_pool
            with self.executor.journal.batch():
                for state in self.targets:
                    self._settle_journal(state)
                    self._run_owed_after(state)
            due = [s for s in self.targets if not s.settled and s.plan.create is not None]
            for state in self.targets:
                if not state.settled and state.plan.create is None:
                    log.info("%s: no snapshot: %s", state.label, state.plan.schedule_note)
                    self._confirmed(state, None)
            for state in self._not_busy(due):
                if state.after_pending:
                    self.held.add(state)
                else:
                    self.to_start.append(state)
            while self.to_start or self.in_flight or self.to_delete or self.requests or self.hook_runs or self.busy or self.refused_busy:
                self.executor.halt_once_stopped()
                if self.executor.halted.is_set() and not self.halted:
                    self._halt()
                self._sort_busy()
                self._start_some()
                self._poll_if_due()
                self._delete_some()
                self._wait()

    def fail_unfinished(self, error: str) -> None:
        for state in self.targets:
            if not state.finished:
                state.errors.append(error)
                state.settled, state.deletions_left, state.after_pending = True, 0, False
                self._maybe_finish(state)

    def _wait(self) -> None:
        """Wait for a reply, or until the next start, poll or budgeted request is due."""
        now = self.executor.monotonic()
        moments = []
        if self.in_flight:
            moments.append(max(self.next_poll - now, self.budget.wait()))
        if self.to_start and self._room():
            moments.append(max(self.next_start - now, self.budget.wait()))
        if self.busy:
            moments.append(min(ready for ready, _ in self.busy) - now)
        if self.to_delete and len(self.requests) < REQUESTS_AT_ONCE:
            moments.append(self.budget.wait())
        timeout = max(0.0, min(moments)) if moments else None
        if not self.requests and not self.hook_runs:
            time.sleep(timeout or 0.01)
            return
        waiting = [*self.requests, *self.hook_runs] + ([] if self.halted else [self.executor.stop.stopped])  # a stop wakes it
        done, _ = wait(waiting, timeout=timeout, return_when=FIRST_COMPLETED)
        with self.executor.journal.batch():
            for future in done:
                if future is not self.executor.stop.stopped:
                    (self.requests.pop(future, None) or self.hook_runs.pop(future))(future)

    # -- (a) start -----------------------------------------------------------------------

    def _not_busy(self, due: list[TargetState]) -> list[TargetState]:
        """The due targets whose server is free. One already making a snapshot gets no second
        one; one busy with another action waits (`_wait_while_busy`). If the cloud cannot say,
        each start finds out (a busy server refuses)."""
        if not due:
            return []
        busy = self._busy_servers()
        free = []
        for state in due:
            kind = (busy or {}).get(state.target.server_id)
            if kind == "snapshot":
                self._fail(state, self._second_snapshot(state))
            elif kind is not None:
                self._wait_while_busy(state, kind)
            else:
                free.append(state)
        return free

    def _busy_servers(self) -> dict[str, str] | None:
        """Server id -> what it is busy with ("snapshot" or the cloud's action type), from one
        account-wide listing; None when it cannot be read."""
        since = self.executor.now() - timedelta(seconds=self.executor.timing.creation_timeout)
        before = self.provider.requests
        try:
            return self.provider.busy_servers(since)
        except ProviderError as error:
            log.warning("%s: could not list the servers busy with an action: %s", self.targets[0].target.account, error)
            return None
        finally:
            self.budget.spend(max(1, self.provider.requests - before))
            self._spent()

    def _second_snapshot(self, state: TargetState) -> str:
        return f"{state.target.provider}: server {state.target.server_id} already has a snapshot in progress; not starting a second one"

    def _wait_while_busy(self, state: TargetState, kind: str) -> None:
        """Ask again later, holding no request slot: after BUSY_FIRST_WAIT, doubling up to
        poll_interval, until the creation timeout has passed since the server was first busy."""
        now = self.executor.monotonic()
        state.busy_since = now if state.busy_since is None else state.busy_since
        wait_for = min(self.executor.timing.poll_interval, BUSY_FIRST_WAIT * 2**state.busy_waits)
        state.busy_waits += 1
        log.info("%s: the server is busy (%s); asking again in %.1fs", state.label, kind, wait_for)
        self.busy.append((now + wait_for, state))

    def _sort_busy(self) -> None:
        """Settle the starts refused as busy (one busy listing for all of them) and queue again
        the targets whose wait is over."""
        if self.halted:  # a start refused after the stop: nothing more is started
            for state in [state for _, state in self.busy] + [state for state, _ in self.refused_busy]:
                self._create_over(state, "failure")
                self._fail(state, f"{self.executor.stop.reason} stopped the run before its snapshot was started")
            self.busy, self.refused_busy = [], []
            return
        if self.refused_busy:
            refused, self.refused_busy = self.refused_busy, []
            busy = self._busy_servers() or {}  # unreadable: ask again; the cloud refuses a second snapshot itself
            for state, error in refused:
                kind = busy.get(state.target.server_id, "an action")
                if kind == "snapshot":
                    self._create_over(state, "failure")
                    self._fail(state, self._second_snapshot(state))
                elif self.executor.monotonic() - (state.busy_since or self.executor.monotonic()) > self.executor.timing.creation_timeout:
                    self._create_over(state, "failure")
                    self._fail(state, f"{error} (still busy after {self.executor.timing.creation_timeout:g}s)")
                else:
                    self._wait_while_busy(state, kind)
        now = self.executor.monotonic()
        ready = [state for when, state in self.busy if when <= now]
        if ready:
            self.busy = [(when, state) for when, state in self.busy if when > now]
            self.to_start.extend(ready)

    def _room(self) -> bool:
        return self.executor.parallel is None or len(self.in_flight) + self.starting < self.executor.parallel

    def _start_some(self) -> None:
        batch = []
        while not self.executor.stop.is_set() and self.to_start and self._room() and len(self.requests) + len(batch) < REQUESTS_AT_ONCE and self.budget.wait() == 0:
            hooks = self.to_start[0].target.hooks
            if hooks and hooks.before and not self.to_start[0].before_done:
                self._run_hook(self.to_start.popleft(), "before")
                continue
            now = self.executor.monotonic()
            if now < self.next_start:
                break
            self.next_start = now + self.executor.delay_between_servers
            self.budget.spend()
            self.starting += 1
            batch.append(self.to_start.popleft())
        with self.executor.journal.batch():  # written down before any is sent: a run killed meanwhile leaves them to adopt
            for state in batch:
                self.executor.journal.started(state.target.account, state.target.server_id, state.plan.create.snapshot.name, self.executor.now())
        for state in batch:
            target, create = state.target, state.plan.create
            self.executor.progress(target, "creating")
            log.info("%s: creating %s (%s)", state.label, create.snapshot.name, create.reason)
            future = self.pool.submit(self.provider.start_snapshot, target.server_id, create.snapshot.name, marker_labels(target))
            self.requests[future] = lambda f, state=state, sent=self.executor.monotonic(): self._started(state, f, sent)

    def _run_hook(self, state: TargetState, which: str, status: str = "", snapshot_name: str = "") -> None:
        """Run a hook of the target in the hook pool; its end is taken in `_hook_done`."""
        if which == "before":
            self.starting += 1  # a target in its before hook counts toward `parallel`
            future = self.hook_pool.submit(self._before, state)
        else:
            state.after_pending = True
            state.after_for = (status, snapshot_name or state.plan.create.snapshot.name)
            variables = hooks.environment(state.target, state.after_for[1], status)
            future = self.hook_pool.submit(hooks.run, "after", state.target.hooks, state.target, variables)
        self.hook_runs[future] = lambda f, state=state, which=which: self._hook_done(state, which, f)

    def _before(self, state: TargetState) -> tuple[str | None, bool]:
        """In a hook thread: (how the before hook failed or None, whether it ran). Written in
        the journal first when an after hook is owed for it; not run once the run is stopping."""
        if self.executor.stop.is_set():
            return None, False
        target, name = state.target, state.plan.create.snapshot.name
        if target.hooks.after:
            self.executor.journal.before_ran(target.account, target.server_id, target.name, name, self.executor.now())
        return hooks.run("before", target.hooks, target, hooks.environment(target, name)), True

    def _hook_done(self, state: TargetState, which: str, future: Future) -> None:
        try:
            problem, ran = future.result() if which == "before" else (future.result(), True)
        except Exception as error:  # a bug in running it: the hook did not succeed
            log.exception("%s: unexpected error in the %s hook", state.label, which)
            problem, ran = f"{which} hook: unexpected error: {type(error).__name__}: {error}", True
        if which == "before":
            self.starting -= 1
            state.before_done = ran
            if not ran:
                self._fail(state, f"{self.executor.stop.reason} stopped the run before its before hook ran; no snapshot")
                return
            if problem is None and self.executor.stop.is_set():
                problem = f"{self.executor.stop.reason} stopped the run before its snapshot was started"
            if problem is None:
                self.to_start.appendleft(state)
                return
            log.error("%s: %s; no snapshot, nothing deleted", state.label, problem)
            self._create_over(state, "failure")
            self._fail(state, problem)
            return
        if problem is not None and state.rerun_after:  # killed at the stop: a thaw must still happen
            state.rerun_after = False
            log.warning("%s: %s; running it again", state.label, problem)
            self._run_hook(state, "after", *state.after_for)
            return
        state.after_pending = False
        self.executor.journal.after_ran(state.target.account, state.target.server_id, state.target.name)
        if problem is not None:
            log.error("%s: %s", state.label, problem)
            state.errors.append(problem)
        if state in self.held:
            self.held.discard(state)
            if problem is not None:
                self._fail(state, "the after hook an interrupted run owed did not succeed; no snapshot this run")
            elif self.executor.stop.is_set():
                self._fail(state, f"{self.executor.stop.reason} stopped the run before its snapshot was started")
            else:
                self.to_start.append(state)
                return
        self._maybe_finish(state)

    def _run_owed_after(self, state: TargetState) -> None:
        """Run first the after hook an interrupted run owes this target (journal.py): its
        before hook may have frozen what only the after hook thaws."""
        target = state.target
        owed = self.executor.journal.afters_pending(target.account, target.server_id).get(target.name)
        if owed is None:
            return
        name, began = owed
        if not (target.hooks and target.hooks.after):
            self.executor.journal.after_ran(target.account, target.server_id, target.name)
            problem = (f"an interrupted run ran the before hook for {name} at {began.isoformat()} and never its after hook, "
                       "which is no longer configured: check the server by hand")
            log.error("%s: %s", state.label, problem)
            self._fail(state, problem)
            return
        log.warning("%s: running first the after hook an interrupted run owes (its before hook ran for %s at %s)", state.label, name, began.isoformat())
        self._run_hook(state, "after", "failure", name)

    def _create_over(self, state: TargetState, status: str) -> None:
        """The snapshot is made, failed or will not be made: the `after` hook runs, once the
        `before` hook ran (or there is none)."""
        target_hooks = state.target.hooks
        if target_hooks and target_hooks.after and (state.before_done or not target_hooks.before):
            self._run_hook(state, "after", status)

    def _started(self, state: TargetState, future: Future, sent: float) -> None:
        self.starting -= 1
        self._spent()
        try:
            started = future.result()
        except ServerBusy as error:  # certain: nothing was started
            self.executor.journal.marked(state.target.account, state.target.server_id, state.plan.create.snapshot.name)
            state.busy_since = self.executor.monotonic() if state.busy_since is None else state.busy_since
            self.refused_busy.append((state, error))
            return
        except ProviderError as error:
            self._create_failed(state, error)
            return
        except Exception as error:  # a bug fails this target only
            log.exception("%s: unexpected error", state.label)
            self._create_over(state, "failure")
            self._fail(state, f"unexpected error: {type(error).__name__}: {error}")
            return
        if self.halted:
            self._stopped_while_made(state, started)
            return
        self.in_flight[started] = (state, sent)
        if len(self.in_flight) == 1:  # the first to wait for: look soon
            self.next_poll = self.executor.monotonic() + FIRST_POLL

    # -- (b) wait ------------------------------------------------------------------------

    def _poll_if_due(self) -> None:
        now = self.executor.monotonic()
        if not self.in_flight or now < self.next_poll or self.budget.wait() > 0:
            return
        waiting = list(self.in_flight)
        before = self.provider.requests
        try:
            found = self.provider.progress(waiting)
            self.failed_rounds = 0
        except ProviderError as error:
            self.failed_rounds += 1
            log.warning("%s: could not poll %d snapshot(s): %s", self.targets[0].target.account, len(waiting), error)
            found = dict.fromkeys(waiting, error if self.failed_rounds >= FAILED_ROUNDS else None)
        finally:
            # A round may take several requests (pages); those the pool sent meanwhile are
            # counted twice, which only slows the pace a little.
            self.budget.spend(max(1, self.provider.requests - before))
            self._spent()
        now = self.executor.monotonic()
        with self.executor.journal.batch():
            for started in waiting:
                state, sent = self.in_flight[started]
                result = found.get(started)
                if result is None and now - sent > self.executor.timing.creation_timeout:
                    result = timed_out(self.provider.name, f"snapshot {started.name}", self.executor.timing.creation_timeout)
                if result is None:
                    continue
                del self.in_flight[started]
                if isinstance(result, ProviderError):
                    self._create_failed(state, result)
                else:
                    self._made(state, classify(state.target, result))
        if self.in_flight:
            oldest = min(sent for _, sent in self.in_flight.values())
            self.next_poll = now + min(self.executor.timing.poll_interval, max(FIRST_POLL, POLL_SPACING * (now - oldest)))

    def _made(self, state: TargetState, made: Snapshot) -> None:
        target, create = state.target, state.plan.create
        self.executor.journal.marked(target.account, target.server_id, create.snapshot.name)
        log.info("%s: created %s (%s)", state.label, made.name, made.id)
        self.executor.record("created", state, made, create.reason)
        state.created = made
        self._create_over(state, "success")
        self._confirmed(state, made)

    def _create_failed(self, state: TargetState, error: ProviderError) -> None:
        if error.no_snapshot:  # certain: no snapshot will appear under this name
            self.executor.journal.marked(state.target.account, state.target.server_id, state.plan.create.snapshot.name)
        log.error("%s: snapshot failed, nothing deleted: %s", state.label, error)
        self._create_over(state, "failure")
        self._fail(state, str(error))

    # -- (c) delete ----------------------------------------------------------------------

    def _confirmed(self, state: TargetState, made: Snapshot | None) -> None:
        """The create is over and succeeded (or none was due): queue what still stands."""
        state.settled = True
        standing = standing_deletions(state.plan, made, self.executor.now())
        for action in state.plan.of_kind(ActionKind.DELETE):
            if action in standing:
                self.to_delete.append((state, action))
                state.deletions_left += 1
            else:
                log.info("%s: keeping %s after all: retention with the new snapshot keeps it", state.label, action.snapshot.name)
        for action in state.plan.of_kind(ActionKind.KEEP):
            log.debug("%s: keeping %s: %s", state.label, action.snapshot.name, action.reason)
        if state.deletions_left:
            self.executor.progress(state.target, "deleting")
        else:
            self._maybe_finish(state)

    def _delete_some(self) -> None:
        batch = []
        while not self.executor.stop.is_set() and self.to_delete and len(self.requests) + len(batch) < REQUESTS_AT_ONCE and self.budget.wait() == 0:
            self.budget.spend()
            batch.append(self.to_delete.popleft())
        with self.executor.journal.batch():  # written down first: a run killed after sending leaves the next run to audit it
            for state, action in batch:
                t, snapshot = state.target, action.snapshot
                self.executor.journal.deleting(t.account, t.server_id, snapshot.id, snapshot.name, action.reason, self.executor.now())
        for state, action in batch:
            future = self.pool.submit(self.provider.delete_snapshot, action.snapshot.id)
            self.requests[future] = lambda f, state=state, action=action: self._deleted(state, action, f)

    def _deleted(self, state: TargetState, action: PlanAction, future: Future) -> None:
        self._spent()
        target, snapshot = state.target, action.snapshot
        state.deletions_left -= 1
        try:
            future.result()
        except ProviderError as error:
            log.error("%s: could not delete %s (%s): %s", state.label, snapshot.name, snapshot.id, error)
            state.errors.append(f"delete {snapshot.name}: {error}")
            if error.refused:  # refused for certain: the snapshot is still there
                self.executor.journal.deleted(target.account, target.server_id, snapshot.id)
        except Exception as error:  # a bug fails this target only; the journal keeps the deletion to check
            log.exception("%s: unexpected error", state.label)
            state.errors.append(f"unexpected error: {type(error).__name__}: {error}")
        else:
            log.info("%s: deleted %s (%s): %s", state.label, snapshot.name, snapshot.id, action.reason)
            self.executor.record("deleted", state, snapshot, action.reason)
            self.executor.journal.deleted(target.account, target.server_id, snapshot.id)
            state.deleted.append(snapshot)
        self._maybe_finish(state)

    # -- stopping ------------------------------------------------------------------------

    def _halt(self) -> None:
        """The run was told to stop and the hooks then running were killed: give up what has
        not begun, run the after hook of every target whose before hook ran, and leave the
        snapshots being made to the journal. Replies to requests already sent are still taken."""
        self.halted = True
        reason = self.executor.stop.reason
        for state in self.targets:
            state.rerun_after = state.after_pending  # it may have been killed with the others
        with self.executor.journal.batch():
            self.to_start.extend(state for _, state in self.busy)
            self.to_start.extend(state for state, _ in self.refused_busy)
            self.busy, self.refused_busy = [], []
            while self.to_start:
                state = self.to_start.popleft()
                self._create_over(state, "failure")
                self._fail(state, f"{reason} stopped the run before its snapshot was started")
            for started, (state, _) in list(self.in_flight.items()):
                self._stopped_while_made(state, started)
            self.in_flight.clear()
            untouched: dict[TargetState, int] = defaultdict(int)
            while self.to_delete:
                state, _ = self.to_delete.popleft()
                untouched[state] += 1
            for state, count in untouched.items():
                state.deletions_left -= count
                state.errors.append(f"{reason} stopped the run before {count} deletion(s)")
                self._maybe_finish(state)

    def _stopped_while_made(self, state: TargetState, started: StartedSnapshot) -> None:
        """Stopped while its snapshot is being made: the journal keeps the start, and the next
        run adopts the snapshot (or sees it failed); nothing is deleted for it now."""
        log.warning("%s: %s stopped the run while %s was being made; the next run adopts it", state.label, self.executor.stop.reason, started.name)
        self._create_over(state, "failure")
        self._fail(state, f"{self.executor.stop.reason} stopped the run while its snapshot {started.name} was being made; the next run adopts it")

    # -- bookkeeping ---------------------------------------------------------------------

    def _fail(self, state: TargetState, error: str) -> None:
        state.settled = True
        state.errors.append(error)
        self._maybe_finish(state)

    def _maybe_finish(self, state: TargetState) -> None:
        """Finish the target once its create, its deletions and its after hook are all over."""
        if state.finished or not state.settled or state.deletions_left or state.after_pending:
            return
        state.finished = True
        for problem in filter(None, (state.plan.refusal, *state.plan.problems)):
            log.error("%s: %s", state.label, problem)
        self.executor.progress(state.target, "done" if state.outcome().ok else "failed")

    def _spent(self) -> None:
        """Bring the budget in line with what the account's last reply reported."""
        self.budget.heard(self.provider.rate_limit.remaining)

    def _settle_journal(self, state: TargetState) -> None:
        """Close what an earlier run left open, on positive evidence only: a start whose
        snapshot this run's listing shows is marked if it must be, audited and crossed off; a
        deletion is audited if its snapshot is gone from the listing, and crossed off. A
        placeholder for a start not listed yet proves nothing and stays open. A mark that
        fails fails the target: nothing is created or deleted for it."""
        plan, target, journal = state.plan, state.target, self.executor.journal
        listed = {a.snapshot.name: a.snapshot for a in plan.actions if a.kind is not ActionKind.CREATE and a.snapshot.id}
        for name in journal.pending(target.account, target.server_id):
            snapshot = listed.get(name)
            if snapshot is None or not snapshot.managed:  # not listed yet, or not what this start made
                continue
            if snapshot.unmarked:
                try:
                    self.provider.mark_snapshot(snapshot.id, marker_labels(target))
                except ProviderError as error:
                    log.error("%s: snapshot failed, nothing deleted: %s", state.label, error)
                    self._fail(state, str(error))
                    return
                log.info("%s: marked %s (%s), started by an interrupted run", target.name, snapshot.name, snapshot.id)
                self.executor.record("adopted", state, snapshot, snapshot.ownership, once=True)
            else:
                self.executor.record("created", state, snapshot, "made by an earlier run that could not see it finish", once=True)
            journal.marked(target.account, target.server_id, name)
        for account, server_id, name, started in journal.future_starts():
            if (account, server_id) == (target.account, target.server_id):
                log.warning("%s: crossed off the journal's start of %s, dated %s by a clock that ran ahead; it adopts nothing", state.label, name, started.isoformat())
                journal.marked(account, server_id, name)
        present = {a.snapshot.id for a in plan.actions if a.snapshot.id}
        for snapshot_id, (name, reason) in journal.deletions(target.account, target.server_id).items():
            if snapshot_id not in present:
                gone = Snapshot(snapshot_id, name, self.executor.now(), target.server_id, True, "")
                log.info("%s: %s (%s) was deleted by an earlier run that could not see it done", target.name, name, snapshot_id)
                self.executor.record("deleted", state, gone, f"{reason} (deleted by an interrupted run)", once=True)
            journal.deleted(target.account, target.server_id, snapshot_id)


def _managed(plan: TargetPlan, created: Snapshot | None = None) -> int:
    """How many managed snapshots the plan saw, the one it would create not counted, and
    `created` if this run made it."""
    seen = sum(1 for a in plan.actions if a.snapshot.managed and a.kind is not ActionKind.CREATE)
    return seen + (created is not None and created.managed)
