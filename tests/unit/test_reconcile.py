"""The reconciler's decisions, scenario by scenario (docs/promises.md §5)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import ActionKind, Drill, DrillMark, Schedule
from snapshot_policy.core.reconcile import (
    build_plan,
    due,
    plan_target,
    snapshot_name,
    standing_deletions,
)
from tests.factories import snap, target, utc

NOW = utc(2026, 11, 26, 3, 0, 5)
DAILY = Schedule(every=Duration(days=1))
UTC = ZoneInfo("UTC")


def names(plan, kind):
    return [a.snapshot.id for a in plan.of_kind(kind)]


def daily_history(count, server_id="1"):
    """`count` managed snapshots made at 03:00 on the days before NOW, newest first, ids d1…"""
    return [
        snap(utc(2026, 11, 25, 3) - timedelta(days=n), id=f"d{n + 1}", server_id=server_id)
        for n in range(count)
    ]


def apply_plan(plan, observed):
    """What the cloud holds after the plan runs: deletions gone, the planned snapshot added."""
    doomed = {a.snapshot for a in plan.of_kind(ActionKind.DELETE)}
    remaining = [s for s in observed if s not in doomed]
    return remaining + ([plan.create.snapshot] if plan.create else [])


def test_plan_counts_the_new_snapshot_so_keep_last_leaves_exactly_n():
    history = daily_history(5)
    plan = plan_target(target(keep_last=3), history, NOW)
    assert plan.create is not None
    assert names(plan, ActionKind.KEEP) == ["d1", "d2"]
    assert names(plan, ActionKind.DELETE) == ["d3", "d4", "d5"]
    assert len([s for s in apply_plan(plan, history) if s.managed]) == 3


def test_plan_never_deletes_or_counts_unmanaged_snapshots():
    manual = snap(utc(2020, 1, 1), id="manual", managed=False)
    plan = plan_target(target(keep_last=1), daily_history(2) + [manual], NOW)
    assert "manual" not in names(plan, ActionKind.DELETE)
    skip = plan.of_kind(ActionKind.SKIP)
    assert [(a.snapshot.id, a.reason) for a in skip] == [
        ("manual", "unmanaged: no managed-by label")
    ]
    assert names(plan, ActionKind.DELETE) == ["d1", "d2"]


def test_plan_ignores_snapshots_of_other_servers():
    other = daily_history(4, server_id="2")
    plan = plan_target(target(keep_last=1), daily_history(1) + other, NOW)
    assert {a.snapshot.server_id for a in plan.actions} == {"1"}


def test_plan_skips_protected_snapshots_that_no_rule_keeps():
    old = snap(utc(2026, 1, 1), id="pinned", protected=True)
    plan = plan_target(target(keep_last=2), daily_history(2) + [old], NOW)
    assert "pinned" not in names(plan, ActionKind.DELETE)
    assert [(a.snapshot.id, a.reason) for a in plan.of_kind(ActionKind.SKIP)] == [
        ("pinned", "protected; no retention rule keeps it")
    ]


def test_plan_keeps_a_protected_snapshot_that_a_rule_keeps():
    history = [snap(utc(2026, 11, 25, 3), id="p", protected=True)]
    plan = plan_target(target(keep_last=2), history, NOW)
    assert names(plan, ActionKind.KEEP) == ["p"]


def test_plan_skips_a_snapshot_being_created_and_makes_no_second_one():
    busy = snap(utc(2026, 11, 26, 2, 59), id="busy", creating=True)
    plan = plan_target(target(keep_last=1), daily_history(3) + [busy], NOW)
    assert plan.create is None
    assert "busy" in names(plan, ActionKind.SKIP)
    assert "busy" not in names(plan, ActionKind.DELETE)
    assert plan.schedule_note == "not due: a snapshot is still being created"


def test_plan_refuses_more_deletions_than_max_deletions():
    plan = plan_target(target(keep_last=1, max_deletions=10), daily_history(12), NOW)
    assert plan.of_kind(ActionKind.DELETE) == ()
    assert plan.refusal.startswith("refused: 12 deletions exceed max_deletions 10")
    assert len([a for a in plan.of_kind(ActionKind.SKIP) if a.reason == plan.refusal]) == 12
    assert plan.create is not None  # making a snapshot is always safe


def test_plan_allows_exactly_max_deletions():
    plan = plan_target(target(keep_last=1, max_deletions=11), daily_history(11), NOW)
    assert plan.refusal is None
    assert len(plan.of_kind(ActionKind.DELETE)) == 11


def test_plan_after_the_run_created_a_snapshot_counts_it_and_plans_no_create():
    made = snap(utc(2026, 11, 26, 3, 0, 30), id="new")
    plan = plan_target(target(keep_last=2), daily_history(3), NOW, created=made)
    assert plan.create is None
    assert names(plan, ActionKind.KEEP) == ["new", "d1"]
    assert names(plan, ActionKind.DELETE) == ["d2", "d3"]


# a minute before midnight: the new snapshot may land on the next day
LATE = utc(2026, 11, 26, 23, 59)


@pytest.mark.parametrize(
    ("made_at", "standing"),
    [
        (None, ["today"]),  # nothing made: the plan's deletions stand as they are
        (LATE + timedelta(seconds=40), ["today"]),  # made the same day: retention decides the same
        # Made after midnight: "today" is now the newest of its day and kept; "yesterday",
        # which retention would now delete, was never planned for deletion and stays.
        (LATE + timedelta(minutes=5), []),
    ],
    ids=["no-create", "same-day", "next-day"],
)
def test_standing_deletions_drop_what_retention_keeps_once_the_new_snapshot_exists(
    made_at, standing
):
    observed = [
        snap(utc(2026, 11, 26, 10), id="today"),
        snap(utc(2026, 11, 25, 10), id="yesterday"),
    ]
    plan = plan_target(target(keep_daily=2), observed, LATE)
    assert names(plan, ActionKind.DELETE) == ["today"]
    created = None if made_at is None else snap(made_at, id="new")
    kept = standing_deletions(plan, created, made_at or LATE)
    assert [a.snapshot.id for a in kept] == standing
    assert all(a in plan.of_kind(ActionKind.DELETE) for a in kept)


def test_two_runs_inside_one_interval_create_one_snapshot():
    history = daily_history(3)
    first = plan_target(target(keep_last=3, schedule=DAILY), history, NOW)
    after_first = apply_plan(first, history)
    second = plan_target(target(keep_last=3, schedule=DAILY), after_first, NOW + timedelta(hours=6))
    assert first.create is not None
    assert second.create is None and not second.has_changes


def test_every_schedule_tolerates_a_run_that_starts_a_little_early():
    # Yesterday's snapshot was made 20 minutes into the cron run; today's run is on time.
    last = utc(2026, 11, 25, 3, 20)
    assert due(DAILY, last, NOW, UTC)[0]
    assert not due(DAILY, last, last + timedelta(hours=12), UTC)[0]


def test_cron_schedule_is_due_once_after_each_firing():
    nightly = Schedule(cron="0 3 * * *")
    assert due(nightly, utc(2026, 11, 25, 3, 0, 10), NOW, UTC)[0]
    assert not due(nightly, utc(2026, 11, 25, 3, 0, 10), utc(2026, 11, 26, 2, 0), UTC)[0]
    assert not due(nightly, utc(2026, 11, 26, 3, 0, 1), utc(2026, 11, 26, 4, 0), UTC)[0]
    # a missed run catches up
    assert due(nightly, utc(2026, 11, 24, 3), utc(2026, 11, 25, 9), UTC)[0]


def test_cron_schedule_fires_in_the_target_time_zone():
    berlin = ZoneInfo("Europe/Berlin")
    nightly = Schedule(cron="0 3 * * *")
    # 03:00 in Berlin is 02:00 UTC in winter.
    assert due(nightly, utc(2026, 11, 25, 2, 0, 10), utc(2026, 11, 26, 2, 0, 5), berlin)[0]
    assert not due(nightly, utc(2026, 11, 25, 2, 0, 10), utc(2026, 11, 26, 1, 59), berlin)[0]


def test_first_snapshot_is_due_whatever_the_schedule():
    plan = plan_target(target(keep_daily=7, schedule=Schedule(cron="0 3 1 1 *")), [], NOW)
    assert plan.create is not None
    assert plan.create.rules == ("daily",)


def test_not_due_plan_deletes_nothing_extra():
    history = daily_history(3)
    plan = plan_target(target(keep_last=3, schedule=DAILY), history, utc(2026, 11, 25, 9))
    assert plan.create is None and names(plan, ActionKind.DELETE) == []


def test_snapshot_name_follows_the_pattern_in_the_target_time_zone():
    berlin = target(keep_last=1, timezone="Europe/Berlin")
    assert snapshot_name(berlin, utc(2026, 11, 26, 3)) == "web-20261126040000"
    custom = replace(target(keep_last=1), name_pattern="{target}-{server_id}-{timestamp}")
    assert snapshot_name(custom, utc(2026, 11, 26, 3)) == "web-1-20261126030000"


def test_build_plan_is_sorted_and_its_fingerprint_follows_the_snapshots():
    one = target(keep_last=2)
    two = replace(one, name="db", server_id="2")
    history = daily_history(3)
    plan = build_plan([(one, history), (two, [])], NOW)
    assert [t.target.name for t in plan.targets] == ["db", "web"]
    assert (
        build_plan([(two, []), (one, list(reversed(history)))], NOW).fingerprint == plan.fingerprint
    )
    assert build_plan([(one, history[:2]), (two, [])], NOW).fingerprint != plan.fingerprint
    protected = [replace(history[0], protected=True)] + history[1:]
    assert build_plan([(one, protected), (two, [])], NOW).fingerprint != plan.fingerprint


# -- inputs that lie (docs/promises.md §5, invariant 9) --------------------------------------


def test_plan_keeps_a_snapshot_dated_in_the_future_out_of_retention_and_the_schedule():
    """One snapshot 30 days ahead must not anchor keep_within (it would doom the real five)
    nor make the schedule think a snapshot was just made."""
    ahead = snap(NOW + timedelta(days=30), id="ahead")
    plan = plan_target(
        target(keep_within=Duration(days=7), schedule=DAILY), daily_history(5) + [ahead], NOW
    )
    assert plan.create is not None
    assert names(plan, ActionKind.DELETE) == []
    assert names(plan, ActionKind.KEEP) == ["d1", "d2", "d3", "d4", "d5"]
    assert [(a.snapshot.id, a.reason) for a in plan.of_kind(ActionKind.SKIP)] == [
        ("ahead", "clock skew: dated 30 d 0 h after this run's clock")
    ]
    [problem] = plan.problems
    assert problem.startswith(
        "clock skew: snapshot web-20261226030005 (ahead) is dated 2026-12-26 03:00 UTC, 30 d "
        "0 h after"
    )


def test_plan_tolerates_a_cloud_clock_a_little_ahead():
    barely = snap(NOW + timedelta(minutes=4), id="barely")
    plan = plan_target(target(keep_last=1, schedule=DAILY), [barely], NOW)
    assert (
        plan.problems == () and names(plan, ActionKind.KEEP) == ["barely"] and plan.create is None
    )


def test_plan_fails_a_target_whose_snapshot_is_stuck_creating_past_the_timeout():
    stuck = snap(NOW - timedelta(days=13, hours=2), id="stuck", creating=True)
    plan = plan_target(
        target(keep_last=3), daily_history(2) + [stuck], NOW, creation_timeout=timedelta(hours=1)
    )
    assert plan.create is None and "stuck" in names(plan, ActionKind.SKIP)
    assert plan.problems == (
        "snapshot web-20261113010005 (stuck) has been creating for 13 d 2 h, past "
        "snapshot_creation_timeout (1 h 0 min); "
        "no new snapshot is made until it finishes or is deleted in the cloud console",
    )
    recent = snap(NOW - timedelta(minutes=50), id="recent", creating=True)
    assert (
        plan_target(
            target(keep_last=3), [recent], NOW, creation_timeout=timedelta(hours=1)
        ).problems
        == ()
    )


# -- limits across a target's servers and across the run; withheld deletions (issue 19) --


def servers_of(name, count, max_deletions=5, history=3):
    """A selector target over `count` servers, each with `history` daily snapshots and
    keep_last 1: `history` deletions per server, since the new snapshot is the one kept."""
    observed = []
    for n in range(count):
        t = replace(
            target(keep_last=1, max_deletions=max_deletions),
            name=name,
            server_id=str(n + 1),
            server_name=f"web-{n + 1}",
        )
        observed.append((t, daily_history(history, server_id=str(n + 1))))
    return observed


def test_max_deletions_counts_a_targets_deletions_across_its_servers():
    """4 servers × 3 deletions = 12 > 5: every one refused, though each server alone has 3."""
    plan = build_plan(servers_of("fleet", 4, history=3), NOW)
    assert plan.count(ActionKind.DELETE) == 0
    assert {p.refusal for p in plan.targets} == {
        "refused: 12 deletions across the target's 4 servers exceed max_deletions 5; raise "
        "the limit or check the retention rules"
    }
    assert plan.count(ActionKind.CREATE) == 4  # making snapshots is always safe


def test_max_deletions_across_servers_allows_exactly_the_limit_and_counts_targets_apart():
    observed = servers_of("fleet", 2, max_deletions=4, history=2) + servers_of(
        "other", 3, max_deletions=6, history=2
    )
    plan = build_plan(observed, NOW)
    assert [p.refusal for p in plan.targets] == [None] * 5
    assert plan.count(ActionKind.DELETE) == 10


def test_max_deletions_per_run_refuses_every_deletion_of_a_run_above_it():
    observed = servers_of("a", 2, history=2) + servers_of("b", 2, history=2)  # 8 deletions
    assert build_plan(observed, NOW, max_deletions_per_run=8).count(ActionKind.DELETE) == 8
    plan = build_plan(observed, NOW, max_deletions_per_run=7)
    assert plan.count(ActionKind.DELETE) == 0
    assert {p.refusal for p in plan.targets} == {
        "refused: this run's 8 deletions exceed settings.max_deletions_per_run 7; raise the "
        "limit or check the retention rules"
    }
    assert (
        build_plan(observed, NOW, max_deletions_per_run=7).config_fingerprint
        != build_plan(observed, NOW).config_fingerprint
    )


def test_withheld_account_keeps_its_creates_and_says_why_its_deletions_wait():
    observed = servers_of("fleet", 2, history=2)
    other = replace(observed[0][0], name="elsewhere", account="second")
    observed.append((other, daily_history(3)))
    plan = build_plan(observed, NOW, withheld={"main": "deletions withheld: the listing changed"})
    by_account = {(p.target.account, p.target.server_id): p for p in plan.targets}
    for server in ("1", "2"):
        withheld = by_account[("main", server)]
        assert withheld.withheld == "deletions withheld: the listing changed"
        assert withheld.of_kind(ActionKind.DELETE) == () and withheld.create is not None
        assert [a.reason for a in withheld.of_kind(ActionKind.SKIP)] == [
            "deletions withheld: the listing changed"
        ] * 2
        assert withheld.refusal is None
    assert len(by_account[("second", "1")].of_kind(ActionKind.DELETE)) == 3


def test_config_fingerprint_follows_the_hooks_and_the_owner():
    from snapshot_policy.core.model import Hooks

    observed = [(target(keep_last=1), daily_history(2))]
    base = build_plan(observed, NOW).config_fingerprint
    hooked = [(replace(target(keep_last=1), hooks=Hooks(before=("true",))), daily_history(2))]
    owned = [(replace(target(keep_last=1), owner="team-a"), daily_history(2))]
    assert (
        len(
            {
                base,
                build_plan(hooked, NOW).config_fingerprint,
                build_plan(owned, NOW).config_fingerprint,
            }
        )
        == 3
    )


def test_config_fingerprint_follows_the_drill_and_stays_without_one():
    observed = [(target(keep_last=1), daily_history(2))]
    base = build_plan(observed, NOW).config_fingerprint
    weekly = Drill(every=Duration(days=7))
    drilled = build_plan([(replace(observed[0][0], drill=weekly), observed[0][1])], NOW)
    other = replace(weekly, probe=("check",))
    probed = build_plan([(replace(observed[0][0], drill=other), observed[0][1])], NOW)
    assert len({base, drilled.config_fingerprint, probed.config_fingerprint}) == 3
    assert base == build_plan(observed, NOW).config_fingerprint


def test_a_snapshot_kept_only_because_it_passed_a_drill_says_so():
    history = daily_history(5)
    history[3] = replace(history[3], drilled=DrillMark(True, date(2026, 11, 23)))
    history[4] = replace(history[4], drilled=DrillMark(False, date(2026, 11, 22)))
    plan = plan_target(target(keep_last=2, keep_verified=1), history, NOW)
    reasons = {a.snapshot.id: (a.kind, a.reason) for a in plan.actions}
    assert reasons["d4"] == (ActionKind.KEEP, "kept by: verified")
    assert reasons["d5"] == (ActionKind.DELETE, "no retention rule keeps it")
    assert names(plan, ActionKind.DELETE) == ["d2", "d3", "d5"]
