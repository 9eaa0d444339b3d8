"""Which price wins and how long a price list's price is kept (core/pricing.py; issue 23,
item 3). Dates are built from a fixed clock, never today's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from snapshot_policy.config.policy import prices
from snapshot_policy.core import pricing
from snapshot_policy.core.cost import Storage
from snapshot_policy.core.model import Price
from snapshot_policy.state.runstate import ReadPrice, RunState
from tests.factories import utc

NOW = utc(2031, 5, 6, 7, 8)
DEFAULTS = prices({})


def test_defaults_name_their_source_and_settings_say_so():
    assert DEFAULTS["hetzner"].source == pricing.DEFAULT_SOURCES["hetzner"]
    assert "read 2026-12-07" in DEFAULTS["digitalocean"].source
    set_ = prices({"prices": {"hetzner": {"per_gb_month": 0.02}}})
    assert set_["hetzner"] == Price(0.02, "EUR") and set_["hetzner"].source == pricing.SETTINGS
    assert set_["digitalocean"].source == pricing.DEFAULT_SOURCES["digitalocean"]


def test_settings_win_over_the_price_list():
    base = prices({"prices": {"hetzner": {"per_gb_month": 0.02}}})
    resolved = pricing.resolve(base, "hetzner", {"hz": (Price(0.015, "EUR"), NOW)})
    assert resolved["hetzner"].per_gb_month == 0.02 and set(resolved) == set(base)


def test_the_price_list_wins_over_the_default_and_is_named():
    resolved = pricing.resolve(DEFAULTS, "hetzner", {"hz": (Price(0.015, "EUR"), NOW)})
    assert resolved["hetzner"] == Price(0.015, "EUR")
    assert resolved["hetzner"].source == (
        "Hetzner's price list (GET /v1/pricing) of account hz, net of VAT, "
        "read 2031-05-06 07:08 UTC"
    )
    assert resolved["digitalocean"] is DEFAULTS["digitalocean"]


def test_without_a_read_the_default_stands():
    assert pricing.resolve(DEFAULTS, "hetzner", {}) == DEFAULTS


def test_agreeing_accounts_share_one_price_named_by_the_oldest_read():
    read = {
        "b": (Price(0.015, "EUR"), NOW),
        "a": (Price(0.015, "EUR"), NOW - timedelta(hours=3)),
    }
    resolved = pricing.resolve(DEFAULTS, "hetzner", read)
    assert set(resolved) == {"digitalocean", "hetzner"}
    assert "of accounts a, b, net of VAT, read 2031-05-06 04:08 UTC" in resolved["hetzner"].source


def test_accounts_in_other_currencies_are_priced_each_on_its_own():
    read = {"eu": (Price(0.015, "EUR"), NOW), "us": (Price(0.017, "USD"), NOW)}
    resolved = pricing.resolve(DEFAULTS, "hetzner", read)
    assert resolved["hetzner/eu"] == Price(0.015, "EUR")
    assert resolved["hetzner/us"] == Price(0.017, "USD")
    assert pricing.price_key(resolved, "hetzner", "us") == "hetzner/us"
    assert pricing.price_key(resolved, "hetzner", "other") == "hetzner"
    billed = Storage.of([("hetzner/us", 10.0), ("hetzner/eu", 10.0)], resolved)
    assert billed.costs == pytest.approx({"USD": 0.17, "EUR": 0.15})


def test_a_failed_read_falls_back_to_the_default_saying_why():
    resolved = pricing.resolve(DEFAULTS, "hetzner", {"hz": "503 unavailable"})
    assert resolved["hetzner"] == DEFAULTS["hetzner"]
    assert resolved["hetzner"].source.startswith(pricing.DEFAULT_SOURCES["hetzner"])
    assert resolved["hetzner"].source.endswith(
        "(the price list could not be read: account hz: 503 unavailable)"
    )


def test_one_account_failing_keeps_the_fallback_for_it_alone():
    read = {"a": (Price(0.015, "EUR"), NOW), "b": "timed out"}
    resolved = pricing.resolve(DEFAULTS, "hetzner", read)
    assert resolved["hetzner/a"] == Price(0.015, "EUR")
    assert resolved["hetzner/b"] == DEFAULTS["hetzner"]
    assert "account b: timed out" in resolved["hetzner/b"].source


@pytest.mark.parametrize(
    ("age", "fresh"),
    [
        (timedelta(0), True),
        (timedelta(hours=23, minutes=59, seconds=59), True),
        (timedelta(days=1), False),
        (timedelta(days=3), False),
        (-timedelta(seconds=1), False),  # read "after" now: a clock that went back
    ],
)
def test_a_read_is_kept_for_a_day_by_the_runs_clock(age, fresh):
    assert pricing.fresh(NOW - age, NOW) is fresh


def test_the_run_state_keeps_prices_and_skips_broken_entries(tmp_path):
    path = tmp_path / "state.json"
    state = RunState(path, NOW)
    state.record_price("hz", ReadPrice(0.015, "EUR", NOW))
    state.save()
    assert RunState(path, NOW).prices == {"hz": ReadPrice(0.015, "EUR", NOW)}
    path.write_text(
        '{"prices": [["a", {"per_gb_month": "x", "currency": "EUR", "read": "2031-01-01"}],'
        ' ["b", {"per_gb_month": 1, "currency": "EUR", "read": "2031-01-01T00:00:00"}],'
        ' ["c"], 7, ["d", {"per_gb_month": -1, "currency": "EUR",'
        ' "read": "2031-01-01T00:00:00+00:00"}]]}'
    )
    assert RunState(path, NOW).prices == {}


def test_saving_prices_keeps_what_another_run_wrote_meanwhile(tmp_path):
    path = tmp_path / "state.json"
    plan_state = RunState(path, NOW)
    apply_state = RunState(path, NOW)
    apply_state.record_made("hz", "4711", NOW)
    apply_state.save()
    plan_state.record_price("hz", ReadPrice(0.015, "EUR", NOW))
    plan_state.save_prices()
    again = RunState(path, NOW)
    assert again.last_made == {("hz", "4711"): NOW}
    assert again.prices == {"hz": ReadPrice(0.015, "EUR", NOW)}
