from zoneinfo import ZoneInfo

import pytest

from snapshot_policy.core.model import RetentionPolicy
from snapshot_policy.core.retention import select
from snapshot_policy.core.simulate import simulate
from snapshot_policy.output import render
from tests.factories import utc

UTC = ZoneInfo("UTC")


def test_simulate_keep_last_leaves_the_last_runs():
    result = simulate(
        RetentionPolicy(keep_last=3), UTC, utc(2026, 1, 1, 3), days=10, runs_per_day=1
    )
    assert (result.created, result.deleted) == (10, 7)
    assert [s.created.day for s, _ in result.survivors] == [10, 9, 8]


def test_simulate_daily_and_weekly_match_a_one_shot_selection():
    policy = RetentionPolicy(keep_daily=7, keep_weekly=4)
    result = simulate(policy, UTC, utc(2026, 1, 1, 3), days=60, runs_per_day=1)
    survivors = {s.created for s, _ in result.survivors}
    assert len(survivors) == 10  # 7 days, plus the Sundays of the 3 weeks before them
    assert result.created - result.deleted == len(survivors)
    every_day = simulate(
        RetentionPolicy(keep_last=60), UTC, utc(2026, 1, 1, 3), days=60, runs_per_day=1
    )
    one_shot = select([s for s, _ in every_day.survivors], policy, UTC)
    assert survivors == {s.created for s, rules in one_shot.items() if rules}


def test_simulate_hourly_runs_keep_the_last_24_hours():
    result = simulate(
        RetentionPolicy(keep_hourly=24), UTC, utc(2026, 1, 1), days=3, runs_per_day=24
    )
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
    result = simulate(
        RetentionPolicy(keep_hourly=30), UTC, utc(2026, 1, 1, 12, 30), days=3, runs_per_day=24
    )
    ((_, days),) = result.months()
    assert [d.day for d in days] == [1, 2, 3, 4]
    assert max(s.created for s, _ in result.survivors).day == 4
    assert render.simulation_text(result).splitlines()[6] == "  2026-01  ..++"


def _random_policy(rng, duration_rules=False):
    """A random policy; with `duration_rules`, one with at least one keep_within_* rule."""
    from snapshot_policy.core.duration import Duration

    def duration():
        return rng.choice(
            [
                Duration(hours=rng.randint(1, 30)),
                Duration(days=rng.randint(1, 3)),
                Duration(days=2, hours=rng.randint(1, 5)),
                Duration(months=1),
            ]
        )

    counts = {rule: rng.choice([0, 0, 1, 2, 3, 5]) for rule in RetentionPolicy.COUNTED_RULES}
    within = rng.choice([None, None, duration()])
    bounded = {
        rule: rng.choice([None, None, None, duration()])
        for rule in RetentionPolicy.DURATION_RULES[1:]
    }
    if duration_rules and all(d is None for d in bounded.values()):
        bounded[rng.choice(RetentionPolicy.DURATION_RULES[1:])] = duration()
    if not any(counts.values()) and within is None and all(d is None for d in bounded.values()):
        counts["keep_last"] = 1
    return RetentionPolicy(**counts, keep_within=within, **bounded)


def test_fast_simulation_equals_the_reference_for_random_policies():
    import random
    from datetime import timedelta

    from snapshot_policy.core.simulate import simulate_reference

    rng = random.Random(20261126)
    zones = [
        "UTC",
        "Europe/Berlin",
        "America/Sao_Paulo",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "America/New_York",
    ]
    # Starts just before DST changes, month and year ends, so the odd periods are crossed.
    starts = [
        utc(2026, 3, 28),
        utc(2026, 10, 24),
        utc(2025, 12, 27, 5),
        utc(2018, 2, 15),
        utc(2018, 11, 2),
        utc(2026, 4, 3, 14, 30),
    ]
    for case in range(60):
        policy = _random_policy(rng)
        zone = ZoneInfo(rng.choice(zones))
        start = rng.choice(starts) + timedelta(minutes=rng.randint(0, 1439))
        days, runs_per_day = rng.randint(1, 12), rng.choice([1, 2, 3, 5, 7, 24, 48])
        fast = simulate(policy, zone, start, days, runs_per_day)
        slow = simulate_reference(policy, zone, start, days, runs_per_day)
        assert fast == slow, (case, policy, zone, start, days, runs_per_day)


def test_fast_simulation_equals_the_reference_over_months_of_gfs():
    from snapshot_policy.core.duration import Duration
    from snapshot_policy.core.simulate import simulate_reference

    gfs = RetentionPolicy(
        keep_hourly=24, keep_daily=7, keep_weekly=4, keep_monthly=12, keep_yearly=10
    )
    for policy, zone in (
        (gfs, "Europe/Berlin"),
        (RetentionPolicy(keep_within=Duration(days=1), keep_monthly=3), "Europe/Berlin"),
    ):
        args = (policy, ZoneInfo(zone), utc(2025, 12, 20), 120, 6)
        assert simulate(*args) == simulate_reference(*args)


