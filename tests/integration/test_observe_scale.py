"""observe over a mixed fleet in the sandbox, through the real SDKs (issue 13): the grouped
listing gives each target exactly what scanning the whole listing gives, accounts read at
the same time keep their failures to themselves, and a label selector is listed once."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from snapshot_policy.core.model import (
    DIGITALOCEAN,
    HETZNER,
    Account,
    RetentionPolicy,
    Selector,
    TargetSpec,
)
from snapshot_policy.edges.providers import connect
from snapshot_policy.edges.providers.retry import RetryPolicy, Timing
from snapshot_policy.engine.observe import _with_pending, observe
from snapshot_policy.sandbox import Sandbox
from tests.factories import cloud_accounts, mark_ours

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
TIMING = Timing(request_timeout=5, creation_timeout=5, poll_interval=0.02)
DO_TOKEN, HZ_TOKEN = "scale-do-token", "scale-hz-token"
SERVERS_PER_ACCOUNT = 60


def fleet() -> dict:
    """60 servers per cloud in groups a, b, c (DigitalOcean tag `group-X`, Hetzner label
    `group=X`), 8 snapshots each: ours, named like ours but unmarked, manual; and marked
    snapshots of two deleted servers per cloud."""
    rng = random.Random(13)
    state: dict = {
        "accounts": cloud_accounts(DO_TOKEN, HZ_TOKEN, rate_limit=1_000_000),
        "servers": [],
        "snapshots": [],
    }
    for account, base in (("do", 1000), ("hz", 2000)):
        for n in range(SERVERS_PER_ACCOUNT + 2):
            server_id, name, group = base + n, f"{account}-{n}", "abc"[n % 3]
            if n < SERVERS_PER_ACCOUNT:
                server = {"account": account, "id": server_id, "name": name}
                server.update(
                    {"tags": [f"group-{group}"]}
                    if account == "do"
                    else {"labels": {"group": group}}
                )
                state["servers"].append(server)
            for k in range(8):
                created = NOW - timedelta(days=k, hours=rng.randint(1, 20))
                kind = (
                    rng.choice(["ours", "ours", "lookalike", "manual"])
                    if n < SERVERS_PER_ACCOUNT
                    else "ours"
                )
                snapshot = {
                    "account": account,
                    "server_id": server_id,
                    "server_name": name,
                    "created": created.isoformat(),
                    "name": f"{name}-{created:%Y%m%d%H%M%S}"
                    if kind != "manual"
                    else f"manual {k} of {name}",
                }
                if kind == "ours":
                    mark_ours(snapshot)
                state["snapshots"].append(snapshot)
    return state


@pytest.fixture
def sandbox():
    with Sandbox(fleet(), clock=lambda: NOW) as sb:
        yield sb


@pytest.fixture
def accounts(sandbox):
    return {
        "do": Account("do", DIGITALOCEAN, DO_TOKEN, sandbox.digitalocean_endpoint),
        "hz": Account("hz", HETZNER, HZ_TOKEN, sandbox.hetzner_endpoint),
        "hz-revoked": Account("hz-revoked", HETZNER, "revoked-token", sandbox.hetzner_endpoint),
    }


def connector(account):
    return connect(account, TIMING, RetryPolicy(sleep=lambda seconds: None, jitter=lambda: 0.5))


def spec(name, account, selector, **options):
    return TargetSpec(name, account, selector, RetentionPolicy(keep_last=3), **options)


def selector_for(account: Account, group: str) -> Selector:
    return Selector(
        label_selector=f"group-{group}" if account.provider == DIGITALOCEAN else f"group={group}"
    )


def test_observe_of_a_mixed_sandbox_fleet_matches_the_per_target_scan(accounts):
    specs = []
    for key, base in (("do", 1000), ("hz", 2000)):
        account = accounts[key]
        specs += [
            spec(f"{key}-a", account, selector_for(account, "a")),
            spec(
                f"{key}-ids",
                account,
                Selector(ids=tuple(str(base + n) for n in range(1, SERVERS_PER_ACCOUNT, 3))),
            ),
            spec(
                f"{key}-names",
                account,
                Selector(names=tuple(f"{key}-{n}" for n in range(2, SERVERS_PER_ACCOUNT, 3))),
                adopt_legacy_names=True,
            ),
        ]
    observation = observe(specs, connector, orphans=True)

    assert observation.failures == []
    by_target: dict[tuple[str, str], int] = {}
    for target, _ in observation.observed:
        by_target[(target.account, target.name)] = (
            by_target.get((target.account, target.name), 0) + 1
        )
    assert by_target == {
        ("do", "do-a"): 20,
        ("do", "do-ids"): 20,
        ("do", "do-names"): 20,
        ("do", "(orphans)"): 2,
        ("hz", "hz-a"): 20,
        ("hz", "hz-ids"): 20,
        ("hz", "hz-names"): 20,
        ("hz", "(orphans)"): 2,
    }
    listings = {key: connector(accounts[key]).snapshots() for key in ("do", "hz")}
    for target, snapshots in observation.observed:
        assert snapshots == _with_pending(
            target, listings[target.account], None, timedelta(hours=1)
        ), target
    adopted = sum(
        s.managed and s.ownership.startswith("adopted")
        for t, snaps in observation.observed
        for s in snaps
    )
    assert adopted > 0  # the lookalikes of the names targets
    assert all(len(snaps) == 8 for _, snaps in observation.observed)


def test_observe_reads_accounts_together_and_a_revoked_token_fails_only_its_targets(
    sandbox, accounts
):
    specs = [
        spec("revoked", accounts["hz-revoked"], Selector(ids=("2001",))),
        spec("do-b", accounts["do"], selector_for(accounts["do"], "b")),
        spec("hz-b", accounts["hz"], selector_for(accounts["hz"], "b")),
        spec("revoked-too", accounts["hz-revoked"], selector_for(accounts["hz"], "c")),
    ]
    observation = observe(specs, connector, orphans=False)
    assert [(f.target, f.account) for f in observation.failures] == [
        ("revoked", "hz-revoked"),
        ("revoked-too", "hz-revoked"),
    ]
    assert all(f.reason.startswith("cannot read account hz-revoked:") for f in observation.failures)
    assert [t.name for t, _ in observation.observed] == ["do-b"] * 20 + ["hz-b"] * 20
    assert sorted(observation.providers) == ["do", "hz"]
    # Each account's listings were made once: no account read twice, none skipped.
    accounts_seen = {r["account"] for r in sandbox.requests() if r["status"] == 200}
    assert accounts_seen == {"do", "hz"}


def test_observe_lists_each_distinct_selector_once(sandbox, accounts):
    """Two targets with one selector (they then claim the same servers, and fail) and one
    with another: two selector listings per account, beside the one whole listing."""
    specs = []
    for key in ("do", "hz"):
        account = accounts[key]
        specs += [
            spec(f"{key}-b1", account, selector_for(account, "b")),
            spec(f"{key}-b2", account, selector_for(account, "b")),
            spec(f"{key}-c", account, selector_for(account, "c")),
        ]
    observation = observe(specs, connector, orphans=False)

    assert {f.target for f in observation.failures} == {"do-b1", "do-b2", "hz-b1", "hz-b2"}
    assert [t.name for t, _ in observation.observed] == ["do-c"] * 20 + ["hz-c"] * 20
    droplet_lists = [
        r["query"].get("tag_name")
        for r in sandbox.requests("digitalocean")
        if r["path"] == "/v2/droplets"
    ]
    server_lists = [
        r["query"].get("label_selector")
        for r in sandbox.requests("hetzner")
        if r["path"] == "/v1/servers"
    ]
    # Hetzner pages by 50 unless asked otherwise: the whole listing of 60 may take two pages.
    assert (
        sorted(set(droplet_lists), key=str) == [None, "group-b", "group-c"]
        and droplet_lists.count("group-b") == 1
    )
    assert (
        sorted(set(server_lists), key=str) == [None, "group=b", "group=c"]
        and server_lists.count("group=b") == 1
    )
