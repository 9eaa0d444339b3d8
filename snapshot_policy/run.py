"""One run of plan or apply: read the clouds, decide, and (for apply) act.

The commands' shared flow, kept out of cli.py so the command line only parses and reports.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from snapshot_policy import providers
from snapshot_policy.config import LoadedConfig
from snapshot_policy.execute import Executor, RunReport
from snapshot_policy.journal import Journal
from snapshot_policy.model import Account, Plan, RunSettings, TargetFailure
from snapshot_policy.observe import Observation, observe
from snapshot_policy.planfile import read_plan_file, replay
from snapshot_policy.reconcile import build_plan


def connector(settings: RunSettings) -> Callable[[Account], providers.Provider]:
    timing = providers.Timing(request_timeout=settings.request_timeout, creation_timeout=settings.snapshot_creation_timeout)
    return lambda account: providers.connect(account, timing)


def journal_for(settings: RunSettings) -> Journal:
    """The journal lives beside the lock file; a start older than the creation timeout is forgotten."""
    path = Path(settings.lock_file).with_suffix(".journal.json")
    return Journal(path, timedelta(seconds=settings.snapshot_creation_timeout + 600))


def decide(loaded: LoadedConfig, whole: bool, journal: Journal | None = None) -> tuple[Plan, list[TargetFailure], Observation]:
    """Read the clouds and plan. Orphans belong to no target, so a run limited by
    --target (`whole` false) leaves them alone."""
    settings = loaded.settings
    journal = journal or journal_for(settings)
    observation = observe(loaded.targets, connector(settings), orphans=whole, orphans_keep_last=settings.orphans_keep_last, pending=journal.pending)
    plan = build_plan(observation.observed, datetime.now(timezone.utc))
    return plan, list(loaded.failed) + observation.failures, observation


def apply(loaded: LoadedConfig, whole: bool, plan_file: Path | None, parallel: int) -> RunReport:
    """Plan (or replay the saved plan) and carry it out. Raise PlanFileError if the saved plan no longer fits."""
    journal = journal_for(loaded.settings)
    plan, failures, observation = decide(loaded, whole, journal)
    if plan_file is not None:
        plan = replay(read_plan_file(plan_file), plan, plan_file)
    executor = Executor(observation.providers, journal, parallel=parallel, delay_between_servers=loaded.settings.delay_between_servers)
    return executor.apply(plan, failures)
