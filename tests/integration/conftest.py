"""Fixtures for driving the sandbox through the real SDKs over HTTP (never mocked)."""

from __future__ import annotations

from datetime import datetime, timezone

import hcloud
import pydo
import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.pipeline.policies import AzureKeyCredentialPolicy

from snapshot_policy.sandbox import Sandbox
from tests.factories import FakeClock

DO_TOKEN, DO_OTHER_TOKEN = "do-a-token", "do-b-token"
HZ_TOKEN, HZ_OTHER_TOKEN = "hz-a-token", "hz-b-token"
BOT_TOKEN = "123456:TEST-BOT"
EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)


def seed() -> dict:
    """Two accounts per cloud, so cross-account isolation can be checked."""
    return {
        "accounts": [
            {"name": "do-a", "provider": "digitalocean", "tokens": [DO_TOKEN]},
            {"name": "do-b", "provider": "digitalocean", "tokens": [DO_OTHER_TOKEN]},
            {"name": "hz-a", "provider": "hetzner", "tokens": [HZ_TOKEN]},
            {"name": "hz-b", "provider": "hetzner", "tokens": [HZ_OTHER_TOKEN]},
        ],
        "servers": [
            {"account": "do-a", "id": 101, "name": "web-1", "tags": ["web", "env:prod"]},
            {"account": "do-a", "id": 102, "name": "web-2", "tags": ["web"]},
            {"account": "do-a", "id": 103, "name": "db-1", "tags": ["db"]},
            {"account": "do-b", "id": 201, "name": "other-1"},
            {
                "account": "hz-a",
                "id": 301,
                "name": "app-1",
                "labels": {"env": "prod", "role": "app"},
            },
            {
                "account": "hz-a",
                "id": 302,
                "name": "app-2",
                "labels": {"env": "staging", "role": "app"},
            },
            {
                "account": "hz-a",
                "id": 303,
                "name": "db-1",
                "labels": {"env": "prod", "role": "db", "backup": ""},
            },
            {"account": "hz-b", "id": 401, "name": "other-1"},
        ],
        "snapshots": [
            {"account": "do-b", "id": 9201, "server_id": 201, "name": "other-snap"},
            {"account": "hz-b", "id": 9401, "server_id": 401, "name": "other-image"},
        ],
        "telegram": {"bots": [{"token": BOT_TOKEN, "username": "test_bot"}]},
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(EPOCH)


@pytest.fixture
def sandbox(clock: FakeClock):
    with Sandbox(seed(), action_seconds=0.05, clock=clock) as sb:
        yield sb


@pytest.fixture
def make_do(sandbox: Sandbox):
    """pydo clients; plain http needs the key-credential policy instead of the bearer one."""

    def make(token: str = DO_TOKEN, **kwargs) -> pydo.Client:
        credential = AzureKeyCredential(token)
        policy = AzureKeyCredentialPolicy(credential, "Authorization", prefix="Bearer")
        return pydo.Client(
            token, endpoint=sandbox.digitalocean_endpoint, authentication_policy=policy, **kwargs
        )

    return make


@pytest.fixture
def make_hz(sandbox: Sandbox):
    def make(token: str = HZ_TOKEN, **kwargs) -> hcloud.Client:
        kwargs.setdefault("poll_interval", 0.02)
        kwargs.setdefault("timeout", 10)
        return hcloud.Client(token, api_endpoint=sandbox.hetzner_endpoint, **kwargs)

    return make


@pytest.fixture
def do(make_do) -> pydo.Client:
    return make_do()


@pytest.fixture
def hz(make_hz) -> hcloud.Client:
    return make_hz()
