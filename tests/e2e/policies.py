"""The policy files the end-to-end tests (and the benchmarks) write, built in one place: each
says only how its policy differs from the usual one (web-1 on DigitalOcean and db-1 on Hetzner,
as tests/e2e/cloud.py seeds them, snapshotted nightly)."""

from __future__ import annotations

import yaml

ACCOUNTS = {
    "do": {"provider": "digitalocean", "token": "env:TEST_DO_TOKEN"},
    "hz": {"provider": "hetzner", "token": "env:TEST_HZ_TOKEN"},
}
NIGHTLY = {"schedule": {"every": "24h"}, "adopt_legacy_names": True}
WEB = {"name": "web", "account": "do", "ids": [3164444], "retention": {"keep_last": 3}}
DB = {"name": "db", "account": "hz", "ids": [4711], "retention": {"keep_last": 2}}
DEBUG_LOG = {
    "lock_file": "run/snapshot-policy.lock",
    "log": {"file": "run/snapshot-policy.log", "level": "DEBUG"},
}


def policy_yaml(
    *targets: dict,
    accounts: dict = ACCOUNTS,
    notifications: dict | None = None,
    defaults: dict | None = NIGHTLY,
    orphans: dict | None = None,
    settings: dict | None = None,
) -> str:
    """The YAML of a policy over `targets` (WEB and DB when none are given), sections in the
    order an operator writes them, an empty one left out, short lists and mappings on one line."""
    document = {
        "version": 1,
        "accounts": accounts,
        "notifications": notifications,
        "defaults": defaults,
        "targets": list(targets or (WEB, DB)),
        "orphans": orphans,
        "settings": settings,
    }
    present = {key: value for key, value in document.items() if value}
    return yaml.safe_dump(present, sort_keys=False, default_flow_style=None, width=1000)
