"""One run of plan or apply: read the clouds, decide, and (for apply) act and report.

Every flow of the commands that talk to the clouds (plan, apply and its dry run, validate
--online, status, drill; restore's is engine/restore.py), each from one RunContext, so the
command line only parses and reports.

Restore drills (issue 22) ride along: `decide` plans each target's drill (`Plan.drills`),
reading the machine types of the accounts with a drill due; `apply` deletes the drill
servers earlier runs left before anything else (so none outlives the next run), and runs
the due drills once its snapshots are done (`engine/drill.py`).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from snapshot_policy.config import LoadedConfig
from snapshot_policy.core import drills
from snapshot_policy.core import status as statuses
from snapshot_policy.core.model import (
    Account,
    Channel,
    Clock,
    DrillPlan,
    DrillResult,
    MachineType,
    Plan,
    Price,
    ProviderError,
    RunReport,
    RunSettings,
    Snapshot,
    Target,
    TargetFailure,
)
from snapshot_policy.core.reconcile import build_plan
from snapshot_policy.core.redaction import redact
from snapshot_policy.core.status import Status
from snapshot_policy.edges import monitor, providers
from snapshot_policy.edges.notify import Event, deliver, messages
from snapshot_policy.edges.notify.messages import FAILURE, SUCCESS
from snapshot_policy.engine import runlog
from snapshot_policy.engine.drill import Drills, Leftover
from snapshot_policy.engine.execute import Executor, Stop
from snapshot_policy.engine.observe import Observation, observe
from snapshot_policy.engine.prices import current_prices
from snapshot_policy.output.planfile import DEFAULT_MAX_AGE, PlanFileError, agreed, read_plan_file
from snapshot_policy.output.render import report_summary, uneventful
from snapshot_policy.state.audit import AuditLog
from snapshot_policy.state.journal import Journal
from snapshot_policy.state.runstate import LastRun, RunState

log = logging.getLogger(__name__)
TELEGRAM_API = "https://api.telegram.org/bot"


@dataclass(frozen=True)
class RunContext:
    """What a command that talks to the clouds derives from its configuration, derived once:
    how to reach the clouds, where the run's own files are, where Telegram answers. The
    flows below take it; `cli` builds it once per command."""

    loaded: LoadedConfig
    timing: providers.Timing
    journal_file: Path
    """Beside the lock file."""
    state_file: Path
    """Beside the lock file too."""
    audit_file: Path
    """The policy's audit_log, else beside the log file (or the lock file, without a log)."""
    telegram_base_url: str

    @classmethod
    def of(cls, loaded: LoadedConfig) -> RunContext:
        settings = loaded.settings
        lock_file = Path(settings.lock_file)
        beside_log = Path(settings.log_file or settings.lock_file).parent
        timing = providers.Timing(
            request_timeout=settings.request_timeout,
            creation_timeout=settings.snapshot_creation_timeout,
        )
        return cls(
            loaded,
            timing,
            journal_file=lock_file.with_suffix(".journal.json"),
            state_file=lock_file.with_suffix(".state.json"),
            audit_file=Path(settings.audit_log or beside_log / "snapshot-policy-audit.jsonl"),
            telegram_base_url=(
                settings.telegram_api_url or os.environ.get("TELEGRAM_API_URL") or TELEGRAM_API
            ),
        )

    @property
    def settings(self) -> RunSettings:
        return self.loaded.settings

    def connect(self, account: Account) -> providers.Provider:
        return providers.connect(account, self.timing)

    def journal(self, now: datetime) -> Journal:
        """A start older than the creation timeout is no longer running."""
        in_flight = timedelta(seconds=self.settings.snapshot_creation_timeout + 600)
        return Journal(self.journal_file, in_flight, now)

    def state(self, now: datetime) -> RunState:
        return RunState(self.state_file, now)

    def files(self, **options: Path | None) -> dict[str, Path | str | None]:
        """Every file a run reads or writes besides its configuration, by the setting or option
        that names it (statefiles.check_files), with `options`' files (`--report`: a path)."""
        settings = self.settings
        audit = "audit_log" if settings.audit_log else "the audit log beside the log file"
        return {
            "lock_file": Path(settings.lock_file),
            "the journal beside lock_file": self.journal_file,
            "the run state beside lock_file": self.state_file,
            "log_file": settings.log_file,
            audit: self.audit_file,
            **options,
        }


