"""consistency: shutdown through the CLI against the sandbox, on both clouds (docs/promises.md
§5.17): the server is shut down, snapshotted and powered on again — also when the shutdown wait
runs out, the snapshot fails or the run is stopped — and a server that was off is left off."""

from __future__ import annotations

import json

import pytest

from snapshot_policy.cli import main
from snapshot_policy.core import consistency
from snapshot_policy.output.logs import unstamped
from tests.e2e.cloud import unwrapped
from tests.e2e.policies import DEBUG_LOG, NIGHTLY, policy_yaml

WEB = {"name": "web", "account": "do", "ids": [3164444], "retention": {"keep_last": 3}}
DB = {"name": "db", "account": "hz", "ids": [4711], "retention": {"keep_last": 2}}
SERVERS = {"do": 3164444, "hz": 4711}
RUNNING = {"do": "running", "hz": "running"}
BOTH = pytest.mark.parametrize("account", ["do", "hz"])
PROVIDERS = {"do": "digitalocean", "hz": "hetzner"}


def target(account: str, consistency: object = "shutdown", **extra: object) -> dict:
    return {**(WEB if account == "do" else DB), "consistency": consistency, **extra}


def write_policy(tmp_path, *targets: dict) -> str:
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(policy_yaml(*targets, settings=DEBUG_LOG))
    return str(path)


def status(sandbox, server_id: int) -> str:
    return sandbox.state.servers[server_id].status


POWER = {
    "shutdown": "shutdown",
    "power_off": "power_off",
    "power_on": "power_on",
    "shutdown_server": "shutdown",
    "stop_server": "power_off",
    "start_server": "power_on",
}


def power_requests(sandbox, server_id: int) -> list[str]:
    """The power actions the server got, in order (DigitalOcean's words)."""
    return [
        POWER[a.command]
        for a in sorted(sandbox.state.actions.values(), key=lambda a: a.id)
        if a.server_id == server_id and a.command in POWER
    ]


def snapshots_made(sandbox, server_id: int, clock) -> list[dict]:
    stamp = f"{clock.now:%Y%m%d%H%M%S}"
    return [
        s
        for s in sandbox.dump_state()["snapshots"]
        if s.get("server_id") == server_id and stamp in s["name"]
    ]


def journal(tmp_path) -> list[dict]:
    found = list((tmp_path / "run").glob("*journal.json"))
    return json.loads(found[0].read_text()) if found else []


def audit(tmp_path) -> list[dict]:
    path = tmp_path / "run" / "snapshot-policy-audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@BOTH
def test_shut_down_snapshot_power_on_with_downtime(
    tmp_path, sandbox, tokens, clock, capsys, account
):
    sandbox.state.shutdown_seconds = 0.3
    server_id = SERVERS[account]
    report = tmp_path / "report.json"
    policy = write_policy(tmp_path, target(account))
    metrics = tmp_path / "metrics.prom"
    argv = ["apply", "--policy", policy, "--report", str(report), "--metrics-file", str(metrics)]
    assert main(argv, clock=clock) == 0
    out, err = capsys.readouterr()
    assert power_requests(sandbox, server_id) == ["shutdown", "power_on"]
    assert status(sandbox, server_id) == "running"
    assert len(snapshots_made(sandbox, server_id, clock)) == 1
    data = json.loads(report.read_text())
    (result,) = [t for t in data["targets"] if t["target"] == target(account)["name"]]
    assert result["downtime_seconds"] >= 0.3
    assert "server off for" in out
    assert "snapshot_policy_target_downtime_seconds{" in metrics.read_text()


@BOTH
def test_a_server_already_off_is_snapshotted_and_left_off(
    tmp_path, sandbox, tokens, clock, account
):
    server_id = SERVERS[account]
    sandbox.state.servers[server_id].status = "off"
    policy = write_policy(tmp_path, target(account))
    assert main(["apply", "--policy", policy], clock=clock) == 0
    assert power_requests(sandbox, server_id) == []
    assert status(sandbox, server_id) == "off"
    assert len(snapshots_made(sandbox, server_id, clock)) == 1
    assert journal(tmp_path) == []


@BOTH
def test_the_plan_says_the_server_will_be_off_or_is_left_off(
    tmp_path, sandbox, tokens, clock, capsys, account
):
    server_id = SERVERS[account]
    policy = write_policy(tmp_path, target(account, {"mode": "shutdown", "force": True}))
    assert main(["plan", "--policy", policy], clock=clock) == 0
    out, _ = capsys.readouterr()
    assert (
        "consistency: shutdown — the server will be off for about the snapshot's duration "
        "(then powered off: force)"
    ) in unwrapped(out)
    sandbox.state.servers[server_id].status = "off"
    assert main(["plan", "--policy", policy, "--output", "json"], clock=clock) == 0
    out, _ = capsys.readouterr()
    (document,) = json.loads(out)["targets"]
    assert document["consistency"] == {
        "mode": "shutdown",
        "force": True,
        "timeout": 300.0,
        "server_status": "off",
        "left_off": True,
        "note": "consistency: shutdown — the server is already off; it is left off",
    }
    assert power_requests(sandbox, server_id) == []  # a plan touches nothing


@BOTH
def test_a_shutdown_that_does_not_finish_fails_the_target_without_a_snapshot_and_powers_on(
    tmp_path, sandbox, tokens, clock, capsys, account
):
    server_id = SERVERS[account]
    sandbox.faults.add("ignore_shutdown", service=PROVIDERS[account])
    policy = write_policy(tmp_path, target(account, {"mode": "shutdown", "timeout": 0.5}))
    assert main(["apply", "--policy", policy], clock=clock) == 1
    out, _ = capsys.readouterr()
    assert "did not shut down within 0.5s; no snapshot" in unwrapped(unstamped(out))
    assert power_requests(sandbox, server_id) == ["shutdown", "power_on"]  # never power_off
    assert status(sandbox, server_id) == "running"
    assert snapshots_made(sandbox, server_id, clock) == []
    assert journal(tmp_path) == []


