"""The tool's own files on disk (statefiles.py; docs/promises.md §5, invariants 8 and 10).

Proves: a file replaced whole is written to a fresh, exclusively created temporary file and
renamed, leaving no spare and the old file whole if killed; files are created 0600 (or the
mode asked for); a symbolic link where a state file belongs is refused with a one-line
message naming the file, and its target is never written, created or truncated —
also through the fixed temporary names the journal and the metrics file used to take; an
existing file of another user, or one group or others may write, is refused by every reader
and writer with the fix (`chown`, `chmod go-w`, remove it), while the user's own and root's
files, readable by others or not, are used; what is written is masked. The journal, run
state, audit log, metrics file and run report use these rules.
"""

from __future__ import annotations

import os
import pwd
import stat
from datetime import timedelta

import pytest

from snapshot_policy.core.model import RunReport
from snapshot_policy.core.redaction import hide, redacted_output
from snapshot_policy.edges.monitor import write_metrics, write_report
from snapshot_policy.state import statefiles
from snapshot_policy.state.audit import AuditLog
from snapshot_policy.state.journal import Journal
from snapshot_policy.state.runstate import RunState
from snapshot_policy.state.statefiles import (
    StateFileError,
    UnsafeStateFile,
    append_text,
    open_append,
    open_fd,
    read_text,
    refuse_unsafe,
    write_atomic,
)
from tests.factories import snap, target, utc

NOW = utc(2026, 11, 26, 3)
PRECIOUS = "precious settings\n"
SECRET = "dop_v1_" + "LEAKstateTOKEN" + "9c" * 25


@pytest.fixture
def victim(tmp_path):
    """A file a link must never write through."""
    path = tmp_path / "elsewhere" / "victim.conf"
    path.parent.mkdir()
    path.write_text(PRECIOUS)
    return path


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_atomic_creates_the_file_and_its_folder_readable_by_the_owner_only(tmp_path):
    path = tmp_path / "run" / "report.json"
    write_atomic(path, "{}\n", "run report")
    assert path.read_text() == "{}\n"
    assert mode(path) == 0o600


def test_write_atomic_gives_the_mode_asked_for(tmp_path):
    path = tmp_path / "chart.svg"
    write_atomic(path, "<svg/>", "chart file", mode=0o640)
    assert mode(path) == 0o640


def test_write_atomic_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "metrics.prom"
    path.write_text("old\n")
    path.chmod(0o644)
    write_atomic(path, "new\n", "metrics file")
    assert path.read_text() == "new\n"
    assert mode(path) == 0o600  # a new file, not the old one rewritten
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.prom"]


def test_write_atomic_killed_before_the_rename_leaves_the_previous_file_whole_and_no_spare(
    tmp_path, monkeypatch
):
    path = tmp_path / "journal.json"
    write_atomic(path, "[1]", "journal")

    def killed(*args):
        raise KeyboardInterrupt("killed between writing and renaming")

    monkeypatch.setattr(statefiles.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "[1, 2]", "journal")
    assert path.read_text() == "[1]"
    assert [p.name for p in tmp_path.iterdir()] == ["journal.json"]


def test_write_atomic_refuses_a_symbolic_link_in_one_line_naming_the_file(tmp_path, victim):
    path = tmp_path / "report.json"
    path.symlink_to(victim)
    with pytest.raises(UnsafeStateFile) as raised:
        write_atomic(path, "{}", "run report")
    assert str(raised.value).startswith(f"cannot use run report {path}: it is a symbolic link")
    assert "remove the link" in str(raised.value) and "\n" not in str(raised.value)
    assert victim.read_text() == PRECIOUS
    assert path.is_symlink()


def test_write_atomic_never_writes_through_a_link_at_a_temporary_name(tmp_path, victim):
    # The journal and the metrics file used to write `NAME.tmp`: a link there took the text.
    path = tmp_path / "snapshot-policy.journal.json"
    (tmp_path / "snapshot-policy.journal.json.tmp").symlink_to(victim)
    write_atomic(path, "[]", "journal")
    assert victim.read_text() == PRECIOUS
    assert path.read_text() == "[]" and not path.is_symlink()


def test_write_atomic_masks_the_secrets_in_force(tmp_path):
    path = tmp_path / "plan.json"
    with redacted_output():
        hide([SECRET])
        write_atomic(path, f'{{"error": "Bearer {SECRET}\\n"}}', "plan file")
    assert path.read_text() == '{"error": "Bearer ***\\n"}'


