"""docs/promises.md §5 invariant 7: apply killed (SIGKILL) at any moment, then run again, converges.

Each case kills a real `python -m snapshot_policy apply` process at one point of a run
against the sandbox, reruns it until nothing is left to do, and compares the end state
with that of an uninterrupted run of the same policy on an identical cloud: the same
snapshots, each with our marker — nothing lost, nothing duplicated, nothing left untagged.

A killed process runs on the wall clock, so here the sandbox and every run do too: the cloud
is dated back from the real time at the start of the test.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from snapshot_policy.cli import main, system_clock
from snapshot_policy.sandbox import Sandbox
from tests.e2e.cloud import cloud
from tests.e2e.policies import NIGHTLY, policy_yaml

POLICY = policy_yaml(
    {"name": "web", "account": "do", "ids": [3164444]},
    {"name": "db", "account": "hz", "ids": [4711]},
    defaults={**NIGHTLY, "retention": {"keep_last": 2}},
    settings={"lock_file": "run/lock"},
)


def end_state(sandbox: Sandbox, seeded: set[str]) -> list[tuple]:
    """Every snapshot as (server, name, carries our marker); one the runs made reads NEW."""
    return sorted(
        (
            s.get("server_id"),
            s["name"] if s["name"] in seeded else "NEW",
            "snapshot-policy" in (s.get("tags") or [])
            or (s.get("labels") or {}).get("managed-by") == "snapshot-policy",
        )
        for s in sandbox.dump_state()["snapshots"]
    )


@pytest.fixture
def env(tokens):
    """The policy's token variables, for the killed process too (it inherits os.environ)."""


@pytest.fixture
def seeded() -> dict:
    """The cloud, dated back from the wall clock now."""
    return cloud(system_clock().replace(microsecond=0))


@pytest.fixture
def reference(env, seeded, tmp_path, monkeypatch) -> list[tuple]:
    """The end state of an uninterrupted run."""
    folder = tmp_path / "reference"
    folder.mkdir()
    (folder / "policy.yaml").write_text(POLICY)
    with Sandbox(seeded, action_seconds=0.05) as sandbox:
        with monkeypatch.context() as patch:
            for name, value in sandbox.env().items():
                patch.setenv(name, value)
            assert main(["apply", "--policy", str(folder / "policy.yaml")]) == 0
        return end_state(sandbox, {s["name"] for s in seeded["snapshots"]})


@pytest.fixture
def sandbox(seeded, monkeypatch):
    """The sandbox on the wall clock, which the killed process reads."""
    with Sandbox(seeded, action_seconds=0.05) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        yield sb


def start_apply(policy) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "snapshot_policy", "apply", "--policy", str(policy)],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.01)


# A start the killed run wrote down but the cloud never saw (killed before the request went
# out) counts as still running until the creation timeout (3600 s) and 600 s more have passed:
# nothing can prove it never began. The runs that converge come after that.
LATER = timedelta(seconds=3600 + 600 + 60)


def converge(policy, sandbox: Sandbox) -> None:
    """Rerun apply, once no snapshot action runs and a start lost in the kill can no longer
    be running, until a run has nothing left to do (at most a few runs)."""
    later = lambda: system_clock() + LATER  # noqa: E731
    for _ in range(5):
        wait_for(lambda: not any(sandbox.state.running_action(s) for s in (3164444, 4711)))
        assert main(["apply", "--policy", str(policy)], clock=later) in (0, 2)
        if main(["plan", "--policy", str(policy), "--detailed-exitcode"], clock=later) == 0:
            return
    pytest.fail("apply did not converge")


def fired(sandbox: Sandbox, method: str) -> bool:
    return any(f["fired"] and f["method"] == method for f in sandbox.faults.list())


STARTS = "/actions|create_image"


def held_starts_answered(sandbox: Sandbox) -> bool:
    """Every start the `delay` fault held has been acted on: the cloud answers (and logs) a
    request only after its delay, so until then the killed run's snapshot is not there yet."""
    held = sum(f["fired"] for f in sandbox.faults.list() if f["method"] == "POST")
    answered = sum(
        r["method"] == "POST" and re.search(STARTS, r["path"]) is not None
        for r in sandbox.requests()
    )
    return answered >= held


@pytest.mark.parametrize(
    "moment", ["while starting the snapshot", "while waiting for it", "between deletes"]
)
def test_killed_apply_converges_to_the_uninterrupted_end_state(
    moment, env, seeded, reference, sandbox, tmp_path
):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    if moment == "while starting the snapshot":
        # The cloud acts on the request after the client is gone: a start with a lost reply.
        sandbox.inject("delay", method="POST", path=STARTS, seconds=0.5, count=None)
        condition = lambda: fired(sandbox, "POST")  # noqa: E731
    elif moment == "while waiting for it":
        sandbox.state.action_seconds = 1.0
        condition = lambda: (  # noqa: E731
            sum(r["method"] == "POST" and r["status"] == 201 for r in sandbox.requests()) == 2
        )
    else:
        sandbox.inject("delay", method="DELETE", seconds=0.5, count=1)
        condition = lambda: fired(sandbox, "DELETE")  # noqa: E731
    run = start_apply(policy)
    try:
        wait_for(condition)
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    wait_for(lambda: held_starts_answered(sandbox))
    sandbox.clear_faults()
    sandbox.state.action_seconds = 0.05
    converge(policy, sandbox)
    assert end_state(sandbox, {s["name"] for s in seeded["snapshots"]}) == reference
