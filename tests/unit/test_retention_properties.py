"""Properties of the retention engine, checked with hypothesis over random histories.

The oracles below restate restic's rules independently of the engine: for a counted rule with
count N, keep the newest snapshot of each of the N most recent periods, plus the oldest
snapshot if the snapshots before it span fewer than N periods; for a duration-bounded rule,
keep the newest snapshot of each period among the snapshots newer than the newest minus the
duration, plus the oldest snapshot if it is one of those.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import DrillMark, RetentionPolicy, Snapshot
from snapshot_policy.core.retention import select

EXAMPLES = settings(max_examples=400, deadline=None)
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
]
RULES = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"]
WITHIN_RULES = [
    "keep_within_hourly",
    "keep_within_daily",
    "keep_within_weekly",
    "keep_within_monthly",
    "keep_within_yearly",
]
PERIOD = {
    "keep_hourly": lambda t: (t.date(), t.hour, t.utcoffset()),
    "keep_daily": lambda t: t.date(),
    "keep_weekly": lambda t: t.isocalendar()[:2],
    "keep_monthly": lambda t: (t.year, t.month),
    "keep_yearly": lambda t: t.year,
}

moments = st.datetimes(
    min_value=datetime(2019, 1, 1),
    max_value=datetime(2031, 12, 31),
    timezones=st.just(timezone.utc),
).map(lambda t: t.replace(microsecond=0))
histories = st.lists(moments, min_size=1, max_size=40).map(
    lambda times: [Snapshot(str(i), f"s{i}", t, "1", True, "managed") for i, t in enumerate(times)]
)
# Dense histories: many snapshots a few hours apart, so periods hold several each.
dense_histories = st.tuples(
    moments, st.lists(st.integers(0, 30 * 60), min_size=1, max_size=60)
).map(
    lambda pair: [
        Snapshot(
            str(i),
            f"s{i}",
            pair[0] + timedelta(minutes=sum(pair[1][: i + 1])),
            "1",
            True,
            "managed",
        )
        for i in range(len(pair[1]))
    ]
)
any_history = st.one_of(histories, dense_histories)
zones = st.sampled_from(ZONES).map(ZoneInfo)
counts = st.integers(0, 12)
durations = st.builds(
    Duration,
    years=st.integers(0, 1),
    months=st.integers(0, 3),
    days=st.integers(0, 10),
    hours=st.integers(1, 48),
)
policies = st.builds(
    RetentionPolicy,
    keep_last=counts,
    keep_hourly=counts,
    keep_daily=counts,
    keep_weekly=counts,
    keep_monthly=counts,
    keep_yearly=counts,
    keep_within=st.none() | durations,
    **{rule: st.none() | durations for rule in WITHIN_RULES},
)


def kept(snapshots, policy, zone):
    return {s for s, rules in select(snapshots, policy, zone).items() if rules}


def oracle(snapshots, rule, count, zone):
    ordered = sorted(snapshots, key=lambda s: (s.created, s.id), reverse=True)
    if rule == "keep_last":
        keys = list(range(len(ordered)))
    else:
        keys = [PERIOD[rule](s.created.astimezone(zone)) for s in ordered]
    chosen, seen = set(), []
    for snapshot, key in zip(ordered, keys, strict=True):
        if len(seen) < count and key not in seen:
            seen.append(key)
            chosen.add(snapshot)
    if count and len(set(keys[:-1])) < count:
        chosen.add(ordered[-1])
    return chosen


def within_oracle(snapshots, rule, duration, zone):
    ordered = sorted(snapshots, key=lambda s: (s.created, s.id), reverse=True)
    inside = [s for s in ordered if s.created > duration.before(ordered[0].created, zone)]
    period = PERIOD[rule.replace("_within", "")]
    chosen, seen = set(), set()
    for snapshot in inside:
        if period(snapshot.created.astimezone(zone)) not in seen:
            seen.add(period(snapshot.created.astimezone(zone)))
            chosen.add(snapshot)
    if ordered[-1] in inside:
        chosen.add(ordered[-1])
    return chosen


def within_reasons(snapshots, rule, duration, zone):
    """{snapshot: its reason from `rule`} for the snapshots the rule keeps, e.g. `daily within
    7d`."""
    name = f"{rule.removeprefix('keep_within_')} within {duration}"
    result = select(snapshots, RetentionPolicy(**{rule: duration}), zone)
    return {s: r for s, rules in result.items() for r in rules if r in (name, f"oldest {name}")}


@EXAMPLES
@given(histories, st.integers(1, 50), zones)
def test_keep_last_keeps_exactly_min_of_n_and_count(snapshots, n, zone):
    assert len(kept(snapshots, RetentionPolicy(keep_last=n), zone)) == min(n, len(snapshots))


@EXAMPLES
@given(any_history, st.sampled_from(RULES), st.integers(1, 12), zones)
def test_each_counted_rule_matches_the_restic_oracle(snapshots, rule, count, zone):
    assert kept(snapshots, RetentionPolicy(**{rule: count}), zone) == oracle(
        snapshots, rule, count, zone
    )


@EXAMPLES
@given(any_history, policies, zones)
def test_policy_keeps_the_union_of_its_rules(snapshots, policy, zone):
    if not policy.has_rules:
        return
    expected = set()
    for rule in RULES:
        if getattr(policy, rule):
            expected |= oracle(snapshots, rule, getattr(policy, rule), zone)
    if policy.keep_within is not None:
        newest = max(s.created for s in snapshots)
        expected |= {s for s in snapshots if s.created > policy.keep_within.before(newest, zone)}
    for rule in WITHIN_RULES:
        if getattr(policy, rule) is not None:
            expected |= within_oracle(snapshots, rule, getattr(policy, rule), zone)
    newest_snapshot = max(snapshots, key=lambda s: (s.created, s.id))
    assert kept(snapshots, policy, zone) == expected | {newest_snapshot}


@EXAMPLES
@given(any_history, policies, zones)
def test_newest_snapshot_is_always_kept(snapshots, policy, zone):
    newest = max(snapshots, key=lambda s: (s.created, s.id))
    assert newest in kept(snapshots, policy, zone)


@EXAMPLES
@given(any_history, policies, st.sampled_from(RULES), st.integers(1, 5), zones)
def test_adding_to_a_rule_never_keeps_fewer(snapshots, policy, rule, extra, zone):
    richer = RetentionPolicy(**{**policy.__dict__, rule: getattr(policy, rule) + extra})
    if policy.has_rules:
        assert kept(snapshots, policy, zone) <= kept(snapshots, richer, zone)


@EXAMPLES
@given(any_history, policies, zones, st.randoms(use_true_random=False))
def test_result_does_not_depend_on_input_order(snapshots, policy, zone, random):
    shuffled = list(snapshots)
    random.shuffle(shuffled)
    assert select(shuffled, policy, zone) == select(snapshots, policy, zone)


@EXAMPLES
@given(any_history, policies, zones)
def test_every_snapshot_has_an_answer_and_kept_ones_name_their_rules(snapshots, policy, zone):
    result = select(snapshots, policy, zone)
    assert set(result) == set(snapshots)
    for rules in result.values():
        assert len(rules) == len(set(rules))


@EXAMPLES
@given(any_history, st.sampled_from(WITHIN_RULES), durations, zones)
def test_each_within_rule_matches_the_restic_oracle(snapshots, rule, duration, zone):
    assert kept(snapshots, RetentionPolicy(**{rule: duration}), zone) == within_oracle(
        snapshots, rule, duration, zone
    )


@EXAMPLES
@given(any_history, st.sampled_from(WITHIN_RULES), durations, zones)
def test_within_rule_keeps_at_most_one_per_period_besides_the_oldest_snapshot(
    snapshots, rule, duration, zone
):
    reasons = within_reasons(snapshots, rule, duration, zone)
    period = PERIOD[rule.replace("_within", "")]
    periods = [
        period(s.created.astimezone(zone))
        for s, r in reasons.items()
        if not r.startswith("oldest ")
    ]
    assert len(periods) == len(set(periods))
    oldest = min(snapshots, key=lambda s: (s.created, s.id))
    assert all(s == oldest for s, r in reasons.items() if r.startswith("oldest "))


@EXAMPLES
@given(any_history, st.sampled_from(WITHIN_RULES), durations, zones)
def test_within_rule_keeps_the_newest_snapshot_of_each_period_inside_the_duration(
    snapshots, rule, duration, zone
):
    cutoff = duration.before(max(s.created for s in snapshots), zone)
    period = PERIOD[rule.replace("_within", "")]
    newest_of = {}
    for snapshot in sorted(snapshots, key=lambda s: (s.created, s.id)):
        newest_of[period(snapshot.created.astimezone(zone))] = snapshot
    expected = {s for s in newest_of.values() if s.created > cutoff}
    assert expected <= set(within_reasons(snapshots, rule, duration, zone))


@EXAMPLES
@given(any_history, policies, zones)
def test_a_snapshot_kept_by_a_within_rule_is_inside_its_duration(snapshots, policy, zone):
    newest = max(s.created for s in snapshots)
    for snapshot, rules in select(snapshots, policy, zone).items():
        for rule in WITHIN_RULES:
            duration = getattr(policy, rule)
            if duration is not None and any(
                r.endswith(f"{rule.removeprefix('keep_within_')} within {duration}") for r in rules
            ):
                assert snapshot.created > duration.before(newest, zone)


@EXAMPLES
@given(any_history, policies, st.sampled_from(WITHIN_RULES), durations, zones)
def test_a_longer_within_duration_never_keeps_fewer(snapshots, policy, rule, extra, zone):
    base = getattr(policy, rule) or Duration(hours=1)
    shorter = RetentionPolicy(**{**policy.__dict__, rule: base})
    longer = RetentionPolicy(
        **{
            **policy.__dict__,
            rule: Duration(
                base.years + extra.years,
                base.months + extra.months,
                base.days + extra.days,
                base.hours + extra.hours,
            ),
        }
    )
    assert kept(snapshots, shorter, zone) <= kept(snapshots, longer, zone)


# -- keep_verified (issue 22): the newest N snapshots that passed a restore drill ------------

drill_marks = st.none() | st.builds(
    DrillMark, st.booleans(), st.dates(date(2026, 1, 1), date(2026, 12, 31))
)


@st.composite
def drilled_histories(draw):
    snapshots = draw(any_history)
    return [replace(s, drilled=draw(drill_marks)) for s in snapshots]


@EXAMPLES
@given(drilled_histories(), policies, st.integers(1, 12), zones)
def test_keep_verified_only_adds(snapshots, policy, n, zone):
    without = kept(snapshots, policy, zone)
    with_verified = select(snapshots, replace(policy, keep_verified=n), zone)
    assert without <= {s for s, rules in with_verified.items() if rules}
    for snapshot, rules in select(snapshots, policy, zone).items():
        assert set(rules) <= set(with_verified[snapshot])


@EXAMPLES
@given(drilled_histories(), policies, st.integers(0, 12), zones)
def test_keep_verified_keeps_the_newest_n_passed_snapshots(snapshots, policy, n, zone):
    result = select(snapshots, replace(policy, keep_verified=n), zone)
    passed = [
        s
        for s in sorted(snapshots, key=lambda s: (s.created, s.id), reverse=True)
        if s.drilled is not None and s.drilled.passed
    ]
    assert {s for s, rules in result.items() if "verified" in rules} == set(passed[:n])