def test_append_text_appends_masked_lines_to_a_file_created_0600(tmp_path):
    path = tmp_path / "logs" / "audit.jsonl"
    append_text(path, "one\n", "audit log")
    with redacted_output():
        hide([SECRET])
        append_text(path, f"two {SECRET}\n", "audit log")
    assert path.read_text() == "one\ntwo ***\n"
    assert mode(path) == 0o600


@pytest.mark.parametrize("dangling", [False, True], ids=["to a file", "dangling"])
def test_append_text_refuses_a_symbolic_link(tmp_path, victim, dangling):
    path = tmp_path / "audit.jsonl"
    target_file = tmp_path / "made-through-the-link" if dangling else victim
    path.symlink_to(target_file)
    with pytest.raises(
        UnsafeStateFile, match=f"^cannot use audit log {path}: it is a symbolic link"
    ):
        append_text(path, "line\n", "audit log")
    assert victim.read_text() == PRECIOUS
    assert not (tmp_path / "made-through-the-link").exists()


def test_read_text_refuses_a_symbolic_link_and_reports_a_missing_file_as_such(tmp_path, victim):
    path = tmp_path / "journal.json"
    with pytest.raises(FileNotFoundError):
        read_text(path, "journal")
    path.symlink_to(victim)
    with pytest.raises(UnsafeStateFile):
        read_text(path, "journal")


def test_refuse_unsafe_passes_what_a_write_would_report_itself(tmp_path, victim):
    refuse_unsafe(tmp_path / "missing.json", "run report")
    refuse_unsafe(victim, "run report")
    refuse_unsafe(tmp_path / "no-folder" / "x" / "y.json", "run report")
    (tmp_path / "link.json").symlink_to(victim)
    with pytest.raises(UnsafeStateFile):
        refuse_unsafe(tmp_path / "link.json", "run report")


def test_a_folder_where_a_file_belongs_is_an_error_naming_it(tmp_path):
    path = tmp_path / "report.json"
    path.mkdir()
    with pytest.raises(StateFileError, match=f"^cannot use run report {path}: Is a directory$"):
        write_atomic(path, "{}", "run report")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no spare left behind


# -- the files that use these rules --


def test_journal_refuses_a_symbolic_link_before_the_run_and_never_writes_through_it(
    tmp_path, victim
):
    path = tmp_path / "snapshot-policy.journal.json"
    path.symlink_to(victim)
    with pytest.raises(UnsafeStateFile, match=f"cannot use journal {path}: it is a symbolic link"):
        Journal(path, timedelta(hours=1), now=NOW)
    assert victim.read_text() == PRECIOUS


def test_journal_is_created_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "snapshot-policy.journal.json"
    Journal(path, timedelta(hours=1), now=NOW).started("do", "1", "web-1-20261126030000", NOW)
    assert mode(path) == 0o600


def test_audit_log_refuses_a_symbolic_link_before_the_run(tmp_path, victim):
    path = tmp_path / "audit.jsonl"
    path.symlink_to(victim)
    with pytest.raises(
        UnsafeStateFile, match=f"cannot use audit log {path}: it is a symbolic link"
    ):
        AuditLog(path, "sha256:" + "ab" * 32)
    assert victim.read_text() == PRECIOUS


def test_audit_log_is_created_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "audit.jsonl"
    AuditLog(path, "sha256:" + "ab" * 32).record(
        "created", target(keep_last=1), snap(NOW, id="5"), "due", NOW
    )
    assert mode(path) == 0o600


@pytest.mark.parametrize(
    "write, expected_mode",
    [
        # node_exporter reads it; no secret
        pytest.param(
            lambda path: write_metrics(path, RunReport(NOW, NOW, ()), 0), 0o644, id="metrics"
        ),
        pytest.param(lambda path: write_report(path, RunReport(NOW, NOW, ())), 0o600, id="report"),
    ],
)
def test_metrics_and_report_refuse_a_symbolic_link_and_get_their_modes(
    tmp_path, victim, write, expected_mode
):
    link = tmp_path / "link.out"
    link.symlink_to(victim)
    with pytest.raises(UnsafeStateFile):
        write(link)
    assert victim.read_text() == PRECIOUS
    (tmp_path / "real.out.tmp").symlink_to(victim)  # the metrics file's old fixed temporary name
    write(tmp_path / "real.out")
    assert victim.read_text() == PRECIOUS
    assert mode(tmp_path / "real.out") == expected_mode


# -- files someone else may have written (issue 19, item 2) --

NOBODY = 65534
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="giving a file to another user needs root"
)


def user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


