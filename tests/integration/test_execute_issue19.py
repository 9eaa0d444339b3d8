"""The Executor and issue 19: withheld deletions make a target partial; a busy server holds
no request slot and is waited for, unless it is busy making a snapshot already.

Through the real SDKs against the sandbox, as test_execute.py.
"""

from __future__ import annotations

from dataclasses import replace

from snapshot_policy.model import ActionKind, PlanAction
from tests.integration.test_execute import (  # noqa: F401
    WEB,
    cloud,
    executor,
    journal,
    names_on,
    plan_for,
    providers,
)


def test_a_target_whose_deletions_are_withheld_is_partial_and_says_why(cloud, providers, journal, clock, tmp_path):  # noqa: F811
    plan = plan_for(providers, clock, WEB)
    (target_plan,) = plan.targets
    reason = "the snapshot listing of account do-a changed while it was read"
    skips = tuple(PlanAction(ActionKind.SKIP, a.snapshot, reason) if a.kind is ActionKind.DELETE else a for a in target_plan.actions)
    plan = replace(plan, targets=(replace(target_plan, actions=skips, withheld=reason),))
    before = names_on(cloud, WEB)
    report = executor(providers, journal, clock, tmp_path, plan).apply(plan)
    (outcome,) = report.outcomes
    assert outcome.created is not None and outcome.deleted == ()
    assert names_on(cloud, WEB) == before | {outcome.created.name}
    assert outcome.partial and not outcome.ok
    assert outcome.error == f"deletions withheld: {reason}"
    assert report.exit_code == 2