def decide(
    loaded: LoadedConfig,
    whole: bool,
    now: datetime,
    journal: Journal,
    state: RunState,
    connect: Callable[[Account], providers.Provider],
    forced_drills: bool = False,
) -> tuple[Plan, list[TargetFailure], Observation]:
    """Read the clouds and plan at `now`, with what earlier runs recorded. Orphans belong to
    no target, so a run limited by --target (`whole` false) leaves them alone. `connect` is
    the RunContext's, or the chaos suite's (fast retries). `forced_drills` (the drill
    command) makes every configured drill due."""
    settings = loaded.settings
    for note in loaded.notes:  # where the configuration came from, when the tool chose
        log.info(note)
    creation_timeout = timedelta(seconds=settings.snapshot_creation_timeout)
    observation = observed(loaded, now, journal, state, connect, orphans=whole)
    plan = build_plan(
        observation.observed,
        now,
        creation_timeout,
        state.last_made,
        observation.withheld,
        settings.max_deletions_per_run,
        soft_delete=settings.soft_delete,
    )
    plan = replace(plan, drills=plan_drills(observation, state, now, forced_drills))
    return plan, list(loaded.failed) + observation.failures, observation


def observed(
    loaded: LoadedConfig,
    now: datetime,
    journal: Journal,
    state: RunState,
    connect: Callable[[Account], providers.Provider],
    orphans: bool,
    **options: object,
) -> Observation:
    """Read the clouds at `now` as plan and status both do: with what earlier runs recorded
    and the journal's starts. `options` are observe's (`also_select`)."""
    settings = loaded.settings
    return observe(
        loaded.targets,
        connect,
        orphans=orphans,
        orphans_keep_last=settings.orphans_keep_last,
        journal=journal,
        absent_since=state.absent_since,
        now=now,
        creation_timeout=timedelta(seconds=settings.snapshot_creation_timeout),
        **options,
    )


def plan_drills(
    observation: Observation, state: RunState, now: datetime, forced: bool
) -> tuple[DrillPlan, ...]:
    """Each target's drill plan (`drills.plan_drills`), reading the machine types only of the
    accounts with a drill due, once each."""
    observed = [(t, s) for t, s in observation.observed if t.drill is not None and not t.orphan]
    if not observed:
        return ()
    due_accounts = {
        t.account
        for t, snapshots in observed
        if forced or drills.drill_due(t, state.last_drills.get(_subject(t)), snapshots, now)[0]
    }
    machine_types = _machine_types(observation, due_accounts)
    return drills.plan_drills(observed, machine_types, state.last_drills, now, forced)


def _subject(target: Target) -> tuple[str, str, str]:
    return (target.account, target.server_id, target.name)


def _machine_types(observation: Observation, accounts: set[str]) -> dict[str, list[MachineType]]:
    """The machine types of `accounts`; one that cannot be read is left out (its drills are
    refused, saying so)."""
    found = {}
    for account in sorted(accounts):
        provider = observation.providers.get(account)
        if provider is None:
            continue
        try:
            found[account] = provider.machine_types()
        except ProviderError as error:
            log.warning("%s: could not read the machine types for drills: %s", account, error)
    return found


def plan(context: RunContext, whole: bool, now: datetime) -> tuple[Plan, list[TargetFailure]]:
    """`plan`: what apply would do at `now`."""
    journal, state = context.journal(now), context.state(now)
    return decide(context.loaded, whole, now, journal, state, context.connect)[:2]


def priced_plan(
    context: RunContext, whole: bool, now: datetime
) -> tuple[Plan, list[TargetFailure], dict[str, Price]]:
    """`plan`: what apply would do at `now`, and the prices its costs are shown at
    (engine/prices.py: read once a day per account, kept in the run state)."""
    journal, state = context.journal(now), context.state(now)
    plan, failures, observation = decide(
        context.loaded, whole, now, journal, state, context.connect
    )
    return plan, failures, _prices(context, observation, state, now)


def priced_dry_run(
    context: RunContext,
    whole: bool,
    now: datetime,
    plan_file: Path | None,
    max_plan_age: timedelta = DEFAULT_MAX_AGE,
) -> tuple[Plan, list[TargetFailure], dict[str, Price]]:
    """`apply --dry-run`: `dry_run`, and the prices as `priced_plan`'s."""
    journal, state = context.journal(now), context.state(now)
    plan, failures, observation = _proposed(
        context, whole, now, journal, state, plan_file, max_plan_age
    )
    return plan, failures, _prices(context, observation, state, now)


