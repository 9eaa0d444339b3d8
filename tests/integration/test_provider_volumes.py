"""DigitalOcean volumes through pydo against the sandbox (issue 23, item 6; docs/promises.md
§5.18): the volume listing, a droplet's `volume_ids`, volume snapshots made marked, listed in
their own listing, tagged and deleted; the sandbox's `--state` form keeps them."""

from __future__ import annotations

import pytest

from snapshot_policy.core.model import DIGITALOCEAN, Account, ProviderError
from snapshot_policy.edges.providers import connect
from snapshot_policy.edges.providers.retry import RetryPolicy, Timing
from snapshot_policy.sandbox import State
from tests.integration.conftest import DO_TOKEN

VOLUME = "7724db7c-e098-11e5-b522-000f53304e51"
MARKS = {"snapshot-policy-owner-ops": "", "snapshot-policy": ""}


@pytest.fixture
def provider(sandbox):
    with sandbox.state.lock:
        sandbox.state.add_volume("do-a", "pgdata", id=VOLUME, droplet_ids=[101])
        sandbox.state.add_volume("do-a", "spare")
        sandbox.state.add_volume("do-b", "elsewhere")
    account = Account("main", DIGITALOCEAN, DO_TOKEN, sandbox.digitalocean_endpoint)
    timing = Timing(request_timeout=2, creation_timeout=5, poll_interval=0.02)
    return connect(account, timing, RetryPolicy(sleep=lambda s: None, jitter=lambda: 0.5))


def test_volumes_are_listed_with_their_droplets_and_droplets_name_theirs(provider):
    volumes = {v.name: v for v in provider.volumes()}
    assert set(volumes) == {"pgdata", "spare"}  # the other account's is not listed
    assert volumes["pgdata"].droplet_ids == ("101",) and volumes["spare"].droplet_ids == ()
    assert volumes["pgdata"].region == "nyc3" and volumes["pgdata"].size_gb == 10
    by_id = {s.id: s for s in provider.servers()}
    assert by_id["101"].volume_ids == (VOLUME,) and by_id["102"].volume_ids == ()


def test_a_volume_snapshot_is_finished_and_marked_with_its_reply(sandbox, provider):
    started = provider.start_volume_snapshot(VOLUME, "web-1-pgdata-20250101000000", MARKS)
    assert started.action_id is None and started.server_id == VOLUME
    image = started.image
    assert image.server_id == VOLUME and set(MARKS) <= set(image.labels)
    # the next poll round takes it without a request
    before = len(sandbox.requests())
    assert provider.progress([started]) == {started: image}
    assert len(sandbox.requests()) == before

    listed = provider.snapshots(volumes=True)
    (volume_snapshot,) = [s for s in listed if s.server_id == VOLUME]
    assert volume_snapshot.id == image.id and set(MARKS) <= set(volume_snapshot.labels)
    assert all(s.server_id != VOLUME for s in provider.snapshots())  # droplets' only

    provider.mark_snapshot(image.id, {"snapshot-policy-extra": ""})  # resource volume_snapshot
    assert "snapshot-policy-extra" in sandbox.state.volume_snapshots[image.id].tags
    provider.delete_snapshot(image.id)
    provider.delete_snapshot(image.id)  # gone already: fine
    assert image.id not in sandbox.state.volume_snapshots
    deletes = [r["path"] for r in sandbox.requests() if r["method"] == "DELETE"]
    assert deletes == [f"/v2/snapshots/{image.id}"] * 2


def test_a_lost_reply_is_found_by_name_and_not_repeated(sandbox, provider):
    sandbox.inject("lose_reply", service="digitalocean", method="POST", path="/snapshots$", count=1)
    started = provider.start_volume_snapshot(VOLUME, "web-1-pgdata-20250101000000", MARKS)
    assert len(sandbox.state.volume_snapshots) == 1
    assert started.image.id in sandbox.state.volume_snapshots
    posts = [r for r in sandbox.requests() if r["method"] == "POST"]
    assert len(posts) == 1


def test_a_refused_volume_snapshot_says_so(sandbox, provider):
    with pytest.raises(ProviderError) as refused:
        provider.start_volume_snapshot("00000000-0000-0000-0000-000000000000", "x-1", MARKS)
    assert refused.value.status == 404 and refused.value.no_snapshot


def test_the_state_form_keeps_volumes_and_their_snapshots(sandbox, provider):
    provider.start_volume_snapshot(VOLUME, "web-1-pgdata-20250101000000", MARKS)
    dumped = sandbox.dump_state()
    again = State.from_dict(dumped).to_dict()
    assert again["volumes"] == dumped["volumes"]
    assert again["volume_snapshots"] == dumped["volume_snapshots"]
    (snapshot,) = dumped["volume_snapshots"]
    assert snapshot["volume_id"] == VOLUME and set(MARKS) <= set(snapshot["tags"])
