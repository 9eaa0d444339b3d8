"""statefiles.check_files (issue 19, item 11): state paths that are wrong are refused before a run
changes anything, in one sentence naming the setting, the other setting or the problem, and the fix.

Proves: the paths a run uses pass when they are distinct files in folders that exist or can
be made; two settings naming one file (the same path spelt differently, or a hard link) are
refused naming both; a state path naming a configuration file is refused naming it; a folder,
a pipe, a link, a file of another user or one others may write where a file belongs is
refused; a place that cannot be written is refused, except for a file the command only reads.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from snapshot_policy.state import statefiles
from snapshot_policy.state.statefiles import StateFileError, UnsafeStateFile, check_files

JOURNAL = "the journal beside lock_file"
RUN_STATE = "the run state beside lock_file"


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """A policy folder as an operator has it, the working folder, so paths are relative as
    written."""
    monkeypatch.chdir(tmp_path)
    Path("policy.yaml").write_text("version: 1\n")
    Path("run").mkdir()
    return tmp_path


def files(**changes: str | None) -> dict[str, str | None]:
    """The paths of an apply run, keyed by the names the user knows them by, with `changes`."""
    paths = {
        "lock_file": "run/snapshot-policy.lock",
        JOURNAL: "run/snapshot-policy.journal.json",
        RUN_STATE: "run/snapshot-policy.state.json",
        "log.file": "logs/snapshot-policy.log",
        "audit_log": "logs/audit.jsonl",
        "--report": None,
        "--metrics-file": "out/metrics.prom",
    }
    for key, path in changes.items():
        paths[
            {
                "journal": JOURNAL,
                "run_state": RUN_STATE,
                "log_file": "log.file",
                "report": "--report",
                "metrics": "--metrics-file",
            }.get(key, key)
        ] = path
    return paths


def refusal(paths: dict[str, str | None], **options) -> str:
    with pytest.raises(StateFileError) as raised:
        check_files(paths, ["policy.yaml"], **options)
    message = str(raised.value)
    assert "\n" not in message and message.count(". ") == 0, message  # one sentence
    return message


def test_distinct_files_in_folders_that_exist_or_can_be_made_pass(folder):
    Path("run/snapshot-policy.lock").write_text("4242\n")
    Path("run/snapshot-policy.lock").chmod(0o600)
    check_files(files(report="out/deep/er/report.json"), ["policy.yaml"])


def test_a_run_state_path_that_is_a_folder_is_refused(folder):
    Path("run/snapshot-policy.state.json").mkdir()
    assert refusal(files()) == (
        f"cannot use {RUN_STATE} run/snapshot-policy.state.json: it is a folder, not a file; "
        "remove it or choose another path"
    )


def test_a_journal_path_that_is_a_folder_is_refused_even_where_it_is_only_read(folder):
    Path("run/snapshot-policy.journal.json").mkdir()
    message = refusal(files(), read_only={JOURNAL, RUN_STATE})
    assert message.startswith(
        f"cannot use {JOURNAL} run/snapshot-policy.journal.json: it is a folder"
    )


def test_the_audit_log_at_the_run_state_path_is_refused_naming_both(folder):
    assert refusal(files(audit_log="run/snapshot-policy.state.json")) == (
        f"cannot use audit_log run/snapshot-policy.state.json: {RUN_STATE} names the same file; "
        f"give {RUN_STATE} and audit_log a file each"
    )


def test_the_lock_file_at_the_log_file_is_refused_naming_both(folder):
    message = refusal(files(log_file="run/snapshot-policy.lock"))
    assert message == (
        "cannot use log.file run/snapshot-policy.lock: lock_file names the same file; give "
        "lock_file and log.file a file each"
    )


@pytest.mark.parametrize(
    "spelt",
    [
        "run/../run/snapshot-policy.lock",
        "{tmp}/run/snapshot-policy.lock",
        "run/./snapshot-policy.lock",
    ],
)
def test_one_file_spelt_two_ways_is_one_file(folder, spelt):
    message = refusal(files(audit_log=spelt.format(tmp=folder)))
    assert "lock_file names the same file" in message


def test_a_hard_link_to_another_state_file_is_the_same_file(folder):
    Path("logs").mkdir()
    Path("logs/audit.jsonl").write_text("")
    Path("logs/audit.jsonl").chmod(0o600)
    os.link("logs/audit.jsonl", "run/audit-copy.jsonl")
    assert "audit_log names the same file" in refusal(files(report="run/audit-copy.jsonl"))


@pytest.mark.parametrize("spelt", ["policy.yaml", "./policy.yaml", "{tmp}/policy.yaml"])
def test_plan_out_naming_the_policy_is_refused(folder, spelt):
    paths = {"log.file": "logs/snapshot-policy.log", "plan --out": spelt.format(tmp=folder)}
    assert refusal(paths) == (
        f"cannot use plan --out {spelt.format(tmp=folder)}: it is the configuration file "
        "policy.yaml; choose another path"
    )


def test_a_state_file_hard_linked_to_a_configuration_file_is_refused(folder):
    Path("configs").mkdir()
    Path("configs/droplet.json").write_text("{}")
    os.link("configs/droplet.json", "run/snapshot-policy.lock")
    with pytest.raises(
        StateFileError,
        match="^cannot use lock_file run/snapshot-policy.lock: it is the configuration file "
        "configs/droplet.json;",
    ):
        check_files(files(), ["policy.yaml", "configs/droplet.json"])


def test_a_symbolic_link_where_a_state_file_belongs_is_refused(folder):
    Path("elsewhere").write_text("precious")
    Path("run/snapshot-policy.lock").symlink_to(folder / "elsewhere")
    with pytest.raises(
        UnsafeStateFile,
        match="^cannot use lock_file run/snapshot-policy.lock: it is a symbolic link",
    ):
        check_files(files(), ["policy.yaml"])


def test_a_pipe_where_a_state_file_belongs_is_refused(folder):
    os.mkfifo("run/snapshot-policy.state.json")
    assert refusal(files()).endswith(
        "run/snapshot-policy.state.json: it is not a regular file; remove it or point the "
        "setting at a regular file"
    )


def test_a_state_file_others_may_write_is_refused_with_the_fix(folder):
    Path("run/snapshot-policy.journal.json").write_text("[]")
    Path("run/snapshot-policy.journal.json").chmod(0o664)
    with pytest.raises(
        UnsafeStateFile,
        match=r"others may write it \(mode 0664\); run `chmod go-w "
        r"run/snapshot-policy.journal.json`",
    ):
        check_files(files(), ["policy.yaml"], read_only={JOURNAL})


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_state_file_of_another_user_is_refused_with_the_fix(folder):
    Path("run/snapshot-policy.journal.json").write_text("[]")
    os.chown("run/snapshot-policy.journal.json", 65534, 65534)
    with pytest.raises(
        UnsafeStateFile,
        match="not to user root, who runs snapshot-policy.*run `chown root "
        "run/snapshot-policy.journal.json`",
    ):
        check_files(files(), ["policy.yaml"], read_only={JOURNAL})


def test_a_folder_on_the_way_that_is_a_file_is_refused(folder):
    assert refusal(
        files(
            lock_file=None,
            audit_log="policy.yaml.d/logs/audit.jsonl",
            metrics="policy.yaml/metrics.prom",
        )
    ) == (
        "cannot use --metrics-file policy.yaml/metrics.prom: policy.yaml is not a folder, so "
        "the file cannot be made in it; choose another path"
    )


def test_a_folder_that_cannot_be_written_is_refused_unless_the_file_is_only_read(
    folder, monkeypatch
):
    # Root may write every folder, so the answer a non-root run would get is given here.
    unwritable = {"run"}
    monkeypatch.setattr(statefiles.os, "access", lambda path, mode: str(path) not in unwritable)
    paths = {
        "lock_file": None,
        JOURNAL: "run/snapshot-policy.journal.json",
        "plan --out": "plan.json",
    }
    check_files(paths, ["policy.yaml"], read_only={JOURNAL})
    assert refusal(paths).startswith(
        f"cannot use {JOURNAL} run/snapshot-policy.journal.json: user "
    )
    assert refusal(paths).endswith(
        "may not write in run; choose a folder it may write or change that folder's permissions"
    )
    unwritable = {"run/snapshot-policy.journal.json"}
    Path("run/snapshot-policy.journal.json").write_text("[]")
    Path("run/snapshot-policy.journal.json").chmod(0o600)
    monkeypatch.setattr(statefiles.os, "access", lambda path, mode: str(path) not in unwritable)
    assert refusal(paths).endswith(
        "may not write it; choose another path or change the file's permissions"
    )


def test_files_not_used_this_run_are_not_checked(folder):
    check_files(
        {"lock_file": "run/x.lock", "--report": None, "--metrics-file": None, "plan --out": None},
        ["policy.yaml"],
    )
