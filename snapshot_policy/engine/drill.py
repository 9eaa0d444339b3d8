"""Carrying restore drills out (issue 22, item 2; docs/promises.md §5, invariant 14): make a
server from a snapshot, wait until it runs, probe it, delete it — always.

Each account runs on its own thread, at most `drills_per_account` of its drill servers at a
time; while any boots, one listing of the account's drill servers per round
(`provider.drill_servers`) tells all of them apart, rounds spaced as snapshot polls are.
Creates, deletes and marks go out through a few request threads, paced by the account's
request budget; probes run as hooks do (`edges/hooks.run`: argv, a minimal environment,
the timeout, the output to the log, killed with their process group at a stop).

What a drill does next is decided by its `drill_lifecycle.DrillLifecycle`; this module sends,
waits, and writes the journal, the audit log and the run state. The rules that bind it:
a drill server is in the journal (on disk) before its create is sent; it is crossed off only
once its deletion is confirmed; a server is deleted only through
`provider.delete_drill_server`, which reads it again and refuses one without our drill
marks; and the leftovers of earlier runs are deleted first (`clear_leftovers`,
engine/drill_leftovers.py), only when `drills.leftovers` says the journal names them and they
carry our marks.

Told to stop (`execute.Stop`), no drill begins; running probes are killed; every server that
exists is deleted, and the replies to requests already sent are taken.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import timezone

from snapshot_policy.core import commands, drill_commands, drill_events, ownership
from snapshot_policy.core.drill_lifecycle import DrillLifecycle, DrillStage
from snapshot_policy.core.model import (
    Clock,
    DrillPlan,
    DrillResult,
    Hooks,
    MadeServer,
    ProviderError,
    ServerRequest,
    Target,
)
from snapshot_policy.edges import hooks
from snapshot_policy.edges.providers import Provider
from snapshot_policy.edges.providers.retry import FIRST_POLL
from snapshot_policy.engine.drill_leftovers import Cleanup, Leftover, journal_deleting
from snapshot_policy.engine.execute import Stop, first_done
from snapshot_policy.pacing.budget import RequestBudget
from snapshot_policy.state.audit import AuditLog, DrillServer
from snapshot_policy.state.journal import Journal
from snapshot_policy.state.runstate import LastDrill, RunState

log = logging.getLogger(__name__)

REQUESTS_AT_ONCE = 8
"""Creates, deletes and marks in flight per account: a drill needs few, one at a time each."""
POLL_SPACING = 0.25
"""A boot poll round waits this share of the oldest boot's age (as snapshot polls do)."""
MAX_POLL_WAIT = 15.0
FAILED_ROUNDS = 3
"""Boot poll rounds in a row that may fail before the booting servers are given up (and
deleted): their boot timeout ends them too."""


def drill_row(target: Target) -> Target:
    """The target as the progress display shows its drill: a row of its own, so the drill's
    stages never stand in for the snapshot's result."""
    return replace(target, name=f"{target.name} (drill)")


def probe_environment(server: MadeServer, plan: DrillPlan) -> dict[str, str]:
    """What a probe is told of the server it checks (README "Restore drills"), besides what
    a hook is told of its target."""
    t, snapshot = plan.target, plan.snapshot
    return {
        **hooks.environment(t),
        "SNAPSHOT_POLICY_DRILL_SERVER_ID": server.id,
        "SNAPSHOT_POLICY_DRILL_SERVER_NAME": server.name,
        "SNAPSHOT_POLICY_DRILL_PRIVATE_IP": server.private_ip or "",
        "SNAPSHOT_POLICY_DRILL_PUBLIC_IP": server.public_ip or "",
        "SNAPSHOT_POLICY_DRILL_TARGET": t.name,
        "SNAPSHOT_POLICY_DRILL_SNAPSHOT_ID": snapshot.id,
        "SNAPSHOT_POLICY_DRILL_SNAPSHOT_NAME": snapshot.name,
    }


