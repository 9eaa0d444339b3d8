"""State paths that are wrong are refused before any change (issue 19, item 11), through the CLI.

Proves: a run-state or journal path that is a folder, an audit log at the run state's path, a
lock file at the log file's path, and `plan --out` naming the policy make the command exit 1
with one line naming the setting(s), nothing changed in the cloud and the files left as they
were: plan and apply ask `statefiles.check_files` before anything else
(cli/cloud_commands.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from snapshot_policy.cli import main
from tests.e2e.policies import policy_yaml
from tests.e2e.test_state_file_safety import POLICY, SETTINGS

APPLY = ["apply", "--policy", "policy.yaml"]
PLAN = ["plan", "--policy", "policy.yaml"]
LOG_LINE = "2030-01-01T00:00:00.000Z INFO an earlier run's line\n"


@pytest.fixture
def folder(tmp_path, sandbox, monkeypatch, tokens):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text(POLICY)
    for sub in ("run", "logs"):
        (tmp_path / sub).mkdir()
    return tmp_path


def refused(command: list[str], sandbox, capsys, clock) -> str:
    """Run `command`, which must exit 1 with one line and change nothing in the cloud; return the
    line."""
    assert main(command, clock=clock) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not [r for r in sandbox.requests() if r["method"] not in ("GET", "HEAD")]
    return err.strip()


@pytest.mark.parametrize(
    "name",
    ["snapshot-policy.state.json", "snapshot-policy.journal.json"],
    ids=["run state", "journal"],
)
def test_a_state_path_that_is_a_folder_is_refused_before_any_change(
    name, folder, sandbox, capsys, clock
):
    (folder / "run" / name).mkdir()
    for command in (PLAN, APPLY):
        assert f" {Path('run') / name}: it is a folder, not a file" in refused(
            command, sandbox, capsys, clock
        )


def test_an_audit_log_at_the_run_state_path_is_refused_naming_both(folder, sandbox, capsys, clock):
    audit_log = "run/snapshot-policy.state.json"
    (folder / "policy.yaml").write_text(policy_yaml(settings={**SETTINGS, "audit_log": audit_log}))
    line = refused(APPLY, sandbox, capsys, clock)
    assert (
        "audit_log" in line
        and "names the same file" in line
        and "run/snapshot-policy.state.json" in line
    )


def test_a_lock_file_at_the_log_file_is_refused_and_the_log_kept(folder, sandbox, capsys, clock):
    lock_file = "logs/snapshot-policy.log"
    (folder / "policy.yaml").write_text(policy_yaml(settings={**SETTINGS, "lock_file": lock_file}))
    log = folder / "logs" / "snapshot-policy.log"
    log.write_text(LOG_LINE)
    log.chmod(0o640)
    line = refused(APPLY, sandbox, capsys, clock)
    assert "lock_file" in line and "names the same file" in line
    assert log.read_text() == LOG_LINE


def test_plan_out_naming_the_policy_is_refused_and_the_policy_kept(folder, sandbox, capsys, clock):
    line = refused([*PLAN, "--out", "policy.yaml"], sandbox, capsys, clock)
    assert line.endswith("it is the configuration file policy.yaml; choose another path")
    assert (folder / "policy.yaml").read_text() == POLICY
