from zoneinfo import ZoneInfo

from snapshot_policy import render
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


def test_simulate_months_end_on_the_last_runs_day():
    """Three days of hourly runs from 12:30 end at 11:30 on the fourth day: the calendar
    shows that day too, where the survivors list starts."""
    result = simulate(RetentionPolicy(keep_hourly=30), UTC, utc(2026, 1, 1, 12, 30), days=3, runs_per_day=24)
    (_, days), = result.months()
    assert [d.day for d in days] == [1, 2, 3, 4]
    assert max(s.created for s, _ in result.survivors).day == 4
    assert render.simulation_text(result).splitlines()[4] == "  2026-01  ..++"


def _random_policy(rng, duration_rules=False):
    """A random policy; with `duration_rules`, one with at least one keep_within_* rule."""
    from snapshot_policy.duration import Duration

    def duration():
        return rng.choice([Duration(hours=rng.randint(1, 30)), Duration(days=rng.randint(1, 3)), Duration(days=2, hours=rng.randint(1, 5)), Duration(months=1)])

    counts = {rule: rng.choice([0, 0, 1, 2, 3, 5]) for rule in RetentionPolicy.COUNTED_RULES}
    within = rng.choice([None, None, duration()])
    bounded = {rule: rng.choice([None, None, None, duration()]) for rule in RetentionPolicy.DURATION_RULES[1:]}
    if duration_rules and all(d is None for d in bounded.values()):
        bounded[rng.choice(RetentionPolicy.DURATION_RULES[1:])] = duration()
    if not any(counts.values()) and within is None and all(d is None for d in bounded.values()):
        counts["keep_last"] = 1
    return RetentionPolicy(**counts, keep_within=within, **bounded)


def test_fast_simulation_equals_the_reference_for_random_policies():
    import random
    from datetime import timedelta

    from snapshot_policy.simulate import simulate_reference

    rng = random.Random(20261126)
    zones = ["UTC", "Europe/Berlin", "America/Sao_Paulo", "Australia/Lord_Howe", "Asia/Kolkata", "America/New_York"]
    # Starts just before DST changes, month and year ends, so the odd periods are crossed.
    starts = [utc(2026, 3, 28), utc(2026, 10, 24), utc(2025, 12, 27, 5), utc(2018, 2, 15), utc(2018, 11, 2), utc(2026, 4, 3, 14, 30)]
    for case in range(60):
        policy = _random_policy(rng)
        zone = ZoneInfo(rng.choice(zones))
        start = rng.choice(starts) + timedelta(minutes=rng.randint(0, 1439))
        days, runs_per_day = rng.randint(1, 12), rng.choice([1, 2, 3, 5, 7, 24, 48])
        fast = simulate(policy, zone, start, days, runs_per_day)
        slow = simulate_reference(policy, zone, start, days, runs_per_day)
        assert fast == slow, (case, policy, zone, start, days, runs_per_day)


def test_fast_simulation_equals_the_reference_over_months_of_gfs():
    from snapshot_policy.duration import Duration
    from snapshot_policy.simulate import simulate_reference

    gfs = RetentionPolicy(keep_hourly=24, keep_daily=7, keep_weekly=4, keep_monthly=12, keep_yearly=10)
    for policy, zone in ((gfs, "Europe/Berlin"), (RetentionPolicy(keep_within=Duration(days=1), keep_monthly=3), "Europe/Berlin")):
        args = (policy, ZoneInfo(zone), utc(2025, 12, 20), 120, 6)
        assert simulate(*args) == simulate_reference(*args)