@BOTH
def test_with_force_a_server_that_ignores_shutdown_is_powered_off_snapshotted_and_powered_on(
    tmp_path, sandbox, tokens, clock, account
):
    server_id = SERVERS[account]
    sandbox.faults.add("ignore_shutdown", service=PROVIDERS[account])
    rule = {"mode": "shutdown", "force": True, "timeout": 0.5}
    policy = write_policy(tmp_path, target(account, rule))
    assert main(["apply", "--policy", policy], clock=clock) == 0
    assert power_requests(sandbox, server_id) == ["shutdown", "power_off", "power_on"]
    assert status(sandbox, server_id) == "running"
    assert len(snapshots_made(sandbox, server_id, clock)) == 1
    events = [line["event"] for line in audit(tmp_path) if "snapshot_id" not in line]
    assert events == ["server shut down", "server powered off", "server powered on"]


@BOTH
def test_a_failed_snapshot_still_powers_the_server_on(tmp_path, sandbox, tokens, clock, account):
    server_id = SERVERS[account]
    sandbox.faults.add("fail_action", service=PROVIDERS[account])
    policy = write_policy(tmp_path, target(account))
    assert main(["apply", "--policy", policy], clock=clock) == 1
    assert power_requests(sandbox, server_id) == ["shutdown", "power_on"]
    assert status(sandbox, server_id) == "running"
    assert journal(tmp_path) == []


@BOTH
def test_a_failed_power_on_is_sent_again(tmp_path, sandbox, tokens, clock, monkeypatch, account):
    monkeypatch.setattr(consistency, "POWER_ON_AGAIN", 0.3)
    server_id = SERVERS[account]
    sandbox.faults.add("fail_power_on", service=PROVIDERS[account])
    policy = write_policy(tmp_path, target(account))
    assert main(["apply", "--policy", policy], clock=clock) == 0
    assert power_requests(sandbox, server_id) == ["shutdown", "power_on", "power_on"]
    assert status(sandbox, server_id) == "running"
    assert journal(tmp_path) == []


@BOTH
def test_the_next_run_powers_on_first_a_server_a_killed_run_left_off(
    tmp_path, sandbox, tokens, clock, capsys, account
):
    """What a run killed while the server was off leaves: the journal's entry, the server off."""
    server_id = SERVERS[account]
    policy = write_policy(tmp_path, target(account))
    assert main(["apply", "--policy", policy], clock=clock) == 0  # makes the journal file
    (run_dir := tmp_path / "run").mkdir(exist_ok=True)
    (path,) = run_dir.glob("*journal.json")
    name = target(account)["name"]
    left = {"account": account, "server_id": str(server_id), "name": name}
    entry = {**left, "started": clock.now.isoformat(), "powered_off": name}
    path.write_text(json.dumps([entry]))
    sandbox.state.servers[server_id].status = "off"
    sandbox.clear_requests()
    capsys.readouterr()
    assert main(["apply", "--policy", policy], clock=clock) == 0  # nothing due: powers on only
    log = (tmp_path / "run" / "snapshot-policy.log").read_text()
    assert "powering on first the server an interrupted run shut down" in log
    assert status(sandbox, server_id) == "running"
    assert journal(tmp_path) == []
    assert audit(tmp_path)[-1]["event"] == "server powered on"


def test_notifications_tell_how_long_the_server_was_off(tmp_path, sandbox, tokens, clock):
    sandbox.state.shutdown_seconds = 0.2
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(
        policy_yaml(
            target("hz"),
            notifications={
                "ops": {
                    "type": "telegram",
                    "bot_token": "env:TEST_BOT_TOKEN",
                    "chat_id": "-100123",
                    "retries": 0,
                },
                "hook": {"type": "webhook", "url": sandbox.webhook_url("n8n"), "retries": 0},
            },
            defaults={**NIGHTLY, "notify": ["ops", "hook"]},
            settings=DEBUG_LOG,
        )
    )
    assert main(["apply", "--policy", str(path)], clock=clock) == 0
    (message,) = sandbox.telegram_messages()
    assert "Server off for " in message["text"]
    (delivery,) = sandbox.webhook_deliveries("n8n")
    assert delivery["json"]["downtime_seconds"] >= 0.2


def test_a_server_left_off_that_no_target_covers_fails_the_run_until_one_does(
    tmp_path, sandbox, tokens, clock, capsys
):
    policy = write_policy(tmp_path, target("do"))
    assert main(["apply", "--policy", policy], clock=clock) == 0  # makes the journal file
    (path,) = (tmp_path / "run").glob("*journal.json")
    gone = {"account": "hz", "server_id": "4711", "name": "db", "started": clock.now.isoformat()}
    path.write_text(json.dumps([{**gone, "powered_off": "db"}]))
    capsys.readouterr()
    assert main(["apply", "--policy", policy], clock=clock) == 2
    out, _ = capsys.readouterr()
    assert "server 4711 was shut down by an interrupted run" in unwrapped(unstamped(out))
    assert journal(tmp_path) != []  # kept for the run that covers it
    assert main(["status", "--policy", policy], clock=clock) == 2  # status says so too
    out, _ = capsys.readouterr()
    assert "db: FAILED: server 4711 was shut down by an interrupted run" in unwrapped(out)
    both = write_policy(tmp_path, target("do"), target("hz"))
    sandbox.state.servers[4711].status = "off"
    assert main(["apply", "--policy", both], clock=clock) == 0
    assert status(sandbox, 4711) == "running" and journal(tmp_path) == []
