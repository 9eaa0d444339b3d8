"""Issue 19, item 1, as a property through the real SDKs: whatever others add to or delete
from an account between the pages of its snapshot listing, the plan deletes nothing that a
plan from a consistent view of the cloud would keep, and lists no snapshot twice.

A consistent view here is the cloud at one moment: as it is once the shifting stopped (a
listing that settled when read again equals it, and one that never settled withholds every
deletion of its account), or as it was before a shift that landed only after the last page
of the read was served (pages are read a few at a time, so the page that sets a shift off
may be the last one answered). Such a read is a true view of that earlier moment, and its
plan is that moment's plan; acting on a view that others change afterwards is the race every
read-then-act has, not a listing that lied.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import (
    DIGITALOCEAN,
    HETZNER,
    Account,
    ActionKind,
    RetentionPolicy,
    Schedule,
    Selector,
    TargetSpec,
)
from snapshot_policy.core.ownership import (
    DIGITALOCEAN_TAG,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SERVER_ID_LABEL,
)
from snapshot_policy.core.reconcile import build_plan
from snapshot_policy.edges import providers
from snapshot_policy.edges.providers.retry import RetryPolicy, Timing
from snapshot_policy.engine.observe import observe
from snapshot_policy.sandbox import Sandbox
from tests.integration.conftest import DO_TOKEN, HZ_TOKEN, seed

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
# (account, server, listing path, token, snapshots in all, page size, listing order): three pages.
CLOUDS = {
    HETZNER: ("hz-a", 301, r"^/v1/images$", HZ_TOKEN, 118, 50, "newest first"),
    DIGITALOCEAN: ("do-a", 101, r"^/v2/snapshots$", DO_TOKEN, 438, 200, "oldest first"),
}
MANAGED, KEEP_LAST = 8, 6


@pytest.fixture(scope="module")
def cloud():
    with Sandbox(seed(), action_seconds=0.05, clock=lambda: NOW) as sandbox:
        yield sandbox


def reset(sandbox: Sandbox, provider: str) -> list[int]:
    """Seed the server's snapshots: MANAGED of ours, daily, whose places in the listing
    straddle the end of page 1 (where a shift pushes an item onto page 2 as well), amid
    manual ones. Return every id."""
    sandbox.clear_faults()
    sandbox.load_state(seed())
    account, server_id, _, _, count, page_size, order = CLOUDS[provider]
    ids = list(range(1000, 1000 + count))
    in_order = ids[::-1] if order == "newest first" else ids
    ours = in_order[page_size - MANAGED // 2 : page_size + MANAGED // 2]
    marks = (
        {"tags": [DIGITALOCEAN_TAG]}
        if provider == DIGITALOCEAN
        else {"labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, SERVER_ID_LABEL: str(server_id)}}
    )
    for n, snapshot_id in enumerate(sorted(ours, reverse=True)):
        created = NOW - timedelta(days=n, hours=1)
        sandbox.state.add_snapshot(
            account,
            f"srv-{created:%Y%m%d%H%M%S}",
            server_id=server_id,
            id=snapshot_id,
            created=created,
            **marks,
        )
    for n, snapshot_id in enumerate(i for i in ids if i not in ours):
        sandbox.state.add_snapshot(
            account,
            f"manual-{n}",
            server_id=server_id,
            id=snapshot_id,
            created=NOW - timedelta(days=400, minutes=n),
        )
    return ids


def plan_now(sandbox: Sandbox, provider: str):
    account, server_id, _, token, *_ = CLOUDS[provider]
    endpoint = (
        sandbox.digitalocean_endpoint if provider == DIGITALOCEAN else sandbox.hetzner_endpoint
    )
    spec = TargetSpec(
        "srv",
        Account(account, provider, token, endpoint),
        Selector(ids=(str(server_id),)),
        RetentionPolicy(keep_last=KEEP_LAST),
        schedule=Schedule(every=Duration(days=1)),
        server_name="srv",
    )
    retry = RetryPolicy(sleep=lambda seconds: None)
    observation = observe(
        [spec],
        lambda a: providers.connect(a, Timing(request_timeout=5, creation_timeout=60), retry),
        orphans=False,
        now=NOW,
    )
    return observation, build_plan(observation.observed, NOW, withheld=observation.withheld)


def server_snapshots(sandbox: Sandbox, server_id: int) -> frozenset[str]:
    with sandbox.state.lock:
        return frozenset(
            str(i) for i, s in sandbox.state.snapshots.items() if s.server_id == server_id
        )


def plan_recording_moments(sandbox: Sandbox, provider: str):
    """`plan_now`, and the server's snapshots at each moment the cloud passed through meanwhile:
    before the first shift and after each one."""
    server_id = CLOUDS[provider][1]
    moments = [server_snapshots(sandbox, server_id)]
    shift_now = sandbox._shift

    def shift_and_record(fault, account) -> None:
        shift_now(fault, account)
        moments.append(server_snapshots(sandbox, server_id))

    sandbox._shift = shift_and_record
    try:
        return (*plan_now(sandbox, provider), moments)
    finally:
        del sandbox._shift  # the class's own again


def deleted(plan) -> set[str]:
    return {a.snapshot.id for p in plan.targets for a in p.of_kind(ActionKind.DELETE)}


shift = st.fixed_dictionaries(
    {
        "page": st.integers(1, 3),
        "insert": st.integers(0, 3),
        "delete": st.lists(st.integers(0, 10_000), max_size=3),  # indexes into the seeded ids
        "count": st.integers(1, 4),  # 4 fires outlast the re-reads: the listing never settles
    }
)


@pytest.mark.parametrize("provider", [HETZNER, DIGITALOCEAN])
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(shifts=st.lists(shift, min_size=1, max_size=3))
def test_a_listing_that_shifts_between_pages_never_deletes_what_a_consistent_view_keeps(
    cloud, provider, shifts
):
    ids = reset(cloud, provider)
    _, server_id, path, *_ = CLOUDS[provider]
    for change in shifts:
        doomed = sorted({ids[i % len(ids)] for i in change["delete"]})
        cloud.inject(
            "shift",
            service=provider,
            path=path,
            page=change["page"],
            insert=change["insert"],
            delete=doomed,
            server_id=server_id,
            count=change["count"],
        )

    observation, plan, moments = plan_recording_moments(cloud, provider)
    seen = [s.id for _, snapshots in observation.observed for s in snapshots]
    assert len(seen) == len(set(seen))  # each snapshot once, however the pages overlapped
    cloud.clear_faults()
    _, consistent = plan_now(cloud, provider)
    assert frozenset(seen) in moments or deleted(plan) <= deleted(consistent)
    if observation.withheld:
        assert deleted(plan) == set() and all(p.withheld for p in plan.targets)
