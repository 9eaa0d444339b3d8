"""The lines an apply run writes to its log to mark its start and end, and, in a legacy layout,
the lines snapshots.py wrote that operators grep for (issue 21, item 4; README "Logs").

A legacy layout's log gets snapshots.py's session header, one `FINAL_STATUS | … | SUCCESS`
line per server and the `SUMMARY: 4 succeeded, 0 failed out of 4 total` block, with the same
keywords, field order and ` | ` separators; a policy's log gets one line at each end of the
run. The formatting functions are pure; `log_start` and `log_end` write through `logging`.
"""

from __future__ import annotations

import logging
from datetime import datetime

from snapshot_policy.core.model import RunReport
from snapshot_policy.edges.notify.messages import LEGACY_STYLE, Event, Style, variables

log = logging.getLogger(__name__)

RULE = "=" * 80
"""snapshots.py's separator line around its session header and summary."""
LEGACY = Style(LEGACY_STYLE)


def final_status_line(event: Event) -> str:
    """`FINAL_STATUS | snapshots.py | digitalocean | web-1 | SUCCESS | host | 2026-12-07 03:00:12
    | web-1-20261207030012 | 2 snapshots exist`: snapshots.py's per-server line, its fields
    rendered as its notifications render them (messages.variables, legacy style)."""
    values = variables(event, LEGACY)
    fields = (
        "FINAL_STATUS",
        values["script"],
        values["provider"],
        values["server_name"],
        values["status"],
        values["hostname"],
        values["timestamp"],
        values["snapshot_name"],
        values["snapshot_info"],
    )
    return " | ".join(str(field) for field in fields)


def counts(report: RunReport) -> tuple[int, int, int]:
    """(succeeded, failed, total) servers of a run as its FINAL_STATUS lines tell them
    (messages.legacy_status): a server whose snapshot this run made succeeded, whatever became
    of its deletions; a target that could not be read failed. The exit code is not this: it
    still fails a run whose deletions failed (README "Logs and the cron output")."""
    failed = sum(not (o.ok or o.created is not None) for o in report.outcomes)
    failed += len(report.failures)
    total = len(report.outcomes) + len(report.failures)
    return total - failed, failed, total


def summary_line(succeeded: int, failed: int, total: int) -> str:
    """`SUMMARY: 4 succeeded, 0 failed out of 4 total`, snapshots.py's words."""
    return f"SUMMARY: {succeeded} succeeded, {failed} failed out of {total} total"


def failure_line(succeeded: int, failed: int) -> tuple[int, str] | None:
    """snapshots.py's line after a summary with failures, with its level; None without."""
    if not failed:
        return None
    if not succeeded:
        return logging.ERROR, "All servers failed"
    return logging.WARNING, f"Partial failure: {failed} server(s) failed"


def start_lines(legacy: bool, hostname: str, now: datetime, targets: int) -> list[str]:
    """What the log says as a run begins: snapshots.py's session header in a legacy layout
    (its `Timestamp:` in local time), else one line."""
    if not legacy:
        return [f"apply started on {hostname}: {targets} target(s)"]
    return [
        RULE,
        "SNAPSHOT MANAGEMENT SESSION STARTED",
        f"Timestamp: {now.astimezone():%Y-%m-%d %H:%M:%S}",
        f"Hostname: {hostname}",
        f"Total servers configured: {targets}",
        RULE,
    ]


def summary_lines(report: RunReport) -> list[tuple[int, str]]:
    """snapshots.py's SUMMARY line and, with failures, its failure line, with their levels:
    what a legacy layout's log (`end_lines`) and its cron output (`cron_end_lines`) end with."""
    succeeded, failed, total = counts(report)
    after = failure_line(succeeded, failed)
    return [(logging.INFO, summary_line(succeeded, failed, total))] + ([after] if after else [])


def cron_end_lines(report: RunReport, completed: bool) -> list[str]:
    """The lines snapshots.py ended its cronjob.log with: the summary, its failure line as
    `WARNING: …`, and `Script completed successfully.` only for a run that `completed` with
    exit code 0, as snapshots.py printed it only when it went on to exit 0."""
    lines = summary_lines(report)
    said = [lines[0][1]] + [f"{logging.getLevelName(level)}: {text}" for level, text in lines[1:]]
    if len(lines) == 1 and completed and report.exit_code == 0:
        said.append("Script completed successfully.")
    return said


def end_lines(legacy: bool, report: RunReport, summary: str) -> list[tuple[int, str]]:
    """What the log says as a run ends, with levels: snapshots.py's summary block (and its
    failure line) in a legacy layout, else one line with apply's `summary`."""
    if not legacy:
        level = logging.INFO if report.exit_code == 0 else logging.WARNING
        return [(level, f"apply finished with exit code {report.exit_code}: {summary}")]
    first, *after = summary_lines(report)
    return [(logging.INFO, RULE), first, (logging.INFO, RULE), *after]


def log_start(legacy: bool, hostname: str, now: datetime, targets: int) -> None:
    for line in start_lines(legacy, hostname, now, targets):
        log.info(line)


def log_end(legacy: bool, report: RunReport, summary: str, events: list[Event]) -> None:
    """Log each server's FINAL_STATUS (legacy layout: `events`, one per server; at INFO, as
    snapshots.py did, failures too), then the end."""
    if legacy:
        for event in events:
            log.info(final_status_line(event))
    for level, line in end_lines(legacy, report, summary):
        log.log(level, line)
