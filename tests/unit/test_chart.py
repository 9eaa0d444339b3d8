"""survivors_svg: well-formed SVG, a row per rule, a dot per survivor each rule keeps, escaped
text."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime, timezone
from importlib import resources
from zoneinfo import ZoneInfo

import pytest

from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import RetentionPolicy
from snapshot_policy.core.simulate import simulate
from snapshot_policy.output.chart import (
    COLOURS,
    LABEL_WIDTH,
    LEFT,
    PLOT_WIDTH,
    ROW_LABEL_ROOM,
    rule_rows,
    survivors_svg,
)
from tests.factories import utc

SVG = "{http://www.w3.org/2000/svg}"
UTC = ZoneInfo("UTC")


def rows(svg: str) -> dict[str, list[ET.Element]]:
    """Each drawn rule with its dots, in drawing order."""
    root = ET.fromstring(svg)
    return {
        g.get("data-rule"): g.findall(f"{SVG}circle[@class='mark']")
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "rule"
    }


def test_chart_has_a_row_per_active_rule_and_a_dot_per_survivor_it_keeps():
    simulation = simulate(
        RetentionPolicy(keep_daily=7, keep_weekly=4, keep_monthly=6),
        UTC,
        utc(2026, 1, 1, 3),
        days=240,
        runs_per_day=1,
    )
    drawn = rows(survivors_svg(simulation))
    assert list(drawn) == ["daily", "weekly", "monthly"]
    for rule, dots in drawn.items():
        assert len(dots) == sum(rule in kept_by for _, kept_by in simulation.survivors)
    assert len(drawn["daily"]) == 7 and len(drawn["monthly"]) == 6


def test_chart_places_dots_inside_the_plot_newest_at_the_right():
    simulation = simulate(
        RetentionPolicy(keep_last=3, keep_within=Duration.parse("2d")),
        UTC,
        utc(2026, 1, 1),
        days=10,
        runs_per_day=24,
    )
    drawn = rows(survivors_svg(simulation))
    assert list(drawn) == ["last", "within 2d"]
    xs = [float(dot.get("cx")) for dot in drawn["within 2d"]]
    assert all(LEFT <= x <= LEFT + PLOT_WIDTH for x in xs)
    assert xs == sorted(xs, reverse=True)  # survivors come newest first
    assert xs[0] > LEFT + PLOT_WIDTH * 0.99


def test_chart_draws_oldest_rules_in_their_own_hollow_row_after_the_rule():
    simulation = simulate(
        RetentionPolicy(keep_last=1, keep_weekly=10), UTC, utc(2026, 1, 1), days=30, runs_per_day=1
    )
    assert rule_rows(simulation) == ["last", "weekly", "oldest weekly"]
    oldest = rows(survivors_svg(simulation))["oldest weekly"]
    assert len(oldest) == 1 and oldest[0].get("fill") == "white"


def test_chart_escapes_the_policy_and_zone_text():
    tzif = resources.files("tzdata").joinpath("zoneinfo", "UTC").read_bytes()
    zone = ZoneInfo.from_file(io.BytesIO(tzif), key='Lab<&>"zone')  # UTC under a hostile name
    simulation = simulate(
        RetentionPolicy(keep_last=2), UTC, utc(2026, 1, 1), days=5, runs_per_day=1
    )
    svg = survivors_svg(replace(simulation, zone=zone))
    assert "Lab&lt;&amp;&gt;&quot;zone" in svg
    text = "".join(ET.fromstring(svg).itertext())
    assert 'Policy: keep_last 2 (timezone Lab<&>"zone)' in text


@pytest.mark.parametrize("days", [150, 300, 400, 730, 1100, 3650, 36500])
def test_axis_labels_never_touch(days):
    """Labels are centred on their tick: two labels closer than LABEL_WIDTH would overlap."""
    simulation = simulate(
        RetentionPolicy(keep_monthly=12),
        ZoneInfo("UTC"),
        datetime(2026, 1, 15, tzinfo=timezone.utc),
        days,
        1,
    )
    xs = [
        float(x)
        for x in re.findall(
            r'<text x="([\d.]+)" y="\d+" text-anchor="middle"', survivors_svg(simulation)
        )
    ]
    assert len(xs) >= 2 and min(b - a for a, b in zip(xs, xs[1:], strict=False)) >= LABEL_WIDTH
    assert "Feb 2027Mar 2027" not in survivors_svg(simulation)


def test_a_row_says_how_many_it_keeps_not_the_setting():
    simulation = simulate(
        RetentionPolicy(keep_monthly=12),
        ZoneInfo("UTC"),
        datetime(2026, 1, 15, tzinfo=timezone.utc),
        45,
        1,
    )
    assert ">monthly: 2 kept</text>" in survivors_svg(simulation)


def test_chart_draws_duration_bounded_rules_after_keep_within_in_their_periods_colours():
    policy = RetentionPolicy(
        keep_daily=2,
        keep_within=Duration(days=1),
        keep_within_daily=Duration(days=7),
        keep_within_weekly=Duration(months=1),
    )
    simulation = simulate(policy, UTC, utc(2026, 1, 1), days=7, runs_per_day=4)
    assert rule_rows(simulation) == [
        "daily",
        "within 1d",
        "daily within 7d",
        "oldest daily within 7d",
        "weekly within 1m",
        "oldest weekly within 1m",
    ]
    drawn = rows(survivors_svg(simulation))
    assert len(drawn["daily within 7d"]) == 7
    assert {dot.get("stroke") for dot in drawn["daily within 7d"]} == {COLOURS["daily"]}
    assert [dot.get("fill") for dot in drawn["oldest weekly within 1m"]] == ["white"]


def test_chart_squeezes_a_row_label_too_long_for_the_margin():
    simulation = simulate(
        RetentionPolicy(keep_last=1, keep_within_weekly=Duration(months=1)),
        UTC,
        utc(2026, 1, 1),
        days=3,
        runs_per_day=1,
    )
    labels = {
        t.text: t
        for t in ET.fromstring(survivors_svg(simulation)).iter(f"{SVG}text")
        if t.text and " kept" in t.text
    }
    assert labels["oldest weekly within 1m: 1 kept"].get("textLength") == str(ROW_LABEL_ROOM)
    assert labels["last: 1 kept"].get("textLength") is None
