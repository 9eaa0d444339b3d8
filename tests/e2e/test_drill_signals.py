"""A signal during a restore drill deletes its server before the run exits (issue 22, item 2;
docs/promises.md §5, invariant 14): a real `python -m snapshot_policy drill` against the
sandbox gets SIGTERM or SIGINT while its server boots, or while its probe runs. The probe
is killed, the server deleted, the journal left empty, and the exit code names the signal.

The signalled process reads the wall clock, so the sandbox does too (as in test_signals.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.policies import ACCOUNTS, NIGHTLY, policy_yaml
from tests.e2e.test_drill_runs import drill_servers

EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


@pytest.fixture
def sandbox(wall_clock_sandbox):
    wall_clock_sandbox.state.boot_seconds = 0.2
    return wall_clock_sandbox


def write_policy(folder: Path, probe: list[str]) -> Path:
    drill = {"every": "7d", "public_network": True, "boot_timeout": 120, "probe": probe}
    policy = folder / "policy.yaml"
    policy.write_text(
        policy_yaml(
            {"name": "db", "account": "hz", "ids": [4711], "drill": drill},
            accounts={"hz": ACCOUNTS["hz"]},
            defaults={**NIGHTLY, "retention": {"keep_last": 2}},
            settings={"lock_file": "run/lock"},
        )
    )
    return policy


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.02)


def journal(folder: Path) -> list[dict]:
    path = folder / "run" / "lock.journal.json"
    return json.loads(path.read_text()) if path.exists() else []


def start_drill(policy: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "snapshot_policy", "drill", "--policy", str(policy)],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_the_drill_server_boots_deletes_it(sandbox, tokens, tmp_path, signum):
    sandbox.inject("slow_boot", service="hetzner", seconds=120)
    policy = write_policy(tmp_path, ["true"])
    run = start_drill(policy)
    try:
        wait_for(lambda: any(e.get("drill_server") for e in journal(tmp_path)))
        (booting,) = drill_servers(sandbox)
        run.send_signal(signum)
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == EXIT[signum], err
    assert "its servers were deleted" in out
    assert drill_servers(sandbox) == [] and journal(tmp_path) == []
    deletes = [r for r in sandbox.requests("hetzner") if r["method"] == "DELETE"]
    assert [r["path"] for r in deletes] == [f"/v1/servers/{booting.id}"]


def test_a_signal_while_the_probe_runs_kills_it_and_deletes_the_server(sandbox, tokens, tmp_path):
    pid = tmp_path / "probe.pid"
    policy = write_policy(tmp_path, ["sh", "-c", f"echo $$ > {pid}; exec sleep 60"])
    run = start_drill(policy)
    try:
        wait_for(lambda: pid.exists() and pid.read_text().strip())
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 143, err
    assert drill_servers(sandbox) == [] and journal(tmp_path) == []
    assert not Path(f"/proc/{int(pid.read_text())}").exists() or (
        Path(f"/proc/{int(pid.read_text())}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    )
    state = json.loads((tmp_path / "run" / "lock.state.json").read_text())
    assert state.get("last_drills", []) == []  # stopped before a verdict: still due


def test_a_run_killed_while_its_drill_server_boots_leaves_it_to_the_next_run(
    sandbox, tokens, tmp_path
):
    from snapshot_policy.cli import main

    sandbox.inject("slow_boot", service="hetzner", seconds=120)
    policy = write_policy(tmp_path, ["true"])
    run = start_drill(policy)
    try:
        wait_for(lambda: any(e.get("drill_server") for e in journal(tmp_path)))
        run.send_signal(signal.SIGKILL)
        run.wait()
    finally:
        run.kill()
    (left,) = drill_servers(sandbox)
    assert [e["name"] for e in journal(tmp_path)] == [left.name]
    assert main(["apply", "--policy", str(policy)]) == 0  # the next run, whatever it is
    assert drill_servers(sandbox) == [] and journal(tmp_path) == []
    audit = tmp_path / "run" / "snapshot-policy-audit.jsonl"
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    deleted = [line for line in lines if line["event"] == "drill server deleted"]
    assert deleted[0]["drill_server_id"] == str(left.id)  # first, before anything else
    assert deleted[0]["reason"].startswith("left by an earlier run")
    assert [line["event"] for line in lines][-1] == "drill passed"  # then its drill, due still


def test_a_signal_while_a_restored_server_boots_exits_143_and_leaves_that_server(
    sandbox, tokens, tmp_path
):
    """restore deletes nothing, not even the server it made: a stop ends the wait only."""
    sandbox.inject("slow_boot", service="hetzner", seconds=120)
    policy = write_policy(tmp_path, ["true"])
    run = subprocess.Popen(
        [sys.executable, "-m", "snapshot_policy", "restore", "--policy", str(policy)]
        + ["--target", "db", "--name", "db-restored"],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: any(s.name == "db-restored" for s in sandbox.state.servers.values()))
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 143, err
    assert "SIGTERM stopped the wait" in out and "is left as it is" in out
    assert [s.name for s in sandbox.state.servers.values() if s.name == "db-restored"]
    assert [r for r in sandbox.requests("hetzner") if r["method"] == "DELETE"] == []
