"""RunState: what earlier runs recorded survives to the next, and a bad file only forgets."""

from __future__ import annotations

from datetime import timedelta

import pytest

from snapshot_policy.state.runstate import LastDrill, LastRun, RunState
from snapshot_policy.state.statefiles import StateFileError, UnsafeStateFile
from tests.factories import utc

NOW = utc(2026, 11, 26, 3)


def test_run_state_keeps_first_absence_and_last_made_across_runs(tmp_path):
    path = tmp_path / "run.state.json"
    state = RunState(path, NOW)
    state.record_absent("hz", {"5000", "5001"}, NOW)
    state.record_made("hz", "4711", NOW)
    state.save()
    later = NOW + timedelta(hours=6)
    again = RunState(path, later)
    again.record_absent("hz", {"5000", "5002"}, later)  # 5001 is listed again, 5002 newly missed
    again.record_made("hz", "4711", NOW - timedelta(days=1))  # an older record never wins
    assert again.absent_since == {("hz", "5000"): NOW, ("hz", "5002"): later}
    assert again.last_made == {("hz", "4711"): NOW}


def test_run_state_absences_of_one_account_leave_the_others_alone(tmp_path):
    state = RunState(tmp_path / "s.json", NOW)
    state.record_absent("hz", {"1"}, NOW)
    state.record_absent("do", set(), NOW)
    assert state.absent_since == {("hz", "1"): NOW}


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "[]",
        '{"absent_since": 3}',
        '{"last_made": [["hz", "1", "soon"], ["hz"], ["hz", "2", "2026-11-25T03:00:00"]]}',
    ],
)
def test_run_state_reads_a_garbled_file_as_empty(tmp_path, content):
    path = tmp_path / "s.json"
    path.write_text(content)
    state = RunState(path, NOW)
    assert state.absent_since == {} and state.last_made == {}


def test_run_state_forgets_records_older_than_it_keeps(tmp_path):
    path = tmp_path / "s.json"
    state = RunState(path, NOW)
    state.record_made("hz", "1", NOW)
    state.save()
    assert RunState(path, NOW + timedelta(days=401)).last_made == {}


def test_run_state_that_cannot_be_saved_raises_for_the_caller_to_fail_the_run(tmp_path):
    path = tmp_path / "s.json"
    path.mkdir()  # a folder where the file belongs
    state = RunState(path, NOW)
    state.record_made("hz", "1", NOW)
    with pytest.raises(StateFileError, match=f"^cannot use run state {path}: "):
        state.save()


def test_run_state_others_may_write_is_refused_not_read_as_empty(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"last_made": [["hz", "1", "2026-11-26T03:00:00+00:00"]]}')
    path.chmod(0o666)
    with pytest.raises(UnsafeStateFile, match=r"others may write it \(mode 0666\)"):
        RunState(path, NOW)


def test_run_state_keeps_each_targets_last_run_and_drill_across_runs(tmp_path):
    now = utc(2026, 3, 1, 3)
    state = RunState(tmp_path / "state.json", now)
    state.record_run("acct", "1", "web", LastRun(now, ok=False, error="HTTP 500"))
    state.record_drill("acct", "1", "web", LastDrill(now, True, "77", restore_seconds=41.5))
    state.save()

    again = RunState(tmp_path / "state.json", now + timedelta(hours=1))
    assert again.last_runs == {("acct", "1", "web"): LastRun(now, False, "HTTP 500")}
    assert again.last_drills == {("acct", "1", "web"): LastDrill(now, True, "77", 41.5)}


def test_run_state_skips_a_malformed_drill_record_and_keeps_the_rest(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(
        '{"last_drills": [["a", "1", "web", {"when": "not a time"}],'
        ' ["a", "2", "db", {"when": "2026-03-01T03:00:00+00:00", "passed": false,'
        ' "snapshot_id": "9"}], ["a", "3", "x", {"when": "2026-03-01T03:00:00"}]]}'
    )
    path.chmod(0o600)
    state = RunState(path, utc(2026, 3, 2))
    assert list(state.last_drills) == [("a", "2", "db")]
    assert state.last_drills[("a", "2", "db")].passed is False


@pytest.mark.parametrize(
    "fields",
    [
        {"passed": "no", "snapshot_id": "9"},  # a truthy string: read as passed
        {"passed": True, "snapshot_id": "9", "restore_seconds": "fast"},
        {"passed": True, "snapshot_id": "9", "restore_seconds": [1]},
        {"passed": True, "snapshot_id": "9", "error": 7},
        {"passed": 1, "snapshot_id": "9"},
        {"passed": True, "snapshot_id": None},
    ],
)
def test_run_state_skips_a_drill_record_whose_fields_have_the_wrong_type(tmp_path, fields):
    """An edited run state: `status` formatted such a record with a traceback, and read
    "passed": "no" as passed. A record not as written is skipped: the drill comes due, and
    status says it knows none."""
    import json

    path = tmp_path / "state.json"
    record = {"when": "2026-03-01T03:00:00+00:00", **fields}
    path.write_text(json.dumps({"last_drills": [["a", "1", "web", record]]}))
    path.chmod(0o600)
    assert RunState(path, utc(2026, 3, 2)).last_drills == {}


@pytest.mark.parametrize("fields", [{"ok": "no"}, {"ok": True, "error": 5}])
def test_run_state_skips_a_run_record_whose_fields_have_the_wrong_type(tmp_path, fields):
    import json

    path = tmp_path / "state.json"
    record = {"when": "2026-03-01T03:00:00+00:00", **fields}
    path.write_text(json.dumps({"last_runs": [["a", "1", "web", record]]}))
    path.chmod(0o600)
    assert RunState(path, utc(2026, 3, 2)).last_runs == {}
