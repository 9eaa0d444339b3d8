"""What apply prints when nothing was due (issue 21, item 9): `render.uneventful` says when a
run has nothing to report, and ApplyProgress(hold=True) writes no line for such a run while a
run that acts writes the lines it always did."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest

from snapshot_policy.core.model import (
    Delivery,
    Outcome,
    RetentionPolicy,
    RunReport,
    Target,
    TargetFailure,
    TargetPlan,
)
from snapshot_policy.output import render
from snapshot_policy.output.progress import ApplyProgress
from tests.factories import snap, target, utc

WEB = Target("web", "digitalocean", "do", "3164444", "web-1", RetentionPolicy(keep_last=3))
DB = Target("databases", "hetzner", "hz", "42", "db-1", RetentionPolicy(keep_daily=7))
AT = utc(2026, 1, 31, 3)
IDLE = Outcome(TargetPlan(target(keep_last=3), (), "not due"), ok=True, remaining=3)
QUIET = RunReport(AT, AT, (IDLE,), deliveries=(Delivery("hc", "healthcheck", None, True, 1, None),))


def test_a_run_that_did_nothing_and_failed_nothing_is_uneventful():
    assert render.uneventful(QUIET) and not render.report_failed(QUIET)
    assert render.uneventful(replace(QUIET, outcomes=()))


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        ({"outcomes": (replace(IDLE, created=snap(AT)),)}, False),
        ({"outcomes": (replace(IDLE, deleted=(snap(AT),)),)}, False),
        ({"outcomes": (replace(IDLE, ok=False, error="boom"),)}, True),
        ({"outcomes": (replace(IDLE, ok=False, partial=True),)}, True),
        ({"failures": (TargetFailure("db", "no server named 'db-1'"),)}, True),
        ({"unwritten": ("could not write the run report: disk full",)}, True),
        ({"deliveries": (Delivery("hc", "healthcheck", None, False, 1, "ping start"),)}, True),
    ],
)
def test_anything_done_or_failed_makes_a_run_worth_printing(change, failed):
    report = replace(QUIET, **change)
    assert not render.uneventful(report)
    assert render.report_failed(report) == failed


def unwrapped(text: str) -> str:
    """Each result line as one line again: those past 80 columns go on over indented lines."""
    return re.sub(r"\n {4,}", " ", text)


def test_report_text_failed_only_keeps_the_failed_targets_lines():
    broken = replace(IDLE, ok=False, error="hetzner start snapshot failed (HTTP 423)")
    report = replace(QUIET, outcomes=(IDLE, broken), failures=(TargetFailure("db", "gone"),))
    whole = unwrapped(render.report_text(report)).splitlines()
    assert unwrapped(render.report_text(report, failed_only=True)).splitlines() == whole[1:]
    assert whole[1].endswith(
        ": FAILED: no new snapshot, deleted 0, 3 managed snapshot(s) "
        "remain; hetzner start snapshot failed (HTTP 423)"
    )
    assert render.report_text(QUIET, failed_only=True) == ""


def held_progress() -> tuple[io.StringIO, ApplyProgress]:
    stream = io.StringIO()
    return stream, ApplyProgress(stream, force_terminal=False, hold=True)


def test_held_lines_of_a_run_with_nothing_due_are_never_written():
    stream, progress = held_progress()
    with progress:
        for t in (WEB, DB):
            progress(t, "waiting")
        for t in (WEB, DB):
            progress(t, "done")
    assert stream.getvalue() == ""


def test_held_lines_are_written_as_they_came_once_asked():
    stream, progress = held_progress()
    with progress:
        progress(WEB, "waiting")
        progress(WEB, "done")
    progress.release()
    assert stream.getvalue() == (
        "web: web-1 (digitalocean server 3164444): waiting\n"
        "web: web-1 (digitalocean server 3164444): done\n"
    )
    progress.release()  # a second time writes nothing again
    assert stream.getvalue().count("\n") == 2


def test_a_run_that_acts_writes_the_same_lines_as_without_hold():
    def run(progress: ApplyProgress) -> None:
        with progress:
            for t in (WEB, DB):
                progress(t, "waiting")
            progress(DB, "done")
            progress(WEB, "creating")
            progress(WEB, "deleting")
            progress(WEB, "done")

    plain, held = io.StringIO(), io.StringIO()
    run(ApplyProgress(plain, force_terminal=False))
    run(ApplyProgress(held, force_terminal=False, hold=True))
    assert held.getvalue() == plain.getvalue()
    assert plain.getvalue().splitlines()[:3] == [
        "web: web-1 (digitalocean server 3164444): waiting",
        "databases: db-1 (hetzner server 42): waiting",
        "databases: db-1 (hetzner server 42): done",
    ]


def test_a_failed_stage_writes_the_held_lines_at_once():
    stream, progress = held_progress()
    progress(DB, "waiting")
    progress(DB, "failed")
    assert stream.getvalue() == (
        "databases: db-1 (hetzner server 42): waiting\n"
        "databases: db-1 (hetzner server 42): failed\n"
    )