def test_replay_keeps_exactly_the_reconcilers_survivors_after_every_run():
    import random
    from datetime import timedelta

    from snapshot_policy.core.model import ActionKind
    from snapshot_policy.core.reconcile import plan_target
    from snapshot_policy.core.simulate import _made, _target, replay

    rng = random.Random(7)
    zones = ["UTC", "Europe/Berlin", "America/Sao_Paulo", "Australia/Lord_Howe"]
    for case in range(40):
        policy = _random_policy(rng)
        zone = ZoneInfo(rng.choice(zones))
        start = rng.choice(
            [utc(2026, 3, 27), utc(2026, 10, 23), utc(2025, 12, 29), utc(2018, 2, 15)]
        ) + timedelta(minutes=rng.randint(0, 1439))
        runs_per_day = rng.choice([1, 3, 7, 24])
        runs = rng.randint(1, 6) * runs_per_day
        step = timedelta(days=1) / runs_per_day
        target, existing = _target(policy, zone, runs), []
        for run, survivors in enumerate(replay(policy, zone, start, step, runs)):
            assert survivors is not None
            plan = plan_target(
                target, existing, start + run * step, created=_made(run, start, step)
            )
            existing = [a.snapshot for a in plan.of_kind(ActionKind.KEEP)]
            assert list(survivors) == sorted(int(s.id) for s in existing), (
                case,
                policy,
                zone,
                start,
                runs_per_day,
                run,
            )


def test_fast_simulation_equals_the_reference_for_duration_bounded_rules():
    import random
    from datetime import timedelta

    from snapshot_policy.core.simulate import simulate_reference

    rng = random.Random(15)
    zones = ["UTC", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "America/New_York"]
    starts = [
        utc(2026, 3, 27),
        utc(2026, 10, 23),
        utc(2025, 12, 27, 5),
        utc(2026, 1, 26),
        utc(2026, 4, 3, 14, 30),
    ]
    for case in range(60):
        policy = _random_policy(rng, duration_rules=True)
        zone = ZoneInfo(rng.choice(zones))
        start = rng.choice(starts) + timedelta(minutes=rng.randint(0, 1439))
        days, runs_per_day = rng.randint(1, 10), rng.choice([1, 2, 4, 6, 24])
        fast = simulate(policy, zone, start, days, runs_per_day)
        assert fast == simulate_reference(policy, zone, start, days, runs_per_day), (
            case,
            policy,
            zone,
            start,
            days,
            runs_per_day,
        )


def test_replay_follows_duration_bounded_rules_when_dst_moves_their_cutoff_back():
    """When Berlin's clocks go back, a cutoff a day before the newest snapshot moves back too:
    snapshots it had passed, still kept by keep_within 2d, are inside keep_within_hourly again.
    The replay follows it rather than giving up."""
    from datetime import timedelta

    from snapshot_policy.core.duration import Duration
    from snapshot_policy.core.simulate import replay, simulate_reference

    berlin = ZoneInfo("Europe/Berlin")
    policy = RetentionPolicy(
        keep_within=Duration(days=2),
        keep_within_hourly=Duration(days=1),
        keep_within_daily=Duration(days=1, hours=1),
    )
    start = utc(2026, 10, 23, 0, 7)
    assert None not in list(replay(policy, berlin, start, timedelta(minutes=20), 4 * 72))
    assert simulate(policy, berlin, start, 4, 72) == simulate_reference(
        policy, berlin, start, 4, 72
    )


def test_simulate_keep_within_daily_keeps_a_day_each_for_the_duration():
    from snapshot_policy.core.duration import Duration

    policy = RetentionPolicy(keep_within_daily=Duration(days=7))
    month = simulate(policy, UTC, utc(2026, 1, 1), days=30, runs_per_day=4)
    assert [(s.created.day, s.created.hour, rules) for s, rules in month.survivors] == [
        (day, 18, ("daily within 7d",)) for day in range(30, 23, -1)
    ]
    # In the first week the very first snapshot is still inside the duration: restic keeps it too.
    week = simulate(policy, UTC, utc(2026, 1, 1), days=7, runs_per_day=4)
    assert week.survivors[-1][0].created == utc(2026, 1, 1) and week.survivors[-1][1] == (
        "oldest daily within 7d",
    )
    assert len(week.survivors) == 8