def server_request(plan: DrillPlan, owner: str) -> ServerRequest:
    """The drill server `plan` asks for, carrying our drill marks (ownership)."""
    t, drill = plan.target, plan.target.drill
    return ServerRequest(
        name=plan.name,
        image_id=plan.snapshot.id,
        machine_type=plan.machine_type.name,
        region=plan.region,
        labels=ownership.drill_server_labels(t.provider, owner, t.name, plan.snapshot.id),
        public_network=drill.public_network,
        networks=drill.networks,
    )


@dataclass
class Drills:
    """Restore drills of one run, per account at once (see the module docstring)."""

    providers: Mapping[str, Provider]
    """By account name."""
    journal: Journal
    audit: AuditLog
    now: Clock
    owner: str
    per_account: int = 2
    poll_interval: float = MAX_POLL_WAIT
    state: RunState | None = None
    progress: Callable[[Target, str], None] = lambda target, stage: None
    stop: Stop = field(default_factory=Stop)
    monotonic: Callable[[], float] = time.monotonic
    _halting: threading.Lock = field(default_factory=threading.Lock)
    _halted: bool = False
    left_before: dict[str, int] = field(default_factory=dict)
    """By account, the drill servers earlier runs left that this run could not delete: they
    take slots of `per_account` as this run's own do."""

    def clear_leftovers(self, accounts: Iterable[str]) -> list[Leftover]:
        """Delete what earlier runs left in `accounts` first (engine/drill_leftovers.py)."""
        cleanup = Cleanup(self.providers, self.journal, self.audit, self.now, self.owner)
        found = cleanup.run(accounts)
        for leftover in found:
            if leftover.target and not leftover.deleted:  # journaled ones: ours
                self.left_before[leftover.account] = self.left_before.get(leftover.account, 0) + 1
        return found

    # -- this run's drills ----------------------------------------------------------------

    def run(self, plans: Sequence[DrillPlan]) -> list[DrillResult]:
        """Carry out the due, feasible drills of `plans`, accounts at once; return their
        results in the plans' order."""
        due = [p for p in plans if p.due and p.refusal is None and p.snapshot is not None]
        by_account: dict[str, list[DrillPlan]] = defaultdict(list)
        for plan in due:
            by_account[plan.target.account].append(plan)
        results: dict[int, DrillResult] = {}
        if not by_account:
            return []
        with ThreadPoolExecutor(len(by_account), thread_name_prefix="drills") as pool:
            for found in pool.map(self._run_account, by_account.values()):
                results.update(found)
        return [results[id(p)] for p in due if id(p) in results]

    def _run_account(self, plans: list[DrillPlan]) -> dict[int, DrillResult]:
        account = plans[0].target.account
        run = AccountDrills(self, self.providers[account], plans)
        try:
            run.run()
        except Exception:  # a bug: what may exist is left to the journal and the next run
            log.exception("%s: unexpected error in the restore drills", account)
        now = self.now()
        # A drill the stop kept from beginning did nothing: it stays due, and is not reported.
        return {id(life.plan): life.result(now) for life in run.lives if life.began}

    def halt_once_stopped(self) -> None:
        """Once the run is told to stop, kill the probes running then (once for all accounts)."""
        with self._halting:
            if self.stop.is_set() and not self._halted:
                hooks.stop_all()
                self._halted = True

    def record(self, life: DrillLifecycle, event: str, reason: str) -> None:
        """Write an audit line about a drill: one that cannot be written fails it."""
        try:
            if event.startswith("drill server"):
                server = life.server
                t = life.target
                drill = DrillServer(
                    t.name,
                    t.provider,
                    t.account,
                    t.server_id,
                    life.snapshot.id,
                    server.name if server else life.request.name,
                    server.id if server else None,
                )
                self.audit.record_server(event, drill, reason, self.now())
            else:
                self.audit.record(event, life.target, life.snapshot, reason, self.now())
        except OSError as error:
            log.error("%s: could not write the audit log: %s", life.label, error)
            life.errors.append(f"{event} but could not write the audit log: {error}")


