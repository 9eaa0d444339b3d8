"""core/status: ok, late or none against the schedule; the last run and drill; uncovered servers
and the snapshot limit; the exit code (issue 22, item 1). Pure, in milliseconds."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import (
    Account,
    DrillMark,
    Outcome,
    Price,
    RetentionPolicy,
    Schedule,
    Selector,
    Server,
    TargetFailure,
    TargetPlan,
    TargetSpec,
)
from snapshot_policy.core.status import (
    FROM_MARK,
    FROM_RUN_STATE,
    LATE,
    NONE,
    OK,
    account_status,
    after_apply,
    build,
    freshness,
    target_status,
)
from snapshot_policy.state.runstate import LastDrill, LastRun
from tests.factories import snap, target, utc

NOW = utc(2026, 12, 7, 12, 0)
DAILY = Schedule(every=Duration.parse("24h"))
HZ = Account("main", "hetzner", "t0ken", snapshot_limit=5)


def test_an_interval_is_ok_until_its_end_plus_the_grace_then_late():
    web = target(schedule=DAILY, keep_last=3)
    assert freshness(web, NOW - timedelta(hours=23), NOW)[0] == OK
    state, note = freshness(web, NOW - timedelta(hours=24, minutes=30), NOW)
    assert state == OK and note.startswith("due now, not late yet")
    state, note = freshness(web, NOW - timedelta(hours=25, minutes=1), NOW)
    assert (state, note) == (
        LATE,
        "late: a snapshot has been due for more than 1 h 0 min (every 24h)",
    )


def test_the_grace_is_the_creation_timeout_when_longer_and_late_after_overrides_it():
    web = target(schedule=DAILY, keep_last=3)
    newest = NOW - timedelta(hours=26)
    assert freshness(web, newest, NOW, creation_timeout=timedelta(hours=3))[0] == OK
    assert freshness(web, newest, NOW, late_after=timedelta(minutes=30))[0] == LATE


def test_a_cron_schedule_is_late_once_it_fired_longer_ago_than_the_grace():
    web = target(schedule=Schedule(cron="0 3 * * *"), keep_last=3)
    yesterday = utc(2026, 12, 6, 3, 0)
    assert freshness(web, yesterday, utc(2026, 12, 7, 3, 30))[0] == OK  # fired 30 min ago
    assert freshness(web, yesterday, utc(2026, 12, 7, 4, 1))[0] == LATE


def test_every_run_is_late_past_25_hours_or_late_after():
    web = target(keep_last=3)
    assert freshness(web, NOW - timedelta(hours=24, minutes=59), NOW)[0] == OK
    state, note = freshness(web, NOW - timedelta(hours=25, minutes=1), NOW)
    assert state == LATE and "older than 1 d 1 h" in note
    assert freshness(web, NOW - timedelta(hours=3), NOW, late_after=timedelta(hours=2))[0] == LATE


def test_no_managed_finished_snapshot_is_none():
    web = target(schedule=DAILY, keep_last=3)
    snapshots = [
        snap(NOW - timedelta(hours=1), managed=False),
        snap(NOW - timedelta(minutes=5), creating=True),
        snap(NOW + timedelta(hours=2)),  # a clock ahead: not taken as the newest
    ]
    judged = target_status(web, snapshots, NOW)
    assert (judged.state, judged.newest, judged.managed) == (NONE, None, 0)
    assert judged.problems == ("no managed snapshot",) and not judged.ok


def test_newest_count_storage_and_age():
    web = target(schedule=DAILY, keep_last=3)
    old = replace(snap(NOW - timedelta(days=2)), size_gb=2.0)
    new = replace(snap(NOW - timedelta(hours=3)), size_gb=3.0)
    foreign = replace(snap(NOW - timedelta(days=9), managed=False), size_gb=5.0)
    judged = target_status(web, [old, new, foreign], NOW, prices={"hetzner": Price(0.01, "EUR")})
    assert judged.newest == new and judged.age == timedelta(hours=3) and judged.managed == 2
    assert judged.storage.snapshots == 3 and judged.storage.known_gb == 10.0  # all are billed
    assert round(judged.storage.costs["EUR"], 4) == 0.1
    assert judged.ok and judged.last_run is None and judged.last_drill is None


def test_a_failed_last_run_and_a_failed_drill_are_problems():
    web = target(schedule=DAILY, keep_last=3)
    fresh = [snap(NOW - timedelta(hours=2))]
    run = LastRun(NOW - timedelta(hours=2), False, "wait for snapshot failed")
    drill = LastDrill(NOW - timedelta(days=1), False, "77", 41.5, "probe exited 1")
    judged = target_status(web, fresh, NOW, run, drill)
    assert judged.state == OK
    assert judged.problems == (
        "last run 2026-12-07 10:00 UTC failed: wait for snapshot failed",
        "last restore drill 2026-12-06 12:00 UTC failed: probe exited 1",
    )
    assert judged.last_drill.source == FROM_RUN_STATE and judged.last_drill.restore_seconds == 41.5


def test_without_a_recorded_drill_the_newest_mark_on_a_snapshot_says_and_verified_age():
    web = target(schedule=DAILY, keep_last=3)
    passed = replace(snap(NOW - timedelta(days=3)), drilled=DrillMark(True, date(2026, 12, 4)))
    failed = replace(snap(NOW - timedelta(days=1)), drilled=DrillMark(False, date(2026, 12, 6)))
    judged = target_status(web, [passed, failed, snap(NOW - timedelta(hours=1))], NOW)
    assert judged.last_drill.source == FROM_MARK and judged.last_drill.passed is False
    assert judged.last_drill.on == date(2026, 12, 6) and judged.last_drill.when is None
    assert judged.verified == passed and judged.verified_age == timedelta(days=3)
    assert judged.problems == ("last restore drill 2026-12-06 failed",)


def test_uncovered_servers_leave_out_the_covered_the_ignored_and_drill_servers():
    spec = TargetSpec("web", HZ, Selector(label_selector="role=web"), RetentionPolicy(keep_last=1))
    servers = [
        Server("1", "web-1"),
        Server("2", "db-1"),
        Server("3", "build-1"),
        Server("4", "drill-web-1-x", {"snapshot-policy/drill": "true"}),
        Server("5", "scratch"),
    ]
    selected = {"role=web": [servers[0]], "temp": [servers[4]]}
    ignore = (Selector(names=("build-1",)), Selector(label_selector="temp"))
    judged = account_status(HZ, [spec], servers, selected, 3, ignore)
    assert [s.name for s in judged.uncovered] == ["db-1"] and judged.ignored == 2
    assert judged.problems == ("1 server(s) no target covers: db-1 (2)",)
    assert account_status(HZ, [spec], servers, selected, 3, ignore, whole=False).uncovered is None


def test_the_snapshot_limit_is_a_problem_once_reached_the_next_snapshot_would_be_refused():
    spec = TargetSpec("web", HZ, Selector(ids=("1",)), RetentionPolicy(keep_last=1))
    servers = [Server("1", "web-1")]
    assert account_status(HZ, [spec], servers, {}, 4).problems == ()
    assert account_status(HZ, [spec], servers, {}, 5).problems == (
        "5 snapshots, at the limit of 5 set in accounts.main.snapshot_limit",
    )
    assert account_status(HZ, [spec], servers, {}, 6).problems == (
        "6 snapshots, over the limit of 5 set in accounts.main.snapshot_limit",
    )


def test_exit_codes():
    web = target(schedule=DAILY, keep_last=3)
    spec = TargetSpec("web", HZ, Selector(ids=("1",)), RetentionPolicy(keep_last=3))
    listings = {
        "servers": {"main": [Server("1", "web")]},
        "selected": {"main": {}},
        "snapshot_counts": {"main": 1},
    }
    fresh = [(web, [snap(NOW - timedelta(hours=1))])]
    assert build([spec], fresh, [], NOW, **listings).exit_code == 0
    stale = [(web, [snap(NOW - timedelta(days=3))])]
    assert build([spec], stale, [], NOW, **listings).exit_code == 2
    missing = TargetFailure("web", "no server with id 9", "main")
    assert build([spec], fresh, [missing], NOW, **listings).exit_code == 2
    more = {**listings, "servers": {"main": [Server("1", "web"), Server("2", "other")]}}
    assert build([spec], fresh, [], NOW, **more).exit_code == 2
    unreadable = {**listings, "unreadable": {"main": "HTTP 401"}}
    assert build([spec], [], [], NOW, **unreadable).exit_code == 1
    broken = TargetFailure("db.json", "invalid JSON")
    judged = build([spec], fresh, [], NOW, config_failures=[broken], **listings)
    assert judged.exit_code == 1 and judged.failures == (broken,)


def test_orphans_are_left_out_and_targets_come_in_a_stable_order():
    spec = TargetSpec("web", HZ, Selector(ids=("1", "2")), RetentionPolicy(keep_last=3))
    one = target(schedule=DAILY, keep_last=3)
    two = replace(one, server_id="2", server_name="web-2")
    orphan = replace(one, server_id="9", orphan=True)
    judged = build(
        [spec],
        [(two, []), (orphan, []), (one, [])],
        [],
        NOW,
        servers={"main": [Server("1", "web"), Server("2", "web-2")]},
        selected={},
        snapshot_counts={},
    )
    assert [t.target.server_id for t in judged.targets] == ["1", "2"]


def test_after_apply_counts_the_new_snapshot_and_forgets_the_deleted():
    web = target(schedule=DAILY, keep_last=1)
    old = snap(NOW - timedelta(days=2))
    made = replace(snap(NOW), managed=True)
    outcome = Outcome(TargetPlan(web, (), ""), True, made, (old,), 1)
    seen, counts = after_apply([(web, [old])], {"main": 4}, [outcome])
    assert seen == [(web, [made])] and counts == {"main": 4}
    assert target_status(web, seen[0][1], NOW).state == OK
