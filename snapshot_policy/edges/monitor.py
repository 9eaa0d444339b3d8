"""Telling monitoring how a run went: a healthchecks-style ping, a Prometheus textfile and
a JSON run report (docs/promises.md §7). Best effort: none of it can change a snapshot or the
exit code.

Both files are replaced whole, never written through a symbolic link, and created readable by
their owner only (`statefiles`, docs/promises.md §5 invariant 10).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime, time, timezone
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from snapshot_policy.core import transport
from snapshot_policy.core.model import Delivery, DrillResult, Outcome, RunReport
from snapshot_policy.core.status import LATE, NONE, Status
from snapshot_policy.output.jsondoc import iso_utc, target_identity
from snapshot_policy.output.render import report_summary
from snapshot_policy.state import statefiles

log = logging.getLogger(__name__)
PING_TIMEOUT = 10.0
METRICS_FILE = "metrics file"
# Each target's labels, in this order: a target is its server on its account and provider.
TARGET_LABELS = ("target", "provider", "account", "server_id")


def ping(url: str | None, outcome: str, body: str = "") -> Delivery | None:
    """Ping `url` + `/start`, `` or `/fail` (healthchecks.io's convention) with `body` as text."""
    if not url:
        return None
    refused = transport.url_problem(url, transport.HEALTHCHECK)
    if refused is not None:
        log.warning("healthcheck ping (%s) refused: %s", outcome, refused)
        return Delivery("healthcheck", "healthcheck", None, False, 0, f"ping {outcome}: {refused}")
    suffix = {"start": "/start", "success": "", "fail": "/fail"}[outcome]
    try:
        response = httpx.post(url.rstrip("/") + suffix, content=body.encode(), timeout=PING_TIMEOUT)
        response.raise_for_status()
    except httpx.HTTPError as error:
        log.warning("healthcheck ping (%s) failed: %s", outcome, type(error).__name__)
        return Delivery(
            "healthcheck", "healthcheck", None, False, 1, f"ping {outcome}: {type(error).__name__}"
        )
    return Delivery("healthcheck", "healthcheck", None, True, 1, None)


def write_metrics(
    path: Path, report: RunReport, api_requests: int, status: Status | None = None
) -> None:
    """Write the Prometheus textfile atomically, carrying each target's last success forward;
    with `status` (as it stands after the run), its gauges too (`status_gauges`).
    Raise StateFileError (an OSError) if it cannot be written or `path` is a symbolic link.

    prometheus_client formats the file (every value exact: a timestamp to the microsecond);
    `statefiles` writes it, because `prometheus_client.write_to_textfile` opens a predictable
    temporary name (`PATH.<pid>.<thread>`) through any link there, with the umask's mode.
    """
    registry = CollectorRegistry()  # one per write: nothing global, nothing left from a run before
    registry.register(_RunMetrics(report, api_requests, _last_successes(path)))
    if status is not None:
        registry.register(_Families(status_gauges(status)))
    statefiles.write_atomic(
        path, generate_latest(registry).decode("utf-8"), METRICS_FILE, statefiles.WORLD_READABLE
    )


class _RunMetrics(Collector):
    """The metrics of one finished run, as gauges; `previous` holds each target's last success
    from the file before (by TARGET_LABELS' values), kept for a target that failed this time."""

    def __init__(
        self, report: RunReport, api_requests: int, previous: dict[tuple[str, ...], float]
    ) -> None:
        self.report, self.api_requests, self.previous = report, api_requests, previous

    def collect(self) -> Iterator[GaugeMetricFamily]:
        report, finished = self.report, self.report.finished.timestamp()
        for name, help_text, value in (
            ("last_run_timestamp_seconds", "When the last run finished.", finished),
            (
                "last_run_success",
                "1 if every target of the last run succeeded.",
                int(report.exit_code == 0),
            ),
            ("last_run_exit_code", "The last run's exit code.", report.exit_code),
            (
                "last_run_duration_seconds",
                "How long the last run took.",
                (report.finished - report.started).total_seconds(),
            ),
            ("last_run_api_requests", "Cloud API requests the last run made.", self.api_requests),
            (
                "last_run_notifications_failed",
                "Notifications the last run could not deliver.",
                sum(not d.ok for d in report.deliveries),
            ),
        ):
            yield GaugeMetricFamily(f"snapshot_policy_{name}", help_text, value=value)
        created, deleted, managed = (
            _target_gauge(name, help_text)
            for name, help_text in (
                ("snapshots_created", "Snapshots the last run created, per target."),
                ("snapshots_deleted", "Snapshots the last run deleted, per target."),
                ("managed_snapshots", "Managed snapshots after the last run, per target."),
            )
        )
        last_success = dict(self.previous)
        for outcome in report.outcomes:
            target = outcome.plan.target
            labels = (target.name, target.provider, target.account, target.server_id)
            created.add_metric(labels, int(outcome.created is not None))
            deleted.add_metric(labels, len(outcome.deleted))
            managed.add_metric(labels, outcome.remaining)
            if outcome.ok:
                last_success[labels] = finished
        succeeded = _target_gauge(
            "last_success_timestamp_seconds", "When each target last succeeded."
        )
        for labels, value in sorted(last_success.items()):
            succeeded.add_metric(labels, value)
        yield from (created, deleted, managed, succeeded)
        # consistency: shutdown (docs/promises.md §5.17): only when a server was shut down
        off = [o for o in report.outcomes if o.downtime_seconds is not None]
        if off:
            downtime = _target_gauge(
                "downtime_seconds", "How long the last run kept each target's server off."
            )
            for outcome in off:
                t = outcome.plan.target
                labels = (t.name, t.provider, t.account, t.server_id)
                downtime.add_metric(labels, outcome.downtime_seconds)
            yield downtime


def write_status_metrics(path: Path, status: Status) -> None:
    """Write `status`'s gauges to the textfile, keeping every other metric the file holds
    (apply's run gauges, when `status --metrics-file` names apply's file): a status run between
    two applies refreshes the ages and leaves the last run's figures as they were. Raise
    StateFileError (an OSError) as write_metrics does."""
    fresh = status_gauges(status)
    replaced = {family.name for family in fresh}
    kept = [family for family in _families(path) if family.name not in replaced]
    registry = CollectorRegistry()
    registry.register(_Families(kept + fresh))
    statefiles.write_atomic(
        path, generate_latest(registry).decode("utf-8"), METRICS_FILE, statefiles.WORLD_READABLE
    )


def status_gauges(status: Status) -> list[GaugeMetricFamily]:
    """The facts of `status` as gauges (README "Status"): per target and server the newest
    snapshot's age (no sample without one), whether it is late or missing, the newest
    verified snapshot's age and the last drill; per account the uncovered servers and the
    snapshots against the limit; the exit code `status` would give."""
    newest, late, verified, drilled, passed, restore = (
        GaugeMetricFamily(f"snapshot_policy_{name}", help_text, labels=TARGET_LABELS)
        for name, help_text in (
            ("newest_snapshot_age_seconds", "Age of the newest managed snapshot, per server."),
            ("snapshot_late", "1 if the server's newest snapshot is late or there is none."),
            (
                "newest_verified_snapshot_age_seconds",
                "Age of the newest snapshot whose restore drill passed, per server.",
            ),
            (
                "last_drill_timestamp_seconds",
                "When the last restore drill ran (midnight UTC of its day, if only marked).",
            ),
            ("last_drill_passed", "1 if the last restore drill passed."),
            ("last_drill_restore_seconds", "How long the last drill's server took to run."),
        )
    )
    for judged in status.targets:
        target = judged.target
        labels = (target.name, target.provider, target.account, target.server_id)
        if judged.age is not None:
            newest.add_metric(labels, judged.age.total_seconds())
        late.add_metric(labels, int(judged.state in (LATE, NONE)))
        if judged.verified_age is not None:
            verified.add_metric(labels, judged.verified_age.total_seconds())
        drill = judged.last_drill
        if drill is not None:
            when = drill.when or datetime.combine(drill.on, time(), timezone.utc)
            drilled.add_metric(labels, when.timestamp())
            passed.add_metric(labels, int(drill.passed))
            if drill.restore_seconds is not None:
                restore.add_metric(labels, drill.restore_seconds)
    uncovered, snapshots, limit = (
        GaugeMetricFamily(f"snapshot_policy_{name}", help_text, labels=("account",))
        for name, help_text in (
            ("uncovered_servers", "Servers of the account no target covers (ignored ones aside)."),
            ("account_snapshots", "Snapshots the account holds, whoever made them."),
            ("account_snapshot_limit", "The snapshot limit set for the account."),
        )
    )
    for account in status.accounts:
        if account.unreadable:
            continue
        if account.uncovered is not None:
            uncovered.add_metric((account.account.name,), len(account.uncovered))
        snapshots.add_metric((account.account.name,), account.snapshots)
        if account.account.snapshot_limit is not None:
            limit.add_metric((account.account.name,), account.account.snapshot_limit)
    code = GaugeMetricFamily(
        "snapshot_policy_status_exit_code", "What `status` would exit with: 0 all well."
    )
    code.add_metric((), status.exit_code)
    return [newest, late, verified, drilled, passed, restore, uncovered, snapshots, limit, code]


class _Families(Collector):
    """Metric families made beforehand, for a registry of one write."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def _families(path: Path) -> list[Metric]:
    """The metric families of the file there, none if there is none or it cannot be read."""
    try:
        return list(text_string_to_metric_families(statefiles.read_text(path, METRICS_FILE)))
    except (OSError, ValueError):
        return []


def _target_gauge(name: str, help_text: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"snapshot_policy_target_{name}", help_text, labels=TARGET_LABELS)


def _last_successes(path: Path) -> dict[tuple[str, ...], float]:
    """The per-target last-success samples of the previous file, so a failing target keeps its
    date."""
    try:
        families = list(text_string_to_metric_families(statefiles.read_text(path, METRICS_FILE)))
    except (
        OSError,
        ValueError,
    ):  # none yet, unreadable, not a textfile, or a link (which writing then refuses)
        return {}
    return {
        tuple(sample.labels[k] for k in TARGET_LABELS): sample.value
        for family in families
        if family.name == "snapshot_policy_target_last_success_timestamp_seconds"
        for sample in family.samples
        if set(sample.labels) == set(TARGET_LABELS)
    }


def write_report(path: Path, report: RunReport) -> None:
    """Write the JSON run report: every target, every decision, every outcome and notification.
    Raise StateFileError (an OSError) if it cannot be written or `path` is a symbolic link."""
    document = {
        "started": iso_utc(report.started),
        "finished": iso_utc(report.finished),
        "exit_code": report.exit_code,
        "summary": report_summary(report),
        "targets": [_outcome_document(o) for o in report.outcomes],
        "failed": [
            {"target": f.target, "account": f.account, "reason": f.reason} for f in report.failures
        ],
        "notifications": [d.__dict__ for d in report.deliveries],
        "drills": [_drill_document(d) for d in report.drills],
    }
    statefiles.write_atomic(
        path, json.dumps(document, indent=2, ensure_ascii=False) + "\n", "run report"
    )


def _drill_document(drill: DrillResult) -> dict:
    """A restore drill in the run report (issue 22): what was restored, to what, how far it
    got, how long until its server ran, and whether that server is gone."""
    return {
        **target_identity(drill.target),
        "passed": drill.passed,
        "stage": drill.stage,
        "snapshot": {"id": drill.snapshot.id, "name": drill.snapshot.name},
        "machine_type": drill.machine_type,
        "region": drill.region,
        "drill_server": {"id": drill.server_id, "name": drill.server_name},
        "restore_seconds": drill.restore_seconds,
        "server_deleted": drill.deleted,
        "started": iso_utc(drill.started),
        "finished": iso_utc(drill.finished),
        "error": drill.error,
    }


def _outcome_document(outcome: Outcome) -> dict:
    return {
        **target_identity(outcome.plan.target),
        "ok": outcome.ok,
        "error": outcome.error,
        "created": {"id": outcome.created.id, "name": outcome.created.name}
        if outcome.created
        else None,
        "deleted": [{"id": s.id, "name": s.name} for s in outcome.deleted],
        **(
            {  # the marks written (§5.16), only where there are some
                "relabelled": [
                    {"action": a.kind.value, "id": a.snapshot.id, "name": a.snapshot.name}
                    for a in outcome.relabelled
                ]
            }
            if outcome.relabelled
            else {}
        ),
        "managed_snapshots": outcome.remaining,
        **(
            {"downtime_seconds": outcome.downtime_seconds}
            if outcome.downtime_seconds is not None
            else {}
        ),
        "decisions": [
            {
                "action": a.kind.value,
                "id": a.snapshot.id or None,
                "name": a.snapshot.name,
                "reason": a.reason,
                "rules": list(a.rules),
            }
            for a in outcome.plan.actions
        ],
        **({"copied_to": list(outcome.copied_to)} if outcome.plan.target.copies else {}),
    }


def api_requests(providers: Sequence) -> int:
    return sum(getattr(p, "requests", 0) for p in providers)
