"""Pins and soft deletion through the CLI against the sandbox, on both clouds (issue 23,
item 2; docs/promises.md §5.16). Days come from the test's clock, never today's date."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from snapshot_policy.cli import main
from snapshot_policy.state.runlock import run_lock
from tests.e2e.cloud import legacy_name
from tests.e2e.policies import DB, WEB, policy_yaml

SERVERS = {"web": ("do", "web-1"), "db": ("hz", "db-1")}
BOTH = pytest.mark.parametrize("target", ["web", "db"])


@pytest.fixture
def write_policy(tmp_path, tokens):
    def write(**settings) -> str:
        path = tmp_path / "snapshot-policy.yaml"
        path.write_text(
            policy_yaml(
                WEB,
                DB,
                settings={
                    "lock_file": str(tmp_path / "run" / "snapshot-policy.lock"),
                    "audit_log": str(tmp_path / "run" / "audit.jsonl"),
                    **settings,
                },
            )
        )
        return str(path)

    return write


def snapshot_named(sandbox, name: str):
    return next(s for s in sandbox.state.snapshots.values() if s.name == name)


def marks(snapshot) -> set[str]:
    """Its labels (Hetzner, `key=value`) or tags (DigitalOcean)."""
    return {f"{k}={v}" for k, v in snapshot.labels.items()} | set(snapshot.tags)


def day(clock, days: int) -> str:
    return (clock.now + timedelta(days=days)).date().isoformat()


def run(argv: list[str], clock, capsys) -> tuple[int, str, str]:
    code = main(argv, clock=clock)
    out, err = capsys.readouterr()
    return code, out, err


def audit(tmp_path) -> list[dict]:
    path = tmp_path / "run" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@BOTH
def test_pin_keeps_a_snapshot_retention_lets_go_and_unpin_gives_it_back(
    sandbox, clock, capsys, write_policy, tmp_path, target
):
    policy = write_policy()
    account, server = SERVERS[target]
    oldest = snapshot_named(sandbox, legacy_name(server, clock.now, 5))
    until = day(clock, 30)
    code, out, err = run(
        ["pin", "--policy", policy, str(oldest.id), "--until", until, "--note", "audit 2026"],
        clock,
        capsys,
    )
    assert code == 0, err
    assert f"pinned {oldest.name} (id {oldest.id}, target {target}" in out
    assert f"until {until} (audit_2026)" in out
    if target == "db":
        assert oldest.protected and "delete protection: set" in out
        assert {f"snapshot-policy/pinned-until={until}", "snapshot-policy/pin-protected=true"} <= (
            marks(oldest)
        )
    else:
        assert "DigitalOcean has no delete protection" in out
        assert f"snapshot-policy-pinned-until-{until}" in marks(oldest)
        assert "snapshot-policy-pin-note-audit_2026" in marks(oldest)
    code, out, _ = run(["plan", "--policy", policy, "--target", target], clock, capsys)
    assert f"kept by: pinned until {until} (audit_2026)" in out.replace("\n      ", " ")
    code, out, _ = run(["plan", "--policy", policy, "--output", "json"], clock, capsys)
    document = next(t for t in json.loads(out)["targets"] if t["target"] == target)
    kept = next(s for s in document["keep"] if s["id"] == str(oldest.id))
    assert kept["pin"] == {"until": until, "note": "audit_2026", "protected_by_us": target == "db"}
    assert any(f"pinned until {until}" in rule for rule in kept["rules"])
    assert run(["apply", "--policy", policy], clock, capsys)[0] == 0
    assert oldest.id in sandbox.state.snapshots  # retention alone would have let it go
    code, out, err = run(["unpin", "--policy", policy, str(oldest.id)], clock, capsys)
    assert code == 0, err
    assert f"unpinned {oldest.name}" in out
    assert not oldest.protected and not {m for m in marks(oldest) if "pin" in m}
    if target == "db":
        assert "delete protection: lifted" in out
    events = [(line["event"], line["snapshot_id"]) for line in audit(tmp_path)]
    assert ("pinned", str(oldest.id)) in events and ("unpinned", str(oldest.id)) in events
    clock.advance(days=1)
    assert run(["apply", "--policy", policy], clock, capsys)[0] == 0
    assert oldest.id not in sandbox.state.snapshots


def test_a_protection_pin_did_not_set_is_left_on(sandbox, clock, capsys, write_policy):
    policy = write_policy()
    manual_protected = snapshot_named(sandbox, legacy_name("db-1", clock.now, 4))
    manual_protected.protected = True
    code, out, _ = run(
        ["pin", "--policy", policy, str(manual_protected.id), "--until", day(clock, 3)],
        clock,
        capsys,
    )
    assert code == 0 and "it was not set by pin, so unpin leaves it" in out
    assert "snapshot-policy/pin-protected=true" not in marks(manual_protected)
    code, out, _ = run(["unpin", "--policy", policy, str(manual_protected.id)], clock, capsys)
    assert code == 0 and "left on (pin did not set it)" in out
    assert manual_protected.protected


def test_an_expired_pin_is_unpinned_by_apply_and_deleted_only_by_a_later_run(
    sandbox, clock, capsys, write_policy
):
    policy = write_policy()
    oldest = snapshot_named(sandbox, legacy_name("db-1", clock.now, 5))
    assert (
        run(["pin", "--policy", policy, str(oldest.id), "--until", day(clock, 1)], clock, capsys)[0]
        == 0
    )
    clock.advance(days=1)
    code, out, _ = run(["plan", "--policy", policy, "--target", "db"], clock, capsys)
    assert f"kept by: pinned until {day(clock, 0)}" in out.replace("\n      ", " ")
    clock.advance(days=1)  # the pin's day is over
    code, out, _ = run(["plan", "--policy", policy, "--target", "db"], clock, capsys)
    assert f"~ unpin {oldest.name}" in out
    assert "1 to unpin" in out.replace("\n", " ")
    assert run(["apply", "--policy", policy], clock, capsys)[0] == 0
    assert oldest.id in sandbox.state.snapshots and not oldest.protected
    assert not {m for m in marks(oldest) if "pin" in m}
    clock.advance(days=1)
    assert run(["apply", "--policy", policy], clock, capsys)[0] == 0
    assert oldest.id not in sandbox.state.snapshots


@BOTH
def test_soft_delete_marks_waits_the_grace_and_undelete_takes_a_mark_back(
    sandbox, clock, capsys, write_policy, tmp_path, target
):
    policy = write_policy(soft_delete="7d")
    account, server = SERVERS[target]
    keep = 3 if target == "web" else 2
    doomed = [snapshot_named(sandbox, legacy_name(server, clock.now, d)) for d in range(keep, 6)]
    start = clock.now
    code, out, _ = run(["plan", "--policy", policy, "--target", target], clock, capsys)
    flat = out.replace("\n      ", " ")
    assert f"{len(doomed)} to mark pending deletion" in out.replace("\n", " ")
    grace_day = (start + timedelta(days=7)).date().isoformat()
    assert f"marked pending deletion, deleted from {grace_day}" in flat
    code, out, err = run(["apply", "--policy", policy, "--target", target], clock, capsys)
    assert code == 0
    assert "0 deleted, 0 failed" in out + err
    assert f"; {len(doomed)} marked pending deletion" in out + err
    assert all(s.id in sandbox.state.snapshots for s in doomed)  # nothing deleted yet
    if target == "db":
        assert all(f"snapshot-policy/pending-delete={grace_day}" in marks(s) for s in doomed)
    else:
        assert all(f"snapshot-policy-pending-delete-{grace_day}" in marks(s) for s in doomed)
    events = [line["event"] for line in audit(tmp_path)]
    assert events.count("marked pending deletion") == len(doomed)
    # three days on: still waiting, and plan and status say until when
    clock.advance(days=3)
    code, out, _ = run(["plan", "--policy", policy, "--target", target], clock, capsys)
    assert f"pending deletion: deleted from {grace_day}" in out.replace("\n      ", " ")
    code, out, _ = run(
        ["status", "--policy", policy, "--target", target, "--output", "json"], clock, capsys
    )
    document = json.loads(out)
    assert json.dumps(document).count(grace_day) >= len(doomed)
    code, out, _ = run(["status", "--policy", policy, "--target", target], clock, capsys)
    assert f"{len(doomed)} pending deletion" in out and grace_day in out
    # undelete one: its mark is gone; the next apply marks it again with a full grace
    saved = doomed[0]
    code, out, err = run(["undelete", "--policy", policy, str(saved.id)], clock, capsys)
    assert code == 0, err
    assert f"undeleted {saved.name}" in out and f"(from {grace_day})" in out
    assert not {m for m in marks(saved) if "pending" in m}
    assert run(["apply", "--policy", policy, "--target", target], clock, capsys)[0] == 0
    later_day = (clock.now + timedelta(days=7)).date().isoformat()
    assert any(later_day in m for m in marks(saved))
    # the grace is over for the others: deleted; the undeleted one waits its new grace
    clock.now = start + timedelta(days=7, hours=1)
    code, out, _ = run(["apply", "--policy", policy, "--target", target], clock, capsys)
    assert code == 0
    assert [s.id in sandbox.state.snapshots for s in doomed] == [True] + [False] * (len(doomed) - 1)
    assert saved.id in sandbox.state.snapshots
    deleted = [line for line in audit(tmp_path) if line["event"] == "deleted"]
    assert {line["snapshot_id"] for line in deleted} == {str(s.id) for s in doomed[1:]}


def test_max_deletions_counts_real_deletions_not_marks(sandbox, clock, capsys, tmp_path, tokens):
    path = tmp_path / "p.yaml"
    db = {**DB, "safety": {"max_deletions": 1}}
    path.write_text(
        policy_yaml(db, settings={"lock_file": str(tmp_path / "l.lock"), "soft_delete": "1d"})
    )
    # four to let go: marked, not refused
    code, out, _ = run(["apply", "--policy", str(path)], clock, capsys)
    assert code == 0, out
    pending = [
        s for s in sandbox.state.snapshots.values() if "snapshot-policy/pending-delete" in s.labels
    ]
    assert len(pending) == 4
    clock.advance(days=1, hours=1)
    # now four are due: more than max_deletions 1, refused whole, nothing deleted
    code, out, err = run(["apply", "--policy", str(path)], clock, capsys)
    assert code == 1 or code == 2
    assert all(s.id in sandbox.state.snapshots for s in pending)


def test_refusals_say_why_and_change_nothing(sandbox, clock, capsys, write_policy, tmp_path):
    policy = write_policy()
    oldest = snapshot_named(sandbox, legacy_name("db-1", clock.now, 5))
    before = marks(oldest)
    code, _, err = run(
        ["pin", "--policy", policy, str(oldest.id), "--until", day(clock, -1)], clock, capsys
    )
    assert code == 1 and "is in the past" in err
    code, _, err = run(
        ["pin", "--policy", policy, str(oldest.id), "--until", "someday"], clock, capsys
    )
    assert code == 1 and "YYYY-MM-DD" in err
    manual = snapshot_named(sandbox, "web-1-before-upgrade")
    code, _, err = run(
        ["pin", "--policy", policy, str(manual.id), "--until", day(clock, 3)], clock, capsys
    )
    assert code == 1 and "is not managed by this configuration" in err
    code, _, err = run(
        ["pin", "--policy", policy, "999999", "--until", day(clock, 3)], clock, capsys
    )
    assert code == 1 and "no snapshot 999999" in err
    code, _, err = run(["unpin", "--policy", policy, str(oldest.id)], clock, capsys)
    assert code == 1 and "is not pinned" in err
    code, _, err = run(["undelete", "--policy", policy, str(oldest.id)], clock, capsys)
    assert code == 1 and "is not marked pending deletion" in err
    assert marks(oldest) == before and not oldest.protected
    with run_lock(str(tmp_path / "run" / "snapshot-policy.lock")):
        code, _, err = run(
            ["pin", "--policy", policy, str(oldest.id), "--until", day(clock, 3)], clock, capsys
        )
    assert code == 3
    assert marks(oldest) == before


@BOTH
def test_a_mark_the_cloud_refuses_fails_the_target_and_deletes_nothing(
    sandbox, clock, capsys, write_policy, target
):
    policy = write_policy(soft_delete="7d")
    account, server = SERVERS[target]
    before = {s.id for s in sandbox.state.snapshots.values()}
    if target == "db":
        sandbox.inject(
            "error", service="hetzner", method="PUT", path="/images/", status=422, count=None
        )
    else:
        sandbox.inject(
            "error",
            service="digitalocean",
            method="POST",
            path="/tags/snapshot-policy-pending",
            status=422,
            count=None,
        )
    code, out, err = run(["apply", "--policy", policy, "--target", target], clock, capsys)
    assert code == 1, out + err
    assert "marked pending deletion" in (out + err)
    # the new snapshot was made; nothing was deleted, nothing marked
    assert before <= {s.id for s in sandbox.state.snapshots.values()}
    assert not [m for s in sandbox.state.snapshots.values() for m in marks(s) if "pending" in m]
