"""`settings.soft_delete` (issue 23, item 2): a grace of hours, days or weeks, or nothing."""

from __future__ import annotations

import pytest

from snapshot_policy.config.policy import load_policy
from snapshot_policy.core.duration import Duration
from tests.unit.config.test_policy import policy_at


def test_soft_delete_is_off_unless_set(tmp_path):
    assert load_policy(policy_at(tmp_path / "p.yaml"), {}).settings.soft_delete is None
    loaded = load_policy(policy_at(tmp_path / "q.yaml", "  soft_delete: 7d\n"), {})
    assert loaded.problems == [] and loaded.settings.soft_delete == Duration(days=7)
    loaded = load_policy(policy_at(tmp_path / "r.yaml", "  soft_delete: 1w12h\n"), {})
    assert loaded.settings.soft_delete == Duration(days=7, hours=12)


@pytest.mark.parametrize(
    "value, words",
    [("0d", "zero duration"), ("1m", "hours, days or weeks"), ("soon", "hours, days or weeks")],
)
def test_a_soft_delete_that_is_no_fixed_grace_is_refused_naming_the_file_and_key(
    value, words, tmp_path
):
    path = policy_at(tmp_path / "p.yaml", f"  soft_delete: {value}\n")
    loaded = load_policy(path, {})
    [problem] = [p for p in loaded.problems if p.path == "settings.soft_delete"]
    assert problem.file == str(path)
    assert words in problem.message and "7d" in problem.message, problem.message
