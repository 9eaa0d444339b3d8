"""edges/monitor: the status gauges (issue 22, item 1): one sample per server and account, none
for what is unknown, and a status write that keeps the file's other metrics."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from prometheus_client.parser import text_string_to_metric_families

from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import (
    Account,
    DrillMark,
    RetentionPolicy,
    Schedule,
    Selector,
    Server,
    TargetSpec,
)
from snapshot_policy.core.status import build
from snapshot_policy.edges.monitor import write_status_metrics
from tests.factories import snap, target, utc

NOW = utc(2026, 12, 7, 12, 0)
ACCOUNT = Account("main", "hetzner", "t0ken", snapshot_limit=10)
LABELS = (("account", "main"), ("provider", "hetzner"), ("server_id", "1"), ("target", "web"))


def judged(snapshots):
    web = target(schedule=Schedule(every=Duration.parse("24h")), keep_last=3)
    spec = TargetSpec("web", ACCOUNT, Selector(ids=("1",)), RetentionPolicy(keep_last=3))
    return build(
        [spec],
        [(web, snapshots)],
        [],
        NOW,
        servers={"main": [Server("1", "web"), Server("2", "loose")]},
        selected={},
        snapshot_counts={"main": len(snapshots)},
    )


def samples(path):
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }


def test_status_gauges_from_a_marked_drill_and_the_account(tmp_path):
    marked = replace(snap(NOW - timedelta(hours=30)), drilled=DrillMark(True, date(2026, 12, 6)))
    path = tmp_path / "status.prom"
    write_status_metrics(path, judged([marked, snap(NOW - timedelta(hours=2))]))
    values = samples(path)
    assert values[("snapshot_policy_newest_snapshot_age_seconds", LABELS)] == 7200
    assert values[("snapshot_policy_snapshot_late", LABELS)] == 0
    assert values[("snapshot_policy_newest_verified_snapshot_age_seconds", LABELS)] == 30 * 3600
    assert values[("snapshot_policy_last_drill_timestamp_seconds", LABELS)] == (
        utc(2026, 12, 6, 0, 0).timestamp()
    )
    assert values[("snapshot_policy_last_drill_passed", LABELS)] == 1
    assert ("snapshot_policy_last_drill_restore_seconds", LABELS) not in values  # not known
    account = (("account", "main"),)
    assert values[("snapshot_policy_uncovered_servers", account)] == 1
    assert values[("snapshot_policy_account_snapshots", account)] == 2
    assert values[("snapshot_policy_account_snapshot_limit", account)] == 10
    assert values[("snapshot_policy_status_exit_code", ())] == 2


def test_a_status_write_replaces_its_gauges_and_keeps_the_rest(tmp_path):
    path = tmp_path / "snapshot_policy.prom"
    path.write_text(
        "# HELP snapshot_policy_last_run_exit_code The last run's exit code.\n"
        "# TYPE snapshot_policy_last_run_exit_code gauge\n"
        "snapshot_policy_last_run_exit_code 0.0\n"
    )
    write_status_metrics(path, judged([snap(NOW - timedelta(hours=2))]))
    write_status_metrics(path, judged([]))  # the snapshot is gone: no age, late
    values = samples(path)
    assert values[("snapshot_policy_last_run_exit_code", ())] == 0
    assert ("snapshot_policy_newest_snapshot_age_seconds", LABELS) not in values
    assert values[("snapshot_policy_snapshot_late", LABELS)] == 1
