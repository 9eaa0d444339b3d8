"""One run of plan or apply: read the clouds, decide, and (for apply) act and report.

The commands' shared flow, kept out of cli.py so the command line only parses and reports.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from snapshot_policy import monitor, providers
from snapshot_policy.audit import AuditLog
from snapshot_policy.config import LoadedConfig
from snapshot_policy.execute import Executor, Stop
from snapshot_policy.journal import Journal
from snapshot_policy.redaction import redact
from snapshot_policy.model import Account, Channel, Clock, Plan, RunReport, RunSettings, Target, TargetFailure
from snapshot_policy.notify import Event, deliver
from snapshot_policy.notify.messages import FAILURE, SUCCESS
from snapshot_policy.observe import Observation, observe
from snapshot_policy.planfile import DEFAULT_MAX_AGE, PlanFileError, agreed, read_plan_file
from snapshot_policy.reconcile import build_plan
from snapshot_policy.render import report_summary
from snapshot_policy.runstate import RunState

log = logging.getLogger(__name__)


def timing(settings: RunSettings) -> providers.Timing:
    return providers.Timing(request_timeout=settings.request_timeout, creation_timeout=settings.snapshot_creation_timeout)


def connector(settings: RunSettings) -> Callable[[Account], providers.Provider]:
    return lambda account: providers.connect(account, timing(settings))


def journal_for(settings: RunSettings, now: datetime) -> Journal:
    """The journal lives beside the lock file; a start older than the creation timeout is no longer running."""
    path = journal_path(settings)
    return Journal(path, timedelta(seconds=settings.snapshot_creation_timeout + 600), now)


def state_for(settings: RunSettings, now: datetime) -> RunState:
    """The run state lives beside the lock file too."""
    return RunState(state_path(settings), now)


def journal_path(settings: RunSettings) -> Path:
    return Path(settings.lock_file).with_suffix(".journal.json")


def state_path(settings: RunSettings) -> Path:
    return Path(settings.lock_file).with_suffix(".state.json")


def state_files(settings: RunSettings, **options: Path | None) -> dict[str, Path | str | None]:
    """Every file a run reads or writes besides its configuration, by the setting or option
    that names it (statefiles.check_files), with `options`' files (`--report`: a path)."""
    return {
        "lock_file": Path(settings.lock_file),
        "the journal beside lock_file": journal_path(settings),
        "the run state beside lock_file": state_path(settings),
        "log_file": settings.log_file,
        "audit_log" if settings.audit_log else "the audit log beside the log file": audit_path(settings),
        **options,
    }


def decide(
    loaded: LoadedConfig,
    whole: bool,
    now: datetime,
    journal: Journal | None = None,
    state: RunState | None = None,
    connect: Callable[[Account], providers.Provider] | None = None,
) -> tuple[Plan, list[TargetFailure], Observation]:
    """Read the clouds and plan at `now`, with what earlier runs recorded. Orphans belong to
    no target, so a run limited by --target (`whole` false) leaves them alone. `connect`
    (default: the settings' connector) is the chaos suite's seam for fast retries."""
    settings = loaded.settings
    journal = journal or journal_for(settings, now)
    state = state or state_for(settings, now)
    creation_timeout = timedelta(seconds=settings.snapshot_creation_timeout)
    observation = observe(
        loaded.targets, connect or connector(settings), orphans=whole, orphans_keep_last=settings.orphans_keep_last,
        journal=journal, absent_since=state.absent_since, now=now, creation_timeout=creation_timeout,
    )
    plan = build_plan(observation.observed, now, creation_timeout, state.last_made, observation.withheld, settings.max_deletions_per_run)
    return plan, list(loaded.failed) + observation.failures, observation


