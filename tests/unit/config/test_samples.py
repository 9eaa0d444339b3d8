"""The sample legacy files in configs/ and the example policies in policies/ match the schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapshot_policy.config.policy import load_policy
from snapshot_policy.config.schemas import coerce_ini, load_schema, validate
from snapshot_policy.config.sources import read_ini, read_json, read_yaml

ROOT = Path(__file__).resolve().parents[3]
POLICIES = sorted((ROOT / "policies").glob("*.yaml"))
SERVER_SAMPLES = sorted((ROOT / "configs").glob("*.json.sample"))


def test_there_are_samples_of_each_kind():
    assert len(POLICIES) >= 3 and len(SERVER_SAMPLES) >= 2
    assert (ROOT / "configs" / "snapshots.config.sample").is_file()


@pytest.mark.parametrize("path", SERVER_SAMPLES, ids=lambda p: p.name)
def test_server_samples_match_the_schema(path):
    assert validate(read_json(path).data, "legacy-server.schema.json", read_json(path)) == []


def test_ini_sample_matches_the_schema():
    source = read_ini(ROOT / "configs" / "snapshots.config.sample")
    data = coerce_ini(source.data, load_schema("legacy-config.schema.json"))
    assert validate(data, "legacy-config.schema.json", source) == []


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_example_policies_load_without_errors(path):
    source = read_yaml(path)
    assert validate(source.data, "policy.schema.json", source) == []
    env = {
        name: "sample-secret"
        for name in (
            "HCLOUD_TOKEN",
            "DIGITALOCEAN_TOKEN",
            "HCLOUD_TOKEN_PROD",
            "TELEGRAM_BOT_TOKEN",
            "WEBHOOK_SECRET",
        )
    }
    problems = [p.message for p in load_policy(path, env).problems if not p.warning]
    # gfs-fleet reads its DigitalOcean token from a file that exists only on a real host.
    assert [m for m in problems if "cannot read secret file /etc/snapshot-policy/" not in m] == []
