"""Live prices through the CLI (issue 23, item 3; docs/promises.md §7): Hetzner's
`GET /v1/pricing` read through hcloud against the sandbox, once a day per account by the run's
clock, kept in the run state; settings win; a price list that cannot be read falls back to
the shipped default and says so; DigitalOcean shows its documented price, dated."""

from __future__ import annotations

import json

import pytest

from snapshot_policy.cli import main
from tests.e2e.cloud import DO_TOKEN, HZ_TOKEN
from tests.e2e.policies import policy_yaml

PRICING = "/v1/pricing"


@pytest.fixture
def policy(tmp_path, sandbox, monkeypatch):
    monkeypatch.setenv("TEST_DO_TOKEN", DO_TOKEN)
    monkeypatch.setenv("TEST_HZ_TOKEN", HZ_TOKEN)
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(policy_yaml(settings={"lock_file": "run/snapshot-policy.lock"}))
    return path


def priced(sandbox, **pricing: str) -> None:
    """Give the sandbox's Hetzner account `pricing` (currency, vat_rate, image)."""
    state = sandbox.dump_state()
    for account in state["accounts"]:
        if account["provider"] == "hetzner":
            account["pricing"] = pricing
    sandbox.load_state(state)


def pricing_reads(sandbox) -> int:
    return sum(1 for r in sandbox.requests("hetzner") if r["path"] == PRICING)


def plan(policy, clock, capsys, *options: str) -> str:
    assert main(["plan", "--policy", str(policy), *options], clock=clock) == 0
    return capsys.readouterr().out


def test_plan_shows_the_price_list_price_and_where_it_came_from(policy, sandbox, capsys, clock):
    priced(sandbox, image="0.0150", vat_rate="20.00")
    sandbox.clear_requests()
    text = plan(policy, clock, capsys)
    assert pricing_reads(sandbox) == 1
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "  at per GB-month prices of USD 0.06 (DigitalOcean), EUR 0.015 (Hetzner)\n" in text
    one_line = " ".join(text.split())
    read = clock.now.strftime("%Y-%m-%d %H:%M")
    assert (
        "Hetzner price from Hetzner's price list (GET /v1/pricing) of account hz, "
        f"net of VAT, read {read} UTC"
    ) in one_line
    assert (
        "DigitalOcean price from the shipped default, net of VAT: DigitalOcean's Snapshots "
        "pricing page, read 2026-12-07"
    ) in one_line
    # db: 6 snapshots of 2.5 GB at the net price, not the gross one (EUR 0.018).
    assert "  storage now: 6 snapshots, 15 GB, EUR 0.23 a month\n" in text
    document = json.loads(plan(policy, clock, capsys, "--output", "json"))
    hetzner = document["storage"]["prices"]["hetzner"]
    assert hetzner["per_gb_month"] == 0.015 and hetzner["currency"] == "EUR"
    assert hetzner["source"].startswith("Hetzner's price list (GET /v1/pricing) of account hz")


def test_a_second_plan_within_a_day_reads_no_price_and_a_later_one_does(
    policy, sandbox, capsys, clock, tmp_path
):
    priced(sandbox, image="0.0150")
    state_file = tmp_path / "run" / "snapshot-policy.state.json"
    plan(policy, clock, capsys)
    assert not state_file.exists()  # a plan makes no run state: apply does
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    sandbox.clear_requests()
    plan(policy, clock, capsys)
    first = clock.now.strftime("%Y-%m-%d %H:%M")
    state = json.loads(state_file.read_text())
    assert state["last_runs"]  # apply's records stay
    assert state["prices"] == [
        ["hz", {"per_gb_month": 0.015, "currency": "EUR", "read": clock.now.isoformat()}]
    ]
    priced(sandbox, image="0.0200")  # the price list changes; the kept price stands a day
    clock.advance(hours=23, minutes=59)
    sandbox.clear_requests()
    text = plan(policy, clock, capsys)
    assert pricing_reads(sandbox) == 0
    assert "EUR 0.015 (Hetzner)" in text and f"read {first} UTC" in " ".join(text.split())
    clock.advance(minutes=1)  # a day after the read: read again
    text = plan(policy, clock, capsys)
    assert pricing_reads(sandbox) == 1 and "EUR 0.02 (Hetzner)" in text


def test_a_kept_price_dated_after_the_clock_is_read_again(policy, sandbox, capsys, clock):
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    plan(policy, clock, capsys)
    clock.advance(hours=-2)  # the clock went back: the kept price is from the future
    sandbox.clear_requests()
    plan(policy, clock, capsys)
    assert pricing_reads(sandbox) == 1


