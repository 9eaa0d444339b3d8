"""The policy's duration-bounded retention keys (`keep_within_hourly` … `keep_within_yearly`)."""

from __future__ import annotations

from snapshot_policy.config.policy import load_policy
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import RetentionPolicy

HEAD = "version: 1\naccounts:\n  hz: {provider: hetzner, token: literal-token}\n"


def load(tmp_path, retention: str, defaults: str = ""):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        HEAD
        + defaults
        + f"targets:\n  - name: web\n    account: hz\n    ids: [1]\n    retention: {retention}\n"
    )
    return load_policy(policy, {})


def test_policy_reads_every_duration_bounded_rule(tmp_path):
    loaded = load(
        tmp_path,
        "{keep_within_hourly: 36h, keep_within_daily: 2w, keep_within_weekly: 3m, "
        "keep_within_monthly: 1y6m, keep_within_yearly: 10y}",
    )
    assert not loaded.problems
    assert loaded.targets[0].retention == RetentionPolicy(
        keep_within_hourly=Duration(hours=36),
        keep_within_daily=Duration(days=14),
        keep_within_weekly=Duration(months=3),
        keep_within_monthly=Duration(years=1, months=6),
        keep_within_yearly=Duration(years=10),
    )
    assert loaded.targets[0].retention.describe() == (
        "keep_within_hourly 36h, keep_within_daily 14d, keep_within_weekly 3m, "
        "keep_within_monthly 1y6m, keep_within_yearly 10y"
    )


def test_a_duration_bounded_rule_alone_is_a_retention_rule(tmp_path):
    loaded = load(tmp_path, "{keep_within_daily: 7d}")
    assert not loaded.problems
    assert loaded.targets[0].retention.has_rules


def test_a_target_takes_the_duration_bounded_rules_of_the_defaults(tmp_path):
    loaded = load(
        tmp_path, "{keep_last: 2}", defaults="defaults:\n  retention: {keep_within_weekly: 2m}\n"
    )
    # As for every key of a target, its own retention replaces the defaults' whole.
    assert loaded.targets[0].retention == RetentionPolicy(keep_last=2)
    policy = tmp_path / "d.yaml"
    policy.write_text(
        HEAD + "defaults:\n  retention: {keep_within_weekly: 2m}\ntargets:\n"
        "  - {name: web, account: hz, ids: [1]}\n"
    )
    assert load_policy(policy, {}).targets[0].retention == RetentionPolicy(
        keep_within_weekly=Duration(months=2)
    )


def test_a_zero_duration_is_refused_with_the_key_named(tmp_path):
    loaded = load(tmp_path, "{keep_daily: 7, keep_within_monthly: 0m}")
    assert loaded.targets == []
    [problem] = loaded.problems
    assert problem.path == "targets[0].retention.keep_within_monthly"
    assert "zero duration" in problem.message
