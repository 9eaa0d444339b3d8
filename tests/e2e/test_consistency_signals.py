"""consistency: shutdown when the run is stopped (docs/promises.md §5.17, §5.13): SIGTERM while
the server is off powers it on before the run exits 143; a run killed outright (SIGKILL) while
it was off leaves the journal's `powered_off` entry, and the next run powers it on first and
audits it. A real `python -m snapshot_policy apply` against the sandbox, which reads the wall
clock (as in test_signals.py)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from snapshot_policy.cli import main
from tests.e2e.policies import ACCOUNTS, NIGHTLY, policy_yaml
from tests.e2e.test_signals import lock_is_free, start_apply, wait_for

SERVERS = {"do": 3164444, "hz": 4711}
PROVIDER = {"do": "digitalocean", "hz": "hetzner"}
BOTH = pytest.mark.parametrize("account", ["do", "hz"])
POWER = {
    "shutdown": "shutdown",
    "power_off": "power_off",
    "power_on": "power_on",
    "shutdown_server": "shutdown",
    "stop_server": "power_off",
    "start_server": "power_on",
}


@pytest.fixture
def sandbox(wall_clock_sandbox):
    return wall_clock_sandbox


def write_policy(folder: Path, account: str, rule: object = "shutdown") -> Path:
    server = {"ids": [SERVERS[account]], "consistency": rule}
    policy = folder / "policy.yaml"
    policy.write_text(
        policy_yaml(
            {"name": "t", "account": account, **server},
            accounts={account: ACCOUNTS[account]},
            defaults={**NIGHTLY, "retention": {"keep_last": 2}},
            settings={"lock_file": "run/lock"},
        )
    )
    return policy


def journal(folder: Path) -> list[dict]:
    path = folder / "run" / "lock.journal.json"
    return json.loads(path.read_text()) if path.exists() else []


def audit(folder: Path) -> list[dict]:
    path = folder / "run" / "snapshot-policy-audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def power_actions(sandbox, server_id: int) -> list[str]:
    return [
        POWER[a.command]
        for a in sorted(sandbox.state.actions.values(), key=lambda a: a.id)
        if a.server_id == server_id and a.command in POWER
    ]


def status(sandbox, server_id: int) -> str:
    """The server's status now (a guest shutting down gets there as the cloud is read)."""
    with sandbox.state.lock:
        sandbox.state.advance()
        return sandbox.state.servers[server_id].status


def snapshot_started(sandbox, server_id: int) -> bool:
    return any(
        a.server_id == server_id and a.command in ("snapshot", "create_image")
        for a in list(sandbox.state.actions.values())
    )


@BOTH
def test_sigterm_while_the_snapshot_of_the_off_server_is_made_powers_it_on(
    sandbox, tmp_path, account
):
    server_id = SERVERS[account]
    sandbox.state.shutdown_seconds = 0.2
    sandbox.state.action_seconds = 2.0  # the snapshot locks the server: power on waits for it
    run = start_apply(write_policy(tmp_path, account))
    try:
        wait_for(lambda: snapshot_started(sandbox, server_id))
        assert sandbox.state.servers[server_id].status == "off"
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 143, err
    assert sandbox.state.servers[server_id].status == "running"
    assert power_actions(sandbox, server_id) == ["shutdown", "power_on"]
    assert not [e for e in journal(tmp_path) if "powered_off" in e]  # seen running: crossed off
    assert lock_is_free(tmp_path)


@BOTH
def test_sigterm_while_the_server_shuts_down_powers_it_on_at_once(sandbox, tmp_path, account):
    server_id = SERVERS[account]
    sandbox.state.shutdown_seconds = 30  # the guest takes its time
    # never seen off, it counts as running only a while after the power on: min(timeout, 30s)
    run = start_apply(write_policy(tmp_path, account, {"mode": "shutdown", "timeout": 2}))
    try:
        wait_for(lambda: sandbox.state.servers[server_id].status == "stopping")
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 143, err
    assert sandbox.state.servers[server_id].status == "running"
    assert power_actions(sandbox, server_id) == ["shutdown", "power_on"]
    assert not snapshot_started(sandbox, server_id)
    assert journal(tmp_path) == []


@BOTH
def test_a_run_killed_while_the_server_is_off_leaves_the_next_run_to_power_it_on_first(
    sandbox, tmp_path, account
):
    server_id = SERVERS[account]
    sandbox.state.shutdown_seconds = 3.0  # killed well before the guest is off
    policy = write_policy(tmp_path, account)
    run = start_apply(policy)
    try:
        wait_for(lambda: sandbox.state.servers[server_id].status == "stopping")
        run.send_signal(signal.SIGKILL)
        run.wait()
    finally:
        run.kill()
    (entry,) = [e for e in journal(tmp_path) if "powered_off" in e]  # written before it was sent
    assert not snapshot_started(sandbox, server_id)
    assert entry["powered_off"] == "t" and entry["server_id"] == str(server_id)
    wait_for(lambda: status(sandbox, server_id) == "off")
    sandbox.state.shutdown_seconds = 0.1
    assert main(["apply", "--policy", str(policy)]) == 0
    assert sandbox.state.servers[server_id].status == "running"
    # the killed run's shutdown; the next run's power on first, then its own snapshot's
    assert power_actions(sandbox, server_id) == ["shutdown", "power_on", "shutdown", "power_on"]
    assert journal(tmp_path) == []
    power = [
        (line["event"], line["reason"]) for line in audit(tmp_path) if "snapshot_id" not in line
    ]
    # the killed run may have died before it heard the shutdown's reply, and audited it
    assert power[-3:] == [
        ("server powered on", "left off by an interrupted run"),
        ("server shut down", "consistency: shutdown"),
        ("server powered on", power[-1][1]),
    ]
    assert power[-1][1].startswith("consistency: shutdown (")  # with its downtime