def apply(
    loaded: LoadedConfig,
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
    out, then tell people and monitoring. `stop`, once set, ends the run early (execute.py);
    the run state and the reports are written all the same.

    Raise PlanFileError if the saved plan is refused (monitoring hears of it first).
    """
    settings = loaded.settings
    pings = [monitor.ping(settings.healthcheck_url, "start")]
    now = clock()
    journal, state = journal_for(settings, now), state_for(settings, now)
    plan, failures, observation = decide(loaded, whole, now, journal, state)
    if plan_file is not None:
        try:
            plan = agreed(read_plan_file(plan_file), plan, plan_file, max_plan_age)
        except PlanFileError as error:
            monitor.ping(settings.healthcheck_url, "fail", str(error))
            raise
    audit = AuditLog(audit_path(settings), plan.fingerprint)
    executor = Executor(
        observation.providers, journal, audit, clock, parallel=parallel,
        delay_between_servers=settings.delay_between_servers, timing=timing(settings), progress=progress, stop=stop or Stop(),
    )
    report = executor.apply(plan, failures)
    unwritten = _remember(state, report, observation if whole else None, now)
    deliveries = deliver(routes(report, socket.gethostname(), loaded.secrets), telegram_base_url(settings), clock, loaded.secrets)
    report = replace(report, deliveries=tuple(deliveries), finished=clock(), unwritten=unwritten)  # the summary's time is the whole run's
    pings.append(monitor.ping(settings.healthcheck_url, "success" if report.exit_code == 0 else "fail", report_summary(report)))
    report = replace(report, deliveries=report.deliveries + tuple(p for p in pings if p))
    unwritten = []
    if report_file is not None:
        unwritten += _written("run report", lambda: monitor.write_report(report_file, report))
    if metrics_file is not None:
        unwritten += _written("metrics file", lambda: monitor.write_metrics(metrics_file, report, monitor.api_requests(observation.providers.values())))
    return replace(report, unwritten=report.unwritten + tuple(unwritten))


def _written(what: str, write: Callable[[], None]) -> list[str]:
    """Write a file after the changes; if it cannot be, say so — the run then fails so someone looks."""
    try:
        write()
    except OSError as error:
        log.error("could not write the %s: %s", what, error)
        return [f"could not write the {what}: {error}"]
    return []


def _remember(state: RunState, report: RunReport, observation: Observation | None, now: datetime) -> tuple[str, ...]:
    """Record the snapshots made and (for a whole run) the servers missing, for the next run;
    return a sentence if that could not be written."""
    for outcome in report.outcomes:
        if outcome.created is not None:  # dated as the cloud dates it, so the next listing agrees
            state.record_made(outcome.plan.target.account, outcome.plan.target.server_id, min(outcome.created.created, now))
    for account, absent in (observation.absent if observation else {}).items():
        state.record_absent(account, absent, now)
    try:
        state.save()
    except OSError as error:  # the snapshots are done; the next run knows less, so the run fails
        log.error("could not write the run state: %s", error)
        return (f"could not write the run state: {error}",)
    return ()


def routes(report: RunReport, hostname: str, secrets: Iterable[str]) -> list[tuple[Event, tuple[Channel, ...]]]:
    """One event per target that did something or failed, with the channels that hear of it.

    A target with nothing due stays quiet, so an hourly cron line does not chatter. Error
    texts are redacted before they leave for a chat or a webhook.
    """
    found = []
    for outcome in report.outcomes:
        target, plan = outcome.plan.target, outcome.plan
        if not target.notify or (outcome.ok and outcome.created is None and not outcome.deleted):
            continue
        name = outcome.created.name if outcome.created else (plan.create.snapshot.name if plan.create else "")
        event = Event(target.name, target.provider, target.server_name, target.server_id, name, outcome.remaining,
                      SUCCESS if outcome.ok else FAILURE, _redacted(outcome.error, secrets), hostname, report.finished)
        found.append((event, target.notify))
    for failure in report.failures:
        if failure.notify:
            server = failure.server_name or failure.target
            event = Event(failure.target, "", server, "", "", 0, FAILURE, _redacted(failure.reason, secrets), hostname, report.finished)
            found.append((event, failure.notify))
    return found


def _redacted(text: str | None, secrets: Iterable[str]) -> str | None:
    return None if text is None else redact(text, secrets)


def telegram_base_url(settings: RunSettings) -> str:
    return settings.telegram_api_url or os.environ.get("TELEGRAM_API_URL") or "https://api.telegram.org/bot"


def audit_path(settings: RunSettings) -> Path:
    """The policy's audit_log, else beside the log file (or the lock file, without a log)."""
    if settings.audit_log:
        return Path(settings.audit_log)
    return Path(settings.log_file or settings.lock_file).parent / "snapshot-policy-audit.jsonl"
