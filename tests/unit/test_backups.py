"""Snapshots against the clouds' own backups for the same rules (core/backups.py; issue 23,
item 3): what the rules need, what each backup plan costs, whether it keeps the rules."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from snapshot_policy.core import backups
from snapshot_policy.core.model import RetentionPolicy
from tests.factories import utc

START = utc(2031, 1, 1, 3)
UTC = ZoneInfo("UTC")
DAY = timedelta(days=1)


def need(runs_per_day: int = 1, **rules: int) -> backups.Needs:
    return backups.needs(RetentionPolicy(**rules), UTC, START, runs_per_day)


def options(comparison: backups.Comparison) -> dict[str, backups.Option]:
    return {o.plan.name: o for o in comparison.options}


def test_what_the_rules_need():
    assert need(keep_daily=7) == backups.Needs(DAY, 6 * DAY)
    assert need(keep_last=30) == backups.Needs(DAY, 29 * DAY)
    assert need(keep_weekly=4) == backups.Needs(7 * DAY, 21 * DAY)
    assert need(4, keep_last=8) == backups.Needs(DAY / 4, 7 * DAY / 4)
    assert need(24, keep_hourly=24, keep_daily=7).every == timedelta(hours=1)
    # restic keeps each month's newest: six months reach back five whole months and more.
    monthly = need(keep_daily=7, keep_weekly=4, keep_monthly=6)
    assert monthly.every == DAY and 150 * DAY <= monthly.reach <= 184 * DAY


def test_hetzner_backups_cost_a_fifth_of_the_server_and_keep_seven_days():
    short = backups.compare("hetzner", need(keep_daily=7), 4.51, "EUR", 20, 2.0)
    (option,) = short.options
    assert option.monthly == pytest.approx(0.902) and option.currency == "EUR"
    assert option.backups == 7 and option.why_not is None
    assert short.cheaper() is option  # EUR 0.90 against EUR 2.00
    long = backups.compare("hetzner", need(keep_daily=30), 4.51, "EUR", 20, 2.0)
    assert long.options[0].why_not == "it reaches back 6 days; the rules 29 days"
    assert long.cheaper() is None


def test_a_plan_that_backs_up_less_often_than_the_rules_keep_cannot_keep_them():
    compared = backups.compare("digitalocean", need(keep_daily=7), 12.0, "USD", 20, 8.4)
    by_name = options(compared)
    assert by_name["weekly backups"].why_not == (
        "a backup every 7 days; the rules keep one every 1 day"
    )
    assert by_name["daily backups"].why_not is None
    assert by_name["daily backups"].monthly == pytest.approx(3.6)
    assert by_name["weekly backups"].monthly == pytest.approx(2.4)
    # usage-based: per GB-month of the backups kept, as many as the reach needs
    assert by_name["usage-based daily"].backups == 7
    assert by_name["usage-based daily"].monthly == pytest.approx(7 * 20 * 0.03)
    assert by_name["usage-based every 4 hours"].backups == 37
    assert compared.cheaper().plan.name == "daily backups"


def test_snapshots_win_when_they_cost_less():
    compared = backups.compare("hetzner", need(keep_daily=7), 48.0, "EUR", 5, 0.5)
    assert compared.options[0].why_not is None and compared.cheaper() is None
    # DigitalOcean's usage-based weekly plan bills a GB-month below a snapshot's.
    weekly = backups.compare("digitalocean", need(keep_weekly=4), 48.0, "USD", 5, 1.2)
    assert options(weekly)["weekly backups"].why_not is None
    assert weekly.cheaper().plan.name == "usage-based weekly"
    assert weekly.cheaper().monthly == pytest.approx(4 * 5 * 0.04)


def test_a_cheaper_plan_in_another_currency_is_not_counted():
    # A Hetzner account billed in euros, DigitalOcean's per-GB plans in dollars.
    compared = backups.compare("digitalocean", need(keep_daily=7), 12.0, "EUR", 1, 9.0)
    assert compared.cheaper().currency == "EUR"


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (DAY, "1 day"),
        (7 * DAY, "7 days"),
        (timedelta(hours=12), "12 hours"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(hours=145), "6 days"),
        (timedelta(hours=36), "36 hours"),
    ],
)
def test_spans_read_as_people_say_them(span, text):
    assert backups.span_text(span) == text
