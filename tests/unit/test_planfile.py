"""Saved plans: `read_plan_file` accepts what `plan --out` writes and refuses anything else
with a message naming the file; `agreed` treats the saved plan as a proposal (docs/promises.md §3):
it refuses a plan too old, from another configuration or other snapshots, or asking for
anything a fresh plan would not do, and otherwise carries out only what both plans agree
on, as the fresh plan words it."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta

import pytest

from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import ActionKind, RetentionPolicy, Safety, Schedule
from snapshot_policy.core.reconcile import build_plan
from snapshot_policy.output import planfile
from snapshot_policy.output.planfile import PlanFileError, agreed, read_plan_file
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
    return json.loads(planfile.plan_json(fresh or plan()))


def decisions(replayed) -> list[tuple[str, str]]:
    [only] = replayed.targets
    return [(a.kind.value, a.snapshot.id) for a in only.actions]


def test_read_plan_file_accepts_what_plan_json_writes(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(planfile.plan_json(plan()), encoding="utf-8")
    assert read_plan_file(path) == saved()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot read plan file {path}: No such file or directory"),
        (
            b'{"note": "caf\xe9"}',
            "cannot read plan file {path}: 'utf-8' codec can't decode byte 0xe9",
        ),
        (
            b"format_version: 1\n",
            "{path} is not a saved plan (not JSON: Expecting value on line 1)",
        ),
        (
            b"[]",
            "{path} is not a saved plan of format 1; "
            "make one with `snapshot-policy plan --out FILE`",
        ),
        (
            b'{"format_version": 2, "targets": []}',
            "{path} is not a saved plan of format 1; "
            "make one with `snapshot-policy plan --out FILE`",
        ),
        (
            b'{"format_version": "1", "targets": []}',
            "{path} is not a saved plan of format 1; "
            "make one with `snapshot-policy plan --out FILE`",
        ),
        (
            b'{"format_version": 1, "targets": {}}',
            "{path} is not a saved plan of format 1; "
            "make one with `snapshot-policy plan --out FILE`",
        ),
        (
            b'{"format_version": 1}',
            "{path} is not a saved plan of format 1; "
            "make one with `snapshot-policy plan --out FILE`",
        ),
    ],
    ids=[
        "missing",
        "not-utf8",
        "not-json",
        "not-an-object",
        "other-version",
        "version-as-text",
        "targets-not-a-list",
        "no-targets",
    ],
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
        (*HISTORY[:3], replace(HISTORY[3], managed=True)),
    ],
    ids=["one-added", "one-gone", "one-now-protected", "one-now-being-created", "one-now-managed"],
)
def test_agreed_refuses_when_the_snapshots_changed_since(tmp_path, history):
    path = tmp_path / "plan.json"
    with pytest.raises(
        PlanFileError,
        match=re.escape(f"the snapshots changed since {path} was made; nothing was changed"),
    ):
        agreed(saved(), plan(history), path)


@pytest.mark.parametrize(
    ("then", "now"),
    [((WEB,), (WEB, DB)), ((WEB, DB), (WEB,))],
    ids=["target-added", "target-removed"],
)
def test_agreed_refuses_when_the_targets_differ(tmp_path, then, now):
    """DB has no snapshots, so the snapshot fingerprint alone cannot tell the two plans apart."""
    path = tmp_path / "plan.json"
    before, after = plan(targets=then), plan(targets=now)
    assert before.fingerprint == after.fingerprint
    document = saved(before)
    document["config_fingerprint"] = after.config_fingerprint  # past the configuration check
    with pytest.raises(PlanFileError, match=re.escape(f"the targets differ from those in {path}")):
        agreed(document, after, path)


@pytest.mark.parametrize(
    "changed",
    [
        replace(WEB, retention=RetentionPolicy(keep_last=30)),
        replace(WEB, safety=Safety(max_deletions=1)),
        replace(WEB, schedule=Schedule(every=Duration(days=7))),
    ],
    ids=["retention", "safety", "schedule"],
)
def test_agreed_refuses_a_plan_from_another_configuration(tmp_path, changed):
    """A plan made under keep_last 2 applied under keep_last 30 (or a lower max_deletions) must
    not delete."""
    path = tmp_path / "plan.json"
    with pytest.raises(
        PlanFileError, match=re.escape(f"{path} was made from another configuration")
    ):
        agreed(saved(), plan(targets=(changed,)), path)


@pytest.mark.parametrize(
    ("applied_at", "says"),
    [
        (
            NOW + timedelta(hours=25),
            "was made at 2026-11-26T03:00:00Z, 25.0 h ago, "
            "past the limit of 24.0 h (--max-plan-age)",
        ),
        (NOW - timedelta(hours=1), "is dated 2026-11-26T03:00:00Z, ahead of this run's clock"),
    ],
    ids=["too-old", "from-the-future"],
)
def test_agreed_refuses_a_plan_too_old_or_dated_ahead(tmp_path, applied_at, says):
    path = tmp_path / "plan.json"
    with pytest.raises(PlanFileError, match=re.escape(f"{path} {says}")):
        agreed(saved(), plan(now=applied_at), path)


def test_agreed_takes_a_longer_age_limit_when_given(tmp_path):
    later = NOW + timedelta(hours=25)
    assert (
        agreed(saved(), plan(now=later), tmp_path / "plan.json", max_age=timedelta(days=2)).made_at
        == later
    )


@pytest.mark.parametrize(
    "made_at", [None, "2020", "yesterday"], ids=["missing", "only-a-year", "words"]
)
def test_agreed_refuses_a_plan_that_does_not_say_when_it_was_made(tmp_path, made_at):
    """A plan whose age cannot be read is refused, never taken as new."""
    document = saved()
    document["made_at"] = made_at
    with pytest.raises(PlanFileError):
        agreed(document, plan(), tmp_path / "plan.json")


def test_agreed_of_an_unchanged_world_carries_out_the_fresh_plan(tmp_path):
    result = agreed(saved(), plan(), tmp_path / "plan.json")
    assert decisions(result) == [
        ("create", ""),
        ("keep", "11"),
        ("delete", "10"),
        ("delete", "9"),
        ("skip", "3"),
    ]
    assert [a.reason for a in result.targets[0].of_kind(ActionKind.DELETE)] == [
        "no retention rule keeps it"
    ] * 2
    assert result.fingerprint == plan().fingerprint


def test_agreed_skips_fresh_deletions_the_saved_plan_does_not_list(tmp_path):
    document = saved()
    document["targets"][0]["delete"] = [
        d for d in document["targets"][0]["delete"] if d["id"] != "9"
    ]
    result = agreed(document, plan(), tmp_path / "plan.json")
    assert decisions(result) == [
        ("create", ""),
        ("keep", "11"),
        ("delete", "10"),
        ("skip", "9"),
        ("skip", "3"),
    ]
    assert result.targets[0].actions[3].reason == "not deleted: the saved plan keeps it"


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (
            {"id": "3", "name": "web-manual"},
            "web: the saved plan deletes web-20260101000000 (3); "
            "a fresh plan would skip it: unmanaged: no managed-by label",
        ),
        (
            {"id": "11", "name": "web-20261125030000"},
            "web: the saved plan deletes web-20261125030000 (11); "
            "a fresh plan would keep it: kept by: last",
        ),
        (
            {"id": "999", "name": "web-20261101030000"},
            "web: the saved plan deletes web-20261101030000 (999), "
            "which a fresh listing does not show",
        ),
    ],
    ids=["unmanaged", "newest-kept", "unknown-id"],
)
def test_agreed_refuses_the_whole_plan_when_it_deletes_what_a_fresh_plan_would_not(
    tmp_path, extra, says
):
    """A hand-edited plan: every difference is listed and nothing at all is carried out."""
    path = tmp_path / "plan.json"
    document = saved()
    document["targets"][0]["delete"].append({**extra, "reason": "edited in"})
    with pytest.raises(PlanFileError) as refused:
        agreed(document, plan(), path)
    assert str(refused.value).startswith(
        f"{path} asks for what a fresh plan would not do, so the whole plan is refused; "
        "nothing was changed"
    )
    assert str(refused.value).endswith(f"\n  - {says}")


def test_agreed_ignores_a_refusal_edited_out_of_the_file(tmp_path):
    """The fresh plan refuses 2 deletions over max_deletions 1; the file's `refused: null` changes
    nothing."""
    strict = replace(WEB, safety=Safety(max_deletions=1))
    document = saved(plan(targets=(strict,)))
    document["targets"][0]["refused"] = None
    result = agreed(document, plan(targets=(strict,)), tmp_path / "plan.json")
    assert result.targets[0].of_kind(ActionKind.DELETE) == () and result.targets[
        0
    ].refusal.startswith("refused: 2 deletions")
    document["targets"][0]["delete"] = [{"id": "10", "name": "web-20261124030000"}]
    with pytest.raises(
        PlanFileError,
        match="a fresh plan would skip it: refused: 2 deletions exceed max_deletions 1",
    ):
        agreed(document, plan(targets=(strict,)), tmp_path / "plan.json")


def test_agreed_names_the_snapshot_by_the_fresh_plan(tmp_path):
    """Applied an hour after it was saved: the name comes from this run's clock, not the file."""
    later = utc(2026, 11, 26, 4)
    document = saved()
    document["targets"][0]["create"]["name"] = "something-else"
    [result] = agreed(document, plan(now=later), tmp_path / "plan.json").targets
    assert [a.snapshot.name for a in result.of_kind(ActionKind.CREATE)] == ["web-20261126040000"]