def _prices(
    context: RunContext,
    observation: Observation,
    state: RunState,
    now: datetime,
    keep: bool = True,
) -> dict[str, Price]:
    """The prices of the plan's costs (engine/prices.py), kept in the run state if `keep`. A
    snapshots.py layout reads no price list and shows the defaults as it always did: every
    new feature is the policy's (README "What behaves differently, on purpose")."""
    loaded = context.loaded
    if loaded.legacy:
        return {key: replace(price, source="") for key, price in loaded.prices.items()}
    lock_file = context.settings.lock_file if keep else None
    return current_prices(loaded.prices, observation.providers, state, now, lock_file)


def dry_run(
    context: RunContext,
    whole: bool,
    now: datetime,
    plan_file: Path | None,
    max_plan_age: timedelta = DEFAULT_MAX_AGE,
) -> tuple[Plan, list[TargetFailure]]:
    """`apply --dry-run`: what apply would carry out at `now`; changes nothing.
    Raise PlanFileError if the saved plan would be refused."""
    journal, state = context.journal(now), context.state(now)
    return _proposed(context, whole, now, journal, state, plan_file, max_plan_age)[:2]


def _proposed(
    context: RunContext,
    whole: bool,
    now: datetime,
    journal: Journal,
    state: RunState,
    plan_file: Path | None,
    max_plan_age: timedelta,
) -> tuple[Plan, list[TargetFailure], Observation]:
    """Plan afresh; with `plan_file`, keep only what the saved plan also asks for
    (planfile.agreed). Raise PlanFileError if the saved plan is refused."""
    plan, failures, observation = decide(
        context.loaded, whole, now, journal, state, context.connect
    )
    if plan_file is not None:
        plan = agreed(read_plan_file(plan_file), plan, plan_file, max_plan_age)
    return plan, failures, observation


def apply(
    context: RunContext,
    whole: bool,
    clock: Clock,
    plan_file: Path | None,
    parallel: int | None,
    metrics_file: Path | None = None,
    report_file: Path | None = None,
    progress: Callable[[Target, str], None] = lambda target, stage: None,
    max_plan_age: timedelta = DEFAULT_MAX_AGE,
    stop: Stop | None = None,
) -> RunReport:
    """Plan afresh (with `plan_file`, keep only what the saved plan also asks for), carry it
    out at most `parallel` (default: the settings') at once per account, then tell people and
    monitoring. `stop`, once set, ends the run early (execute.py); the run state and the
    reports are written all the same.

    Raise PlanFileError if the saved plan is refused (monitoring hears of it first).
    """
    loaded, settings = context.loaded, context.settings
    pings = [monitor.ping(settings.healthcheck_url, "start")]
    now = clock()
    hostname = socket.gethostname()
    runlog.log_start(loaded.legacy, hostname, now, len(loaded.targets) + len(loaded.failed))
    journal, state = context.journal(now), context.state(now)
    try:
        proposed = _proposed(context, whole, now, journal, state, plan_file, max_plan_age)
    except PlanFileError as error:
        monitor.ping(settings.healthcheck_url, "fail", str(error))
        log.error("apply finished: nothing done, the saved plan was refused: %s", error)
        raise
    plan, failures, observation = proposed
    audit = AuditLog(context.audit_file, plan.fingerprint)
    stop = stop or Stop()
    drilling = drill_runner(context, observation, journal, audit, clock, state, progress, stop)
    # Before anything else: no drill server outlives the next run (docs/promises.md §5).
    failures = failures + _leftover_failures(
        drilling.clear_leftovers(observation.providers), loaded
    )
    executor = Executor(
        observation.providers,
        journal,
        audit,
        clock,
        parallel=parallel or settings.parallel,
        delay_between_servers=settings.delay_between_servers,
        timing=context.timing,
        progress=progress,
        stop=stop,
        soft_delete=settings.soft_delete,
    )
    report = executor.apply(plan, failures)
    results = drilling.run(_newest(plan.drills, report))
    report = replace(report, drills=tuple(results), finished=clock())
    if not loaded.legacy and not stop.is_set():
        # Once a day at most, kept by the save below: status, which writes nothing, and the
        # next plan find a fresh price instead of reading it each time (engine/prices.py).
        current_prices(loaded.prices, observation.providers, state, now)
    unwritten = _remember(state, report, observation if whole else None, now)
    every_event = _events(report, hostname, loaded.secrets)
    events = _told(every_event)
    deliveries = deliver(events, context.telegram_base_url, clock, loaded.secrets)
    report = replace(
        report, deliveries=tuple(deliveries), finished=clock(), unwritten=unwritten
    )  # the summary's time is the whole run's
    outcome = "success" if report.exit_code == 0 else "fail"
    pings.append(monitor.ping(settings.healthcheck_url, outcome, report_summary(report)))
    report = replace(report, deliveries=report.deliveries + tuple(p for p in pings if p))
    unwritten = []
    if report_file is not None and not (uneventful(report) and report_file.exists()):
        # A run with nothing to tell leaves the last report alone: the one of the run that
        # last did something stays for the morning (README "Run report").
        unwritten += _written("run report", lambda: monitor.write_report(report_file, report))
    if metrics_file is not None:
        after = judged(context, observation, state, clock(), whole, report)  # README "Status"
        unwritten += _written(
            "metrics file",
            lambda: monitor.write_metrics(
                metrics_file, report, monitor.api_requests(observation.providers.values()), after
            ),
        )
    report = replace(report, unwritten=report.unwritten + tuple(unwritten))
    told = [event for event, _, _ in every_event]
    runlog.log_end(loaded.legacy, report, report_summary(report), told)
    return report


