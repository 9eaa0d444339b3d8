"""Telling monitoring how a run went (docs/promises.md §7). The healthcheck ping, through the real
httpx against the sandbox's webhook sink, lands on healthchecks.io's start/success/fail URLs with
the body, and a failing or unreachable endpoint gives a failed Delivery instead of an exception. The
Prometheus textfile parses as Prometheus would read it, holds the exact value per run and per target
(timestamps to the microsecond), keeps a failing target's last success from the previous file (also
one an older version wrote), is replaced atomically, never through a link, and masks secrets; the
JSON run report lists every target, decision, outcome and notification."""

from __future__ import annotations

import json
import os
import stat
import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from snapshot_policy.core.model import Delivery, Outcome, RunReport, Snapshot, TargetFailure
from snapshot_policy.core.reconcile import plan_target
from snapshot_policy.core.redaction import hide, redacted_output
from snapshot_policy.edges.monitor import ping, write_metrics, write_report
from snapshot_policy.output.render import report_summary
from tests.factories import snap, target, utc

NOW = utc(2026, 11, 26, 3)
FINISHED = utc(2027, 1, 15, 8)  # 1.8e9 exactly; the exact-value tests below use odd times
WEB = target(keep_last=1)
DB = replace(WEB, name="db", server_id="2", server_name="db-1", provider="digitalocean")
OLD = (
    snap(utc(2026, 11, 25, 3), id="11"),
    snap(utc(2026, 11, 24, 3), id="10"),
    snap(utc(2026, 1, 1), id="3", managed=False),
)
MADE = Snapshot("5001", "web-20261126030000", NOW, "1", True, "managed-by label")
SENT = Delivery("ops", "telegram", "web", True, 1, None)
LOST = Delivery("hook", "webhook", "db", False, 4, "HTTPStatusError")
PINGED = Delivery("healthcheck", "healthcheck", None, True, 1, None)


def run(web_ok: bool = True, db_ok: bool = False, finished=FINISHED, **fields) -> RunReport:
    """web creates MADE and deletes 11 and 10; db (no snapshots yet) creates nothing and may
    fail."""
    web = Outcome(
        plan_target(WEB, OLD, NOW),
        web_ok,
        MADE,
        OLD[:2],
        1,
        None if web_ok else "delete web-20261124030000: HTTP 500",
    )
    db = Outcome(
        plan_target(DB, (), NOW),
        db_ok,
        None,
        (),
        0,
        None if db_ok else "digitalocean create_snapshot failed (HTTP 500): boom",
    )
    return RunReport(
        finished - timedelta(seconds=90), finished, (web, db), deliveries=(SENT, LOST), **fields
    )


def samples(path) -> dict[tuple[str, str], float]:
    """Every sample by (metric name, target label), read with prometheus_client's own parser."""
    return samples_of(path.read_text())


def samples_of(text: str) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("target", "")): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_write_metrics_records_the_run_and_each_target(tmp_path):
    path = tmp_path / "metrics" / "snapshot_policy.prom"
    write_metrics(path, run(), api_requests=42)
    assert samples(path) == {
        ("snapshot_policy_last_run_timestamp_seconds", ""): 1.8e9,
        ("snapshot_policy_last_run_success", ""): 0,
        ("snapshot_policy_last_run_exit_code", ""): 2,
        ("snapshot_policy_last_run_duration_seconds", ""): 90,
        ("snapshot_policy_last_run_api_requests", ""): 42,
        ("snapshot_policy_last_run_notifications_failed", ""): 1,
        ("snapshot_policy_target_snapshots_created", "db"): 0,
        ("snapshot_policy_target_snapshots_created", "web"): 1,
        ("snapshot_policy_target_snapshots_deleted", "db"): 0,
        ("snapshot_policy_target_snapshots_deleted", "web"): 2,
        ("snapshot_policy_target_managed_snapshots", "db"): 0,
        ("snapshot_policy_target_managed_snapshots", "web"): 1,
        ("snapshot_policy_target_last_success_timestamp_seconds", "web"): 1.8e9,
    }


def test_write_metrics_labels_each_target_by_its_server(tmp_path):
    path = tmp_path / "snapshot_policy.prom"
    write_metrics(path, run(), api_requests=0)
    [family] = [
        f
        for f in text_string_to_metric_families(path.read_text())
        if f.name == "snapshot_policy_target_snapshots_created"
    ]
    assert family.type == "gauge"
    assert [s.labels for s in family.samples] == [
        {"target": "web", "provider": "hetzner", "account": "main", "server_id": "1"},
        {"target": "db", "provider": "digitalocean", "account": "main", "server_id": "2"},
    ]


