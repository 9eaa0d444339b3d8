from zoneinfo import ZoneInfo

from snapshot_policy.model import RetentionPolicy
from snapshot_policy.retention import select
from snapshot_policy.simulate import simulate
from tests.factories import utc

UTC = ZoneInfo("UTC")


def test_simulate_keep_last_leaves_the_last_runs():
    result = simulate(RetentionPolicy(keep_last=3), UTC, utc(2026, 1, 1, 3), days=10, runs_per_day=1)
    assert (result.created, result.deleted) == (10, 7)
    assert [s.created.day for s, _ in result.survivors] == [10, 9, 8]


def test_simulate_daily_and_weekly_match_a_one_shot_selection():
    policy = RetentionPolicy(keep_daily=7, keep_weekly=4)
    result = simulate(policy, UTC, utc(2026, 1, 1, 3), days=60, runs_per_day=1)
    survivors = {s.created for s, _ in result.survivors}
    assert len(survivors) == 10  # 7 days, plus the Sundays of the 3 weeks before them
    assert result.created - result.deleted == len(survivors)
    every_day = simulate(RetentionPolicy(keep_last=60), UTC, utc(2026, 1, 1, 3), days=60, runs_per_day=1)
    one_shot = select([s for s, _ in every_day.survivors], policy, UTC)
    assert survivors == {s.created for s, rules in one_shot.items() if rules}


def test_simulate_hourly_runs_keep_the_last_24_hours():
    result = simulate(RetentionPolicy(keep_hourly=24), UTC, utc(2026, 1, 1), days=3, runs_per_day=24)
    assert len(result.survivors) == 24
    assert all(rules == ("hourly",) for _, rules in result.survivors)


def test_simulate_months_cover_every_simulated_day():
    result = simulate(RetentionPolicy(keep_last=1), UTC, utc(2026, 1, 20), days=45, runs_per_day=1)
    months = result.months()
    assert [m.month for m, _ in months] == [1, 2, 3]
    assert sum(len(days) for _, days in months) == 45
