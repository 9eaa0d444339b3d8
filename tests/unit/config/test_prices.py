"""`settings.prices`: what a GB of snapshots costs a month, per provider (issue 15, item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapshot_policy import config
from snapshot_policy.config.policy import build, prices
from snapshot_policy.config.schemas import validate
from snapshot_policy.config.sources import Source
from snapshot_policy.core.model import Price

POLICY = {
    "version": 1,
    "accounts": {"hz": {"provider": "hetzner", "token": "env:HCLOUD_TOKEN"}},
    "targets": [{"name": "db", "account": "hz", "ids": [42], "retention": {"keep_last": 3}}],
}


def with_prices(value) -> dict:
    return {**POLICY, "settings": {"prices": value}}


def messages(data) -> list[str]:
    return [str(p).removeprefix("f: ") for p in validate(data, "policy", Source("f", data))]


def built_prices(document: dict) -> dict:
    """The prices `policy.build` gives the loaded configuration."""
    return build(Source("f", document), {}, Path("."), read_secrets=False).prices


def test_prices_default_to_the_documented_list_prices(tmp_path):
    """A policy without prices, and a snapshots.py layout (which has none), get the schema's."""
    expected = {"digitalocean": Price(0.06, "USD"), "hetzner": Price(0.0143, "EUR")}
    assert built_prices(POLICY) == expected
    assert prices({}) == expected
    (tmp_path / "configs").mkdir()
    assert config.load(cwd=tmp_path).prices == expected


def test_a_price_set_in_the_policy_wins_key_by_key():
    document = with_prices(
        {
            "hetzner": {"per_gb_month": 0.0119},
            "digitalocean": {"per_gb_month": 0.05, "currency": "EUR"},
        }
    )
    assert messages(document) == []
    expected = {"digitalocean": Price(0.05, "EUR"), "hetzner": Price(0.0119, "EUR")}
    assert built_prices(document) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (
            {"hetzner": {"per_gb_month": -0.01}},
            "settings.prices.hetzner.per_gb_month: must be 0 or more, not -0.01",
        ),
        (
            {"hetzner": {"currency": "euro"}},
            "settings.prices.hetzner.currency: 'euro' is not in the expected form: an ISO "
            "4217 currency code in capitals, such as USD or EUR",
        ),
        (
            {"aws": {"per_gb_month": 0.05}},
            "settings.prices: unknown key 'aws'; expected digitalocean or hetzner",
        ),
        (
            {"hetzner": {"per_gb": 0.05}},
            "settings.prices.hetzner: unknown key 'per_gb'; did you mean 'per_gb_month'?",
        ),
    ],
)
def test_a_wrong_price_is_named_in_a_sentence(value, expected):
    assert messages(with_prices(value)) == [expected]