@pytest.mark.parametrize(
    ("web_ok", "db_ok", "exit_code", "success"),
    [(True, True, 0, 1), (True, False, 2, 0), (False, False, 1, 0)],
)
def test_write_metrics_reports_the_exit_code_and_success_flag(
    tmp_path, web_ok, db_ok, exit_code, success
):
    path = tmp_path / "snapshot_policy.prom"
    write_metrics(path, run(web_ok, db_ok), api_requests=0)
    values = samples(path)
    assert (
        values["snapshot_policy_last_run_exit_code", ""],
        values["snapshot_policy_last_run_success", ""],
    ) == (exit_code, success)


def test_write_metrics_carries_a_failing_targets_last_success_forward(tmp_path):
    path = tmp_path / "snapshot_policy.prom"
    # 1.7e9
    write_metrics(
        path, run(web_ok=True, db_ok=True, finished=utc(2023, 11, 14, 22, 13, 20)), api_requests=0
    )
    write_metrics(path, run(web_ok=True, db_ok=False), api_requests=0)
    values = samples(path)
    assert values["snapshot_policy_target_last_success_timestamp_seconds", "db"] == 1.7e9
    assert values["snapshot_policy_target_last_success_timestamp_seconds", "web"] == 1.8e9


def test_write_metrics_replaces_the_file_atomically(tmp_path):
    """A reader holding the old file still sees it whole: the new one is renamed over it."""
    path = tmp_path / "snapshot_policy.prom"
    write_metrics(path, run(), api_requests=1)
    with path.open() as reader:
        write_metrics(path, run(), api_requests=2)
        assert samples_of(reader.read())["snapshot_policy_last_run_api_requests", ""] == 1
    assert samples(path)["snapshot_policy_last_run_api_requests", ""] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot_policy.prom"]


def test_write_metrics_escapes_label_values(tmp_path):
    path = tmp_path / "snapshot_policy.prom"
    report = run(db_ok=True)
    odd = replace(
        report.outcomes[1],
        plan=replace(report.outcomes[1].plan, target=replace(DB, name='db "a"\\b\nc')),
    )
    write_metrics(path, replace(report, outcomes=(report.outcomes[0], odd)), api_requests=0)
    assert samples(path)["snapshot_policy_target_snapshots_created", 'db "a"\\b\nc'] == 0


def test_write_metrics_records_the_exact_finish_time(tmp_path):
    path = tmp_path / "snapshot_policy.prom"
    report = run(finished=utc(2026, 11, 26, 3, 1, 2))
    write_metrics(path, report, api_requests=0)
    assert (
        samples(path)["snapshot_policy_last_run_timestamp_seconds", ""]
        == report.finished.timestamp()
        == 1_795_662_062
    )


def test_write_metrics_records_times_to_the_microsecond_and_counts_exactly(tmp_path):
    """`{:g}` kept six digits: 1795662062.123456 became 1.79566e+09, 2,062 s early."""
    path = tmp_path / "snapshot_policy.prom"
    finished = utc(2026, 11, 26, 3, 1, 2) + timedelta(microseconds=123456)
    report = replace(
        run(web_ok=True, db_ok=True, finished=finished),
        started=finished - timedelta(seconds=5401, microseconds=250000),
    )
    write_metrics(path, report, api_requests=1_234_567)
    values = samples(path)
    assert values["snapshot_policy_last_run_timestamp_seconds", ""] == 1_795_662_062.123456
    assert (
        values["snapshot_policy_target_last_success_timestamp_seconds", "web"]
        == 1_795_662_062.123456
    )
    assert (
        values["snapshot_policy_target_last_success_timestamp_seconds", "db"]
        == 1_795_662_062.123456
    )
    assert values["snapshot_policy_last_run_duration_seconds", ""] == 5401.25
    assert values["snapshot_policy_last_run_api_requests", ""] == 1_234_567
    # every digit written
    assert "snapshot_policy_last_run_api_requests 1.234567e+06\n" in path.read_text()


