"""Regressions for three bugs the fault suites found in the create path (fixed in 3ad0798):
a slow snapshot POST made twice through the busy loop, a finished-but-unmarked snapshot
forgotten by the journal, and a failed action blocking the next run. Fast and
deterministic: part of the default run."""

from __future__ import annotations

import time

import pytest

from tests.chaos.faultcases import NOW, POLICY, state
from tests.chaos.harness import World

SERVER = {"digitalocean": 101, "hetzner": 201}


class LateCreate:
    """The RetryPolicy's sleep, forcing one interleaving: the backoff after the timed-out
    snapshot POST lasts until the cloud has acted on that POST (it was only slow)."""

    def __init__(self, world: World, server_id: int):
        self.world, self.server_id, self.waits, self.forced = world, server_id, [], False

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        # the backoff before the second POST (polls wait 0.05 s)
        if seconds >= 0.5 and not self.forced:
            self.forced = True
            deadline = time.monotonic() + 5
            while self.world.sandbox.state.running_action(self.server_id) is None:
                assert time.monotonic() < deadline, "the slow POST never arrived"
                time.sleep(0.01)
        else:
            time.sleep(min(seconds, 0.05))


@pytest.mark.parametrize("provider", ["digitalocean", "hetzner"])
def test_a_slow_snapshot_post_is_made_once(provider, tmp_path):
    world = World(tmp_path, state(), POLICY, NOW, action_seconds=0.5)
    try:
        late = LateCreate(world, SERVER[provider])
        world.sleeps = late  # type: ignore[assignment]
        # The first snapshot POST takes longer than the request timeout; the cloud still acts on it.
        world.inject("delay", "create", service=provider, count=1, seconds=0.4)
        world.run(settle=0.1)
        made = [
            s
            for s in world.snapshots().values()
            if s["server_id"] == SERVER[provider] and s["name"].endswith("-20261126030000")
        ]
        assert len(made) == 1, f"{len(made)} snapshots made in one run: {[s['id'] for s in made]}"
    finally:
        world.close()


def test_an_unmarked_digitalocean_snapshot_is_adopted_by_a_much_later_run(tmp_path):
    from datetime import timedelta

    world = World(tmp_path, state(), POLICY, NOW, action_seconds=0.05)
    try:
        # The snapshot is made, but every poll of its action fails: it is never tagged.
        world.inject("error", "poll", service="digitalocean", status=503, count=None)
        first = world.run(settle=0.2)
        assert [o.plan.target.name for o in first.report.outcomes if not o.ok] == ["web"]
        world.sandbox.clear_faults()
        # e.g. an hourly cron that missed a run; daily cron is worse
        world.now = NOW + timedelta(hours=2)
        world.run()
        made = sorted(
            (s["name"], world.marked(s))
            for s in world.snapshots().values()
            if s["server_id"] == 101 and s["created"] >= "2026-11-26"
        )
        assert made == [("web-1-20261126030000", True)], f"schedule every 24h, yet: {made}"
    finally:
        world.close()


@pytest.mark.parametrize("provider", ["digitalocean", "hetzner"])
def test_the_run_after_a_failed_snapshot_makes_one(provider, tmp_path):
    from datetime import timedelta

    world = World(tmp_path, state(), POLICY, NOW, action_seconds=0.05)
    try:
        world.sandbox.inject("fail_action", service=provider)
        first = world.run(settle=0.1)
        target = {"digitalocean": "web", "hetzner": "db"}[provider]
        assert [o.plan.target.name for o in first.report.outcomes if o.created is None] == [target]
        world.now = NOW + timedelta(hours=1)  # the next hourly cron run
        second = world.run()
        [outcome] = [o for o in second.report.outcomes if o.plan.target.name == target]
        assert outcome.created is not None, outcome.plan.schedule_note
    finally:
        world.close()
