"""`simulate --server-price`: snapshots against the provider's own backups for the same rules,
through the CLI, with no API call (issue 23, item 3)."""

from __future__ import annotations

import json

from snapshot_policy.cli import main

START = ["--start", "2031-01-01T03:00Z"]


def simulate(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["simulate", *argv, *START])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tail(text: str) -> str:
    return text[text.index("Backups instead") :]


def test_hetzner_backups_cannot_keep_thirty_dailies(capsys):
    code, out, _ = simulate(
        capsys,
        *("--keep-daily", "30", "--snapshot-size", "20", "--provider", "hetzner"),
        *("--server-price", "4.51"),
    )
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert tail(out) == (
        "Backups instead, for the same rules (Hetzner, a server of EUR 4.51 a month):\n"
        "  the rules keep one every 1 day, reaching back 29 days\n"
        "  snapshots: EUR 8.58 a month\n"
        "  Hetzner backups: EUR 0.90 a month (20 % of the server, 7 kept): cannot keep\n"
        "      these rules: it reaches back 6 days; the rules 29 days\n"
        "  Cheaper: snapshots; no backup plan keeps these rules.\n"
        "  (Hetzner Docs, Cloud FAQ (docs.hetzner.com/cloud/general/faq), read\n"
        "      2026-12-07)\n"
    )


def test_hetzner_backups_are_cheaper_for_a_week_of_dailies_on_a_small_server(capsys):
    _, out, _ = simulate(
        capsys,
        *("--keep-daily", "7", "--snapshot-size", "20", "--provider", "hetzner"),
        *("--server-price", "4.51"),
    )
    assert "  Hetzner backups: EUR 0.90 a month (20 % of the server, 7 kept): keeps these\n" in out
    assert "  Cheaper: Hetzner backups, EUR 0.90 against EUR 2.00 a month for snapshots.\n" in out


def test_digitalocean_plans_in_json(capsys):
    code, out, _ = simulate(
        capsys,
        *("--keep-daily", "7", "--snapshot-size", "20", "--provider", "digitalocean"),
        *("--server-price", "12", "--output", "json"),
    )
    assert code == 0
    document = json.loads(out)["backups"]
    assert document["snapshots_monthly"] == 8.4 and document["cheaper"] == "daily backups"
    plans = {p["name"]: p for p in document["plans"]}
    assert plans["weekly backups"]["keeps_the_rules"] is False
    assert plans["daily backups"] == {
        "name": "daily backups",
        "monthly": 3.6,
        "currency": "USD",
        "kept": 7,
        "keeps_the_rules": True,
        "why_not": None,
        "source": (
            "DigitalOcean Backups pricing (docs.digitalocean.com/products/backups/details/"
            "pricing, validated 9 Mar 2026), read 2026-12-07"
        ),
    }
    assert plans["usage-based daily"]["monthly"] == 4.2


def test_server_price_needs_a_size_and_a_provider(capsys):
    code, _, err = simulate(capsys, "--keep-daily", "7", "--server-price", "4.51")
    assert code == 1 and "give --snapshot-size GB too" in err
    code, _, err = simulate(
        capsys, "--keep-daily", "7", "--snapshot-size", "20", "--server-price", "4.51"
    )
    assert code == 1 and "--server-price compares with one provider's backups" in err
    code, _, err = simulate(
        capsys, "--keep-daily", "7", "--snapshot-size", "20", "--server-price", "-1"
    )
    assert code == 1 and "--server-price" in err