def _newest(plans: tuple[DrillPlan, ...], report: RunReport) -> tuple[DrillPlan, ...]:
    """The drills to run after apply's snapshots: a target that made a snapshot in this run
    drills that one (the newest, the one whose restore matters most), where the machine type
    and region the plan chose fit it too; else the snapshot the plan named."""
    made = {
        _subject(o.plan.target): o.created
        for o in report.outcomes
        if o.created is not None and o.created.id and not o.created.creating
    }
    fresh = []
    for drill_plan in plans:
        new = made.get(_subject(drill_plan.target))
        if new is not None and drill_plan.due and drill_plan.refusal is None:
            fits = drills.choose_machine(
                replace(drill_plan.target.drill, machine_type=drill_plan.machine_type.name),
                new,
                [drill_plan.machine_type],
                drill_plan.region,
            )
            if not isinstance(fits, str) and fits[1] == drill_plan.region:
                log.info(
                    "%s: drilling %s, made by this run, instead of %s",
                    drill_plan.target.name,
                    new.name,
                    drill_plan.snapshot.name,
                )
                drill_plan = replace(drill_plan, snapshot=new)
        fresh.append(drill_plan)
    return tuple(fresh)


def drill_runner(
    context: RunContext,
    observation: Observation,
    journal: Journal,
    audit: AuditLog,
    clock: Clock,
    state: RunState,
    progress: Callable[[Target, str], None],
    stop: Stop,
) -> Drills:
    """The drill executor of a run (engine/drill.py), with the context's settings."""
    settings = context.settings
    return Drills(
        observation.providers,
        journal,
        audit,
        clock,
        settings.owner,
        per_account=settings.drills_per_account,
        poll_interval=context.timing.poll_interval,
        state=state,
        progress=progress,
        stop=stop,
    )


def _leftover_failures(found: list[Leftover], loaded: LoadedConfig) -> list[TargetFailure]:
    """A drill server an earlier run left that this run could not delete fails its target:
    someone must look (it costs money). A server with our drill marks the journal does not
    name is only reported (logged): it may not be ours to delete."""
    specs = {spec.name: spec for spec in loaded.targets}
    failed = []
    for leftover in found:
        if leftover.deleted or not leftover.target:
            continue
        spec = specs.get(leftover.target)
        failed.append(
            TargetFailure(
                leftover.target,
                leftover.error or "",
                leftover.account,
                notify=spec.notify if spec else (),
                provider=spec.account.provider if spec else "",
            )
        )
    return failed


