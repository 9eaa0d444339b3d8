"""Saved plans: `read_plan_file` accepts what `plan --out` writes and refuses anything else with
a message naming the file; `replay` refuses when the snapshots or the targets changed since the
plan was saved, and otherwise carries out only the deletions the saved plan lists among those
the fresh observation still has, under the saved create name."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from snapshot_policy import render
from snapshot_policy.model import ActionKind
from snapshot_policy.planfile import PlanFileError, read_plan_file, replay
from snapshot_policy.reconcile import build_plan
from tests.factories import snap, target, utc

NOW = utc(2026, 11, 26, 3)
HISTORY = (
    snap(utc(2026, 11, 25, 3), id="11"),
    snap(utc(2026, 11, 24, 3), id="10"),
    snap(utc(2026, 11, 23, 3), id="9"),
    snap(utc(2026, 1, 1), id="3", managed=False),
)
WEB = target(keep_last=2)
DB = replace(WEB, name="db", server_id="2", server_name="db-1", provider="digitalocean")


def plan(history=HISTORY, now=NOW, targets=(WEB,)):
    """keep_last 2 over HISTORY: create one, keep 11, delete 10 and 9, skip the unmanaged 3."""
    return build_plan([(t, history) for t in targets], now)


def saved(fresh=None) -> dict:
    return json.loads(render.plan_json(fresh or plan()))


def decisions(replayed) -> list[tuple[str, str]]:
    [only] = replayed.targets
    return [(a.kind.value, a.snapshot.id) for a in only.actions]


def test_read_plan_file_accepts_what_plan_json_writes(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(render.plan_json(plan()), encoding="utf-8")
    assert read_plan_file(path) == saved()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot read plan file {path}: No such file or directory"),
        (b'{"note": "caf\xe9"}', "cannot read plan file {path}: 'utf-8' codec can't decode byte 0xe9"),
        (b"format_version: 1\n", "{path} is not a saved plan (not JSON: Expecting value on line 1)"),
        (b"[]", "{path} is not a saved plan of format 1; make one with `snapshot-policy plan --out FILE`"),
        (b'{"format_version": 2, "targets": []}', "{path} is not a saved plan of format 1; make one with `snapshot-policy plan --out FILE`"),
        (b'{"format_version": "1", "targets": []}', "{path} is not a saved plan of format 1; make one with `snapshot-policy plan --out FILE`"),
        (b'{"format_version": 1, "targets": {}}', "{path} is not a saved plan of format 1; make one with `snapshot-policy plan --out FILE`"),
        (b'{"format_version": 1}', "{path} is not a saved plan of format 1; make one with `snapshot-policy plan --out FILE`"),
    ],
    ids=["missing", "not-utf8", "not-json", "not-an-object", "other-version", "version-as-text", "targets-not-a-list", "no-targets"],
)
def test_read_plan_file_refuses_what_is_not_a_saved_plan(tmp_path, content, says):
    path = tmp_path / "plan.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PlanFileError, match="^" + re.escape(says.format(path=path))):
        read_plan_file(path)


@pytest.mark.parametrize(
    "history",
    [
        HISTORY + (snap(utc(2026, 11, 25, 15), id="12"),),
        HISTORY[1:],
        (replace(HISTORY[0], protected=True), *HISTORY[1:]),
        (replace(HISTORY[0], creating=True), *HISTORY[1:]),
    ],
    ids=["one-added", "one-gone", "one-now-protected", "one-now-being-created"],
)
def test_replay_refuses_when_the_snapshots_changed_since(tmp_path, history):
    path = tmp_path / "plan.json"
    with pytest.raises(PlanFileError, match=re.escape(f"the snapshots changed since {path} was made; nothing was changed")):
        replay(saved(), plan(history), path)


@pytest.mark.parametrize(("then", "now"), [((WEB,), (WEB, DB)), ((WEB, DB), (WEB,))], ids=["target-added", "target-removed"])
def test_replay_refuses_when_the_targets_differ(tmp_path, then, now):
    """DB has no snapshots, so the fingerprint alone cannot tell the two plans apart."""
    path = tmp_path / "plan.json"
    before, after = plan(targets=then), plan(targets=now)
    assert before.fingerprint == after.fingerprint
    with pytest.raises(PlanFileError, match=re.escape(f"the targets differ from those in {path}")):
        replay(saved(before), after, path)


def test_replay_of_an_unchanged_world_carries_out_the_saved_plan(tmp_path):
    replayed = replay(saved(), plan(), tmp_path / "plan.json")
    assert decisions(replayed) == [("create", ""), ("keep", "11"), ("delete", "10"), ("delete", "9"), ("skip", "3")]
    assert [a.reason for a in replayed.targets[0].of_kind(ActionKind.DELETE)] == ["no retention rule keeps it"] * 2
    assert replayed.fingerprint == plan().fingerprint


def test_replay_skips_fresh_deletions_the_saved_plan_does_not_list(tmp_path):
    document = saved()
    document["targets"][0]["delete"] = [d for d in document["targets"][0]["delete"] if d["id"] != "9"]
    replayed = replay(document, plan(), tmp_path / "plan.json")
    assert decisions(replayed) == [("create", ""), ("keep", "11"), ("delete", "10"), ("skip", "9"), ("skip", "3")]
    assert replayed.targets[0].actions[3].reason == "not deleted: the saved plan keeps it"


def test_replay_deletes_no_id_the_fresh_observation_lacks(tmp_path):
    document = saved()
    document["targets"][0]["delete"].append({"id": "999", "name": "web-20261101030000", "reason": "no retention rule keeps it"})
    replayed = replay(document, plan(), tmp_path / "plan.json")
    assert [a.snapshot.id for a in replayed.targets[0].of_kind(ActionKind.DELETE)] == ["10", "9"]
    assert "999" not in {a.snapshot.id for a in replayed.targets[0].actions}


def test_replay_keeps_the_saved_create_name(tmp_path):
    """Applied an hour after it was saved: the fresh plan would name the snapshot by the new hour."""
    later = utc(2026, 11, 26, 4)
    fresh = plan(now=later)
    assert fresh.targets[0].create.snapshot.name == "web-20261126040000"
    [replayed] = replay(saved(), fresh, tmp_path / "plan.json").targets
    assert [(a.snapshot.name, a.snapshot.created, a.reason) for a in replayed.of_kind(ActionKind.CREATE)] == [
        ("web-20261126030000", later, "in the saved plan")
    ]


def test_replay_creates_nothing_the_saved_plan_does_not(tmp_path):
    document = saved()
    document["targets"][0]["create"] = None
    replayed = replay(document, plan(), tmp_path / "plan.json")
    assert replayed.targets[0].create is None
