"""Seeded random chaos over simulated days (issue 7, part 2b); see randomchaos.py.

Marked `chaos`: `python -m pytest -m chaos`. CHAOS_RUNS (default 300, i.e. 50 simulated
days) and CHAOS_SEEDS (comma-separated, default 1) tune it.
"""

from __future__ import annotations

import os

import pytest

from tests.chaos.randomchaos import chaos

pytestmark = pytest.mark.chaos
RUNS = int(os.environ.get("CHAOS_RUNS", "300"))
SEEDS = [int(s) for s in os.environ.get("CHAOS_SEEDS", "1").split(",")]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_faults_over_simulated_days_keep_every_invariant(seed, tmp_path):
    stats = chaos(tmp_path, seed, RUNS)
    print(f"seed {seed}: {stats}")
    assert stats["runs"] == RUNS
    assert stats["created"] > RUNS // 3 and stats["deleted"] > RUNS // 6  # it did real work