class AccountDrills:
    """The drills of one account: a loop that starts drills while there is room, polls the
    booting servers, and takes every reply (see the module docstring)."""

    def __init__(self, drills: Drills, provider: Provider, plans: Sequence[DrillPlan]):
        self.drills = drills
        self.provider = provider
        self.account = plans[0].target.account
        taken = {entry.name for entry in drills.journal.open_drills(self.account)}
        self.lives = [
            DrillLifecycle(
                plan,
                server_request(replace(plan, name=unique_name(plan.name, taken)), drills.owner),
                plan.target.drill.probe is not None,
                plan.target.drill.boot_timeout,
            )
            for plan in plans
        ]
        self.queue = list(self.lives)
        self.budget = RequestBudget(provider.rate_limit, drills.monotonic)
        self.counted = provider.requests
        """The provider's requests the budget has counted (those before the drills are the
        cloud's to report, in the remaining budget its replies tell)."""
        self.requests: dict[Future, Callable[[Future], None]] = {}
        self.probes: dict[Future, Callable[[Future], None]] = {}
        self.booting: dict[DrillLifecycle, MadeServer] = {}
        self.finding: list[DrillLifecycle] = []
        self.next_poll = float("-inf")
        self.failed_rounds = 0
        self.halted = False

    def run(self) -> None:
        with (
            ThreadPoolExecutor(REQUESTS_AT_ONCE, f"{self.account}-drill") as pool,
            ThreadPoolExecutor(self.drills.per_account, f"{self.account}-probe") as probe_pool,
        ):
            self.pool, self.probe_pool = pool, probe_pool
            for life in self.lives:
                self.drills.progress(drill_row(life.target), "waiting")
            while self._unfinished():
                self.drills.halt_once_stopped()
                if self.drills.stop.is_set() and not self.halted:
                    self._halt()
                self._start_some()
                self._poll_if_due()
                self._wait()

    def _unfinished(self) -> bool:
        return bool(
            self.requests
            or self.probes
            or any(life.stage is not DrillStage.DONE for life in self.lives)
        )

    # -- starting ------------------------------------------------------------------------

    def _holding(self) -> int:
        """Drills whose server may exist now: they take the account's slots, a server that
        could not be deleted (or a lost create not found) for the rest of the run."""
        holding = (DrillStage.CREATING, DrillStage.BOOTING, DrillStage.PROBING, DrillStage.DELETING)
        before = self.drills.left_before.get(self.account, 0)
        return before + sum(life.stage in holding or _left(life) for life in self.lives)

    def _start_some(self) -> None:
        left = self.drills.left_before.get(self.account, 0) + sum(map(_left, self.lives))
        if self.queue and left >= self.drills.per_account:  # no slot frees in this run
            reason = (
                f"{left} drill servers of account {self.account} could not be deleted, and "
                f"drills_per_account ({self.drills.per_account}) may exist at once; the next "
                "run deletes them first"
            )
            queued, self.queue = self.queue, []
            for life in queued:
                self._carry(life, life.on(drill_events.NoRoom(reason)))
        while (
            not self.drills.stop.is_set()
            and self.queue
            and self._holding() < self.drills.per_account
            and self.budget.wait() == 0
        ):
            life = self.queue.pop(0)
            self._carry(
                life, life.on(drill_events.Turn(self.drills.now(), self.drills.monotonic()))
            )

    # -- carrying out --------------------------------------------------------------------

    def _carry(self, life: DrillLifecycle, orders: Iterable[drill_commands.Command]) -> None:
        """Carry out a drill's commands in order; a journal that cannot be written stops
        the list there (no create is sent)."""
        journal, t = self.drills.journal, life.target
        for command in orders:
            match command:
                case commands.Log(level, message):
                    log.log(level, message)
                case commands.Progress(stage):
                    shown = {"passed": "done"}.get(stage, stage)
                    self.drills.progress(drill_row(t), shown)
                case drill_commands.Journal(request):
                    try:
                        journal.drill_requested(
                            t.account,
                            t.name,
                            t.server_id,
                            request.name,
                            request.image_id,
                            life.started or self.drills.now(),
                        )
                    except OSError as error:
                        self._carry(life, life.on(drill_events.JournalFailed(str(error))))
                        return
                case drill_commands.Create(request):
                    self._send(life, self.provider.create_server, (request,), self._created)
                case drill_commands.JournalServer(server):
                    self._journal_later(life, journal.drill_created, server.id)
                case drill_commands.Record(event, reason):
                    self.drills.record(life, event, reason)
                case drill_commands.Boot(server):
                    self.booting[life] = server
                    self.next_poll = min(self.next_poll, self.drills.monotonic() + FIRST_POLL)
                case drill_commands.Find():
                    self.finding.append(life)
                    self.next_poll = min(self.next_poll, self.drills.monotonic() + FIRST_POLL)
                case drill_commands.Probe(server):
                    self._probe(life, server)
                case drill_commands.Delete(server):
                    self.booting.pop(life, None)
                    journal_deleting(self.drills.journal, t.account, life.request.name)
                    self._send(
                        life,
                        self.provider.delete_drill_server,
                        (server, self.drills.owner),
                        self._deleted,
                    )
                case drill_commands.Mark(passed):
                    labels = ownership.drill_result_labels(
                        t.provider, passed, self.drills.now().astimezone(timezone.utc).date()
                    )
                    self._send(
                        life, self.provider.mark_snapshot, (life.snapshot.id, labels), self._marked
                    )
                case drill_commands.CrossOff():
                    self._journal_later(life, journal.drill_gone)
                case commands.Finished():
                    self._finished(life)
                case _:
                    raise TypeError(f"not carried out here: {command!r}")

    def _journal_later(self, life: DrillLifecycle, write, *args: str) -> None:
        """Note a drill server's id, or cross it off. The entry written before the create
        already names it, so a write that fails here costs only precision: the next run
        finds the server by name (or sees it gone). It never stops the drill: its server
        is still deleted (docs/promises.md §5, invariant 14)."""
        try:
            write(life.target.account, life.request.name, *args)
        except OSError as error:
            problem = f"could not write the journal ({error}); the next run checks this server"
            log.error("%s: %s", life.label, problem)
            life.errors.append(problem)

    def _send(self, life, call, args, then) -> None:
        self._spend()
        future = self.pool.submit(call, *args)
        self.requests[future] = lambda f: then(life, f)

    def _created(self, life: DrillLifecycle, future: Future) -> None:
        self._spent()
        try:
            server = future.result()
        except ProviderError as error:
            event = (
                drill_events.CreateFailed(error)
                if error.refused
                else drill_events.CreateLost(str(error))
            )
        except Exception as error:  # a bug, or an SDK surprise: the create may have acted
            log.exception("%s: unexpected error in the create", life.label)
            event = drill_events.CreateLost(f"unexpected error: {type(error).__name__}: {error}")
        else:
            event = drill_events.Created(server, self.drills.monotonic())
        self._carry(life, life.on(event))

    def _deleted(self, life: DrillLifecycle, future: Future) -> None:
        self._spent()
        try:
            future.result()
        except ProviderError as error:
            event = drill_events.DeleteFailed(str(error))
        except Exception as error:  # a bug: the journal keeps it for the next run
            log.exception("%s: unexpected error in the delete", life.label)
            event = drill_events.DeleteFailed(f"unexpected error: {type(error).__name__}: {error}")
        else:
            event = drill_events.Deleted()
        self._carry(life, life.on(event))

    def _marked(self, life: DrillLifecycle, future: Future) -> None:
        self._spent()
        try:
            future.result()
        except Exception as error:  # noqa: BLE001 — a mark that fails changes no verdict
            event = drill_events.MarkFailed(str(error))
        else:
            event = drill_events.Marked()
        self._carry(life, life.on(event))

    def _probe(self, life: DrillLifecycle, server: MadeServer) -> None:
        drill = life.target.drill
        spec = Hooks(before=drill.probe, timeout=drill.probe_timeout, env=drill.env)
        variables = probe_environment(server, life.plan)
        future = self.probe_pool.submit(
            hooks.run, "before", spec, life.target, variables, "probe", self.drills.stop.is_set
        )
        self.probes[future] = lambda f: self._probe_ran(life, f)

    def _probe_ran(self, life: DrillLifecycle, future: Future) -> None:
        try:
            problem = future.result()
        except Exception as error:  # a bug in running it: the probe did not pass
            log.exception("%s: unexpected error in the probe", life.label)
            problem = f"probe: unexpected error: {type(error).__name__}: {error}"
        if self.drills.stop.is_set():  # a probe the stop cut short says nothing of the snapshot
            self._carry(life, life.on(drill_events.Signal(self.drills.stop.reason)))
        self._carry(life, life.on(drill_events.ProbeRan(problem)))

    def _finished(self, life: DrillLifecycle) -> None:
        state = self.drills.state
        if state is None or not life.recorded:
            return
        t, result = life.target, life.result(self.drills.now())
        state.record_drill(
            t.account,
            t.server_id,
            t.name,
            LastDrill(
                when=result.finished,
                passed=result.passed,
                snapshot_id=life.snapshot.id,
                restore_seconds=result.restore_seconds,
                error=result.error,
            ),
        )

    # -- waiting -------------------------------------------------------------------------

    def _poll_if_due(self) -> None:
        """One listing of the account's drill servers tells every booting drill (and every
        lost create looked for) where it stands."""
        now = self.drills.monotonic()
        if not (self.booting or self.finding) or now < self.next_poll or self.budget.wait() > 0:
            return
        self._spend()
        try:
            listed = self.provider.drill_servers()
            complete = True
            self.failed_rounds = 0
        except ProviderError as error:
            log.warning("%s: could not list the drill servers: %s", self.account, error)
            listed, complete = [], False
            self.failed_rounds += 1
        finally:
            self._spent()
        now = self.drills.monotonic()
        by_id = {s.id: s for s in listed}
        for life, server in list(self.booting.items()):
            seen = by_id.get(server.id)
            gone = False
            if seen is None and complete:  # not listed (yet?): the cloud's own word on it
                seen, gone = self._read(server)
            if seen is not None and seen.status == "running":
                event = drill_events.Running(seen, now)
            elif seen is not None and seen.status == "failed":
                event = drill_events.BootFailed("its create action failed")
            elif gone:
                event = drill_events.BootFailed("it no longer exists")
            elif now > life.boot_deadline:
                event = drill_events.BootTimeout()
            elif self.failed_rounds >= FAILED_ROUNDS:
                event = drill_events.BootFailed(
                    f"the drill servers could not be listed {FAILED_ROUNDS} times"
                )
            else:
                continue
            del self.booting[life]
            self._carry(life, life.on(event))
        if complete or self.failed_rounds >= FAILED_ROUNDS:  # unlisted: the journal keeps it
            finding, self.finding = self.finding, []
            for life in finding:  # by its exact name, and only among our drill servers
                named = [
                    s
                    for s in listed
                    if s.name == life.request.name
                    and ownership.is_drill_server(self.provider.name, s.labels, self.drills.owner)
                ]
                self._carry(
                    life,
                    life.on(
                        drill_events.Found(named[0]) if len(named) == 1 else drill_events.NotFound()
                    ),
                )
        if self.booting or self.finding:
            oldest = min(
                (life.sent_at for life in self.booting if life.sent_at is not None), default=now
            )
            spacing = max(FIRST_POLL, POLL_SPACING * (now - oldest))
            self.next_poll = now + min(self.drills.poll_interval, spacing)

    def _read(self, server: MadeServer) -> tuple[MadeServer | None, bool]:
        """Read one server the listing left out: (as the cloud describes it, whether it is
        certainly gone). A listing may lag behind a create; a read by id does not."""
        self._spend()
        try:
            found = self.provider.get_server(server.id)
        except ProviderError as error:
            log.warning("%s: could not read drill server %s: %s", self.account, server.id, error)
            return None, False
        finally:
            self._spent()
        return found, found is None

    def _wait(self) -> None:
        if not self._unfinished():  # the poll just ended the last drill (a lost create not found)
            return
        now = self.drills.monotonic()
        moments = []
        if self.booting or self.finding:
            moments.append(max(self.next_poll - now, self.budget.wait()))
            deadlines = [life.boot_deadline for life in self.booting]
            moments += [deadline - now for deadline in deadlines if deadline is not None]
        if (
            self.queue
            and self._holding() < self.drills.per_account
            and not self.drills.stop.is_set()
        ):
            moments.append(self.budget.wait())
        timeout = max(0.0, min(moments)) if moments else None
        waiting = [*self.requests, *self.probes]
        if not self.halted:
            waiting.append(self.drills.stop.stopped)  # a stop wakes it
        if not self.requests and not self.probes:
            if timeout is None and self.halted:
                return
            # Nothing to hear from: sleep, as the snapshot executor does, a second at most so
            # a stop is seen soon (a timed wait on the stop alone never ran out under
            # libfaketime, whose moved monotonic clock CI's moved-clock run uses).
            time.sleep(min(timeout, 1.0) if timeout is not None else 0.01)
            return
        if timeout is None:
            done, _ = wait(waiting, return_when=FIRST_COMPLETED)
        else:
            done = first_done(waiting, timeout)
        for future in done:
            if future is self.drills.stop.stopped:
                continue
            (self.requests.pop(future, None) or self.probes.pop(future))(future)

    def _halt(self) -> None:
        """The run was told to stop: every drill hears it; the booting ones are deleted now."""
        self.halted = True
        self.queue.clear()
        for life in self.lives:
            self.booting.pop(life, None)
            self._carry(life, life.on(drill_events.Signal(self.drills.stop.reason)))

    def _spend(self) -> None:
        """Count the request about to be sent."""
        self.budget.spend()
        self.counted += 1

    def _spent(self) -> None:
        """Count every request the provider made beyond those counted when sent — a delete
        reads the server first, a Hetzner mark reads the labels first, a poll round reads
        pages and actions, retries repeat — and take in the budget the cloud reported.
        Counting each call as one request went past DigitalOcean's 250 in a minute
        (benchmarks/drills.py)."""
        made = self.provider.requests
        if made > self.counted:
            self.budget.spend(made - self.counted)
            self.counted = made
        self.budget.heard(self.provider.rate_limit.remaining)


def _left(life: DrillLifecycle) -> bool:
    """Whether a drill is over as far as this run goes, and its server may still exist."""
    over = (DrillStage.MARKING, DrillStage.DONE)
    return life.began and life.stage in over and not life.deleted


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or with a suffix (-2, -3, …) if an open journal entry already has it (a run in
    the same second as an earlier one, or with the clock set back): the journal and the
    search after a lost reply tell drill servers apart by name. Adds the result to `taken`."""
    unique, number = name, 1
    while unique in taken:
        number += 1
        suffix = f"-{number}"
        unique = name[: ownership.HOSTNAME_LIMIT - len(suffix)].rstrip("-") + suffix
    taken.add(unique)
    return unique