def test_write_metrics_carries_the_exact_last_success_across_runs(tmp_path):
    path = tmp_path / "snapshot_policy.prom"
    succeeded = utc(2026, 11, 25, 3, 0, 7) + timedelta(microseconds=5)
    write_metrics(path, run(web_ok=True, db_ok=True, finished=succeeded), api_requests=0)
    for day in (1, 2):  # db fails twice; its date must not drift through the rewrites
        write_metrics(
            path,
            run(web_ok=True, db_ok=False, finished=succeeded + timedelta(days=day, seconds=1)),
            api_requests=0,
        )
    values = samples(path)
    assert (
        values["snapshot_policy_target_last_success_timestamp_seconds", "db"]
        == succeeded.timestamp()
        == 1_795_575_607.000005
    )
    assert (
        values["snapshot_policy_target_last_success_timestamp_seconds", "web"]
        == (succeeded + timedelta(days=2, seconds=1)).timestamp()
    )


def test_write_metrics_carries_forward_a_last_success_an_older_version_wrote(tmp_path):
    """The hand-formatted file of earlier versions: labels in declaration order, values in
    `{:g}`."""
    path = tmp_path / "snapshot_policy.prom"
    path.write_text(
        "# HELP snapshot_policy_target_last_success_timestamp_seconds "
        "When each target last succeeded.\n"
        "# TYPE snapshot_policy_target_last_success_timestamp_seconds gauge\n"
        "snapshot_policy_target_last_success_timestamp_seconds"
        '{target="db",provider="digitalocean",account="main",server_id="2"} 1.7e+09\n'
        "snapshot_policy_target_last_success_timestamp_seconds"
        '{target="gone",provider="hetzner",account="main",server_id="9"} 1.6e+09\n'
    )
    write_metrics(path, run(web_ok=True, db_ok=False), api_requests=0)
    values = samples(path)
    assert values["snapshot_policy_target_last_success_timestamp_seconds", "db"] == 1.7e9
    assert values["snapshot_policy_target_last_success_timestamp_seconds", "gone"] == 1.6e9
    assert values["snapshot_policy_target_last_success_timestamp_seconds", "web"] == 1.8e9


def test_write_metrics_starts_afresh_over_a_file_it_cannot_parse(tmp_path):
    path = tmp_path / "snapshot_policy.prom"
    path.write_text('snapshot_policy_target_last_success_timestamp_seconds{target="db 1.7e+09\n')
    write_metrics(path, run(web_ok=True, db_ok=False), api_requests=0)
    assert [
        k for k in samples(path) if k[0] == "snapshot_policy_target_last_success_timestamp_seconds"
    ] == [("snapshot_policy_target_last_success_timestamp_seconds", "web")]


def test_write_metrics_builds_a_fresh_registry_for_every_write(tmp_path):
    """Nothing global: two files written one after the other hold only their own run."""
    first, second = tmp_path / "a.prom", tmp_path / "b.prom"
    write_metrics(first, run(db_ok=True), api_requests=3)
    write_metrics(second, replace(run(), outcomes=run().outcomes[:1]), api_requests=4)
    assert samples(first)["snapshot_policy_last_run_api_requests", ""] == 3
    assert samples(second)["snapshot_policy_last_run_api_requests", ""] == 4
    assert {target for _, target in samples(second)} == {"", "web"}


def test_write_metrics_never_follows_a_link_at_prometheus_clients_temporary_name(tmp_path):
    """`prometheus_client.write_to_textfile` writes `PATH.<pid>.<thread>` through a link there,
    with the umask's mode: the file is written by `statefiles` instead, 0644 whatever the umask
    (node_exporter, another user, reads it; it holds no secret)."""
    victim = tmp_path / "victim.conf"
    victim.write_text("precious\n")
    path = tmp_path / "snapshot_policy.prom"
    (tmp_path / f"{path.name}.{os.getpid()}.{threading.get_ident()}").symlink_to(victim)
    previous = os.umask(0o022)
    try:
        write_metrics(path, run(), api_requests=0)
    finally:
        os.umask(previous)
    assert victim.read_text() == "precious\n"
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o644


def test_write_metrics_masks_the_secrets_in_force(tmp_path):
    secret = "dop_v1_" + "METRICSleak" + "7f" * 25
    path = tmp_path / "snapshot_policy.prom"
    report = run()
    odd = replace(
        report.outcomes[1],
        plan=replace(report.outcomes[1].plan, target=replace(DB, name=f"db {secret}")),
    )
    with redacted_output():
        hide([secret])
        write_metrics(path, replace(report, outcomes=(report.outcomes[0], odd)), api_requests=0)
    assert secret not in path.read_text()
    assert samples(path)["snapshot_policy_target_snapshots_created", "db ***"] == 0


