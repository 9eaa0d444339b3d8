from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from snapshot_policy.core.duration import Duration
from tests.factories import utc


@pytest.mark.parametrize(
    "text, expected",
    [
        ("36h", Duration(hours=36)),
        ("7d", Duration(days=7)),
        ("2w", Duration(days=14)),
        ("3m", Duration(months=3)),
        ("1y", Duration(years=1)),
        ("1y6m", Duration(years=1, months=6)),
        (" 2W3D ", Duration(days=17)),
    ],
)
def test_duration_parse_reads_units(text, expected):
    assert Duration.parse(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "7 days", "-1d", "1.5d", "7s", "0d"])
def test_duration_parse_rejects_what_is_not_a_positive_duration(text):
    with pytest.raises(ValueError, match="duration"):
        Duration.parse(text)


def test_duration_str_round_trips():
    assert str(Duration.parse("1y2m3d4h")) == "1y2m3d4h"


def test_duration_before_moves_days_on_the_wall_clock_across_dst():
    berlin = ZoneInfo("Europe/Berlin")
    monday_9am = datetime(2026, 3, 30, 9, tzinfo=berlin)  # CEST, after spring forward
    week_before = Duration(days=7).before(monday_9am, berlin)
    assert week_before.astimezone(berlin).replace(tzinfo=None) == datetime(2026, 3, 23, 9)


def test_duration_before_counts_hours_as_elapsed_time():
    assert Duration(hours=36).before(utc(2026, 1, 2, 12), ZoneInfo("UTC")) == utc(2026, 1, 1, 0)


def test_duration_as_timedelta_refuses_months():
    with pytest.raises(ValueError):
        Duration(months=1).as_timedelta()


def test_parse_refuses_a_duration_past_a_century():
    """Such a duration passed validation and then overflowed datetime in plan and simulate."""
    for text in ("99999y", "9999999999999h", "101y"):
        with pytest.raises(ValueError, match="longer than 100 years"):
            Duration.parse(text)
    assert Duration.parse("100y") == Duration(years=100)
