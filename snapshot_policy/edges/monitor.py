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
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from snapshot_policy.core import transport
from snapshot_policy.core.model import Delivery, DrillResult, Outcome, RunReport
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


def write_metrics(path: Path, report: RunReport, api_requests: int) -> None:
    """Write the Prometheus textfile atomically, carrying each target's last success forward.
    Raise StateFileError (an OSError) if it cannot be written or `path` is a symbolic link.

    prometheus_client formats the file (every value exact: a timestamp to the microsecond);
    `statefiles` writes it, because `prometheus_client.write_to_textfile` opens a predictable
    temporary name (`PATH.<pid>.<thread>`) through any link there, with the umask's mode.
    """
    registry = CollectorRegistry()  # one per write: nothing global, nothing left from a run before
    registry.register(_RunMetrics(report, api_requests, _last_successes(path)))
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
        "managed_snapshots": outcome.remaining,
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
    }


def api_requests(providers: Sequence) -> int:
    return sum(getattr(p, "requests", 0) for p in providers)