def test_agreed_creates_nothing_the_saved_plan_does_not(tmp_path):
    document = saved()
    document["targets"][0]["create"] = None
    result = agreed(document, plan(), tmp_path / "plan.json")
    assert result.targets[0].create is None


def test_agreed_refuses_a_create_the_fresh_plan_would_not_make(tmp_path):
    """Saved when a snapshot was due; applied when it is not (one was made since)."""
    daily = replace(WEB, schedule=Schedule(every=Duration(days=1)))
    fresh_history = (snap(utc(2026, 11, 26, 2), id="12"), *HISTORY)
    document = saved(plan(targets=(daily,)))
    document["fingerprint"] = plan(fresh_history, targets=(daily,)).fingerprint
    with pytest.raises(
        PlanFileError,
        match="web: the saved plan creates a snapshot; a fresh plan does not \\(not due",
    ):
        agreed(document, plan(fresh_history, targets=(daily,)), tmp_path / "plan.json")


@pytest.mark.parametrize(
    "deletes", ["x", [1], [{"name": "no id"}]], ids=["not-a-list", "not-objects", "no-id"]
)
def test_agreed_refuses_malformed_deletions_with_a_message(tmp_path, deletes):
    document = saved()
    document["targets"][0]["delete"] = deletes
    with pytest.raises(PlanFileError, match="the saved plan's deletions for web are malformed"):
        agreed(document, plan(), tmp_path / "plan.json")


# -- restore drills (issue 22) -----------------------------------------------------------


def test_a_saved_plan_runs_only_the_drills_it_planned_too(tmp_path):
    from tests.unit.test_render import drill_plan

    fresh = drill_plan()
    document = json.loads(planfile.plan_json(fresh))
    replayed = agreed(document, fresh, tmp_path / "plan.json")
    assert replayed.drills == fresh.drills
    document["drills"] = [d for d in document["drills"] if d["target"] != "web"]
    replayed = agreed(document, fresh, tmp_path / "plan.json")
    by_name = {d.target.name: d for d in replayed.drills}
    assert (by_name["web"].due, by_name["web"].note) == (
        False,
        f"not due: {tmp_path / 'plan.json'} does not plan this drill",
    )
    assert by_name["db"] == {d.target.name: d for d in fresh.drills}["db"]
    del document["drills"]  # a plan saved before drills existed runs none
    assert not any(d.due for d in agreed(document, fresh, tmp_path / "p.json").drills)
