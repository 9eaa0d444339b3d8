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
by the plan, and what a target does next is decided by its `lifecycle.Lifecycle`: this
module schedules, sends, waits and writes. The only rules left here are about waiting
itself: when the next poll round is due, when a create has outlasted the creation timeout,
and when an account's polls have failed too often to go on.

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
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import timedelta

from snapshot_policy.core import commands, events, pins
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.lifecycle import (
    Lifecycle,
    Stage,
)
from snapshot_policy.core.model import (
    ActionKind,
    Clock,
    Outcome,
    Plan,
    PlanAction,
    ProviderError,
    RetentionPolicy,
    RunReport,
    Snapshot,
    StartedSnapshot,
    Target,
    TargetFailure,
    TargetPlan,
)
from snapshot_policy.core.ownership import classify, marker_labels
from snapshot_policy.core.settlement import (
    settle,
)
from snapshot_policy.edges import hooks
from snapshot_policy.edges.providers import Provider
from snapshot_policy.edges.providers.retry import (
    FIRST_POLL,
    TIMED_OUT,
    ServerBusy,
    Timing,
    UncertainOutcome,
    timed_out,
)
from snapshot_policy.pacing.budget import RequestBudget
from snapshot_policy.state.audit import AuditLog
from snapshot_policy.state.journal import Journal

log = logging.getLogger(__name__)

# Requests in flight at once per account, at most: each also waits for the account's request
# budget (`budget`), which is what paces the run. Neither cloud documents a limit on requests
# in flight, only on their rate; 32 lets 100-ms replies use Hetzner's burst (and DigitalOcean's
# 250 a minute) without a thread per server.
REQUESTS_AT_ONCE = 32
# A poll round waits this share of the oldest snapshot's age: a snapshot is seen done at most
# a quarter of its duration late, and a long one is polled rarely (at most every poll_interval).
POLL_SPACING = 0.25
# Poll rounds in a row that may fail before the snapshots they wait for are given up.
FAILED_ROUNDS = 3
# Hooks running at once per account, apart from the requests: a slow hook holds up no request.
HOOKS_AT_ONCE = 4
WAIT_SLICE = 0.02
"""While replies or hooks are awaited with a deadline, they are looked at this often."""
# What writing a mark costs in requests (docs/promises.md §5.16): Hetzner reads the labels and
# writes them back; DigitalOcean tags and untags; an unpin may first lift a protection.
RELABEL_REQUESTS = {
    ActionKind.MARK_PENDING: 2,
    ActionKind.UNMARK_PENDING: 2,
    ActionKind.UNPIN: 3,
}


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
    soft_delete: Duration | None = None
    """`settings.soft_delete` (docs/promises.md §5.16): each lifecycle's marks stand by it."""

    def apply(self, plan: Plan, failures: Sequence[TargetFailure] = ()) -> RunReport:
        """Apply every target of `plan`, the accounts at the same time; failures stay with their
        target."""
        started = self.now()
        by_account: dict[str, list[TargetPlan]] = defaultdict(list)
        for target_plan in plan.targets:
            by_account[target_plan.target.account].append(target_plan)
            self.progress(target_plan.target, "waiting")
        failures = list(failures) + self._run_afters_owed_to_unread(failures)
        failures += self._left_off_uncovered(plan)
        outcomes: dict[int, Outcome] = {}
        with ThreadPoolExecutor(
            max_workers=max(1, len(by_account)), thread_name_prefix="account"
        ) as pool:
            for found in pool.map(self._run_account, by_account.values()):
                outcomes.update(found)
        return RunReport(
            started, self.now(), tuple(outcomes[id(p)] for p in plan.targets), tuple(failures)
        )

    def _run_afters_owed_to_unread(self, failures: Sequence[TargetFailure]) -> list[TargetFailure]:
        """Run first the after hooks a killed run owes targets this run could not read: such a
        hook needs no cloud, and what its before hook froze must not wait for a listing.
        Return a failure for each that failed or is no longer configured."""
        found = []
        for failure in failures:
            for server_id, (name, began) in (
                self.journal.afters_owed(failure.account, failure.target) if failure.account else {}
            ).items():
                owed = (
                    "the after hook an interrupted run owed "
                    f"(its before hook ran for {name} at {began.isoformat()})"
                )
                self.journal.after_ran(failure.account, server_id, failure.target)
                if not (failure.hooks and failure.hooks.after):
                    problem = f"it is no longer configured: check server {server_id} by hand"
                else:
                    target = Target(
                        failure.target,
                        failure.provider,
                        failure.account,
                        server_id,
                        failure.server_name,
                        RetentionPolicy(),
                        hooks=failure.hooks,
                    )
                    log.warning("%s (server %s): running %s", failure.target, server_id, owed)
                    problem = hooks.run(
                        "after", failure.hooks, target, hooks.environment(target, name, "failure")
                    )
                if problem is not None:
                    log.error("%s (server %s): %s: %s", failure.target, server_id, owed, problem)
                    found.append(replace(failure, reason=f"{owed}: {problem}"))
        return found

    def _left_off_uncovered(self, plan: Plan) -> list[TargetFailure]:
        """A server an interrupted run shut down (docs/promises.md §5.17) that no target of
        this run covers (its listing failed, or no target names it now) is not powered on
        here: each is a failure, so the run says so (exit 2) until one covers it."""
        covered = {(p.target.account, p.target.server_id) for p in plan.targets}
        found = []
        for account, server_id, target, when in self.journal.left_off():
            if (account, server_id) in covered:
                continue
            reason = (
                f"server {server_id} was shut down by an interrupted run at {when.isoformat()} "
                "and not seen running since; this run does not cover it: power it on by hand "
                "(the next run that covers it does)"
            )
            log.error("%s: %s", target, reason)
            found.append(TargetFailure(target, reason, account))
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
        return {id(life.plan): life.outcome() for life in run.targets}

    def record_power(self, event: str, life: Lifecycle, reason: str) -> None:
        """Audit what consistency: shutdown did to a server's power (docs/promises.md §5.17);
        one that cannot be written down fails its target, as `record` does."""
        try:
            self.audit.record_power(event, life.target, reason, self.now())
        except OSError as error:
            log.error("%s: could not write the audit log: %s", life.target.name, error)
            life.errors.append(f"{event} but could not write the audit log: {error}")

    def record(
        self, event: str, life: Lifecycle, snapshot: Snapshot, reason: str, once: bool = False
    ) -> None:
        """Audit a change. One that cannot be written down fails its target: the change
        stands, but the trail an operator relies on lacks it. With `once` (what a killed run
        left open), not if a line already says it."""
        try:
            if once and self.audit.recorded(event, snapshot.id):
                return
            self.audit.record(event, life.target, snapshot, reason, self.now())
        except OSError as error:
            log.error("%s: could not write the audit log: %s", life.target.name, error)
            what = f"{event} {snapshot.name} ({snapshot.id})"
            life.errors.append(f"{what} but could not write the audit log: {error}")


