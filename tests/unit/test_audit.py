"""The JSONL audit log (audit.py): what one line holds, and that lines are only ever appended whole.

Proves: each record is one JSON line naming time (the `when` given, never the clock),
event, target, provider, account, server, snapshot, reason and plan fingerprint; later
logs on the same file append; the folder is created; records from many threads stay whole;
a line that cannot be written raises StateFileError, so the caller can fail the run; a file
others may write is refused before the run.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta, timezone

import pytest

from snapshot_policy.core.model import RetentionPolicy, Snapshot, Target
from snapshot_policy.state.audit import AuditLog
from snapshot_policy.state.statefiles import StateFileError, UnsafeStateFile
from tests.factories import snap, utc

FINGERPRINT = "sha256:" + "ab" * 32
TARGET = Target(
    "nightly db", "digitalocean", "do-main", "4242", "db-1", RetentionPolicy(keep_last=3)
)


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_audit_log_writes_one_json_line_with_every_field(tmp_path):
    path = tmp_path / "audit.jsonl"
    snapshot = Snapshot(
        "555", "db-1-20250102030000", utc(2025, 1, 2, 3), "4242", True, "tagged snapshot-policy"
    )
    when = utc(2025, 1, 3, 4, 5, 6).astimezone(timezone(timedelta(hours=2)))
    AuditLog(path, FINGERPRINT).record(
        "deleted", TARGET, snapshot, "no retention rule keeps it — ü", when
    )
    assert path.read_text(encoding="utf-8").count("\n") == 1
    assert lines(path) == [
        {
            "time": "2025-01-03T06:05:06+02:00",
            "event": "deleted",
            "target": "nightly db",
            "provider": "digitalocean",
            "account": "do-main",
            "server_id": "4242",
            "server_name": "db-1",
            "snapshot_id": "555",
            "snapshot_name": "db-1-20250102030000",
            "reason": "no retention rule keeps it — ü",
            "plan_fingerprint": FINGERPRINT,
        }
    ]


def test_audit_log_appends_across_instances_and_keeps_earlier_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text('{"event": "from an earlier version"}\n', encoding="utf-8")
    AuditLog(path, "sha256:first").record(
        "created", TARGET, snap(utc(2025, 1, 1), id="1"), "due", utc(2025, 1, 1)
    )
    AuditLog(path, "sha256:second").record(
        "adopted", TARGET, snap(utc(2025, 1, 2), id="2"), "journal", utc(2025, 1, 2)
    )
    written = lines(path)
    assert written[0] == {"event": "from an earlier version"}
    assert [(e["event"], e["snapshot_id"], e["plan_fingerprint"]) for e in written[1:]] == [
        ("created", "1", "sha256:first"),
        ("adopted", "2", "sha256:second"),
    ]


def test_audit_log_creates_its_folder(tmp_path):
    path = tmp_path / "var" / "log" / "snapshot-policy" / "audit.jsonl"
    AuditLog(path, FINGERPRINT).record(
        "created", TARGET, snap(utc(2025, 1, 1)), "due", utc(2025, 1, 1)
    )
    assert [e["event"] for e in lines(path)] == ["created"]


def test_audit_log_keeps_lines_whole_when_threads_record_at_once(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, FINGERPRINT)
    reason = "kept by nothing " * 1000  # lines far longer than a write buffer

    def record(worker: int) -> None:
        for n in range(25):
            log.record(
                "deleted",
                TARGET,
                snap(utc(2025, 1, 1), id=f"{worker}-{n}"),
                reason,
                utc(2025, 1, 1),
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(record, range(8)))  # re-raises a thread's error
    written = lines(path)  # a torn or interleaved line would not parse
    assert sorted(e["snapshot_id"] for e in written) == sorted(
        f"{w}-{n}" for w in range(8) for n in range(25)
    )
    assert all(e["reason"] == reason for e in written)


def test_audit_log_that_cannot_be_written_raises_for_the_caller_to_fail_the_run(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, FINGERPRINT)
    path.mkdir()  # became a folder after the run started
    with pytest.raises(StateFileError, match=f"^cannot use audit log {path}: "):
        log.record("deleted", TARGET, snap(utc(2025, 1, 1)), "no rule keeps it", utc(2025, 1, 1))


def test_audit_log_others_may_write_is_refused_before_the_run_and_left_alone(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text('{"event": "forged"}\n')
    path.chmod(0o646)
    with pytest.raises(
        UnsafeStateFile, match=r"others may write it \(mode 0646\); run `chmod go-w"
    ):
        AuditLog(path, FINGERPRINT)
    assert path.read_text() == '{"event": "forged"}\n'


def test_audit_log_names_a_drill_server_and_what_it_was_made_from(tmp_path):
    from snapshot_policy.state.audit import DrillServer

    log = AuditLog(tmp_path / "audit.jsonl", "sha256:abc")
    server = DrillServer("db", "hetzner", "hz", "4711", "171334", "drill-db-4711-x", "9001")
    log.record_server("drill server deleted", server, "left by an earlier run", utc(2026, 12, 7))
    (line,) = [json.loads(t) for t in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert line == {
        "time": "2026-12-07T00:00:00+00:00",
        "event": "drill server deleted",
        "target": "db",
        "provider": "hetzner",
        "account": "hz",
        "server_id": "4711",
        "drill_server_id": "9001",
        "drill_server_name": "drill-db-4711-x",
        "snapshot_id": "171334",
        "reason": "left by an earlier run",
        "plan_fingerprint": "sha256:abc",
    }


def test_audit_log_with_a_line_cut_inside_a_character_still_answers_what_it_recorded(tmp_path):
    """A write cut short (a full disk) may end a line inside a multi-byte character. Asked
    whether a killed run's deletion was audited, the log raised UnicodeDecodeError, which
    stopped the next apply before its snapshots (engine/drill_leftovers, engine/execute);
    a cut line says nothing, the whole lines still do."""
    path = tmp_path / "audit.jsonl"
    whole = {"event": "drill server deleted", "drill_server_id": "77"}
    path.write_bytes((json.dumps(whole) + "\n").encode() + '{"reason": "café'.encode()[:-1])
    path.chmod(0o600)
    log = AuditLog(path, FINGERPRINT)
    assert log.recorded("drill server deleted", "77", key="drill_server_id")
    assert not log.recorded("drill server deleted", "78", key="drill_server_id")
