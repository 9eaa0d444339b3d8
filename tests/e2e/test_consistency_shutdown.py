"""consistency: shutdown through the CLI against the sandbox, on both clouds (docs/promises.md
§5.17): the server is shut down, snapshotted and powered on again — also when the shutdown wait
runs out, the snapshot fails or the run is stopped — and a server that was off is left off."""

from __future__ import annotations

import json

import pytest

from snapshot_policy.cli import main
from tests.e2e.policies import DEBUG_LOG, policy_yaml

WEB = {"name": "web", "account": "do", "ids": [3164444], "retention": {"keep_last": 3}}
DB = {"name": "db", "account": "hz", "ids": [4711], "retention": {"keep_last": 2}}
SERVERS = {"do": 3164444, "hz": 4711}
RUNNING = {"do": "running", "hz": "running"}
BOTH = pytest.mark.parametrize("account", ["do", "hz"])


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
    path = tmp_path / "run" / "journal.json"
    return json.loads(path.read_text()) if path.exists() else []


@BOTH
def test_shut_down_snapshot_power_on_with_downtime(
    tmp_path, sandbox, tokens, clock, capsys, account
):
    sandbox.state.shutdown_seconds = 0.3
    server_id = SERVERS[account]
    report = tmp_path / "report.json"
    policy = write_policy(tmp_path, target(account))
    assert main(["apply", "--policy", policy, "--report", str(report)], clock=clock) == 0
    out, err = capsys.readouterr()
    assert power_requests(sandbox, server_id) == ["shutdown", "power_on"]
    assert status(sandbox, server_id) == "running"
    assert len(snapshots_made(sandbox, server_id, clock)) == 1
    data = json.loads(report.read_text())
    (result,) = [t for t in data["targets"] if t["target"] == target(account)["name"]]
    assert result["downtime_seconds"] >= 0.3
    assert "server off for" in out
