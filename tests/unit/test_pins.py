"""Pins and soft deletion, decision by decision (docs/promises.md §5.16; issue 23, item 2).

Snapshots are classified from listings carrying the marks as the clouds show them, so the
parsing (core/ownership) and the decisions (core/pins, core/reconcile) are tested together.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapshot_policy.core import commands, events, ownership, pins
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.lifecycle import Lifecycle
from snapshot_policy.core.model import (
    DIGITALOCEAN,
    ActionKind,
    CloudSnapshot,
    Pin,
    PlanAction,
)
from snapshot_policy.core.reconcile import build_plan, plan_target, standing_deletions
from tests.factories import target, utc

NOW = utc(2026, 12, 7, 15, 0)
WEEK = Duration(days=7)
HZ_MARK = {"managed-by": "snapshot-policy", "snapshot-policy/server-id": "1"}


def listed(day: int, labels: dict | None = None, *, protected: bool = False, sid: str = ""):
    """A managed Hetzner snapshot of server 1 made on 2026-11-`day` at 03:00."""
    created = utc(2026, 11, day, 3)
    cloud = CloudSnapshot(
        sid or f"s{day}",
        f"web-{created:%Y%m%d%H%M%S}",
        created,
        "1",
        {**HZ_MARK, **(labels or {})},
        protected=protected,
    )
    return ownership.classify(target(keep_last=1), cloud)


def kinds(plan):
    return {a.snapshot.id: a.kind for a in plan.actions if a.kind is not ActionKind.CREATE}


def reason(plan, sid):
    return next(a.reason for a in plan.actions if a.snapshot.id == sid)


# -- marks ----------------------------------------------------------------------------------


def test_marks_are_parsed_from_labels_and_tags():
    labels = {
        "snapshot-policy/pinned-until": "2027-01-31",
        "snapshot-policy/pin-note": "audit",
        "snapshot-policy/pin-protected": "true",
        "snapshot-policy/pending-delete": "2026-12-14",
    }
    assert ownership.pin_mark("hetzner", labels) == Pin(date(2027, 1, 31), "audit", True)
    assert ownership.pending_mark("hetzner", labels) == date(2026, 12, 14)
    tags = {
        "snapshot-policy-pinned-until-2027-01-31": "",
        "snapshot-policy-pinned-until-2027-03-01": "",
        "snapshot-policy-pin-note-audit": "",
        "snapshot-policy-pending-delete-2026-12-14": "",
        "snapshot-policy-pending-delete-2026-12-20": "",
    }
    # tags accumulate: the latest day wins, the reading that deletes less
    assert ownership.pin_mark(DIGITALOCEAN, tags) == Pin(date(2027, 3, 1), "audit")
    assert ownership.pending_mark(DIGITALOCEAN, tags) == date(2026, 12, 20)


def test_marks_that_do_not_parse_are_no_marks_and_are_named():
    labels = {
        "snapshot-policy/pinned-until": "soon",
        "snapshot-policy/pending-delete": "2026-13-01",
    }
    assert ownership.pin_mark("hetzner", labels) is None
    assert ownership.pending_mark("hetzner", labels) is None
    assert ownership.unreadable_marks("hetzner", labels) == (
        "snapshot-policy/pinned-until=soon",
        "snapshot-policy/pending-delete=2026-13-01",
    )
    tags = {"snapshot-policy-pending-delete-tomorrow": ""}
    assert ownership.pending_mark(DIGITALOCEAN, tags) is None
    assert ownership.unreadable_marks(DIGITALOCEAN, tags) == (
        "snapshot-policy-pending-delete-tomorrow",
    )


def test_notes_are_made_safe_for_labels_and_tags():
    assert ownership.safe_note("hetzner", "keep for the audit!") == "keep_for_the_audit"
    assert ownership.safe_note(DIGITALOCEAN, "ticket #42: audit") == "ticket__42:_audit"
    assert len(ownership.safe_note("hetzner", "x" * 200)) == 63


# -- pins -----------------------------------------------------------------------------------


def test_a_pinned_snapshot_is_kept_until_its_day_inclusive_then_let_go():
    old = listed(
        1, {"snapshot-policy/pinned-until": "2026-12-07", "snapshot-policy/pin-note": "q4"}
    )
    plan = plan_target(target(keep_last=1), [listed(20), old], NOW)
    assert kinds(plan)["s1"] is ActionKind.KEEP
    assert reason(plan, "s1") == "kept by: pinned until 2026-12-07 (q4)"
    next_day = plan_target(target(keep_last=1), [listed(20), old], NOW + timedelta(days=1))
    assert kinds(next_day)["s1"] is ActionKind.DELETE


def test_the_pin_day_is_read_in_the_targets_timezone():
    old = listed(1, {"snapshot-policy/pinned-until": "2026-12-07"})
    late = utc(2026, 12, 7, 23, 30)  # already 8 December in Berlin
    utc_plan = plan_target(target(keep_last=1), [listed(20), old], late)
    berlin = plan_target(target(keep_last=1, timezone="Europe/Berlin"), [listed(20), old], late)
    assert kinds(utc_plan)["s1"] is ActionKind.KEEP
    assert kinds(berlin)["s1"] is ActionKind.DELETE


def test_a_pin_adds_to_the_rules_and_is_not_counted_as_a_deletion():
    old = listed(1, {"snapshot-policy/pinned-until": "2027-01-31"})
    plan = plan_target(target(keep_last=1, max_deletions=2), [listed(20), listed(10), old], NOW)
    assert kinds(plan) == {
        "s20": ActionKind.DELETE,
        "s10": ActionKind.DELETE,
        "s1": ActionKind.KEEP,
    }
    assert plan.refusal is None  # two deletions within the limit: the pin is not one


def test_an_expired_pin_the_tool_protected_is_unpinned_not_deleted_in_that_run():
    marks = {"snapshot-policy/pinned-until": "2026-12-01", "snapshot-policy/pin-protected": "true"}
    old = listed(1, marks, protected=True)
    plan = plan_target(target(keep_last=1), [listed(20), old], NOW)
    assert kinds(plan)["s1"] is ActionKind.UNPIN
    assert "a later run deletes it" in reason(plan, "s1")
    assert plan.has_changes
    add, remove, lift = pins.relabel("hetzner", plan.actions[-1])
    assert (add, lift) == ({}, True)
    assert set(remove) == {"snapshot-policy/pinned-until", "snapshot-policy/pin-protected"}
    # once lifted (and the labels gone), the next run lets it go as any other
    after = listed(1)
    assert kinds(plan_target(target(keep_last=1), [listed(20), after], NOW))["s1"] is (
        ActionKind.DELETE
    )


def test_a_protection_someone_else_set_is_left_alone_when_the_pin_expires():
    old = listed(1, {"snapshot-policy/pinned-until": "2026-12-01"}, protected=True)
    plan = plan_target(target(keep_last=1), [listed(20), old], NOW)
    assert kinds(plan)["s1"] is ActionKind.SKIP
    assert reason(plan, "s1") == "protected; no retention rule keeps it"


def test_an_unreadable_pin_keeps_the_snapshot_and_is_a_problem():
    old = listed(1, {"snapshot-policy/pinned-until": "next-year"})
    plan = plan_target(target(keep_last=1), [listed(20), old], NOW)
    assert kinds(plan)["s1"] is ActionKind.SKIP
    assert "pin mark cannot be read" in reason(plan, "s1")
    assert any("snapshot-policy/pinned-until=next-year" in p for p in plan.problems)


# -- soft deletion --------------------------------------------------------------------------


def test_soft_delete_marks_what_retention_lets_go_with_the_grace_day():
    plan = plan_target(target(keep_last=1), [listed(20), listed(10)], NOW, soft_delete=WEEK)
    assert kinds(plan) == {"s20": ActionKind.MARK_PENDING, "s10": ActionKind.MARK_PENDING}
    marked = plan.of_kind(ActionKind.MARK_PENDING)[0]
    assert marked.snapshot.pending_delete == date(2026, 12, 14)
    assert "deleted from 2026-12-14" in marked.reason
    assert pins.relabel("hetzner", marked) == (
        {"snapshot-policy/pending-delete": "2026-12-14"},
        [],
        False,
    )


def test_a_mark_whose_day_has_come_is_deleted_one_before_is_left_alone():
    due = listed(10, {"snapshot-policy/pending-delete": "2026-12-07"})
    waiting = listed(9, {"snapshot-policy/pending-delete": "2026-12-08"})
    plan = plan_target(target(keep_last=1), [listed(20), due, waiting], NOW, soft_delete=WEEK)
    assert kinds(plan)["s10"] is ActionKind.DELETE
    assert reason(plan, "s10").endswith("pending deletion since 2026-12-07")
    assert kinds(plan)["s9"] is ActionKind.SKIP
    assert reason(plan, "s9").startswith("pending deletion: deleted from 2026-12-08")


def test_a_marked_snapshot_a_rule_keeps_again_is_unmarked():
    marked = listed(20, {"snapshot-policy/pending-delete": "2026-12-07"})
    plan = plan_target(target(keep_last=2), [marked], NOW, soft_delete=WEEK)
    assert kinds(plan) == {"s20": ActionKind.UNMARK_PENDING}
    assert reason(plan, "s20") == (
        "kept by: last; its pending deletion (from 2026-12-07) is taken back"
    )
    assert pins.relabel("hetzner", plan.actions[-1]) == (
        {},
        ["snapshot-policy/pending-delete"],
        False,
    )


def test_an_unparsable_mark_counts_as_none_and_is_marked_again_with_a_full_grace():
    garbled = listed(10, {"snapshot-policy/pending-delete": "2020-02-30"})
    plan = plan_target(target(keep_last=1), [listed(20), garbled], NOW, soft_delete=WEEK)
    assert kinds(plan)["s10"] is ActionKind.MARK_PENDING
    assert plan.of_kind(ActionKind.MARK_PENDING)[0].snapshot.pending_delete == date(2026, 12, 14)
    assert any("pending-delete=2020-02-30" in p for p in plan.problems)


def test_a_digitalocean_mark_replaces_the_tags_of_earlier_garbled_ones():
    t = replace(target(keep_last=1), provider=DIGITALOCEAN)
    tags = {"snapshot-policy": "", "snapshot-policy-pending-delete-later": ""}
    cloud = CloudSnapshot("s10", "web-x", utc(2026, 11, 10), "1", tags)
    newest = CloudSnapshot("s20", "web-y", utc(2026, 11, 20), "1", {"snapshot-policy": ""})
    observed = [ownership.classify(t, c) for c in (newest, cloud)]
    plan = plan_target(t, observed, NOW, soft_delete=WEEK)
    action = next(a for a in plan.of_kind(ActionKind.MARK_PENDING) if a.snapshot.id == "s10")
    assert pins.relabel(DIGITALOCEAN, action) == (
        {"snapshot-policy-pending-delete-2026-12-14": ""},
        ["snapshot-policy-pending-delete-later"],
        False,
    )


def test_a_pinned_and_pending_snapshot_is_kept_and_unmarked():
    both = listed(
        10,
        {
            "snapshot-policy/pinned-until": "2027-01-31",
            "snapshot-policy/pending-delete": "2026-12-01",
        },
    )
    plan = plan_target(target(keep_last=1), [listed(20), both], NOW, soft_delete=WEEK)
    assert kinds(plan)["s10"] is ActionKind.UNMARK_PENDING
    assert "pinned until 2027-01-31" in reason(plan, "s10")


def test_without_soft_delete_a_marked_snapshot_is_deleted_and_max_deletions_counts_it():
    marked = listed(10, {"snapshot-policy/pending-delete": "2027-01-01"})
    plan = plan_target(target(keep_last=1), [listed(20), marked], NOW)
    assert kinds(plan)["s10"] is ActionKind.DELETE


def test_max_deletions_counts_real_deletions_only():
    history = [listed(d) for d in (20, 19, 18, 17, 16)]
    due = listed(15, {"snapshot-policy/pending-delete": "2026-12-01"})
    plan = plan_target(target(keep_last=1, max_deletions=1), [*history, due], NOW, soft_delete=WEEK)
    assert plan.refusal is None
    assert len(plan.of_kind(ActionKind.MARK_PENDING)) == 5
    assert [a.snapshot.id for a in plan.of_kind(ActionKind.DELETE)] == ["s15"]
    per_run = build_plan(
        [(target(keep_last=1), [*history, due])], NOW, max_deletions_per_run=1, soft_delete=WEEK
    )
    assert per_run.targets[0].refusal is None
    two_due = [*history, due, listed(14, {"snapshot-policy/pending-delete": "2026-12-01"})]
    refused = build_plan(
        [(target(keep_last=1), two_due)], NOW, max_deletions_per_run=1, soft_delete=WEEK
    )
    assert refused.targets[0].refusal is not None
    # refused: the deletions become skips; the marks still go on (they delete nothing)
    assert not refused.targets[0].of_kind(ActionKind.DELETE)
    assert len(refused.targets[0].of_kind(ActionKind.MARK_PENDING)) == 5


def test_marks_stand_as_deletions_do_once_the_new_snapshot_is_made():
    """A mark is dropped when retention with the new snapshot keeps the snapshot."""
    plan = plan_target(target(keep_daily=2), [listed(20), listed(19)], NOW, soft_delete=WEEK)
    assert kinds(plan)["s19"] is ActionKind.MARK_PENDING
    made = replace(plan.create.snapshot, id="new")
    assert standing_deletions(plan, made, NOW, WEEK) == plan.of_kind(ActionKind.MARK_PENDING)
    # the lifecycle sends it as a Relabel, counted with the deletions
    life = Lifecycle(plan, 1.0, 60.0, soft_delete=WEEK)
    orders = life.on(events.Made(made, NOW))
    relabels = [c for c in orders if isinstance(c, commands.Relabel)]
    assert [c.action.kind for c in relabels] == [ActionKind.MARK_PENDING]
    done = life.on(events.Relabelled(relabels[0].action))
    assert any(
        isinstance(c, commands.Record) and c.event == "marked pending deletion" for c in done
    )
    assert any(isinstance(c, commands.Finished) for c in done)
    outcome = life.outcome()
    assert outcome.ok and outcome.deleted == ()


def test_a_failed_mark_fails_the_target_and_deletes_nothing():
    plan = plan_target(target(keep_last=1), [listed(20), listed(19)], NOW, soft_delete=WEEK)
    life = Lifecycle(plan, 1.0, 60.0, soft_delete=WEEK)
    made = replace(plan.create.snapshot, id="new")
    relabels = [c for c in life.on(events.Made(made, NOW)) if isinstance(c, commands.Relabel)]
    from snapshot_policy.core.model import ProviderError

    error = ProviderError("hetzner", "label snapshot", 500, "boom")
    for order in relabels:
        life.on(events.RelabelFailed(order.action, error))
    outcome = life.outcome()
    assert not outcome.ok and "marked pending deletion" in outcome.error
    assert outcome.deleted == ()


# -- the property --------------------------------------------------------------------------

DAYS = st.integers(min_value=-40, max_value=40)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=400),  # hours before NOW it was made
            st.one_of(st.none(), DAYS),  # pin day, relative to today
            st.one_of(st.none(), DAYS),  # pending day, relative to today
            st.booleans(),  # protected
        ),
        min_size=1,
        max_size=12,
    ),
    st.integers(min_value=0, max_value=3),
    st.one_of(st.none(), st.integers(min_value=1, max_value=20)),
)
def test_a_pinned_snapshot_is_never_deleted_or_marked(history, keep, grace_days):
    today = NOW.date()
    observed = []
    for index, (hours, pin_day, pending_day, protected) in enumerate(history):
        labels = dict(HZ_MARK)
        if pin_day is not None:
            labels["snapshot-policy/pinned-until"] = (today + timedelta(days=pin_day)).isoformat()
        if pending_day is not None:
            labels["snapshot-policy/pending-delete"] = (
                today + timedelta(days=pending_day)
            ).isoformat()
        created = NOW - timedelta(hours=hours)
        cloud = CloudSnapshot(f"h{index}", f"web-{index}", created, "1", labels, protected)
        observed.append(ownership.classify(target(keep_last=1), cloud))
    grace = Duration(days=grace_days) if grace_days else None
    plan = plan_target(target(keep_last=keep or 1), observed, NOW, soft_delete=grace)
    for action in plan.actions:
        s = action.snapshot
        if s.pin is not None and s.pin.until >= today:
            assert action.kind not in (ActionKind.DELETE, ActionKind.MARK_PENDING)
        if action.kind is ActionKind.DELETE:
            assert not s.protected
            if grace is not None:  # deleted only with a mark whose day has come
                assert s.pending_delete is not None and s.pending_delete <= today
        if action.kind is ActionKind.MARK_PENDING:
            assert grace is not None and not s.protected


def test_relabel_is_only_for_marks():
    with pytest.raises(ValueError):
        pins.relabel("hetzner", PlanAction(ActionKind.KEEP, listed(20), "kept"))


def test_a_saved_plan_carries_out_only_the_marks_it_lists(tmp_path):
    """apply --plan: a mark pending only the fresh plan asks for waits (planfile.agreed)."""
    import json

    from snapshot_policy.output import planfile

    observed = [listed(20), listed(19), listed(18)]
    fresh = build_plan([(target(keep_last=1), observed)], NOW, soft_delete=WEEK)
    document = json.loads(planfile.plan_json(fresh))
    [entry] = document["targets"]
    assert [m["pending_delete"] for m in entry["mark_pending"]] == ["2026-12-14"] * 3
    entry["mark_pending"] = [m for m in entry["mark_pending"] if m["id"] != "s18"]
    result = planfile.agreed(document, fresh, tmp_path / "plan.json")
    assert kinds(result.targets[0]) == {
        "s20": ActionKind.MARK_PENDING,
        "s19": ActionKind.MARK_PENDING,
        "s18": ActionKind.SKIP,
    }


# -- review (issue 23) ---------------------------------------------------------------------


def test_a_pending_mark_dated_before_this_tool_could_have_set_it_is_no_mark():
    """A mark is ours only if this tool could have written it: made on 2026-11-10 under a
    7-day grace, none of its marks can fall before 2026-11-17. One dated in the past by hand
    (or by a run whose clock was behind) would skip the grace: it is marked again, in full."""
    early = listed(10, {"snapshot-policy/pending-delete": "2026-11-12"})
    plan = plan_target(target(keep_last=1), [listed(20), early], NOW, soft_delete=WEEK)
    assert kinds(plan)["s10"] is ActionKind.MARK_PENDING
    marked = next(a for a in plan.of_kind(ActionKind.MARK_PENDING) if a.snapshot.id == "s10")
    assert marked.snapshot.pending_delete == date(2026, 12, 14)
    assert "2026-11-12" in marked.reason and "before" in marked.reason
    # the earliest day this tool could have written still counts
    ours = listed(10, {"snapshot-policy/pending-delete": "2026-11-17"})
    plan = plan_target(target(keep_last=1), [listed(20), ours], NOW, soft_delete=WEEK)
    assert kinds(plan)["s10"] is ActionKind.DELETE


def test_an_unreadable_pin_tag_keeps_the_snapshot_beside_an_expired_one():
    """DigitalOcean's tags accumulate: a pin tag that cannot be read keeps the snapshot (the
    reading that deletes less, docs/promises.md §5.16) even when another pin tag has expired."""
    t = replace(target(keep_last=1), provider=DIGITALOCEAN)
    tags = {
        "snapshot-policy": "",
        "snapshot-policy-pinned-until-2026-11-30": "",
        "snapshot-policy-pinned-until-2027-13-01": "",
    }
    old = CloudSnapshot("s10", "web-x", utc(2026, 11, 10), "1", tags)
    newest = CloudSnapshot("s20", "web-y", utc(2026, 11, 20), "1", {"snapshot-policy": ""})
    observed = [ownership.classify(t, c) for c in (newest, old)]
    for grace in (None, WEEK):
        plan = plan_target(t, observed, NOW, soft_delete=grace)
        assert kinds(plan)["s10"] is ActionKind.SKIP
        assert "pin mark cannot be read" in reason(plan, "s10")