def test_write_report_lists_every_target_decision_outcome_and_notification(tmp_path):
    path = tmp_path / "run" / "report.json"
    report = run(failures=(TargetFailure("broken", "configs/broken.json: not JSON", "legacy"),))
    write_report(path, report)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert (
        document["started"] == "2027-01-15T07:58:30Z"
        and document["finished"] == "2027-01-15T08:00:00Z"
    )
    assert (document["exit_code"], document["summary"]) == (2, report_summary(report))
    web, db = document["targets"]
    assert web == {
        "target": "web",
        "provider": "hetzner",
        "account": "main",
        "server_id": "1",
        "server_name": "web",
        "ok": True,
        "error": None,
        "created": {"id": "5001", "name": "web-20261126030000"},
        "deleted": [
            {"id": "11", "name": "web-20261125030000"},
            {"id": "10", "name": "web-20261124030000"},
        ],
        "managed_snapshots": 1,
        "decisions": [
            {
                "action": "create",
                "id": None,
                "name": "web-20261126030000",
                "reason": "a snapshot is made on every run",
                "rules": ["last"],
            },
            {
                "action": "delete",
                "id": "11",
                "name": "web-20261125030000",
                "reason": "no retention rule keeps it",
                "rules": [],
            },
            {
                "action": "delete",
                "id": "10",
                "name": "web-20261124030000",
                "reason": "no retention rule keeps it",
                "rules": [],
            },
            {
                "action": "skip",
                "id": "3",
                "name": "web-20260101000000",
                "reason": "unmanaged: no managed-by label",
                "rules": [],
            },
        ],
    }
    assert (db["target"], db["ok"], db["error"], db["created"], db["deleted"]) == (
        "db",
        False,
        "digitalocean create_snapshot failed (HTTP 500): boom",
        None,
        [],
    )
    assert [d["action"] for d in db["decisions"]] == ["create"]
    assert document["failed"] == [
        {"target": "broken", "account": "legacy", "reason": "configs/broken.json: not JSON"}
    ]
    assert document["notifications"] == [
        {
            "channel": "ops",
            "kind": "telegram",
            "target": "web",
            "ok": True,
            "attempts": 1,
            "error": None,
        },
        {
            "channel": "hook",
            "kind": "webhook",
            "target": "db",
            "ok": False,
            "attempts": 4,
            "error": "HTTPStatusError",
        },
    ]


def test_ping_posts_start_success_and_fail_with_the_body(sandbox):
    url = sandbox.webhook_url("hc")
    assert [ping(url, outcome, f"{outcome} body") for outcome in ("start", "success", "fail")] == [
        PINGED
    ] * 3
    assert [(d["method"], d["name"], d["body"]) for d in sandbox.webhook_deliveries()] == [
        ("POST", "hc/start", "start body"),
        ("POST", "hc", "success body"),
        ("POST", "hc/fail", "fail body"),
    ]


def test_ping_without_a_url_sends_nothing(sandbox):
    assert ping(None, "start") is None and ping("", "fail", "summary") is None
    assert sandbox.webhook_deliveries() == []


def test_ping_reports_a_server_error_as_a_failed_delivery(sandbox):
    sandbox.inject("error", service="webhook", status=500, count=None)
    assert ping(sandbox.webhook_url("hc"), "fail", "summary") == Delivery(
        "healthcheck", "healthcheck", None, False, 1, "ping fail: HTTPStatusError"
    )


def test_ping_reports_an_unreachable_endpoint_as_a_failed_delivery():
    assert ping("http://127.0.0.1:9", "start") == Delivery(
        "healthcheck", "healthcheck", None, False, 1, "ping start: ConnectError"
    )


def test_ping_refuses_plain_http_off_this_machine_without_sending():
    """A healthcheck URL's path is its secret (the check's id): it must not cross the network in
    clear."""
    delivery = ping("http://hc.example.invalid/abc-uuid", "start")
    assert (delivery.ok, delivery.attempts) == (False, 0)
    assert "is not https" in delivery.error and "abc-uuid" not in delivery.error
