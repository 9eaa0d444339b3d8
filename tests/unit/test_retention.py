"""Hand-written retention cases: restic's details, time zones, DST, ISO weeks, leap days, month
ends."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import DrillMark, RetentionPolicy
from snapshot_policy.core.retention import select
from tests.factories import snap, utc

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def kept(snapshots, zone=UTC, **rules):
    """Return {snapshot: rules} for the snapshots that the policy keeps."""
    selection = select(snapshots, RetentionPolicy(**rules), zone)
    return {s: r for s, r in selection.items() if r}


def test_select_keep_last_keeps_the_newest_n():
    snapshots = [snap(utc(2026, 1, day)) for day in range(1, 11)]
    assert sorted(s.created.day for s in kept(snapshots, keep_last=3)) == [8, 9, 10]


def test_select_counts_only_periods_that_hold_a_snapshot():
    snapshots = [snap(utc(2026, 1, day, 3)) for day in (1, 5, 9, 20)]
    assert sorted(s.created.day for s in kept(snapshots, keep_daily=3)) == [5, 9, 20]


def test_select_keeps_the_newest_snapshot_of_each_day():
    snapshots = [snap(utc(2026, 1, 2, hour)) for hour in (1, 12, 23)] + [snap(utc(2026, 1, 1, 6))]
    result = kept(snapshots, keep_daily=2)
    assert sorted(s.created for s in result) == [utc(2026, 1, 1, 6), utc(2026, 1, 2, 23)]


def test_select_keeps_the_oldest_while_a_rule_has_count_left():
    snapshots = [snap(utc(2026, 1, 1, hour)) for hour in (1, 2, 3)]
    result = kept(snapshots, keep_daily=5)
    assert {s.created.hour: r for s, r in result.items()} == {3: ("daily",), 1: ("oldest daily",)}


def test_select_does_not_keep_the_oldest_once_the_count_is_used_up():
    snapshots = [snap(utc(2026, 1, 1, hour)) for hour in (1, 2, 3)] + [snap(utc(2026, 1, 2, 1))]
    result = kept(snapshots, keep_daily=2)
    assert sorted(s.created for s in result) == [utc(2026, 1, 1, 3), utc(2026, 1, 2, 1)]


def test_select_names_every_rule_that_keeps_a_snapshot():
    newest = snap(utc(2026, 3, 31, 3))
    snapshots = [newest] + [snap(utc(2026, 3, 31, 3) - timedelta(days=n)) for n in range(1, 40)]
    result = select(
        snapshots,
        RetentionPolicy(
            keep_last=1, keep_daily=7, keep_weekly=4, keep_monthly=2, keep_within=Duration(days=2)
        ),
        UTC,
    )
    assert result[newest] == ("within 2d", "last", "daily", "weekly", "monthly")


def test_select_union_of_rules_is_kept():
    snapshots = [snap(utc(2026, 1, 1) + timedelta(days=n)) for n in range(60)]
    daily = set(kept(snapshots, keep_daily=7))
    monthly = set(kept(snapshots, keep_monthly=2))
    assert set(kept(snapshots, keep_daily=7, keep_monthly=2)) == daily | monthly


def test_select_keep_within_counts_back_from_the_newest_not_from_now():
    # A server that stopped being snapshotted a year ago still keeps its last week of them.
    snapshots = [snap(utc(2025, 1, 1, 12) - timedelta(days=n)) for n in range(30)]
    result = kept(snapshots, keep_within=Duration.parse("7d"))
    assert len(result) == 7
    assert all(r == ("within 7d",) for r in result.values())


def test_select_keep_within_is_exclusive_at_the_cutoff():
    newest = snap(utc(2026, 1, 8))
    exactly = snap(utc(2026, 1, 1))
    assert exactly not in kept([newest, exactly], keep_within=Duration(days=7))


def test_select_days_follow_the_policy_time_zone():
    # 23:30 UTC on 1 January is already 2 January in Berlin.
    late = snap(utc(2026, 1, 1, 23, 30))
    earlier = snap(utc(2026, 1, 1, 20))
    assert set(kept([late, earlier], UTC, keep_daily=1)) == {late}
    assert set(kept([late, earlier], BERLIN, keep_daily=2)) == {late, earlier}
    # same day, earlier is the oldest
    assert set(kept([late, earlier], UTC, keep_daily=2)) == {late, earlier}
    assert kept([late, earlier], UTC, keep_daily=2)[earlier] == ("oldest daily",)


def test_select_day_of_spring_forward_is_one_day():
    # Berlin skips 02:00-03:00 on 29 March 2026: the 23-hour day is still one day.
    snapshots = [
        snap(utc(2026, 3, 28, 23, 30)),
        snap(utc(2026, 3, 29, 0, 30)),
        snap(utc(2026, 3, 29, 21, 30)),
        snap(utc(2026, 3, 29, 22, 30)),
    ]
    result = kept(snapshots, BERLIN, keep_daily=2)
    # 22:30 UTC is 00:30 on the 30th; 21:30 UTC is the last of the 29th.
    assert sorted(s.created for s in result) == [utc(2026, 3, 29, 21, 30), utc(2026, 3, 29, 22, 30)]


def test_select_hour_repeated_when_dst_ends_counts_twice():
    # 25 October 2026: Berlin shows 02:30 twice, at 00:30 UTC (CEST) and 01:30 UTC (CET).
    first, second = snap(utc(2026, 10, 25, 0, 30)), snap(utc(2026, 10, 25, 1, 30))
    before = snap(utc(2026, 10, 24, 23, 30))
    assert set(kept([first, second, before], BERLIN, keep_hourly=2)) == {first, second}


def test_select_day_of_fall_back_is_one_day():
    snapshots = [
        snap(utc(2026, 10, 24, 22, 30)),
        snap(utc(2026, 10, 25, 22, 30)),
        snap(utc(2026, 10, 25, 23, 30)),
    ]
    # 24 Oct 22:30 UTC = 25 Oct 00:30 CEST; 25 Oct 22:30 UTC = 25 Oct 23:30 CET; 23:30 UTC = 26 Oct.
    result = kept(snapshots, BERLIN, keep_daily=2)
    assert sorted(s.created for s in result) == [
        utc(2026, 10, 25, 22, 30),
        utc(2026, 10, 25, 23, 30),
    ]


def test_select_iso_week_53_is_its_own_week():
    # 2026 has an ISO week 53: Monday 28 December 2026 to Sunday 3 January 2027.
    monday_w53, sunday_w53, monday_w1 = (
        snap(utc(2026, 12, 28)),
        snap(utc(2027, 1, 3)),
        snap(utc(2027, 1, 4)),
    )
    result = kept([monday_w53, sunday_w53, monday_w1], keep_weekly=2)
    assert set(result) == {sunday_w53, monday_w1}


def test_select_weeks_span_the_new_year():
    # 29 December 2025 to 4 January 2026 is ISO week 1 of 2026.
    monday, thursday = snap(utc(2025, 12, 29)), snap(utc(2026, 1, 1))
    assert set(kept([monday, thursday, snap(utc(2025, 12, 28))], keep_weekly=1)) == {thursday}


def test_select_leap_day_is_the_newest_of_february():
    feb28, feb29 = snap(utc(2028, 2, 28)), snap(utc(2028, 2, 29))
    assert set(kept([feb28, feb29, snap(utc(2028, 1, 31))], keep_monthly=1)) == {feb29}


def test_select_keep_within_a_year_from_a_leap_day_ends_on_28_february():
    newest = snap(utc(2028, 2, 29, 10))
    inside, outside = snap(utc(2027, 2, 28, 12)), snap(utc(2027, 2, 28, 9))
    assert set(kept([newest, inside, outside], keep_within=Duration(years=1))) == {newest, inside}


def test_select_keep_within_a_month_from_a_month_end_clamps_the_day():
    newest = snap(utc(2026, 3, 31, 3))
    inside, outside = snap(utc(2026, 2, 28, 4)), snap(utc(2026, 2, 28, 2))
    assert set(kept([newest, inside, outside], keep_within=Duration(months=1))) == {newest, inside}


def test_select_months_end_on_their_last_day():
    snapshots = [
        snap(utc(2026, 4, 30, 23)),
        snap(utc(2026, 5, 1, 0)),
        snap(utc(2026, 1, 31)),
        snap(utc(2026, 2, 28)),
    ]
    result = kept(snapshots, keep_monthly=3)
    assert sorted(s.created for s in result) == [
        utc(2026, 2, 28),
        utc(2026, 4, 30, 23),
        utc(2026, 5, 1),
    ]


def test_select_yearly_keeps_the_last_snapshot_of_each_year():
    snapshots = [snap(utc(year, 12, 31, 22)) for year in (2023, 2024, 2025)] + [
        snap(utc(2025, 6, 1))
    ]
    result = kept(snapshots, keep_yearly=2)
    assert sorted(s.created for s in result) == [utc(2024, 12, 31, 22), utc(2025, 12, 31, 22)]


def test_select_without_rules_keeps_everything():
    snapshots = [snap(utc(2026, 1, day)) for day in (1, 2)]
    assert all(select(snapshots, RetentionPolicy(), UTC).values())


def test_select_of_nothing_is_empty():
    assert select([], RetentionPolicy(keep_last=3), UTC) == {}


# restic's duration-bounded rules (--keep-within-hourly … -yearly). The history below is written
# for these tests; each expectation was worked out by hand from restic's ApplyPolicy walk.
A = snap(utc(2024, 11, 30, 22), id="A")  # Saturday, ISO week 2024-48
B = snap(utc(2025, 6, 14, 8), id="B")  # Saturday, week 2025-24
C = snap(utc(2025, 6, 14, 9, 30), id="C")
D = snap(utc(2025, 12, 29, 10), id="D")  # Monday of ISO week 2026-01
E = snap(utc(2026, 1, 1, 5), id="E")
F = snap(utc(2026, 1, 1, 5, 40), id="F")
G = snap(utc(2026, 1, 3, 23, 59), id="G")  # Saturday, still week 2026-01
H = snap(utc(2026, 1, 5, 0, 10), id="H")  # Monday, week 2026-02
I = snap(utc(2026, 1, 5, 0, 50), id="I")  # noqa: E741 - the history is lettered A to J
J = snap(utc(2026, 1, 5, 1, 20), id="J")  # the newest
HISTORY = [A, B, C, D, E, F, G, H, I, J]


@pytest.mark.parametrize(
    "rule, duration, history, expected",
    [
        # Cutoff 4 Jan 01:20: H, I, J are inside; H shares I's hour.
        ("hourly", "1d", HISTORY, {J: "hourly within 1d", I: "hourly within 1d"}),
        # Cutoff 29 Dec 01:20: the newest of 5 Jan, 3 Jan, 1 Jan and 29 Dec.
        (
            "daily",
            "7d",
            HISTORY,
            {
                J: "daily within 7d",
                G: "daily within 7d",
                F: "daily within 7d",
                D: "daily within 7d",
            },
        ),
        # Cutoff 5 Dec 01:20: D to G are one ISO week, whose newest is G.
        ("weekly", "1m", HISTORY, {J: "weekly within 1m", G: "weekly within 1m"}),
        # Cutoff 5 Jan 2025 01:20: A is outside, C is June's newest, B is not.
        (
            "monthly",
            "1y",
            HISTORY,
            {J: "monthly within 1y", D: "monthly within 1y", C: "monthly within 1y"},
        ),
        # Everything is inside; A opens 2024, so it is kept as a period's newest, not as the oldest.
        (
            "yearly",
            "2y",
            HISTORY,
            {J: "yearly within 2y", D: "yearly within 2y", A: "yearly within 2y"},
        ),
        (
            "monthly",
            "1y2m",
            HISTORY,
            {
                J: "monthly within 1y2m",
                D: "monthly within 1y2m",
                C: "monthly within 1y2m",
                A: "monthly within 1y2m",
            },
        ),
        # Without A, B is the oldest snapshot, inside the duration, in C's month: restic keeps it
        # too.
        (
            "monthly",
            "1y",
            HISTORY[1:],
            {
                J: "monthly within 1y",
                D: "monthly within 1y",
                C: "monthly within 1y",
                B: "oldest monthly within 1y",
            },
        ),
    ],
)
def test_select_within_rule_keeps_the_newest_of_each_period_inside_the_duration(
    rule, duration, history, expected
):
    result = kept(history, **{f"keep_within_{rule}": Duration.parse(duration)})
    assert result == {s: (reason,) for s, reason in expected.items()}


def test_select_within_rules_combine_as_restic_names_them():
    policy = RetentionPolicy(
        keep_within=Duration.parse("1h"),
        keep_within_hourly=Duration.parse("1d"),
        keep_within_daily=Duration.parse("7d"),
        keep_within_weekly=Duration.parse("1m"),
        keep_within_monthly=Duration.parse("1y"),
        keep_within_yearly=Duration.parse("9y"),
    )
    result = select(HISTORY, policy, UTC)
    assert result == {
        J: (
            "within 1h",
            "hourly within 1d",
            "daily within 7d",
            "weekly within 1m",
            "monthly within 1y",
            "yearly within 9y",
        ),
        I: ("within 1h", "hourly within 1d"),
        H: (),
        G: ("daily within 7d", "weekly within 1m"),
        F: ("daily within 7d",),
        E: (),
        D: ("daily within 7d", "monthly within 1y", "yearly within 9y"),
        C: ("monthly within 1y",),
        B: (),
        A: ("yearly within 9y",),
    }


def test_select_within_rules_come_after_the_counted_ones_and_print_restics_duration_form():
    result = select(
        HISTORY,
        RetentionPolicy(
            keep_last=1,
            keep_within_daily=Duration.parse("1y2m3d3h"),
            keep_within=Duration.parse("2h"),
        ),
        UTC,
    )
    assert result[J] == ("within 2h", "last", "daily within 1y2m3d3h")


def test_select_keep_daily_counts_days_with_snapshots_but_keep_within_daily_stops_at_the_cutoff():
    # The README's example: a snapshot a day at 03:00, 1-10 and 20-24 March, then a gap.
    snapshots = [snap(utc(2026, 3, day, 3)) for day in [*range(1, 11), *range(20, 25)]]
    assert sorted(s.created.day for s in kept(snapshots, keep_daily=7)) == [
        9,
        10,
        20,
        21,
        22,
        23,
        24,
    ]
    assert sorted(s.created.day for s in kept(snapshots, keep_within_daily=Duration(days=7))) == [
        20,
        21,
        22,
        23,
        24,
    ]


def test_select_keep_within_daily_keeps_the_oldest_while_it_is_inside_the_duration():
    # The README's example: 03:00 and 23:00 on 20-24 March.
    snapshots = [snap(utc(2026, 3, day, hour)) for day in range(20, 25) for hour in (3, 23)]
    result = kept(snapshots, keep_within_daily=Duration(days=7))
    assert {(s.created.day, s.created.hour): r for s, r in result.items()} == {
        **{(day, 23): ("daily within 7d",) for day in range(20, 25)},
        (20, 3): ("oldest daily within 7d",),
    }
    # Once the newest is 27 March 03:00, the cutoff is 20 March 03:00 exactly: the oldest is out.
    later = (
        snapshots
        + [snap(utc(2026, 3, day, hour)) for day in (25, 26) for hour in (3, 23)]
        + [snap(utc(2026, 3, 27, 3))]
    )
    assert utc(2026, 3, 20, 3) not in {
        s.created for s in kept(later, keep_within_daily=Duration(days=7))
    }


def test_select_keep_within_daily_judges_a_day_by_its_newest_snapshot():
    # The cutoff (1 January 12:00) falls inside 1 January: its 18:00 snapshot is the day's
    # newest and inside, so it is kept; 31 December's newest is outside, so nothing of it is.
    snapshots = [
        snap(utc(2025, 12, 31, 20)),
        snap(utc(2026, 1, 1, 6)),
        snap(utc(2026, 1, 1, 18)),
        snap(utc(2026, 1, 8, 12)),
    ]
    result = kept(snapshots, keep_within_daily=Duration(days=7))
    assert sorted(s.created for s in result) == [utc(2026, 1, 1, 18), utc(2026, 1, 8, 12)]


def test_select_keep_within_daily_counts_back_from_the_newest_not_from_now():
    # A server last snapshotted in 2025 keeps its last week of dailies, whenever the plan runs.
    snapshots = [snap(utc(2025, 1, 31, 12) - timedelta(hours=12 * n)) for n in range(60)]
    result = kept(snapshots, keep_within_daily=Duration(days=7))
    assert sorted(s.created for s in result) == [utc(2025, 1, day, 12) for day in range(25, 32)]


def test_select_keep_within_daily_is_exclusive_at_the_cutoff():
    newest, exactly = snap(utc(2026, 1, 8)), snap(utc(2026, 1, 1))
    assert set(kept([newest, exactly], keep_within_daily=Duration(days=7))) == {newest}


def test_select_within_rules_use_up_no_count_of_the_counted_rules():
    snapshots = [snap(utc(2026, 1, day, 6)) for day in range(1, 11)]
    result = kept(snapshots, keep_daily=2, keep_within_daily=Duration(days=4))
    assert {s.created.day: r for s, r in result.items()} == {
        10: ("daily", "daily within 4d"),
        9: ("daily", "daily within 4d"),
        8: ("daily within 4d",),
        7: ("daily within 4d",),
    }


def test_select_keep_within_weekly_counts_iso_weeks_across_the_new_year():
    # 28 December 2026 to 3 January 2027 is ISO week 53 of 2026: one week, its newest kept.
    snapshots = [
        snap(utc(2026, 12, 27)),
        snap(utc(2026, 12, 28)),
        snap(utc(2027, 1, 3)),
        snap(utc(2027, 1, 4)),
    ]
    result = kept(snapshots, keep_within_weekly=Duration(days=8))
    assert sorted(s.created for s in result) == [utc(2027, 1, 3), utc(2027, 1, 4)]


def test_select_keep_within_hourly_counts_the_hour_repeated_when_dst_ends_twice():
    # Berlin shows 02:30 twice on 25 October 2026 (00:30 and 01:30 UTC); 02:10 CEST shares the
    # first.
    first, early, second = (
        snap(utc(2026, 10, 25, 0, 30)),
        snap(utc(2026, 10, 25, 0, 10)),
        snap(utc(2026, 10, 25, 1, 30)),
    )
    outside = snap(utc(2026, 10, 24, 22))
    result = kept([outside, early, first, second], BERLIN, keep_within_hourly=Duration(hours=2))
    assert set(result) == {first, second}


def test_select_keep_within_monthly_reads_months_in_the_policy_time_zone():
    # 31 January 23:30 UTC is already February in Berlin, so January's newest there is 20:00 UTC.
    late, earlier = snap(utc(2026, 1, 31, 23, 30)), snap(utc(2026, 1, 31, 20))
    newest, outside = snap(utc(2026, 2, 10)), snap(utc(2025, 12, 1))
    snapshots = [outside, late, earlier, newest]
    assert set(kept(snapshots, UTC, keep_within_monthly=Duration(months=1))) == {late, newest}
    assert set(kept(snapshots, BERLIN, keep_within_monthly=Duration(months=1))) == {earlier, newest}


def test_keep_verified_keeps_the_newest_passed_snapshots_whatever_the_rest_says():
    passed = [DrillMark(True, date(2026, 1, day)) for day in range(1, 11)]
    snapshots = [
        replace(snap(utc(2026, 1, day)), drilled=passed[day - 1] if day in (2, 4, 5) else None)
        for day in range(1, 11)
    ]
    snapshots[5] = replace(snapshots[5], drilled=DrillMark(False, date(2026, 1, 9)))
    result = kept(snapshots, keep_last=1, keep_verified=2)
    assert sorted((s.created.day, r) for s, r in result.items()) == [
        (4, ("verified",)),
        (5, ("verified",)),
        (10, ("last",)),
    ]


def test_keep_verified_alone_deletes_nothing():
    snapshots = [snap(utc(2026, 1, day)) for day in range(1, 4)]
    snapshots[0] = replace(snapshots[0], drilled=DrillMark(True, date(2026, 1, 2)))
    result = select(snapshots, RetentionPolicy(keep_verified=1), UTC)
    assert [r for _, r in sorted(result.items(), key=lambda i: i[0].created)] == [
        ("no retention rule", "verified"),
        ("no retention rule",),
        ("no retention rule",),
    ]
