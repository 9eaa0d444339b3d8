"""The power actions of consistency: shutdown through the real SDKs against the sandbox
(docs/promises.md §5.17): a graceful shutdown takes the guest a while, a guest may ignore it,
a power off always works, a power on may fail; the listing says the power state."""

from __future__ import annotations

import time

import pytest

from snapshot_policy.core.model import DIGITALOCEAN, HETZNER, Account
from snapshot_policy.edges.providers import connect
from snapshot_policy.edges.providers.retry import RetryPolicy
from tests.integration.conftest import DO_TOKEN, HZ_TOKEN
from tests.integration.test_providers import SERVERS, TIMING

BOTH = pytest.mark.parametrize("provider", [DIGITALOCEAN, HETZNER])
RUNNING = {DIGITALOCEAN: "active", HETZNER: "running"}


@pytest.fixture
def adapter(sandbox):
    def make(provider: str):
        endpoint = (
            sandbox.digitalocean_endpoint if provider == DIGITALOCEAN else sandbox.hetzner_endpoint
        )
        token = DO_TOKEN if provider == DIGITALOCEAN else HZ_TOKEN
        account = Account("main", provider, token, endpoint)
        return connect(account, TIMING, RetryPolicy(sleep=lambda s: time.sleep(min(s, 0.02))))

    return make


def status_of(provider, server_id: str) -> str | None:
    return next(s.status for s in provider.servers() if s.id == server_id)


def wait_for(provider, server_id: str, wanted: str, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while status_of(provider, server_id) != wanted:
        assert time.monotonic() < deadline, f"{server_id} never {wanted}"
        time.sleep(0.02)


@BOTH
def test_a_shutdown_takes_a_while_then_power_on_runs_it_again(sandbox, adapter, provider):
    sandbox.state.shutdown_seconds = 0.3
    cloud = adapter(provider)
    server_id = SERVERS[provider][0]
    assert status_of(cloud, server_id) == RUNNING[provider]
    cloud.shutdown_server(server_id)
    assert status_of(cloud, server_id) != "off"  # the guest is still shutting down
    wait_for(cloud, server_id, "off")
    cloud.power_on_server(server_id)
    wait_for(cloud, server_id, RUNNING[provider])


@BOTH
def test_a_guest_that_ignores_shutdown_goes_off_only_by_power_off(sandbox, adapter, provider):
    sandbox.state.shutdown_seconds = 0.05
    sandbox.faults.add("ignore_shutdown", service=provider)
    cloud = adapter(provider)
    server_id = SERVERS[provider][0]
    cloud.shutdown_server(server_id)
    time.sleep(0.2)
    assert status_of(cloud, server_id) == RUNNING[provider]
    cloud.power_off_server(server_id)
    wait_for(cloud, server_id, "off")


@BOTH
def test_a_failed_power_on_leaves_the_server_off(sandbox, adapter, provider):
    cloud = adapter(provider)
    server_id = SERVERS[provider][0]
    cloud.power_off_server(server_id)
    wait_for(cloud, server_id, "off")
    sandbox.faults.add("fail_power_on", service=provider)
    cloud.power_on_server(server_id)
    time.sleep(0.3)
    assert status_of(cloud, server_id) == "off"
    cloud.power_on_server(server_id)  # the next one works
    wait_for(cloud, server_id, RUNNING[provider])
