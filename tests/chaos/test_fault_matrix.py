"""The whole fault matrix (issue 7, part 2a): every fault kind on every endpoint kind.

Marked `chaos`, so the default test command leaves it out: `python -m pytest -m chaos`.
"""

from __future__ import annotations

import pytest

from tests.chaos.faultcases import Case, all_cases, reference, run_case

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    return reference(tmp_path_factory.mktemp("reference"))


@pytest.mark.parametrize("case", all_cases(), ids=lambda case: case.id)
def test_a_fault_then_a_rerun_converges_without_losing_or_doubling(case: Case, expected, tmp_path):
    run_case(case, tmp_path, expected)