def drill(
    context: RunContext,
    clock: Clock,
    progress: Callable[[Target, str], None] = lambda target, stage: None,
    stop: Stop | None = None,
    dry_run: bool = False,
) -> tuple[Plan, list[TargetFailure], RunReport | None]:
    """`drill`: plan every configured drill of the context's targets as due now, and (unless
    `dry_run`) delete what earlier runs left, carry the drills out, record and tell. Returns
    the plan, the failures, and the report (None for a dry run)."""
    loaded, settings = context.loaded, context.settings
    now = clock()
    journal, state = context.journal(now), context.state(now)
    drilled = replace(loaded, targets=tuple(t for t in loaded.targets if t.drill is not None))
    observation = observe(
        drilled.targets,
        context.connect,
        orphans=False,
        journal=journal,
        now=now,
        creation_timeout=timedelta(seconds=settings.snapshot_creation_timeout),
    )
    plan = Plan(now, drills=plan_drills(observation, state, now, forced=True))
    failures = list(drilled.failed) + observation.failures
    if dry_run:
        return plan, failures, None
    audit = AuditLog(context.audit_file, plan.fingerprint)
    stop = stop or Stop()
    drilling = drill_runner(context, observation, journal, audit, clock, state, progress, stop)
    failures += _leftover_failures(drilling.clear_leftovers(observation.providers), loaded)
    results = drilling.run(plan.drills)
    report = RunReport(now, clock(), (), tuple(failures), drills=tuple(results))
    unwritten = _remember(state, report, None, now)
    every_event = _events(report, socket.gethostname(), loaded.secrets)
    deliveries = deliver(_told(every_event), context.telegram_base_url, clock, loaded.secrets)
    return plan, failures, replace(report, deliveries=tuple(deliveries), unwritten=unwritten)


def check_online(context: RunContext) -> tuple[dict[str, list[Target]], list[TargetFailure]]:
    """`validate --online`: the servers each target matched (by target name, in the order of
    the configuration; a target that matched none maps to an empty list), and the targets
    whose token or servers fail a read-only check."""
    observation = observe(context.loaded.targets, context.connect, orphans=False)
    matched: dict[str, list[Target]] = {spec.name: [] for spec in context.loaded.targets}
    for target, _ in observation.observed:
        matched.setdefault(target.name, []).append(target)
    return matched, observation.failures


def status(
    context: RunContext, whole: bool, now: datetime, late_after: timedelta | None = None
) -> Status:
    """`status`: how each target's server stands at `now`, and each account; reads the
    clouds (the label selectors of `settings.uncovered.ignore` too), the journal and the run
    state, and writes nothing."""
    journal, state = context.journal(now), context.state(now)
    ignore = [s.label_selector for s in context.settings.uncovered_ignore if s.label_selector]
    observation = observed(
        context.loaded, now, journal, state, context.connect, orphans=False, also_select=ignore
    )
    # status writes nothing (README "Status"): a price read now is not kept.
    cost = _prices(context, observation, state, now, keep=False)
    judgement = judged(context, observation, state, now, whole, late_after=late_after, prices=cost)
    return _with_servers_left_off(judgement, journal)


def _with_servers_left_off(status: Status, journal: Journal) -> Status:
    """A server an interrupted run shut down and never saw running again (consistency:
    shutdown, docs/promises.md §5.17) is something to look at: a failure of its target."""
    left = [
        TargetFailure(
            target,
            f"server {server_id} was shut down by an interrupted run at {when.isoformat()} and "
            "not seen running since: the next apply powers it on first",
            account,
        )
        for account, server_id, target, when in journal.left_off()
    ]
    return replace(status, failures=status.failures + tuple(left)) if left else status


def judged(
    context: RunContext,
    observation: Observation,
    state: RunState,
    now: datetime,
    whole: bool,
    report: RunReport | None = None,
    late_after: timedelta | None = None,
    prices: Mapping[str, Price] | None = None,
) -> Status:
    """The status an `observation` shows at `now` (core/status), with apply's `report`
    counted when given: what the metrics file says after a run. Its costs at `prices`
    (default: the configuration's)."""
    loaded, settings = context.loaded, context.settings
    seen = observation.observed
    counts = {account: len(listing) for account, listing in observation.snapshots.items()}
    if report is not None:
        seen, counts = statuses.after_apply(seen, counts, report.outcomes)
    return statuses.build(
        loaded.targets,
        seen,
        observation.failures,
        now,
        servers=observation.servers,
        selected=observation.selected,
        snapshot_counts=counts,
        unreadable=observation.unreadable,
        last_runs=state.last_runs,
        last_drills=state.last_drills,
        prices=loaded.prices if prices is None else prices,
        creation_timeout=timedelta(seconds=settings.snapshot_creation_timeout),
        late_after=late_after,
        ignore=settings.uncovered_ignore,
        whole=whole,
        config_failures=loaded.failed,
    )