class AccountRun:
    """The three phases for the targets of one account (see the module docstring): this
    schedules, sends and writes; each target's `Lifecycle` decides what comes next."""

    def __init__(self, executor: Executor, provider: Provider, plans: Sequence[TargetPlan]):
        self.executor = executor
        self.provider = provider
        timing = executor.timing
        self.targets = [
            Lifecycle(
                plan,
                timing.poll_interval,
                timing.creation_timeout,
                soft_delete=executor.soft_delete,
            )
            for plan in plans
        ]
        self.budget = RequestBudget(provider.rate_limit, executor.monotonic)
        self.budget.spend(provider.requests)  # the listings just read count in this minute too
        self.to_start: deque[Lifecycle] = deque()
        self.in_flight: dict[StartedSnapshot, tuple[Lifecycle, float]] = {}
        self.to_delete: deque[tuple[Lifecycle, PlanAction]] = deque()
        self.requests: dict[Future, Callable[[Future], None]] = {}
        self.hook_runs: dict[Future, Callable[[Future], None]] = {}
        self.starting = 0
        self.next_start = float("-inf")
        self.next_poll = float("-inf")
        self.failed_rounds = 0
        self.busy: list[tuple[float, Lifecycle]] = []
        """Targets whose server is busy with another action, and when to ask again."""
        self.refused_busy: list[Lifecycle] = []
        """Starts refused as busy since the busy listing was last read."""
        self.halted = False
        self.to_transfer: deque[tuple[Lifecycle, Snapshot, str]] = deque()
        self.copying: dict[tuple[str, str], tuple[Lifecycle, float]] = {}
        """(snapshot id, region) -> the target copying it there, and when it was sent."""
        self.next_copy_poll = float("-inf")
        self.failed_copy_rounds = 0
        # consistency: shutdown (docs/promises.md §5.17): targets waiting for their server's
        # power state, read for all of them in one listing a round; power actions asked later.
        self.watching: dict[Lifecycle, None] = {}
        self.watch_since = 0.0
        self.next_power_poll = float("-inf")
        self.power_later: list[tuple[float, Lifecycle, str]] = []
        self.power_round = False
        self.to_power: deque[tuple[Lifecycle, str]] = deque()
        """Power ons and offs to send as the budget allows (a shutdown is a turn of its own)."""

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        account = self.targets[0].target.account
        with (
            ThreadPoolExecutor(REQUESTS_AT_ONCE, f"{account}") as pool,
            ThreadPoolExecutor(HOOKS_AT_ONCE, f"{account}-hook") as hook_pool,
        ):
            self.pool, self.hook_pool = pool, hook_pool
            with self.executor.journal.batch():
                for life in self.targets:
                    self._settle_journal(life)
            waiting = [life for life in self.targets if life.stage is Stage.WAITING]
            for life in waiting:
                if life.plan.create is None:
                    self._carry(life, life.on(self._begin()))
            due = [life for life in waiting if life.plan.create is not None]
            busy = (self._busy_servers() or {}) if due else {}
            for life in due:
                self._carry(life, life.on(self._begin(busy.get(life.target.server_id))))
            while (
                self.to_start
                or self.in_flight
                or self.to_delete
                or self.requests
                or self.hook_runs
                or self.busy
                or self.refused_busy
                or self.to_transfer
                or self.copying
                or self.watching
                or self.power_later
                or self.to_power
            ):
                self.executor.halt_once_stopped()
                if self.executor.halted.is_set() and not self.halted:
                    self._halt()
                self._sort_busy()
                self._power_some()
                self._start_some()
                self._poll_if_due()
                self._transfer_some()
                self._poll_copies_if_due()
                self._power_if_due()
                self._delete_some()
                self._wait()

    def fail_unfinished(self, error: str) -> None:
        for life in self.targets:
            self._carry(life, life.on(events.Abandon(error)))

    def _carry(self, life: Lifecycle, orders: Iterable[commands.Command]) -> None:
        """Carry out a lifecycle's commands in order (`Start`, `Mark`: their callers do)."""
        t, journal = life.target, self.executor.journal
        for command in orders:
            match command:
                case commands.Log(level, message):
                    log.log(level, message)
                case commands.Record(event, snapshot, reason, once):
                    self.executor.record(event, life, snapshot, reason, once)
                case commands.CrossOffStart(name):
                    journal.marked(t.account, t.server_id, name)
                case commands.CrossOffDeletion(snapshot_id):
                    journal.deleted(t.account, t.server_id, snapshot_id)
                case commands.CrossOffAfter():
                    journal.after_ran(t.account, t.server_id, t.name)
                case commands.Queue(front):
                    (self.to_start.appendleft if front else self.to_start.append)(life)
                case commands.AskAgain(at):
                    self.busy.append((at, life))
                case commands.CheckBusy():
                    self.refused_busy.append(life)
                case commands.RunBefore():
                    future = self.hook_pool.submit(self._before, life)
                    self.hook_runs[future] = lambda f, life=life: self._before_done(life, f)
                case commands.Poll(started, sent):
                    self.in_flight[started] = (life, sent)
                    if len(self.in_flight) == 1:  # the first to wait for: look soon
                        self.next_poll = self.executor.monotonic() + FIRST_POLL
                case commands.RunAfter(status, snapshot_name):
                    variables = hooks.environment(t, snapshot_name, status)
                    future = self.hook_pool.submit(hooks.run, "after", t.hooks, t, variables)
                    self.hook_runs[future] = lambda f, life=life: self._after_done(life, f)
                case commands.Delete(action):
                    self.to_delete.append((life, action))
                case commands.Relabel(action):  # marks go where deletions go (§5.16)
                    self.to_delete.append((life, action))
                case commands.Transfer(snapshot, region):
                    self.to_transfer.append((life, snapshot, region))
                case commands.Progress(stage):
                    self.executor.progress(t, stage)
                case commands.Finished():
                    self.executor.progress(t, "done" if life.outcome().ok else "failed")
                case commands.Power(kind) if kind == "shutdown":  # its turn paid the budget
                    self._send_power(life, kind)
                case commands.Power(kind):
                    self.to_power.append((life, kind))
                case commands.PowerLater(kind, at):
                    self.power_later.append((at, life, kind))
                case commands.WatchPower():
                    if not self.watching and not self.power_round:  # the first: look soon
                        self.watch_since = self.executor.monotonic()
                        self.next_power_poll = self.watch_since + FIRST_POLL
                    self.watching[life] = None
                case commands.CrossOffPoweredOff():
                    journal.powered_on(t.account, t.server_id)
                case commands.RecordPower(event, reason):
                    self.executor.record_power(event, life, reason)
                case _:
                    raise TypeError(f"not carried out here: {command!r}")

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
        if self.to_transfer and len(self.requests) < REQUESTS_AT_ONCE:
            moments.append(self.budget.wait())
        if self.copying:
            moments.append(max(self.next_copy_poll - now, self.budget.wait()))
        if self.watching:
            moments.append(max(self.next_power_poll - now, self.budget.wait()))
        if self.power_later:
            moments.append(min(at for at, _, _ in self.power_later) - now)
        if self.to_power and len(self.requests) < REQUESTS_AT_ONCE:
            moments.append(self.budget.wait())
        timeout = max(0.0, min(moments)) if moments else None
        if not self.requests and not self.hook_runs:
            time.sleep(timeout or 0.01)
            return
        waiting = [*self.requests, *self.hook_runs] + (
            [] if self.halted else [self.executor.stop.stopped]
        )  # a stop wakes it
        if timeout is None:
            done, _ = wait(waiting, return_when=FIRST_COMPLETED)
        else:  # the next poll (of a snapshot or a copy) is due: slept, never a timed wait
            done = first_done(waiting, timeout)
        with self.executor.journal.batch():
            for future in done:
                if future is not self.executor.stop.stopped:
                    (self.requests.pop(future, None) or self.hook_runs.pop(future))(future)

    # -- what an earlier run left --------------------------------------------------------

    def _settle_journal(self, life: Lifecycle) -> None:
        """Close what an earlier run left open (`settlement.settle`), then run the after hook it
        owes. A mark that fails fails the target and leaves the rest of the settlement open:
        nothing is created or deleted for it."""
        t, journal = life.target, self.executor.journal
        server = (t.account, t.server_id)
        powered_off = journal.powered_off(*server)
        if powered_off is not None:  # first: a server a killed run left off runs again
            self._carry(life, life.on(events.PoweredOffOwed(*powered_off)))
        ahead = [(name, when) for *at, name, when in journal.future_starts() if tuple(at) == server]
        pending, deletions = journal.pending(*server), journal.deletions(*server)
        for command in settle(life.plan, pending, ahead, deletions, self.executor.now()):
            if not isinstance(command, commands.Mark):
                self._carry(life, [command])
                continue
            try:
                self.provider.mark_snapshot(command.snapshot.id, marker_labels(t))
            except ProviderError as error:
                self._carry(life, life.on(events.MarkFailed(error)))
                break
        owed = journal.afters_pending(*server).get(t.name)
        if owed is not None:
            self._carry(life, life.on(events.AfterOwed(*owed)))

    def _begin(self, busy: str | None = None) -> events.Begin:
        return events.Begin(self.executor.now(), self.executor.monotonic(), busy)

    # -- (a) start -----------------------------------------------------------------------

    def _busy_servers(self) -> dict[str, str] | None:
        """Server id -> what it is busy with ("snapshot" or the cloud's action type), from one
        account-wide listing; None when it cannot be read (each start then finds out: a busy
        server refuses)."""
        since = self.executor.now() - timedelta(seconds=self.executor.timing.creation_timeout)
        before = self.provider.requests
        try:
            return self.provider.busy_servers(since)
        except ProviderError as error:
            log.warning(
                "%s: could not list the servers busy with an action: %s",
                self.targets[0].target.account,
                error,
            )
            return None
        finally:
            self.budget.spend(max(1, self.provider.requests - before))
            self._spent()

    def _sort_busy(self) -> None:
        """Settle the starts refused as busy (one busy listing for all of them) and queue again
        the targets whose wait is over."""
        if self.refused_busy:
            refused, self.refused_busy = self.refused_busy, []
            busy = (
                self._busy_servers() or {}
            )  # unreadable: ask again; the cloud refuses a second snapshot itself
            for life in refused:
                kind = busy.get(life.target.server_id, "an action")
                self._carry(life, life.on(events.BusyListed(kind, self.executor.monotonic())))
        now = self.executor.monotonic()
        ready = [life for when, life in self.busy if when <= now]
        if ready:
            self.busy = [(when, life) for when, life in self.busy if when > now]
            for life in ready:
                self._carry(life, life.on(events.WaitOver()))

    def _room(self) -> bool:
        return (
            self.executor.parallel is None
            or len(self.in_flight) + self.starting < self.executor.parallel
        )

    def _start_some(self) -> None:
        """Give the queued targets their turn: a before hook runs first (it counts toward
        `parallel`), and starts are spaced by `delay_between_servers`."""
        batch: list[tuple[Lifecycle, commands.Start]] = []
        while (
            not self.executor.stop.is_set()
            and self.to_start
            and self._room()
            and len(self.requests) + len(batch) < REQUESTS_AT_ONCE
            and self.budget.wait() == 0
        ):
            if not self.to_start[0].before_owed:
                now = self.executor.monotonic()
                if now < self.next_start:
                    break
                self.next_start = now + self.executor.delay_between_servers
                self.budget.spend()
            life = self.to_start.popleft()
            self.starting += 1
            (command,) = life.on(events.Turn())
            if isinstance(command, commands.Start):
                batch.append((life, command))
            else:
                self._carry(life, [command])
        with (
            self.executor.journal.batch()
        ):  # written down before any is sent: a run killed meanwhile leaves them to adopt
            for life, start in batch:
                t = life.target
                now = self.executor.now()
                self.executor.journal.started(t.account, t.server_id, start.name, now)
        for life, start in batch:
            t = life.target
            self.executor.progress(t, "creating")
            log.info("%s: creating %s (%s)", life.label, start.name, start.reason)
            # A volume's snapshot (volumes: true) has its own call; its reply is the finished
            # snapshot, which the next poll round takes without a request (§5.18).
            begin = (
                self.provider.start_volume_snapshot if t.volume_of else self.provider.start_snapshot
            )
            future = self.pool.submit(begin, t.server_id, start.name, marker_labels(t))
            sent = self.executor.monotonic()
            self.requests[future] = lambda f, life=life, sent=sent: self._started(life, f, sent)

    def _before(self, life: Lifecycle) -> tuple[str | None, bool]:
        """In a hook thread: (how the before hook failed or None, whether it ran). Written in
        the journal first when an after hook is owed for it; not run once the run is stopping."""
        if self.executor.stop.is_set():
            return None, False
        t, name = life.target, life.plan.create.snapshot.name
        if t.hooks.after:
            now = self.executor.now()
            self.executor.journal.before_ran(t.account, t.server_id, t.name, name, now)
        return hooks.run("before", t.hooks, t, hooks.environment(t, name)), True

    def _before_done(self, life: Lifecycle, future: Future) -> None:
        self.starting -= 1
        try:
            problem, ran = future.result()
        except Exception as error:  # a bug in running it: the hook did not succeed
            log.exception("%s: unexpected error in the before hook", life.label)
            problem, ran = f"before hook: unexpected error: {type(error).__name__}: {error}", True
        self._carry(life, life.on(events.BeforeRan(problem, ran, self.executor.stop.reason)))

    def _after_done(self, life: Lifecycle, future: Future) -> None:
        try:
            problem = future.result()
        except Exception as error:  # a bug in running it: the hook did not succeed
            log.exception("%s: unexpected error in the after hook", life.label)
            problem = f"after hook: unexpected error: {type(error).__name__}: {error}"
        self._carry(life, life.on(events.AfterRan(problem, self.executor.stop.reason)))

    def _started(self, life: Lifecycle, future: Future, sent: float) -> None:
        self.starting -= 1
        self._spent()
        try:
            started = future.result()
        except ServerBusy as error:  # certain: nothing was started
            self._carry(life, life.on(events.Refused(error, self.executor.monotonic())))
        except ProviderError as error:
            self._carry(life, life.on(events.CreateFailed(error)))
        except Exception as error:  # a bug fails this target only
            log.exception("%s: unexpected error", life.label)
            self._carry(life, life.on(events.StartCrashed(_unexpected(error))))
        else:
            self._carry(life, life.on(events.Started(started, sent)))

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
            log.warning(
                "%s: could not poll %d snapshot(s): %s",
                self.targets[0].target.account,
                len(waiting),
                error,
            )
            found = dict.fromkeys(waiting, error if self.failed_rounds >= FAILED_ROUNDS else None)
        finally:
            # A round may take several requests (pages); those the pool sent meanwhile are
            # counted twice, which only slows the pace a little.
            self.budget.spend(max(1, self.provider.requests - before))
            self._spent()
        now = self.executor.monotonic()
        with self.executor.journal.batch():
            for started in waiting:
                life, sent = self.in_flight[started]
                result = found.get(started)
                if result is None and now - sent > self.executor.timing.creation_timeout:
                    result = timed_out(
                        self.provider.name,
                        f"snapshot {started.name}",
                        self.executor.timing.creation_timeout,
                    )
                if result is None:
                    continue
                del self.in_flight[started]
                if isinstance(result, ProviderError):
                    self._carry(life, life.on(events.CreateFailed(result)))
                else:
                    made = classify(life.target, result)
                    self._carry(life, life.on(events.Made(made, self.executor.now())))
        if self.in_flight:
            oldest = min(sent for _, sent in self.in_flight.values())
            self.next_poll = now + min(
                self.executor.timing.poll_interval, max(FIRST_POLL, POLL_SPACING * (now - oldest))
            )

    # -- copies in other regions (docs/promises.md §5.15) ----------------------------------

    def _transfer_some(self) -> None:
        """Send the transfers the targets asked for, as the budget allows."""
        while (
            not self.executor.stop.is_set()
            and self.to_transfer
            and len(self.requests) < REQUESTS_AT_ONCE
            and self.budget.wait() == 0
        ):
            self.budget.spend()
            life, snapshot, region = self.to_transfer.popleft()
            future = self.pool.submit(self.provider.transfer_snapshot, snapshot.id, region)
            sent = self.executor.monotonic()
            self.requests[future] = lambda f, life=life, s=snapshot, r=region, at=sent: (
                self._transferred(life, s, r, at, f)
            )

    def _transferred(
        self, life: Lifecycle, snapshot: Snapshot, region: str, sent: float, future: Future
    ) -> None:
        self._spent()
        try:
            future.result()
        except ProviderError as error:
            self._carry(life, life.on(events.CopyFailed(region, error, self.executor.now())))
        except Exception as error:  # a bug fails this target only; nothing is deleted
            log.exception("%s: unexpected error", life.label)
            failure = ProviderError(self.provider.name, "transfer snapshot", None, str(error))
            self._carry(life, life.on(events.CopyFailed(region, failure, self.executor.now())))
        else:
            if self.halted:
                return  # stopped meanwhile: the next run looks at the copy
            self.copying[(snapshot.id, region)] = (life, sent)
            if len(self.copying) == 1:
                self.next_copy_poll = self.executor.monotonic() + FIRST_POLL

    def _poll_copies_if_due(self) -> None:
        """One batched look at every transfer in flight (`provider.transfers`): the copies
        finished, failed, or past the creation timeout."""
        now = self.executor.monotonic()
        if not self.copying or now < self.next_copy_poll or self.budget.wait() > 0:
            return
        waiting = dict(self.copying)
        before = self.provider.requests
        try:
            found = self.provider.transfers(sorted({image for image, _ in waiting}))
            self.failed_copy_rounds = 0
        except ProviderError as error:
            self.failed_copy_rounds += 1
            log.warning(
                "%s: could not poll %d transfer(s): %s",
                self.targets[0].target.account,
                len(waiting),
                error,
            )
            found = {}
            if self.failed_copy_rounds >= FAILED_ROUNDS:
                for key, (life, _) in waiting.items():
                    del self.copying[key]
                    self._carry(
                        life, life.on(events.CopyFailed(key[1], error, self.executor.now()))
                    )
                return
        finally:
            self.budget.spend(max(1, self.provider.requests - before))
            self._spent()
        now = self.executor.monotonic()
        timeout = self.executor.timing.creation_timeout
        for (image, region), (life, sent) in waiting.items():
            status = found.get(image, {}).get(region, "in-progress")
            if status == "in-progress" and now - sent <= timeout:
                continue
            del self.copying[(image, region)]
            if status == "completed":
                self._carry(life, life.on(events.Copied(region, self.executor.now())))
                continue
            error = (
                UncertainOutcome(
                    self.provider.name,
                    "wait for transfer",
                    None,
                    f"the copy of snapshot {image} to {region} is still not finished",
                    code=TIMED_OUT,
                    situation=f"timed out after {timeout:g}s",
                )
                if status == "in-progress"
                else ProviderError(
                    self.provider.name,
                    "wait for transfer",
                    None,
                    f"transfer of snapshot {image} to {region} ended {status}",
                    code="action_failed",
                    situation="",
                )
            )
            self._carry(life, life.on(events.CopyFailed(region, error, self.executor.now())))
        if self.copying:
            oldest = min(sent for _, sent in self.copying.values())
            self.next_copy_poll = now + min(
                self.executor.timing.poll_interval, max(FIRST_POLL, POLL_SPACING * (now - oldest))
            )

    # -- consistency: shutdown (docs/promises.md §5.17) ----------------------------------

    def _power_some(self) -> None:
        """Send the power ons and offs asked for, as the budget allows, before new starts: a
        server off waits for them. Also once stopped: every server shut down is powered on."""
        while self.to_power and len(self.requests) < REQUESTS_AT_ONCE and self.budget.wait() == 0:
            life, kind = self.to_power.popleft()
            self._send_power(life, kind)

    def _send_power(self, life: Lifecycle, kind: str) -> None:
        """Send a power action; a shutdown only once its `powered_off` journal entry is on
        disk. A shutdown is a target's turn (`_start_some` counted it in `starting`)."""
        t = life.target
        if kind == "shutdown":
            try:
                self.executor.journal.powering_off(
                    t.account, t.server_id, t.name, self.executor.now()
                )
            except OSError as error:
                self.starting -= 1
                problem = f"the journal could not be written ({error}), so none was sent"
                now = self.executor.monotonic()
                self._carry(life, life.on(events.PowerFailed(kind, problem, True, now)))
                return
        else:
            self.budget.spend()
        send = {
            "shutdown": self.provider.shutdown_server,
            "power_off": self.provider.power_off_server,
            "power_on": self.provider.power_on_server,
        }[kind]
        future = self.pool.submit(send, t.server_id)
        sent = self.executor.monotonic()
        self.requests[future] = lambda f, life=life, sent=sent: self._powered(life, kind, f, sent)

    def _powered(self, life: Lifecycle, kind: str, future: Future, sent: float) -> None:
        if kind == "shutdown":
            self.starting -= 1
        self._spent()
        now = self.executor.monotonic()
        try:
            future.result()
        except ProviderError as error:
            event = events.PowerFailed(kind, str(error), error.refused, now)
        except Exception as error:  # a bug: it may have gone out
            log.exception("%s: unexpected error", life.label)
            event = events.PowerFailed(kind, _unexpected(error), False, now)
        else:
            event = events.PowerSent(kind, sent)
        self._carry(life, life.on(event))

    def _power_if_due(self) -> None:
        """Send the power actions asked for later, and read the power state of every server
        waited for in one listing of the account's servers (each target's `PowerSeen`)."""
        now = self.executor.monotonic()
        if self.power_later:
            due = [(life, kind) for at, life, kind in self.power_later if at <= now]
            self.power_later = [entry for entry in self.power_later if entry[0] > now]
            for life, kind in due:
                self._carry(life, [commands.Power(kind)])
        if not self.watching or now < self.next_power_poll or self.budget.wait() > 0:
            return
        before, unsettled = self.provider.requests, len(self.provider.unsettled)
        try:
            statuses = {s.id: s.status for s in self.provider.servers()}
        except ProviderError as error:
            log.warning(
                "%s: could not read the servers' power state: %s",
                self.targets[0].target.account,
                error,
            )
            statuses = {}
        finally:
            del self.provider.unsettled[unsettled:]  # deletions were decided before: no matter
            self.budget.spend(max(1, self.provider.requests - before))
            self._spent()
        now = self.executor.monotonic()
        watched, self.watching = list(self.watching), {}
        self.power_round = True
        try:
            with self.executor.journal.batch():
                for life in watched:
                    status = statuses.get(life.target.server_id)
                    self._carry(life, life.on(events.PowerSeen(status, now)))
        finally:
            self.power_round = False
        if self.watching:  # spaced by a quarter of the longest wait, as the snapshot polls
            self.next_power_poll = now + min(
                self.executor.timing.poll_interval,
                max(FIRST_POLL, POLL_SPACING * (now - self.watch_since)),
            )

    # -- (c) delete ----------------------------------------------------------------------

    def _delete_some(self) -> None:
        batch = []
        while (
            not self.executor.stop.is_set()
            and self.to_delete
            and len(self.requests) + len(batch) < REQUESTS_AT_ONCE
            and self.budget.wait() == 0
        ):
            self.budget.spend(RELABEL_REQUESTS.get(self.to_delete[0][1].kind, 1))
            batch.append(self.to_delete.popleft())
        relabels = [(life, a) for life, a in batch if a.kind is not ActionKind.DELETE]
        batch = [(life, a) for life, a in batch if a.kind is ActionKind.DELETE]
        for life, action in relabels:
            future = self.pool.submit(self._relabel, life.target, action)
            self.requests[future] = lambda f, life=life, act=action: self._relabelled(life, act, f)
        with (
            self.executor.journal.batch()
        ):  # written down first: a run killed after sending leaves the next run to audit it
            for life, action in batch:
                t, snapshot = life.target, action.snapshot
                self.executor.journal.deleting(
                    t.account,
                    t.server_id,
                    snapshot.id,
                    snapshot.name,
                    action.reason,
                    self.executor.now(),
                )
        for life, action in batch:
            future = self.pool.submit(self.provider.delete_snapshot, action.snapshot.id)
            self.requests[future] = lambda f, life=life, act=action: self._deleted(life, act, f)

    def _deleted(self, life: Lifecycle, action: PlanAction, future: Future) -> None:
        self._spent()
        try:
            future.result()
        except ProviderError as error:
            self._carry(life, life.on(events.DeleteFailed(action, error)))
        except (
            Exception
        ) as error:  # a bug fails this target only; the journal keeps the deletion to check
            log.exception("%s: unexpected error", life.label)
            self._carry(life, life.on(events.DeleteCrashed(_unexpected(error))))
        else:
            self._carry(life, life.on(events.Deleted(action)))

    def _relabel(self, target: Target, action: PlanAction) -> None:
        """In a request thread: write an action's marks (pins.relabel), the protection first:
        a pin's marks taken off before it could leave a protection nobody may lift."""
        add, remove, lift = pins.relabel(target.provider, action)
        if lift:
            self.provider.protect_snapshot(action.snapshot.id, False)
        self.provider.set_snapshot_labels(action.snapshot.id, add, remove)

    def _relabelled(self, life: Lifecycle, action: PlanAction, future: Future) -> None:
        self._spent()
        try:
            future.result()
        except ProviderError as error:
            self._carry(life, life.on(events.RelabelFailed(action, error)))
        except Exception as error:  # a bug fails this target only
            log.exception("%s: unexpected error", life.label)
            failure = ProviderError(
                life.target.provider, "label snapshot", None, _unexpected(error), situation=""
            )
            self._carry(life, life.on(events.RelabelFailed(action, failure)))
        else:
            self._carry(life, life.on(events.Relabelled(action)))

    # -- stopping ------------------------------------------------------------------------

    def _halt(self) -> None:
        """The run was told to stop and the hooks then running were killed: every target hears
        it (`Signal`), in the order of the queues, with the deletions it has not sent.
        Replies to requests already sent are still taken."""
        self.halted = True
        unsent = Counter(life for life, _ in self.to_delete)
        queued = [*self.to_start, *(life for _, life in self.busy), *self.refused_busy]
        making = [life for life, _ in self.in_flight.values()]
        self.to_start.clear()
        self.to_delete.clear()
        self.in_flight.clear()
        self.busy, self.refused_busy = [], []
        self.to_transfer.clear()
        self.copying.clear()
        with self.executor.journal.batch():
            for life in dict.fromkeys([*queued, *making, *unsent, *self.targets]):
                self._carry(life, life.on(events.Signal(self.executor.stop.reason, unsent[life])))

    # -- bookkeeping ---------------------------------------------------------------------

    def _spent(self) -> None:
        """Bring the budget in line with what the account's last reply reported."""
        self.budget.heard(self.provider.rate_limit.remaining)


def first_done(waited: Sequence[Future], timeout: float) -> set[Future]:
    """The futures of `waited` done within `timeout` seconds, as soon as one is. The time is
    slept in slices and the futures looked at between them: a timed wait on them (`wait` with
    a timeout) never runs out under libfaketime, whose moved monotonic clock CI's
    moved-clock run uses, and the next poll (a snapshot's, a copy's, a drill's boot) or boot
    deadline would then wait for a reply, a hook or a probe (minutes) instead."""
    end = time.monotonic() + timeout
    while True:
        done, _ = wait(waited, timeout=0, return_when=FIRST_COMPLETED)  # looks, never waits
        left = end - time.monotonic()
        if done or left <= 0:
            return done
        time.sleep(min(left, WAIT_SLICE))


def _unexpected(error: Exception) -> str:
    """What a target's error says of a bug (the traceback is logged)."""
    return f"unexpected error: {type(error).__name__}: {error}"