def test_simulate_command_takes_the_duration_bounded_rules(capsys):
    from snapshot_policy.cli import main

    code = main(
        [
            "simulate",
            "--keep-within-daily",
            "7d",
            "--keep-within-weekly",
            "1m",
            "--days",
            "60",
            "--start",
            "2026-01-01T03:00:00Z",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Policy: keep_within_daily 7d, keep_within_weekly 1m (timezone UTC)." in out
    assert "  2026-03-01 03:00  daily within 7d, weekly within 1m\n" in out
    assert main(["simulate", "--keep-within-hourly", "soon"]) == 1


# -- steady state and cost (issue 15, item 1) ---------------------------------------------------


def _reference_counts(policy, zone, start, runs_per_day, runs):
    from datetime import timedelta

    from snapshot_policy.core.model import ActionKind
    from snapshot_policy.core.simulate import _reference_plans

    return [
        len(p.of_kind(ActionKind.KEEP))
        for p in _reference_plans(policy, zone, start, timedelta(days=1) / runs_per_day, runs)
    ]


def test_survivor_counts_equal_the_reference_also_where_replay_gives_up():
    """Goose Bay's clocks went back an hour at 00:01 on 31 October 1993, to the day before:
    the replay's shortcut gives up there, and the counts go on from the reference simulation."""
    from datetime import timedelta

    from snapshot_policy.core.simulate import replay, survivor_counts

    zone, start = ZoneInfo("America/Goose_Bay"), utc(1993, 10, 30)
    policy = RetentionPolicy(keep_hourly=5, keep_daily=3)
    step = timedelta(minutes=30)
    assert None in list(replay(policy, zone, start, step, 144))
    assert list(survivor_counts(policy, zone, start, step, 144)) == _reference_counts(
        policy, zone, start, 48, 144
    )


def test_fill_days_is_the_span_the_longest_rule_needs():
    from snapshot_policy.core.duration import Duration
    from snapshot_policy.core.simulate import fill_days

    assert fill_days(RetentionPolicy(keep_last=30), 1) == 30
    assert fill_days(RetentionPolicy(keep_last=30), 24) == 1.25
    # six months and one for the oldest
    assert fill_days(RetentionPolicy(keep_daily=7, keep_weekly=4, keep_monthly=6), 1) == 7 * 31
    # runs six hours apart: 24 runs hold 24 hours
    assert fill_days(RetentionPolicy(keep_hourly=24), 4) == 25 * 0.25
    assert fill_days(RetentionPolicy(keep_within_daily=Duration(months=1)), 1) == 32
    assert fill_days(RetentionPolicy(keep_within=Duration(days=7)), 2) == 7.5


@pytest.mark.parametrize(
    "policy, expected",
    [
        (RetentionPolicy(keep_last=30), (30, 30, 30.0, 30, 28)),
        (RetentionPolicy(keep_daily=7, keep_weekly=4), (9, 10, 9.143, 35, 28)),
        (RetentionPolicy(keep_daily=7, keep_weekly=4, keep_monthly=6), (13, 15, 13.861, 217, 366)),
    ],
)
def test_steady_state_counts_the_survivors_once_every_rule_is_full(policy, expected):
    from snapshot_policy.core.simulate import steady_state

    steady = steady_state(policy, UTC, utc(2026, 1, 1, 3), runs_per_day=1)
    assert (
        steady.fewest,
        steady.most,
        round(steady.average, 3),
        steady.filled_days,
        steady.observed_days,
    ) == expected
    counts = _reference_counts(
        policy, UTC, utc(2026, 1, 1, 3), 1, steady.filled_days + steady.observed_days
    )[steady.filled_days :]
    assert (min(counts), max(counts), sum(counts) / len(counts)) == (
        steady.fewest,
        steady.most,
        steady.average,
    )


@pytest.mark.parametrize(
    "policy, runs_per_day",
    [
        (RetentionPolicy(keep_hourly=24, keep_daily=7, keep_weekly=4), 6),
        (RetentionPolicy(keep_daily=7, keep_weekly=4, keep_monthly=6), 1),
        (RetentionPolicy(keep_last=3, keep_monthly=2, keep_yearly=2), 1),
    ],
)
def test_steady_state_is_full_by_the_time_it_is_counted(policy, runs_per_day):
    """Counting from twice as late finds the same pattern: the rules were full already."""
    from datetime import timedelta

    from snapshot_policy.core.simulate import steady_state, survivor_counts

    steady = steady_state(policy, UTC, utc(2026, 1, 1, 3), runs_per_day)
    step = timedelta(days=1) / runs_per_day
    runs = (2 * steady.filled_days + steady.observed_days) * runs_per_day
    later = list(survivor_counts(policy, UTC, utc(2026, 1, 1, 3), step, runs))[
        2 * steady.filled_days * runs_per_day :
    ]
    assert (min(later), max(later)) == (steady.fewest, steady.most)


def test_simulation_text_and_json_show_the_projection():
    import json

    from snapshot_policy.core.model import Price
    from snapshot_policy.core.simulate import Projection, SteadyState

    result = simulate(
        RetentionPolicy(keep_last=3), UTC, utc(2026, 1, 1, 3), days=10, runs_per_day=1
    )
    projection = Projection(
        SteadyState(13, 15, 13.86, 217, 366),
        20.0,
        (("hetzner", Price(0.0143, "EUR")), ("--price", Price(0.05, "USD"))),
    )
    assert render.simulation_text(result, projection).endswith(
        "\n\nSteady state, every rule full after 217 day(s)\n(counted over the 366 days after):\n"
        "  13 to 15 snapshots, 13.9 on average\n"
        "  at 20 GB a snapshot: 277.2 GB on average, 300 GB at most\n"
        "  EUR 3.96 a month at EUR 0.0143 per GB-month (Hetzner)\n"
        "  USD 13.86 a month at USD 0.05 per GB-month (--price)\n"
    )
    steady = json.loads(render.simulation_json(result, projection))["steady_state"]
    assert steady == {
        "filled_days": 217,
        "observed_days": 366,
        "fewest": 13,
        "most": 15,
        "average": 13.86,
        "snapshot_size_gb": 20.0,
        "average_size_gb": 277.2,
        "most_size_gb": 300.0,
        "monthly_cost": [
            {"price": "hetzner", "per_gb_month": 0.0143, "currency": "EUR", "amount": 3.964},
            {"price": "--price", "per_gb_month": 0.05, "currency": "USD", "amount": 13.86},
        ],
    }
    assert "steady_state" not in json.loads(render.simulation_json(result))


def test_simulate_command_compares_two_policies_by_their_monthly_cost(capsys):
    from snapshot_policy.cli import main

    start = ["--start", "2026-01-01T03:00:00Z", "--snapshot-size", "20"]
    assert main(["simulate", "--keep-last", "30", "--provider", "hetzner", *start]) == 0
    last = capsys.readouterr().out
    assert (
        "  30 snapshots, 30 on average\n  at 20 GB a snapshot: 600 GB on average, 600 GB at most\n"
        in last
    )
    assert "  EUR 8.58 a month at EUR 0.0143 per GB-month (Hetzner)\n" in last
    assert (
        main(["simulate", "--keep-daily", "7", "--keep-weekly", "4", "--keep-monthly", "6", *start])
        == 0
    )
    gfs = capsys.readouterr().out
    assert "  13 to 15 snapshots, 13.9 on average\n" in gfs
    assert (
        "  USD 16.63 a month at USD 0.06 per GB-month (DigitalOcean)\n"
        "  EUR 3.96 a month at EUR 0.0143 per GB-month (Hetzner)\n"
    ) in gfs
    assert main(["simulate", "--keep-last", "30", "--price", "0.05", "chf", *start]) == 0
    assert "  CHF 30.00 a month at CHF 0.05 per GB-month (--price)\n" in capsys.readouterr().out


def test_simulate_command_prices_a_policy_target_as_its_provider_and_settings(tmp_path, capsys):
    from snapshot_policy.cli import main

    policy = tmp_path / "snapshot-policy.yaml"
    policy.write_text(
        "version: 1\naccounts:\n  hz: {provider: hetzner, token: env:NOWHERE}\n"
        "targets:\n  - {name: db, account: hz, ids: [42], retention: {keep_last: 10}}\n"
        "settings:\n  prices: {hetzner: {per_gb_month: 0.02}}\n",
        encoding="utf-8",
    )
    assert (
        main(
            [
                "simulate",
                "--policy",
                str(policy),
                "--snapshot-size",
                "5",
                "--start",
                "2026-01-01T03:00:00Z",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "  EUR 1.00 a month at EUR 0.02 per GB-month (Hetzner)\n" in out
        and "DigitalOcean" not in out
    )


def test_simulate_command_prices_only_with_a_snapshot_size(capsys):
    from snapshot_policy.cli import main

    assert main(["simulate", "--keep-last", "3", "--provider", "hetzner"]) == 1
    assert "give --snapshot-size GB too" in capsys.readouterr().err
    assert (
        main(["simulate", "--keep-last", "3", "--snapshot-size", "2", "--price", "0.05", "euro"])
        == 1
    )
    assert "'euro' is not a currency code such as USD or EUR" in capsys.readouterr().err
    assert main(["simulate", "--keep-last", "3", "--snapshot-size", "0"]) == 1
    assert main(["simulate", "--keep-yearly", "100", "--snapshot-size", "2"]) == 1
    assert (
        "keep_yearly 100 fills only after 36966 days; a steady state is projected within 36600 days"
        in capsys.readouterr().err
    )
