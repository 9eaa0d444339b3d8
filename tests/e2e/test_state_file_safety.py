"""docs/promises.md §5 invariant 10 through the command line (issue 12, item 7): the files the
tool writes.

Proves: after plan --out and apply with a report and metrics, every file the tool wrote —
lock, journal, log, audit log, saved plan, run report — is readable by its owner only (the log
by its group too; the metrics textfile, which node_exporter reads and which holds no secret, by
all); a symbolic link where any of them belongs makes the command exit 1
with one line naming the file, no traceback, the link's target untouched, and (for apply)
nothing changed in the cloud; links at the temporary names the journal and metrics file used
to write are never followed; a state file another user owns or others may write (issue 19,
item 2: a journal planted in a shared folder naming a manual snapshot as a pending start)
makes plan and apply exit 1 naming the file and the fix, before anything changes.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from snapshot_policy.cli import main
from snapshot_policy.output.logs import unstamped
from tests.e2e.policies import policy_yaml

SETTINGS = {
    "lock_file": "run/snapshot-policy.lock",
    "log": {"file": "logs/snapshot-policy.log"},
    "audit_log": "logs/audit.jsonl",
}
POLICY = policy_yaml(settings=SETTINGS)
PRECIOUS = "precious settings\n"
FILES = {
    "lock file": "run/snapshot-policy.lock",
    "journal": "run/snapshot-policy.journal.json",
    "log file": "logs/snapshot-policy.log",
    "audit log": "logs/audit.jsonl",
    "plan file": "out/plan.json",
    "run report": "out/report.json",
    "metrics file": "out/metrics.prom",
}
APPLY = [
    "apply",
    "--policy",
    "policy.yaml",
    "--report",
    FILES["run report"],
    "--metrics-file",
    FILES["metrics file"],
]


@pytest.fixture
def folder(tmp_path, sandbox, monkeypatch, tokens):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text(POLICY)
    for sub in ("run", "logs", "out"):
        (tmp_path / sub).mkdir()
    return tmp_path


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "elsewhere" / "victim.conf"
    path.parent.mkdir()
    path.write_text(PRECIOUS)
    return path


def test_every_file_the_tool_writes_is_readable_by_its_owner_only(folder, sandbox, capsys, clock):
    assert main(["plan", "--policy", "policy.yaml", "--out", FILES["plan file"]], clock=clock) == 0
    assert main(APPLY, clock=clock) == 0
    modes = {what: stat.S_IMODE((folder / name).stat().st_mode) for what, name in FILES.items()}
    assert modes == {
        what: {"log file": 0o640, "metrics file": 0o644}.get(what, 0o600) for what in FILES
    }


@pytest.mark.parametrize("what", [w for w in FILES if w != "plan file"])
def test_apply_refuses_a_link_where_a_state_file_belongs_and_changes_nothing(
    what, folder, victim, sandbox, capsys, clock
):
    link = folder / FILES[what]
    link.symlink_to(victim)
    assert main(APPLY, clock=clock) == 1
    err = unstamped(capsys.readouterr().err)
    assert (
        err.startswith("cannot use ") and f" {FILES[what]}: it is a symbolic link" in err
    )  # by its name or its setting's
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert victim.read_text() == PRECIOUS
    assert not [r for r in sandbox.requests() if r["method"] in ("POST", "DELETE")]


def test_plan_refuses_to_save_through_a_link(folder, victim, sandbox, capsys, clock):
    link = folder / FILES["plan file"]
    link.symlink_to(victim)
    assert main(["plan", "--policy", "policy.yaml", "--out", str(link)], clock=clock) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("cannot use ")
        and f" {link}: it is a symbolic link" in err
        and "Traceback" not in err
    )
    assert victim.read_text() == PRECIOUS


def test_links_at_the_old_temporary_names_are_never_followed(
    folder, victim, sandbox, capsys, clock
):
    for what in ("journal", "metrics file"):
        (folder / (FILES[what] + ".tmp")).symlink_to(victim)
    assert main(APPLY, clock=clock) == 0
    assert victim.read_text() == PRECIOUS
    assert (folder / FILES["metrics file"]).read_text().startswith("# HELP")


def test_the_run_state_beside_the_lock_is_as_safe_as_the_others(
    folder, victim, sandbox, capsys, clock
):
    state = folder / "run" / "snapshot-policy.state.json"
    (folder / "run" / "snapshot-policy.state.json.tmp").symlink_to(victim)
    assert main(APPLY, clock=clock) == 0
    assert victim.read_text() == PRECIOUS
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    state.unlink()
    state.symlink_to(victim)
    capsys.readouterr()
    assert main(APPLY, clock=clock) == 1
    err = unstamped(capsys.readouterr().err)
    assert (
        err.startswith("cannot use ")
        and f" {Path('run') / state.name}: it is a symbolic link" in err
    )
    assert victim.read_text() == PRECIOUS


# -- files someone else may have written (issue 19, item 2) --

NOBODY = 65534
try:
    NOBODY_NAME = pwd.getpwuid(NOBODY).pw_name
except KeyError:
    NOBODY_NAME = str(NOBODY)
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="giving a file to another user needs root"
)
PLANTED = {  # how another local user's file looks, and what the refusal says
    "another user's": (
        NOBODY,
        0o600,
        f"it belongs to user {NOBODY_NAME}, not to user root, who runs snapshot-policy",
    ),
    "writable by others": (0, 0o666, "others may write it (mode 0666); run `chmod go-w"),
}


def plant(path: Path, text: str, how: str) -> None:
    owner, mode, _ = PLANTED[how]
    path.write_text(text)
    os.chown(path, owner, owner)
    path.chmod(mode)


def snapshot_names(sandbox, server_id: int) -> set[str]:
    return {s["name"] for s in sandbox.dump_state()["snapshots"] if s.get("server_id") == server_id}


@needs_root
@pytest.mark.parametrize("how", PLANTED)
def test_a_planted_journal_naming_a_manual_snapshot_is_refused_before_any_change(
    how, folder, sandbox, capsys, clock
):
    journal = folder / FILES["journal"]
    pending = [
        {
            "account": "do",
            "server_id": "3164444",
            "name": "web-1-before-upgrade",
            "started": (clock() - timedelta(minutes=5)).isoformat(),
        }
    ]
    plant(journal, json.dumps(pending), how)
    for command in (["plan", "--policy", "policy.yaml"], APPLY):
        assert main(command, clock=clock) == 1
        err = unstamped(capsys.readouterr().err)
        assert err.startswith("cannot use ") and f" {FILES['journal']}: {PLANTED[how][2]}" in err, (
            err
        )
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not [r for r in sandbox.requests() if r["method"] not in ("GET", "HEAD")]
    assert "web-1-before-upgrade" in snapshot_names(sandbox, 3164444)
    assert json.loads(journal.read_text()) == pending


@needs_root
@pytest.mark.parametrize("how", PLANTED)
@pytest.mark.parametrize(
    "what", ["lock file", "log file", "audit log", "run state", "run report", "metrics file"]
)
def test_apply_refuses_a_state_file_someone_else_may_have_written_and_changes_nothing(
    what, how, folder, sandbox, capsys, clock
):
    name = FILES.get(what, "run/snapshot-policy.state.json")
    plant(folder / name, "{}\n", how)
    assert main(APPLY, clock=clock) == 1
    err = unstamped(capsys.readouterr().err)
    assert err.startswith("cannot use ") and f" {Path(name)}: {PLANTED[how][2]}" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not [r for r in sandbox.requests() if r["method"] not in ("GET", "HEAD")]
    assert (folder / name).read_text() == "{}\n"


def test_files_the_tool_made_itself_are_trusted_run_after_run(folder, sandbox, capsys, clock):
    assert main(APPLY, clock=clock) == 0
    clock.advance(days=1)
    assert main(APPLY, clock=clock) == 0, capsys.readouterr().err