def test_replay_keeps_exactly_the_reconcilers_survivors_after_every_run():
    import random
    from datetime import timedelta

    from snapshot_policy.model import ActionKind
    from snapshot_policy.reconcile import plan_target
    from snapshot_policy.simulate import _made, _target, replay

    rng = random.Random(7)
    zones = ["UTC", "Europe/Berlin", "America/Sao_Paulo", "Australia/Lord_Howe"]
    for case in range(40):
        policy = _random_policy(rng)
        zone = ZoneInfo(rng.choice(zones))
        start = rng.choice([utc(2026, 3, 27), utc(2026, 10, 23), utc(2025, 12, 29), utc(2018, 2, 15)]) + timedelta(minutes=rng.randint(0, 1439))
        runs_per_day = rng.choice([1, 3, 7, 24])
        runs = rng.randint(1, 6) * runs_per_day
        step = timedelta(days=1) / runs_per_day
        target, existing = _target(policy, zone, runs), []
        for run, survivors in enumerate(replay(policy, zone, start, step, runs)):
            assert survivors is not None
            plan = plan_target(target, existing, start + run * step, created=_made(run, start, step))
            existing = [a.snapshot for a in plan.of_kind(ActionKind.KEEP)]
            assert list(survivors) == sorted(int(s.id) for s in existing), (case, policy, zone, start, runs_per_day, run)


def test_fast_simulation_equals_the_reference_for_duration_bounded_rules():
    import random
    from datetime import timedelta

    from snapshot_policy.simulate import simulate_reference

    rng = random.Random(15)
    zones = ["UTC", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "America/New_York"]
    starts = [utc(2026, 3, 27), utc(2026, 10, 23), utc(2025, 12, 27, 5), utc(2026, 1, 26), utc(2026, 4, 3, 14, 30)]
    for case in range(60):
        policy = _random_policy(rng, duration_rules=True)
        zone = ZoneInfo(rng.choice(zones))
        start = rng.choice(starts) + timedelta(minutes=rng.randint(0, 1439))
        days, runs_per_day = rng.randint(1, 10), rng.choice([1, 2, 4, 6, 24])
        fast = simulate(policy, zone, start, days, runs_per_day)
        assert fast == simulate_reference(policy, zone, start, days, runs_per_day), (case, policy, zone, start, days, runs_per_day)


def test_replay_follows_duration_bounded_rules_when_dst_moves_their_cutoff_back():
    """When Berlin's clocks go back, a cutoff a day before the newest snapshot moves back too:
    snapshots it had passed, still kept by keep_within 2d, are inside keep_within_hourly again.
    The replay follows it rather than giving up."""
    from datetime import timedelta

    from snapshot_policy.duration import Duration
    from snapshot_policy.simulate import replay, simulate_reference

    berlin = ZoneInfo("Europe/Berlin")
    policy = RetentionPolicy(keep_within=Duration(days=2), keep_within_hourly=Duration(days=1), keep_within_daily=Duration(days=1, hours=1))
    start = utc(2026, 10, 23, 0, 7)
    assert None not in list(replay(policy, berlin, start, timedelta(minutes=20), 4 * 72))
    assert simulate(policy, berlin, start, 4, 72) == simulate_reference(policy, berlin, start, 4, 72)


def test_simulate_keep_within_daily_keeps_a_day_each_for_the_duration():
    from snapshot_policy.duration import Duration

    policy = RetentionPolicy(keep_within_daily=Duration(days=7))
    month = simulate(policy, UTC, utc(2026, 1, 1), days=30, runs_per_day=4)
    assert [(s.created.day, s.created.hour, rules) for s, rules in month.survivors] == [(day, 18, ("daily within 7d",)) for day in range(30, 23, -1)]
    # In the first week the very first snapshot is still inside the duration: restic keeps it too.
    week = simulate(policy, UTC, utc(2026, 1, 1), days=7, runs_per_day=4)
    assert week.survivors[-1][0].created == utc(2026, 1, 1) and week.survivors[-1][1] == ("oldest daily within 7d",)
    assert len(week.survivors) == 8


def test_simulate_command_takes_the_duration_bounded_rules(capsys):
    from snapshot_policy.cli import main

    code = main(["simulate", "--keep-within-daily", "7d", "--keep-within-weekly", "1m", "--days", "60", "--start", "2026-01-01T03:00:00Z"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Policy: keep_within_daily 7d, keep_within_weekly 1m (timezone UTC)." in out
    assert "  2026-03-01 03:00  daily within 7d, weekly within 1m\n" in out
    assert main(["simulate", "--keep-within-hourly", "soon"]) == 1
