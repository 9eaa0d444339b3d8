"""SIGTERM and SIGINT stop apply cleanly; SIGKILL leaves the next run to finish what it owed
(issue 19, item 5).

A real `python -m snapshot_policy apply` against the sandbox is signalled at one point of its
run. Whatever the point, the `after` hook of a target whose `before` hook ran must run (a
database frozen by `before` must not stay frozen), a running hook must be killed with its
process group, the journal and the run state must be written, the lock released, and the
exit code must say which signal stopped the run (130 SIGINT, 143 SIGTERM). A run killed with
SIGKILL after `before` cannot do any of that: the next run runs the owed `after` hook first.

The killed process reads the wall clock, so the sandbox does too (as in test_crash.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snapshot_policy.cli import main
from snapshot_policy.sandbox import Sandbox
from tests.e2e.policies import ACCOUNTS, NIGHTLY, policy_yaml

EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


@pytest.fixture
def sandbox(wall_clock_sandbox):
    return wall_clock_sandbox


def write_policy(folder: Path, then: str) -> Path:
    """db-1 nightly, with a before hook that records its pid and then runs `then`."""
    log, pid = folder / "hooks.log", folder / "hook.pid"
    hooks = {
        "shell": True,
        "before": f"echo before >> {log}; echo $$ > {pid}; {then}",
        "after": f"echo after $SNAPSHOT_POLICY_STATUS >> {log}",
        "timeout": 60,
    }
    policy = folder / "policy.yaml"
    policy.write_text(
        policy_yaml(
            {"name": "db", "account": "hz", "ids": [4711], "hooks": hooks},
            accounts={"hz": ACCOUNTS["hz"]},
            defaults={**NIGHTLY, "retention": {"keep_last": 2}},
            settings={"lock_file": "run/lock"},
        )
    )
    return policy


def hook_lines(folder: Path) -> list[str]:
    path = folder / "hooks.log"
    return path.read_text().splitlines() if path.exists() else []


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting to be reaped does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def journal(folder: Path) -> list[dict]:
    path = folder / "run" / "lock.journal.json"
    return json.loads(path.read_text()) if path.exists() else []


def lock_is_free(folder: Path) -> bool:
    with open(folder / "run" / "lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(lock, fcntl.LOCK_UN)
        return True


def start_apply(policy: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "snapshot_policy", "apply", "--policy", str(policy)],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def snapshot_starts(sandbox: Sandbox) -> list[dict]:
    return [
        r
        for r in sandbox.requests("hetzner")
        if r["method"] == "POST" and "create_image" in r["path"]
    ]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_the_before_hook_kills_it_runs_after_and_starts_nothing(
    sandbox, tmp_path, signum
):
    policy = write_policy(tmp_path, "sleep 30")
    run = start_apply(policy)
    try:
        wait_for(
            lambda: (
                hook_lines(tmp_path) == ["before"] and (tmp_path / "hook.pid").read_text().strip()
                if (tmp_path / "hook.pid").exists()
                else False
            )
        )
        hook = int((tmp_path / "hook.pid").read_text())
        run.send_signal(signum)
        _, err = run.communicate(timeout=30)
    finally:
        run.kill()
    assert run.returncode == EXIT[signum], err
    assert f"Stopped by {signum.name}" in err
    assert not alive(hook)  # the before hook was killed, not left running
    assert hook_lines(tmp_path) == ["before", "after failure"]
    assert snapshot_starts(sandbox) == []
    assert journal(tmp_path) == []  # nothing started, no after hook owed
    assert (tmp_path / "run" / "lock.state.json").exists()
    assert lock_is_free(tmp_path)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_the_snapshot_is_made_runs_after_and_leaves_the_snapshot_to_adopt(
    sandbox, tmp_path, signum
):
    sandbox.state.action_seconds = 30
    policy = write_policy(tmp_path, "true")
    run = start_apply(policy)
    try:
        wait_for(lambda: any(r["status"] == 201 for r in snapshot_starts(sandbox)))
        run.send_signal(signum)
        _, err = run.communicate(timeout=30)
    finally:
        run.kill()
    assert run.returncode == EXIT[signum], err
    assert hook_lines(tmp_path) == ["before", "after failure"]
    (start,) = journal(tmp_path)  # the start stays for the next run to adopt; no after hook owed
    assert (
        start["server_id"] == "4711"
        and start["name"].startswith("db-1-")
        and set(start) == {"account", "server_id", "name", "started"}
    )
    assert len(snapshot_starts(sandbox)) == 1
    assert not [r for r in sandbox.requests("hetzner") if r["method"] == "DELETE"]
    assert (tmp_path / "run" / "lock.state.json").exists()
    assert lock_is_free(tmp_path)


def test_a_run_killed_after_the_before_hook_leaves_the_next_run_to_run_after_first(
    sandbox, tmp_path
):
    go = tmp_path / "go"
    policy = write_policy(tmp_path, f"[ -e {go} ] || sleep 30")
    run = start_apply(policy)
    try:
        wait_for(
            lambda: (tmp_path / "hook.pid").exists() and (tmp_path / "hook.pid").read_text().strip()
        )
        run.send_signal(signal.SIGKILL)
        run.wait()
    finally:
        run.kill()
        os.killpg(
            int((tmp_path / "hook.pid").read_text()), signal.SIGKILL
        )  # SIGKILL left it running
    assert hook_lines(tmp_path) == ["before"]
    assert [e.get("after") for e in journal(tmp_path)] == ["db"]
    go.touch()
    assert main(["apply", "--policy", str(policy)]) == 0
    assert hook_lines(tmp_path) == ["before", "after failure", "before", "after success"]
    assert journal(tmp_path) == []
