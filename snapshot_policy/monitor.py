"""Telling monitoring how a run went: a healthchecks-style ping, a Prometheus textfile and
a JSON run report (SPEC §7). Best effort: none of it can change a snapshot or the exit code.

Both files are replaced whole, never written through a symbolic link, and created readable by
their owner only (`statefiles`, SPEC §5 invariant 10).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import httpx

from snapshot_policy import statefiles, transport
from snapshot_policy.model import Delivery, Outcome, RunReport
from snapshot_policy.render import iso_utc, target_identity

log = logging.getLogger(__name__)
PING_TIMEOUT = 10.0


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
        return Delivery("healthcheck", "healthcheck", None, False, 1, f"ping {outcome}: {type(error).__name__}")
    return Delivery("healthcheck", "healthcheck", None, True, 1, None)


def write_metrics(path: Path, report: RunReport, api_requests: int) -> None:
    """Write the Prometheus textfile atomically, carrying each target's last success forward.
    Raise StateFileError (an OSError) if it cannot be written or `path` is a symbolic link."""
    previous = _last_successes(path)
    finished = report.finished.timestamp()
    lines = [
        *_metric("snapshot_policy_last_run_timestamp_seconds", "When the last run finished.", [("", finished)]),
        *_metric("snapshot_policy_last_run_success", "1 if every target of the last run succeeded.", [("", int(report.exit_code == 0))]),
        *_metric("snapshot_policy_last_run_exit_code", "The last run's exit code.", [("", report.exit_code)]),
        *_metric("snapshot_policy_last_run_duration_seconds", "How long the last run took.", [("", (report.finished - report.started).total_seconds())]),
        *_metric("snapshot_policy_last_run_api_requests", "Cloud API requests the last run made.", [("", api_requests)]),
        *_metric("snapshot_policy_last_run_notifications_failed", "Notifications the last run could not deliver.", [("", sum(not d.ok for d in report.deliveries))]),
    ]
    created, deleted, managed = [], [], []
    for outcome in report.outcomes:
        target = outcome.plan.target
        labels = _labels(target=target.name, provider=target.provider, account=target.account, server_id=target.server_id)
        created.append((labels, int(outcome.created is not None)))
        deleted.append((labels, len(outcome.deleted)))
        managed.append((labels, outcome.remaining))
        if outcome.ok:
            previous[labels] = finished
    lines += _metric("snapshot_policy_target_snapshots_created", "Snapshots the last run created, per target.", created)
    lines += _metric("snapshot_policy_target_snapshots_deleted", "Snapshots the last run deleted, per target.", deleted)
    lines += _metric("snapshot_policy_target_managed_snapshots", "Managed snapshots after the last run, per target.", managed)
    lines += _metric("snapshot_policy_target_last_success_timestamp_seconds", "When each target last succeeded.", sorted(previous.items()))
    statefiles.write_atomic(path, "\n".join(lines) + "\n", "metrics file")  # node_exporter never reads half a file


def _metric(name: str, help_text: str, samples: Iterable[tuple[str, float]]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *(f"{name}{labels} {value:g}" for labels, value in samples)]


def _labels(**values: str) -> str:
    return "{" + ",".join(_escape(k, v) for k, v in values.items()) + "}"


def _escape(key: str, value: str) -> str:
    return f'{key}="' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _last_successes(path: Path) -> dict[str, float]:
    """The per-target last-success samples of the previous file, so a failing target keeps its date."""
    try:
        text = statefiles.read_text(path, "metrics file")
    except (OSError, ValueError):  # none yet, unreadable, or a link (which writing then refuses)
        return {}
    pattern = re.compile(r"^snapshot_policy_target_last_success_timestamp_seconds(\{.*\}) (\S+)$", re.MULTILINE)
    return {labels: float(value) for labels, value in pattern.findall(text)}


def write_report(path: Path, report: RunReport) -> None:
    """Write the JSON run report: every target, every decision, every outcome and notification.
    Raise StateFileError (an OSError) if it cannot be written or `path` is a symbolic link."""
    document = {
        "started": iso_utc(report.started),
        "finished": iso_utc(report.finished),
        "exit_code": report.exit_code,
        "summary": report.summary(),
        "targets": [_outcome_document(o) for o in report.outcomes],
        "failed": [{"target": f.target, "account": f.account, "reason": f.reason} for f in report.failures],
        "notifications": [d.__dict__ for d in report.deliveries],
    }
    statefiles.write_atomic(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n", "run report")


def _outcome_document(outcome: Outcome) -> dict:
    return {
        **target_identity(outcome.plan.target),
        "ok": outcome.ok,
        "error": outcome.error,
        "created": {"id": outcome.created.id, "name": outcome.created.name} if outcome.created else None,
        "deleted": [{"id": s.id, "name": s.name} for s in outcome.deleted],
        "managed_snapshots": outcome.remaining,
        "decisions": [
            {"action": a.kind.value, "id": a.snapshot.id or None, "name": a.snapshot.name, "reason": a.reason, "rules": list(a.rules)}
            for a in outcome.plan.actions
        ],
    }


def api_requests(providers: Sequence) -> int:
    return sum(getattr(p, "requests", 0) for p in providers)
