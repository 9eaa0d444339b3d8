"""The shapes of the log and cron lines operators grep (issue 21, item 4): snapshots.py's
FINAL_STATUS, SUMMARY and session lines in a legacy layout, a start and end line in a policy's
log, and the local time before every line apply prints under cron. No date here is today's."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from snapshot_policy.edges.notify.messages import FAILURE, SUCCESS, Event
from snapshot_policy.engine import runlog
from snapshot_policy.output.logs import stamp, stamped

AT = datetime(2025, 1, 1, 2, 30, 5, tzinfo=timezone.utc)  # 03:30:05 in Berlin


@pytest.fixture(autouse=True)
def host_in_berlin(host_zone):
    """snapshots.py wrote its times in the host's local time; a host off UTC shows we do."""
    host_zone("Europe/Berlin")


OK = Event(
    target="web",
    provider="digitalocean",
    server_name="web_main-1",
    server_id="101",
    snapshot_name="web_main-1-20250101033000",
    total_snapshots=2,
    status=SUCCESS,
    error=None,
    hostname="backup-host",
    timestamp=AT,
)


def test_stamp_is_the_local_time_in_brackets():
    assert stamp(AT) == "[2025-01-01 03:30:05]"


def test_stamped_puts_the_time_before_every_line_and_keeps_blank_lines_blank():
    assert stamped("a\n\nb\n", AT) == "[2025-01-01 03:30:05] a\n\n[2025-01-01 03:30:05] b\n"
    assert stamped("no newline", AT) == "[2025-01-01 03:30:05] no newline"
    assert stamped("", AT) == ""


def test_final_status_line_has_the_old_fields_in_the_old_order():
    assert runlog.final_status_line(OK) == (
        "FINAL_STATUS | snapshots.py | digitalocean | web_main-1 | SUCCESS | backup-host | "
        "2025-01-01 03:30:05 | web_main-1-20250101033000 | 2 snapshots exist"
    )


def test_a_failed_servers_final_status_names_no_snapshot_and_keeps_the_old_plural():
    failed = replace(OK, status=FAILURE, snapshot_name="", total_snapshots=1, error="quota")
    assert runlog.final_status_line(failed) == (
        "FINAL_STATUS | snapshots.py | digitalocean | web_main-1 | FAILURE | backup-host | "
        "2025-01-01 03:30:05 | none | 1 snapshots exist"
    )


def test_a_server_name_cannot_forge_a_line():
    forged = replace(OK, server_name="x\n2025-01-01 03:30:05 | INFO     | FINAL_STATUS")
    assert "\n" not in runlog.final_status_line(forged)


def report(ok: int, failed: int, unreadable: int = 0, exit_code: int = 0, made_failed: int = 0):
    """A run's report: `made_failed` servers got their snapshot but a deletion failed."""
    outcomes = (
        [SimpleNamespace(ok=True, created=None)] * ok
        + [SimpleNamespace(ok=False, created=None)] * failed
        + [SimpleNamespace(ok=False, created=object())] * made_failed
    )
    return SimpleNamespace(
        outcomes=tuple(outcomes), failures=(object(),) * unreadable, exit_code=exit_code
    )


def test_summary_counts_an_unreadable_server_as_failed():
    assert runlog.counts(report(3, 1, 1)) == (3, 2, 5)
    assert runlog.summary_line(4, 0, 4) == "SUMMARY: 4 succeeded, 0 failed out of 4 total"


def test_a_server_whose_snapshot_was_made_counts_as_its_final_status_says():
    """Its FINAL_STATUS says SUCCESS (messages.legacy_status), so the SUMMARY counts it so; the
    run still exits 2 (issue 21, review of item 4)."""
    run = report(1, 0, made_failed=2, exit_code=2)
    assert runlog.counts(run) == (3, 0, 3)
    assert runlog.summary_lines(run) == [
        (logging.INFO, "SUMMARY: 3 succeeded, 0 failed out of 3 total")
    ]


def test_the_cron_output_completes_only_a_run_that_exits_0():
    assert runlog.cron_end_lines(report(2, 0), completed=True) == [
        "SUMMARY: 2 succeeded, 0 failed out of 2 total",
        "Script completed successfully.",
    ]
    assert runlog.cron_end_lines(report(2, 0), completed=False) == [
        "SUMMARY: 2 succeeded, 0 failed out of 2 total"
    ]  # stopped by a signal
    assert runlog.cron_end_lines(report(2, 0, exit_code=2), completed=True) == [
        "SUMMARY: 2 succeeded, 0 failed out of 2 total"
    ]  # e.g. the run state could not be written
    assert runlog.cron_end_lines(report(1, 1, exit_code=2), completed=True) == [
        "SUMMARY: 1 succeeded, 1 failed out of 2 total",
        "WARNING: Partial failure: 1 server(s) failed",
    ]
    assert runlog.cron_end_lines(report(0, 1, exit_code=1), completed=True) == [
        "SUMMARY: 0 succeeded, 1 failed out of 1 total",
        "ERROR: All servers failed",
    ]


def test_the_log_and_the_cron_output_end_with_the_same_summary():
    run = report(3, 1, exit_code=2)
    log = [text for _, text in runlog.end_lines(True, run, "ignored") if text != "=" * 80]
    cron = runlog.cron_end_lines(run, completed=True)
    assert log[0] == cron[0] and cron[1].endswith(": " + log[1])


def test_failure_lines_are_the_old_scripts():
    assert runlog.failure_line(4, 0) is None
    assert runlog.failure_line(0, 2) == (logging.ERROR, "All servers failed")
    assert runlog.failure_line(3, 1) == (logging.WARNING, "Partial failure: 1 server(s) failed")


def test_legacy_start_is_the_old_session_header_in_local_time():
    assert runlog.start_lines(True, "backup-host", AT, 4) == [
        "=" * 80,
        "SNAPSHOT MANAGEMENT SESSION STARTED",
        "Timestamp: 2025-01-01 03:30:05",
        "Hostname: backup-host",
        "Total servers configured: 4",
        "=" * 80,
    ]


def test_a_policy_run_starts_and_ends_with_one_line_each():
    assert runlog.start_lines(False, "backup-host", AT, 2) == [
        "apply started on backup-host: 2 target(s)"
    ]
    assert runlog.end_lines(False, report(1, 1, exit_code=2), "snapshot-policy apply: …") == [
        (logging.WARNING, "apply finished with exit code 2: snapshot-policy apply: …")
    ]


def test_legacy_end_is_the_summary_block_then_the_failure_line():
    assert runlog.end_lines(True, report(3, 1), "ignored") == [
        (logging.INFO, "=" * 80),
        (logging.INFO, "SUMMARY: 3 succeeded, 1 failed out of 4 total"),
        (logging.INFO, "=" * 80),
        (logging.WARNING, "Partial failure: 1 server(s) failed"),
    ]
