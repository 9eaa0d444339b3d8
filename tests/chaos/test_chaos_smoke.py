"""A fast slice of the chaos suites for the default test run: a few fault cases and one
simulated day of random chaos. The full suites are marked `chaos` (`pytest -m chaos`)."""

from __future__ import annotations

import pytest

from tests.chaos.faultcases import Case, reference, run_case
from tests.chaos.randomchaos import chaos

SMOKE = [
    Case("create", "lose_reply", "digitalocean", persistent=False),
    Case("poll", "500", "hetzner", persistent=True),
    Case("list", "429", "digitalocean", persistent=False),
    Case("delete", "drop", "hetzner", persistent=True),
    Case("create", "fail_action", "digitalocean", persistent=False),
    Case("webhook", "503", None, persistent=True),
]


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    return reference(tmp_path_factory.mktemp("reference"))


@pytest.mark.parametrize("case", SMOKE, ids=lambda case: case.id)
def test_fault_case_converges(case, expected, tmp_path):
    run_case(case, tmp_path, expected)


def test_one_simulated_day_of_random_chaos_keeps_the_invariants(tmp_path):
    stats = chaos(tmp_path, seed=20261126, runs=6)
    assert stats["runs"] == 6 and stats["created"] > 0