def test_settings_win_and_no_price_list_is_read(policy, sandbox, capsys, clock):
    policy.write_text(
        policy_yaml(settings={"prices": {"hetzner": {"per_gb_month": 0.02, "currency": "EUR"}}})
    )
    priced(sandbox, image="0.0150")
    sandbox.clear_requests()
    text = plan(policy, clock, capsys)
    assert pricing_reads(sandbox) == 0
    assert "EUR 0.02 (Hetzner)" in text and "  Hetzner price from settings.prices\n" in text


@pytest.mark.parametrize("fault", [{"kind": "error", "status": 503}, {"kind": "garble"}])
def test_a_price_list_that_cannot_be_read_falls_back_and_says_so(
    policy, sandbox, capsys, clock, fault
):
    sandbox.inject(**fault, service="hetzner", path="^/v1/pricing$", count=None)
    text = plan(policy, clock, capsys)  # the plan does not fail
    assert "EUR 0.0143 (Hetzner)" in text
    one_line = " ".join(text.split())
    assert "Hetzner price from the shipped default" in one_line
    assert "(the price list could not be read: account hz: " in one_line
    # Nothing kept: the next plan asks again.
    sandbox.clear_requests()
    plan(policy, clock, capsys)
    assert pricing_reads(sandbox) >= 1


def test_apply_dry_run_and_status_show_the_price_list_price(policy, sandbox, capsys, clock):
    priced(sandbox, image="0.0150", currency="USD")
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    capsys.readouterr()
    assert main(["apply", "--policy", str(policy), "--dry-run"], clock=clock) == 0
    text = capsys.readouterr().out
    assert "USD 0.015 (Hetzner)" in text
    sandbox.clear_requests()
    main(["status", "--policy", str(policy)], clock=clock)
    text = capsys.readouterr().out
    assert pricing_reads(sandbox) == 0  # the dry run kept it
    assert "Prices per GB-month:\n" in text and "  USD 0.015 (Hetzner)\n" in text
    main(["status", "--policy", str(policy), "--output", "json"], clock=clock)
    document = json.loads(capsys.readouterr().out)
    assert document["prices"]["hetzner"]["currency"] == "USD"
    db = next(t for t in document["targets"] if t["target"] == "db")
    size = db["storage"]["size_gb"]
    assert size > 0 and db["storage"]["monthly_cost"] == {"USD": round(size * 0.015, 4)}


def test_apply_keeps_the_price_fresh_once_a_day_for_status(policy, sandbox, capsys, clock):
    priced(sandbox, image="0.0150")
    sandbox.clear_requests()
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    assert pricing_reads(sandbox) == 1
    clock.advance(hours=1)
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    capsys.readouterr()
    main(["status", "--policy", str(policy)], clock=clock)  # 2: web-10 is uncovered
    assert pricing_reads(sandbox) == 1  # the second apply and status used the kept price
    assert "  EUR 0.015 (Hetzner)\n" in capsys.readouterr().out


def test_a_failing_price_list_changes_nothing_of_apply(policy, sandbox, capsys, clock):
    sandbox.inject("error", status=503, service="hetzner", path="^/v1/pricing$", count=None)
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    assert pricing_reads(sandbox) == 1  # once, not retried


def test_status_reads_a_stale_price_but_keeps_nothing(policy, sandbox, capsys, clock, tmp_path):
    main(["status", "--policy", str(policy)], clock=clock)
    capsys.readouterr()
    assert pricing_reads(sandbox) == 1
    state = tmp_path / "run" / "snapshot-policy.state.json"
    assert not state.exists() or "prices" not in json.loads(state.read_text())


def test_a_snapshots_py_layout_reads_no_price_list_and_prints_as_before(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    """Every new feature is the policy's: a legacy folder's plan is what it was."""
    monkeypatch.chdir(legacy_layout)
    priced(sandbox, image="0.0150")
    sandbox.clear_requests()
    assert main(["plan"], clock=clock) == 0
    text = capsys.readouterr().out
    assert pricing_reads(sandbox) == 0
    assert "  at per GB-month prices of USD 0.06 (DigitalOcean), EUR 0.0143 (Hetzner)\n" in text
    assert " price from " not in text
    assert main(["plan", "--output", "json"], clock=clock) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["storage"]["prices"]["hetzner"] == {"per_gb_month": 0.0143, "currency": "EUR"}
