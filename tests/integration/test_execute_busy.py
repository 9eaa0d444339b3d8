"""The Executor when views disagree or servers are busy: withheld deletions make a target
partial; a busy server holds no request slot and is waited for, unless it is busy making a
snapshot already; an after hook owed by a killed run runs first.

Through the real SDKs against the sandbox, as test_execute.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from snapshot_policy.core.model import DIGITALOCEAN, HETZNER, ActionKind, PlanAction
from tests.integration.test_execute import (  # noqa: F401
    TARGETS,
    WEB,
    cloud,
    executor,
    journal,
    names_on,
    plan_for,
    providers,
)


def test_a_target_whose_deletions_are_withheld_is_partial_and_says_why(
    cloud, providers, journal, clock, tmp_path
):  # noqa: F811
    plan = plan_for(providers, clock, WEB)
    (target_plan,) = plan.targets
    reason = "the snapshot listing of account do-a changed while it was read"
    skips = tuple(
        PlanAction(ActionKind.SKIP, a.snapshot, reason) if a.kind is ActionKind.DELETE else a
        for a in target_plan.actions
    )
    plan = replace(plan, targets=(replace(target_plan, actions=skips, withheld=reason),))
    before = names_on(cloud, WEB)
    report = executor(providers, journal, clock, tmp_path, plan).apply(plan)
    (outcome,) = report.outcomes
    assert outcome.created is not None and outcome.deleted == ()
    assert names_on(cloud, WEB) == before | {outcome.created.name}
    assert outcome.partial and not outcome.ok
    assert outcome.error == f"deletions withheld: {reason}"
    assert report.exit_code == 2


# -- item 8: a busy server holds no request slot; busy with a snapshot is not waited out ---------


def busy_with(sandbox, account: str, server_id: int, command: str, seconds: float) -> None:
    """Make a server busy with an action of the sandbox's that is not a snapshot (a resize, say):
    it refuses a new action until `seconds` have passed. (The sandbox has no request for this.)"""
    with sandbox.state.lock:
        sandbox.state._new_action(
            sandbox.state.accounts[account], command, server_id, duration=seconds
        )


def test_droplets_busy_with_a_resize_do_not_delay_a_free_droplets_start(
    sandbox, providers, journal, clock, tmp_path
):  # noqa: F811
    state = sandbox.dump_state()
    state["servers"] += [
        {"account": "do-a", "id": 104 + n, "name": f"web-{4 + n}"} for n in range(2)
    ]
    sandbox.load_state(state)
    busy_ids, free_id = (101, 102, 103, 104), 105
    for server_id in busy_ids:
        busy_with(sandbox, "do-a", server_id, "resize", 1.0)
    targets = [
        replace(WEB, name=f"t{server_id}", server_id=str(server_id), server_name=f"web-{server_id}")
        for server_id in (*busy_ids, free_id)
    ]
    plan = plan_for(providers, clock, *targets)
    sandbox.clear_requests()
    report = executor(providers, journal, clock, tmp_path, plan).apply(plan)
    assert report.exit_code == 0 and all(
        o.created for o in report.outcomes
    )  # the busy ones were waited for
    made = [
        int(r["path"].split("/")[3])
        for r in sandbox.requests("digitalocean")
        if r["method"] == "POST" and "/droplets/" in r["path"] and r["status"] == 201
    ]
    assert made[0] == free_id and sorted(made[1:]) == list(
        busy_ids
    )  # the free droplet did not wait for them


@pytest.mark.parametrize("provider", [DIGITALOCEAN, HETZNER])
def test_a_server_found_busy_with_a_snapshot_at_the_start_fails_as_busy_and_gets_no_second_one(
    cloud, providers, journal, clock, tmp_path, provider, do, hz
):  # noqa: F811
    """Another configuration started a snapshot in the same second: our listing did not show
    it yet, the start is refused as busy, and the listing read again says it is a snapshot."""
    target = TARGETS[provider]
    plan = plan_for(providers, clock, target)
    cloud.state.action_seconds = 1.0
    if provider == DIGITALOCEAN:
        do.droplet_actions.post(droplet_id=101, body={"type": "snapshot", "name": "other-config"})
        cloud.inject(
            "patch",
            service=provider,
            method="GET",
            path="^/v2/actions$",
            patch={"actions": []},
            count=1,
        )
    else:
        from hcloud.servers import Server

        hz.servers.create_image(Server(id=301), description="other-config", type="snapshot")
        cloud.inject(
            "patch",
            service=provider,
            method="GET",
            path="^/v1/servers/actions$",
            patch={"actions": []},
            count=1,
        )
    cloud.clear_requests()
    (outcome,) = executor(providers, journal, clock, tmp_path, plan).apply(plan).outcomes
    assert (
        not outcome.ok
        and "already has a snapshot in progress; not starting a second one" in outcome.error
    )
    assert outcome.created is None and outcome.deleted == ()
    assert [r["status"] for r in cloud.requests(provider) if r["method"] != "GET"] == [
        422 if provider == DIGITALOCEAN else 423
    ]
    assert (
        journal.pending(target.account, target.server_id) == {}
    )  # refused for certain: nothing to adopt


def test_an_after_hook_owed_to_a_target_this_run_could_not_read_runs_first(
    providers, journal, clock, tmp_path
):  # noqa: F811
    """A run killed after a before hook owes its after hook; the next run cannot read the
    server (its account's listing failed): the after hook needs no cloud and runs all the
    same, and one no longer configured fails the target by name (found by the proof)."""
    import sys

    from snapshot_policy.core.model import Hooks, Plan, TargetFailure

    record = tmp_path / "after.log"
    after = Hooks(
        before=("true",),
        after=(sys.executable, "-c", f"open({str(record)!r}, 'a').write('after\\n')"),
    )
    journal.before_ran("do-a", "101", "web", "web-1-20250101000000", clock())
    journal.before_ran("do-a", "102", "gone-hooks", "web-2-20250101000000", clock())
    failures = [
        TargetFailure(
            "web", "cannot read account do-a: 503", "do-a", provider=DIGITALOCEAN, hooks=after
        ),
        TargetFailure("gone-hooks", "cannot read account do-a: 503", "do-a", provider=DIGITALOCEAN),
    ]
    plan = Plan(clock())
    report = executor(providers, journal, clock, tmp_path, plan).apply(plan, failures)
    assert record.read_text() == "after\n"
    assert (
        journal.afters_owed("do-a", "web") == {} and journal.afters_owed("do-a", "gone-hooks") == {}
    )
    (unconfigured,) = report.failures[2:]
    assert (
        unconfigured.target == "gone-hooks"
        and "is no longer configured: check server 102 by hand" in unconfigured.reason
    )
    assert report.exit_code == 1