def _written(what: str, write: Callable[[], None]) -> list[str]:
    """Write a file after the changes; if it cannot be, say so — the run then fails so someone
    looks."""
    try:
        write()
    except OSError as error:
        log.error("could not write the %s: %s", what, error)
        return [f"could not write the {what}: {error}"]
    return []


def _remember(
    state: RunState, report: RunReport, observation: Observation | None, now: datetime
) -> tuple[str, ...]:
    """Record the snapshots made and (for a whole run) the servers missing, for the next run;
    return a sentence if that could not be written."""
    for outcome in report.outcomes:
        if outcome.created is not None:  # dated as the cloud dates it, so the next listing agrees
            state.record_made(
                outcome.plan.target.account,
                outcome.plan.target.server_id,
                min(outcome.created.created, now),
            )
    for outcome in report.outcomes:
        t = outcome.plan.target
        if not t.orphan:
            state.record_run(
                t.account, t.server_id, t.name, LastRun(report.finished, outcome.ok, outcome.error)
            )
    for account, absent in (observation.absent if observation else {}).items():
        state.record_absent(account, absent, now)
    try:
        state.save()
    except OSError as error:  # the snapshots are done; the next run knows less, so the run fails
        log.error("could not write the run state: %s", error)
        return (f"could not write the run state: {error}",)
    return ()


def routes(
    report: RunReport, hostname: str, secrets: Iterable[str]
) -> list[tuple[Event, tuple[Channel, ...]]]:
    """One event per target that did something or failed, with the channels that hear of it.

    A target with nothing due stays quiet, so an hourly cron line does not chatter. Error
    texts are redacted before they leave for a chat or a webhook.
    """
    return _told(_events(report, hostname, secrets))


def _told(
    events: list[tuple[Event, tuple[Channel, ...], bool]],
) -> list[tuple[Event, tuple[Channel, ...]]]:
    """The events to tell, each to its channels as their style tells it (`messages.as_told`)."""
    return [
        told
        for event, channels, due in events
        if due and channels
        for told in messages.as_told(event, channels)
    ]


def _events(
    report: RunReport, hostname: str, secrets: Iterable[str]
) -> list[tuple[Event, tuple[Channel, ...], bool]]:
    """One event per target of the run, with its channels and whether it is to be told (it did
    something or failed): what notifications send and a legacy log's FINAL_STATUS lines say."""
    found = []
    for outcome in report.outcomes:
        target, plan = outcome.plan.target, outcome.plan
        due = not (outcome.ok and outcome.created is None and not outcome.deleted)
        name = (
            outcome.created.name
            if outcome.created
            else (plan.create.snapshot.name if plan.create else "")
        )
        event = Event(
            target.name,
            target.provider,
            target.server_name,
            target.server_id,
            name,
            outcome.remaining,
            SUCCESS if outcome.ok else FAILURE,
            _redacted(outcome.error, secrets),
            hostname,
            report.finished,
            made=outcome.created is not None,
            downtime_seconds=outcome.downtime_seconds,
        )
        found.append((event, target.notify, due))
    for failure in report.failures:
        server = failure.server_name or failure.target
        event = Event(
            failure.target,
            failure.provider,
            server,
            "",
            "",
            0,
            FAILURE,
            _redacted(failure.reason, secrets),
            hostname,
            report.finished,
        )
        found.append((event, failure.notify, True))
    for result in report.drills:
        found.append((_drill_event(result, hostname, secrets), result.target.notify, True))
    return found


def _drill_event(result: DrillResult, hostname: str, secrets: Iterable[str]) -> Event:
    """A restore drill's result, as notifications tell it (messages.drill_text)."""
    t = result.target
    snapshot: Snapshot = result.snapshot
    return Event(
        t.name,
        t.provider,
        t.server_name,
        t.server_id,
        snapshot.name,
        0,
        SUCCESS if result.passed and result.deleted else FAILURE,
        _redacted(result.error, secrets),
        hostname,
        result.finished,
        drill=messages.Drilled(
            snapshot.id,
            result.machine_type,
            result.region,
            result.restore_seconds,
            result.deleted,
            result.stage,
        ),
    )


def _redacted(text: str | None, secrets: Iterable[str]) -> str | None:
    return None if text is None else redact(text, secrets)
