"""Copies in other regions through pydo against the sandbox (docs/promises.md §5.15): the
image transfer, and the batched look at transfers — this run's by their action ids, a killed
run's from the account's action listing or, for an image older than its reach, the image's
own actions."""

from __future__ import annotations

import time

import pytest

from snapshot_policy.core.model import DIGITALOCEAN, HETZNER, Account, ProviderError
from snapshot_policy.edges.providers import connect
from snapshot_policy.edges.providers.retry import RetryPolicy, Timing
from tests.integration.conftest import DO_TOKEN, HZ_TOKEN

TIMING = Timing(request_timeout=2, creation_timeout=5, poll_interval=0.02)


def adapter(sandbox, provider=DIGITALOCEAN):
    endpoint = (
        sandbox.digitalocean_endpoint if provider == DIGITALOCEAN else sandbox.hetzner_endpoint
    )
    token = DO_TOKEN if provider == DIGITALOCEAN else HZ_TOKEN
    account = Account("main", provider, token, endpoint)
    return connect(account, TIMING, RetryPolicy(sleep=lambda s: None))


def image_reads(sandbox) -> int:
    return sum(1 for r in sandbox.requests("digitalocean") if "/v2/images/" in r["path"])


def wait_done(do, ids, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = do.transfers(ids)
        if all(s != "in-progress" for regions in found.values() for s in regions.values()):
            return found
        time.sleep(0.02)
    raise AssertionError("transfers never finished")


def test_a_transfer_copies_the_image_and_is_polled_with_the_account_listing(sandbox):
    image = sandbox.state.add_snapshot("do-a", "web-1-a", server_id=101)
    do = adapter(sandbox)
    do.snapshots()
    assert do.transfer_snapshot(str(image.id), "ams3").isdigit()
    do.transfer_snapshot(str(image.id), "fra1")
    reads = image_reads(sandbox)
    found = wait_done(do, [str(image.id)])
    assert found == {str(image.id): {"ams3": "completed", "fra1": "completed"}}
    assert image_reads(sandbox) == reads  # this run's transfers: no per-image read
    (listed,) = [s for s in do.snapshots() if s.id == str(image.id)]
    assert listed.regions == ("nyc3", "ams3", "fra1")


def test_a_killed_runs_transfer_is_found_in_the_account_listing(sandbox):
    image = sandbox.state.add_snapshot("do-a", "web-1-a", server_id=101)
    sandbox.state.transfer_seconds = 60
    adapter(sandbox).transfer_snapshot(str(image.id), "ams3")  # the run that was killed
    do = adapter(sandbox)  # the next run: knows no action id
    do.snapshots()
    assert do.transfers([str(image.id)]) == {str(image.id): {"ams3": "in-progress"}}
    assert image_reads(sandbox) == 1  # the POST alone: the account listing told


def test_an_image_older_than_the_listing_reads_its_own_actions(sandbox):
    image = sandbox.state.add_snapshot(
        "do-a", "web-1-old", server_id=101, created="2000-01-01T00:00:00Z"
    )
    sandbox.state.transfer_seconds = 60
    for _ in range(620):  # more actions than POLL_PAGES pages of 200: the listing stops short
        sandbox.state.instant_action(sandbox.state.accounts["do-a"], "power_on", [])
    adapter(sandbox).transfer_snapshot(str(image.id), "lon1")
    for _ in range(620):
        sandbox.state.instant_action(sandbox.state.accounts["do-a"], "power_on", [])
    do = adapter(sandbox)
    do.snapshots()
    assert do.transfers([str(image.id)]) == {str(image.id): {"lon1": "in-progress"}}
    assert any(
        r["path"] == f"/v2/images/{image.id}/actions" and r["method"] == "GET"
        for r in sandbox.requests("digitalocean")
    )


def test_a_failed_transfer_is_errored_and_the_image_gains_no_copy(sandbox):
    image = sandbox.state.add_snapshot("do-a", "web-1-a", server_id=101)
    sandbox.inject("transfer_fail", service="digitalocean", name="ams3")
    do = adapter(sandbox)
    do.snapshots()
    do.transfer_snapshot(str(image.id), "ams3")
    assert wait_done(do, [str(image.id)]) == {str(image.id): {"ams3": "errored"}}
    (listed,) = [s for s in do.snapshots() if s.id == str(image.id)]
    assert listed.regions == ("nyc3",)


def test_a_transfer_refused_is_a_certain_refusal(sandbox):
    image = sandbox.state.add_snapshot("do-a", "web-1-a", server_id=101)
    with pytest.raises(ProviderError) as refused:
        adapter(sandbox).transfer_snapshot(str(image.id), "nyc3")  # it is there already
    assert refused.value.status == 422 and refused.value.refused


def test_hetzner_has_no_transfer(sandbox):
    hz = adapter(sandbox, HETZNER)
    with pytest.raises(ProviderError, match="no API to copy a snapshot"):
        hz.transfer_snapshot("1", "nbg1")
    assert hz.transfers(["1"]) == {}
