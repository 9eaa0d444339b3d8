"""After apply: the healthcheck pings, the Prometheus textfile, the JSON report, the audit log,
and Telegram/webhook notifications routed per target — none of which can change the result."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from snapshot_policy.cli import main
from tests.e2e.cloud import legacy_name
from tests.e2e.policies import DB, NIGHTLY, WEB, policy_yaml
from tests.integration.test_notify_slow_receivers import trickle  # noqa: F401 - a fixture


def monitored(hook: dict, ping: str, db: dict = DB) -> str:
    """The usual policy (with `db` for db-1's target), reporting to Telegram and to the
    webhook `hook`, and pinging `ping`."""
    return policy_yaml(
        WEB,
        db,
        notifications={
            "ops": {
                "type": "telegram",
                "bot_token": "env:TEST_BOT_TOKEN",
                "chat_id": "-100123",
                "retries": 0,
            },
            "hook": {"type": "webhook", **hook, "retries": 0},
        },
        defaults={**NIGHTLY, "notify": ["ops", "hook"]},
        settings={"lock_file": "run/lock", "healthcheck_url": ping},
    )


@pytest.fixture
def policy(tmp_path, sandbox, tokens):
    path = tmp_path / "policy.yaml"
    path.write_text(monitored({"url": sandbox.webhook_url("n8n")}, sandbox.webhook_url("hc")))
    return path


def metrics(path):
    return {
        s.name + json.dumps(s.labels, sort_keys=True): s.value
        for f in text_string_to_metric_families(path.read_text())
        for s in f.samples
    }


def test_apply_pings_start_and_success_with_the_summary(policy, sandbox, capsys, clock):
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    pings = [
        (d["name"], d["body"]) for d in sandbox.webhook_deliveries() if d["name"].startswith("hc")
    ]
    assert [name for name, _ in pings] == ["hc/start", "hc"]
    assert pings[1][1].startswith(
        "snapshot-policy apply: 2 target(s), 2 server(s), 2 created, 7 deleted, 0 failed"
    )


def test_a_failed_run_pings_fail(policy, sandbox, capsys, clock):
    sandbox.inject("fail_action", service="hetzner")
    assert main(["apply", "--policy", str(policy)], clock=clock) == 2
    assert [d["name"] for d in sandbox.webhook_deliveries() if d["name"].startswith("hc")] == [
        "hc/start",
        "hc/fail",
    ]


def test_each_target_that_acted_is_reported_to_its_channels(policy, sandbox, capsys, clock):
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    messages = sandbox.telegram_messages()
    assert [str(m["chat_id"]) for m in messages] == ["-100123", "-100123"]
    assert any("web-1" in m["text"] for m in messages) and any(
        "db-1" in m["text"] for m in messages
    )
    payloads = [d["json"] for d in sandbox.webhook_deliveries("n8n")]
    assert sorted((p["server"], p["status"], p["total_snapshots"]) for p in payloads) == [
        ("db-1", "SUCCESS", 2),
        ("web-1", "SUCCESS", 3),
    ]
    sandbox.webhook_deliveries()  # a run with nothing due stays quiet:
    before = len(sandbox.telegram_messages())
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    assert len(sandbox.telegram_messages()) == before


def test_a_failed_notification_changes_nothing_but_is_counted(
    policy, sandbox, tmp_path, monkeypatch, capsys, clock
):
    monkeypatch.setenv("TEST_BOT_TOKEN", "111111:not-a-bot-the-sandbox-knows-aaaaaaaaaaa")
    report = tmp_path / "report.json"
    assert main(["apply", "--policy", str(policy), "--report", str(report)], clock=clock) == 0
    assert "2 notification(s) failed" in capsys.readouterr().err
    document = json.loads(report.read_text())
    failed = [n for n in document["notifications"] if not n["ok"]]
    assert [(n["kind"], n["channel"]) for n in failed] == [("telegram", "ops"), ("telegram", "ops")]
    assert "not-a-bot" not in report.read_text()


def test_metrics_file_parses_and_keeps_each_targets_last_success(
    policy, sandbox, tmp_path, capsys, clock
):
    path = tmp_path / "metrics" / "snapshot_policy.prom"
    assert main(["apply", "--policy", str(policy), "--metrics-file", str(path)], clock=clock) == 0
    first = metrics(path)
    web = json.dumps(
        {"account": "do", "provider": "digitalocean", "server_id": "3164444", "target": "web"},
        sort_keys=True,
    )
    db = json.dumps(
        {"account": "hz", "provider": "hetzner", "server_id": "4711", "target": "db"},
        sort_keys=True,
    )
    succeeded = clock.now.timestamp()  # the run's clock stands still: it started and finished then
    assert first["snapshot_policy_last_run_timestamp_seconds{}"] == succeeded
    assert first["snapshot_policy_last_run_duration_seconds{}"] == 0
    assert (
        first["snapshot_policy_last_run_success{}"],
        first["snapshot_policy_last_run_exit_code{}"],
    ) == (1, 0)
    assert first["snapshot_policy_last_run_notifications_failed{}"] == 0
    assert [
        first[f"snapshot_policy_target_{name}" + web]
        for name in ("snapshots_created", "snapshots_deleted", "managed_snapshots")
    ] == [1, 3, 3]
    assert [
        first[f"snapshot_policy_target_{name}" + db]
        for name in ("snapshots_created", "snapshots_deleted", "managed_snapshots")
    ] == [1, 4, 2]
    assert first["snapshot_policy_last_run_api_requests{}"] > 0
    assert first["snapshot_policy_target_last_success_timestamp_seconds" + web] == succeeded
    clock.advance(seconds=3601, microseconds=500000)
    sandbox.inject("error", service="digitalocean", method="GET", status=403, count=None)
    assert main(["apply", "--policy", str(policy), "--metrics-file", str(path)], clock=clock) == 2
    second = metrics(path)
    assert (
        second["snapshot_policy_last_run_timestamp_seconds{}"]
        == clock.now.timestamp()
        == succeeded + 3601.5
    )
    assert (
        second["snapshot_policy_last_run_success{}"],
        second["snapshot_policy_last_run_exit_code{}"],
    ) == (0, 2)
    assert second["snapshot_policy_target_last_success_timestamp_seconds" + web] == succeeded


def test_report_lists_every_target_decision_and_outcome(policy, sandbox, tmp_path, capsys, clock):
    path = tmp_path / "report.json"
    assert main(["apply", "--policy", str(policy), "--report", str(path)], clock=clock) == 0
    document = json.loads(path.read_text())
    web = next(t for t in document["targets"] if t["target"] == "web")
    assert web["ok"] and web["created"]["name"].startswith("web-1-") and len(web["deleted"]) == 3
    assert {d["action"] for d in web["decisions"]} == {"create", "keep", "delete", "skip"}
    assert {n["kind"] for n in document["notifications"]} == {"telegram", "webhook", "healthcheck"}


def test_audit_log_says_who_deleted_what_and_why(policy, sandbox, tmp_path, capsys, clock):
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    lines = [
        json.loads(line)
        for line in (tmp_path / "run" / "snapshot-policy-audit.jsonl").read_text().splitlines()
    ]
    assert sorted({(line["event"], line["target"]) for line in lines}) == [
        ("created", "db"),
        ("created", "web"),
        ("deleted", "db"),
        ("deleted", "web"),
    ]
    deleted = next(
        line
        for line in lines
        if line["event"] == "deleted"
        and line["snapshot_name"] == legacy_name("web-1", clock.now, 5)
    )
    assert deleted["reason"] == "no retention rule keeps it" and deleted[
        "plan_fingerprint"
    ].startswith("sha256:")
    assert deleted["provider"] == "digitalocean" and deleted["snapshot_id"]
    assert {line["time"] for line in lines} == {clock.now.isoformat()}  # dated by the run's clock


def test_an_unwritable_metrics_file_is_refused_before_anything_changes(
    policy, sandbox, tmp_path, capsys, clock
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    before = sandbox.dump_state()["snapshots"]
    assert (
        main(
            ["apply", "--policy", str(policy), "--metrics-file", str(blocker / "m.prom")],
            clock=clock,
        )
        == 1
    )
    assert f"cannot use --metrics-file {blocker / 'm.prom'}" in capsys.readouterr().err
    assert sandbox.dump_state()["snapshots"] == before


def test_state_files_that_cannot_be_written_after_the_changes_fail_the_run(
    policy, sandbox, tmp_path, capsys, clock
):
    """The snapshots are made, but a run state, report or metrics file left unwritten fails
    the run (exit 2) and says which: never just a log line (issue 19)."""
    state, metrics_file, report = (
        tmp_path / "run" / "lock.state.json",
        tmp_path / "m.prom",
        tmp_path / "report.json",
    )
    spoiler = f"mkdir -p {state} {metrics_file} {report}"  # each path turns into a folder mid-run
    spoiling = {**DB, "hooks": {"before": spoiler, "shell": True}}
    ping = sandbox.webhook_url("hc")
    policy.write_text(monitored({"url": sandbox.webhook_url("n8n")}, ping, spoiling))
    code = main(
        [
            "apply",
            "--policy",
            str(policy),
            "--metrics-file",
            str(metrics_file),
            "--report",
            str(report),
        ],
        clock=clock,
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "2 created" in err
    for what in ("run state", "run report", "metrics file"):
        assert f"could not write the {what}: cannot use" in err, what


def test_the_summarys_time_is_the_whole_runs_a_slow_receiver_included(
    policy, sandbox, capsys, clock, trickle
):
    """A webhook that answers a byte at a time is cut off at its timeout and reported failed;
    the summary's time counts that wait, not only the snapshots' (issue 19)."""
    slow = {"url": f"{trickle}/slow", "timeout": 1}
    policy.write_text(monitored(slow, sandbox.webhook_url("hc")))
    started = time.monotonic()

    # the run's clock moves as the wall clock does, from the test's far-off start
    def moving_clock():
        return clock.now + timedelta(seconds=time.monotonic() - started)

    assert main(["apply", "--policy", str(policy)], clock=moving_clock) == 0
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    seconds = float(re.search(r" in ([0-9.]+)s", summary).group(1))
    assert seconds >= 1.0 and "notification(s) failed" in summary  # at least the receiver's second