PLANTED = {  # (owner, mode, what the refusal says); owner None: the user running the test
    "another user's": pytest.param(
        NOBODY,
        0o600,
        f"it belongs to user {user(NOBODY)}, not to user {user(os.geteuid())}, who runs "
        "snapshot-policy, so another user may have put it there; remove it, or if it is "
        f"yours, run `chown {user(os.geteuid())} {{path}}`",
        marks=needs_root,
    ),
    "group-writable": pytest.param(
        None,
        0o620,
        "others may write it (mode 0620); run `chmod go-w {path}`, or remove it if you did "
        "not make it",
    ),
    "world-writable": pytest.param(
        None,
        0o602,
        "others may write it (mode 0602); run `chmod go-w {path}`, or remove it if you did "
        "not make it",
    ),
}
EVERY_USE = {
    "read_text": lambda path: read_text(path, "journal"),
    "append_text": lambda path: append_text(path, "line\n", "journal"),
    "open_append": lambda path: open_append(path, "journal").close(),
    "open_fd": lambda path: os.close(open_fd(path, os.O_RDWR | os.O_CREAT, "journal")),
    "write_atomic": lambda path: write_atomic(path, "[]", "journal"),
    "refuse_unsafe": lambda path: refuse_unsafe(path, "journal"),
}


def plant(path, owner: int | None, mode: int) -> None:
    path.write_text(PRECIOUS)
    if owner is not None:
        os.chown(path, owner, owner)
    path.chmod(mode)


@pytest.mark.parametrize("use", EVERY_USE.values(), ids=EVERY_USE.keys())
@pytest.mark.parametrize("owner, mode, says", PLANTED.values(), ids=PLANTED.keys())
def test_every_reader_and_writer_refuses_a_file_someone_else_may_have_written(
    tmp_path, use, owner, mode, says
):
    path = tmp_path / "my folder" / "snapshot-policy.journal.json"
    path.parent.mkdir()
    plant(path, owner, mode)
    with pytest.raises(UnsafeStateFile) as raised:
        use(path)
    assert str(raised.value) == f"cannot use journal {path}: " + says.format(path=f"'{path}'")
    assert path.read_text() == PRECIOUS and stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644, 0o400])
def test_the_user_s_own_files_are_used_whoever_may_read_them(tmp_path, mode):
    path = tmp_path / "metrics.prom"
    plant(path, None, mode)
    assert read_text(path, "metrics file") == PRECIOUS
    refuse_unsafe(path, "metrics file")


@needs_root
def test_root_s_files_are_trusted_as_ssh_trusts_them(tmp_path, monkeypatch):
    path = tmp_path / "snapshot-policy.journal.json"
    plant(path, 0, 0o644)
    monkeypatch.setattr(statefiles.os, "geteuid", lambda: 1000)  # a run as an ordinary user
    assert read_text(path, "journal") == PRECIOUS
    os.chown(path, 1001, 1001)
    with pytest.raises(
        UnsafeStateFile, match=f"it belongs to user {user(1001)}, not to user {user(1000)},"
    ):
        read_text(path, "journal")


@pytest.mark.parametrize("owner, mode, says", PLANTED.values(), ids=PLANTED.keys())
def test_a_planted_journal_is_refused_not_read_as_empty(tmp_path, owner, mode, says):
    path = tmp_path / "snapshot-policy.journal.json"
    plant(path, owner, mode)
    path.write_text(
        '[{"account": "do", "server_id": "1", "name": "web-1 golden image", "started": '
        '"2026-11-26T02:55:00+00:00"}]'
    )
    with pytest.raises(UnsafeStateFile, match=f"^cannot use journal {path}: "):
        Journal(path, timedelta(hours=1), now=NOW)


@pytest.mark.parametrize("owner, mode, says", PLANTED.values(), ids=PLANTED.keys())
def test_a_planted_run_state_is_refused_not_read_as_empty(tmp_path, owner, mode, says):
    path = tmp_path / "snapshot-policy.state.json"
    plant(path, owner, mode)
    with pytest.raises(UnsafeStateFile, match=f"^cannot use run state {path}: "):
        RunState(path, NOW)


@pytest.mark.parametrize("owner, mode, says", PLANTED.values(), ids=PLANTED.keys())
def test_a_planted_audit_log_is_refused_before_the_run(tmp_path, owner, mode, says):
    path = tmp_path / "audit.jsonl"
    plant(path, owner, mode)
    with pytest.raises(UnsafeStateFile, match=f"^cannot use audit log {path}: "):
        AuditLog(path, "sha256:" + "ab" * 32)
    assert path.read_text() == PRECIOUS
