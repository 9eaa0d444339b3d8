"""The Executor carrying out consistency: shutdown through the real SDKs against the sandbox
(docs/promises.md §5.17): the power state of every server waited for is read in one listing
per account per round, and no shutdown is sent when the journal cannot take its entry."""

from __future__ import annotations

from dataclasses import replace

import pytest

from snapshot_policy.core.model import DIGITALOCEAN, HETZNER, Consistency
from tests.integration import test_execute as base

BOTH = pytest.mark.parametrize("provider", [DIGITALOCEAN, HETZNER])
POWER_PATHS = ("/actions/shutdown", "/actions/poweron", "/actions/poweroff")


@pytest.fixture
def providers(sandbox):
    return base.providers.__wrapped__(sandbox)


@pytest.fixture
def journal(tmp_path, clock):
    return base.journal.__wrapped__(tmp_path, clock)


def shutdown_target(provider: str):
    return replace(base.TARGETS[provider], consistency=Consistency(), server_status="running")


def power_posts(sandbox, provider: str) -> list[str]:
    return [
        r["path"]
        for r in sandbox.requests(provider)
        if r["method"] == "POST"
        and (r["path"].endswith(POWER_PATHS) or r["path"].endswith("/actions"))
    ]


@BOTH
def test_no_shutdown_is_sent_when_the_journal_cannot_take_its_entry(
    sandbox, providers, journal, clock, tmp_path, provider
):
    target = shutdown_target(provider)
    plan = base.plan_for(providers, clock, target, journal=journal)
    (tmp_path / "journal.json").mkdir()  # the journal can no longer be replaced
    report = base.executor(providers, journal, clock, tmp_path, plan).apply(plan)
    (outcome,) = report.outcomes
    assert not outcome.ok and "could not shut the server down" in outcome.error
    assert "the journal could not be written" in outcome.error
    assert power_posts(sandbox, provider) == []  # no shutdown, no snapshot, no power on
    assert outcome.created is None and outcome.deleted == ()


def test_one_listing_a_round_serves_every_server_waited_for(
    sandbox, providers, journal, clock, tmp_path
):
    sandbox.state.shutdown_seconds = 0.5
    targets = [
        replace(shutdown_target(DIGITALOCEAN), name=f"web{n}", server_id=str(server_id))
        for n, server_id in enumerate((101, 102, 103))
    ]
    plan = base.plan_for(providers, clock, *targets, journal=journal)
    report = base.executor(providers, journal, clock, tmp_path, plan).apply(plan)
    assert all(o.ok and o.downtime_seconds is not None for o in report.outcomes)
    requests = sandbox.requests(DIGITALOCEAN)
    listings = [r for r in requests if r["method"] == "GET" and r["path"] == "/v2/droplets"]
    single = [r for r in requests if r["method"] == "GET" and r["path"].startswith("/v2/droplets/")]
    assert listings and not [r for r in single if r["path"].count("/") == 3]  # no GET per droplet
    # one listing a round for the three of them, rounds poll_interval (0.02 s here) apart,
    # never a burst of three
    times = sorted(r["time"] for r in listings)
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert min(gaps) > 0.015, gaps
