"""The proof of issue 19 (see proof.py): runs of two configurations over the same servers,
interleaved with listings that shift between pages, stops and kills at random moments, clock jumps
both ways, hand-made and hand-marked snapshots, and hooks that fail or hang; since issue 22 also
restore drills (apply's due ones and the `drill` command) meeting lost create replies, boot
failures, slow boots, failed DELETEs, stops and kills at each moment of a drill, and servers made
by hand that look like drill servers; since issue 23 also copies in other regions with failing
transfers, pins and soft delete through the CLI's pin/unpin/undelete, volume snapshots,
per-server overrides and consistency: shutdown; docs/promises.md §5's checks after every step.

Marked `chaos`: `python -m pytest -m chaos`. A fixed number of examples and steps, derandomized,
so every run of the suite plays the same scenarios (thread timing aside): 16 examples of up to
50 steps (24 before the drills came, which about doubled the runs per step). PROOF_EXAMPLES and
PROOF_STEPS tune it; the counts it ran are printed at the end, and kept in proof.COUNTS.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.chaos.proof import COUNTS, Proof

pytestmark = pytest.mark.chaos
EXAMPLES = int(os.environ.get("PROOF_EXAMPLES", "16"))
STEPS = int(os.environ.get("PROOF_STEPS", "50"))


def test_views_that_disagree_never_cost_a_snapshot_the_tool_must_keep(capsys):
    COUNTS.clear()
    run_state_machine_as_test(
        Proof,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )
    with capsys.disabled():
        print(
            f"\nproof: {EXAMPLES} examples of up to {STEPS} steps: {dict(sorted(COUNTS.items()))}"
        )
    assert COUNTS["runs"] >= EXAMPLES * STEPS // 6 and COUNTS["deleted"] and COUNTS["created"]
