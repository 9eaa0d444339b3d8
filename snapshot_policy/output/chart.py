"""`simulate --chart`: a picture of which snapshots survive, one row per retention rule.

`keep_daily 7, keep_weekly 4, keep_monthly 6` is hard to picture from the words; a row per
rule with a dot for every survivor it keeps shows at a glance that dailies crowd the recent
end while monthlies reach far back. Hand-written SVG, so no plotting library is needed.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from html import escape

from snapshot_policy.core.simulate import Simulation

COUNTED = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
# Rows are drawn in this order: the counted rules, keep_within, then the duration-bounded ones.
ROW_ORDER = (*COUNTED, "within", *(f"{period} within" for period in COUNTED[1:]))
COLOURS = {
    "last": "#4e79a7",
    "hourly": "#f28e2b",
    "daily": "#59a14f",
    "weekly": "#e15759",
    "monthly": "#76b7b2",
    "yearly": "#b8860b",
    "within": "#b07aa1",
}
OTHER_COLOUR = "#9c755f"

WIDTH, LEFT, RIGHT, MARGIN = 960, 170, 30, 16
TOP, ROW_HEIGHT, AXIS_HEIGHT, LEGEND_HEIGHT = 92, 30, 34, 64
PLOT_WIDTH = WIDTH - LEFT - RIGHT
DOT_RADIUS = 4.5
LABEL_WIDTH = 64  # room for one axis label such as "Sep 2027", with a gap
ROW_LABEL_ROOM = LEFT - 10 - MARGIN
CHAR_WIDTH = 6.6  # a generous average width of a 12px sans-serif character


def survivors_svg(simulation: Simulation) -> str:
    """Return an SVG document: the simulated days across, a row per rule that keeps a
    survivor (and per active rule of the policy), and a dot for each survivor a rule keeps."""
    rows = rule_rows(simulation)
    height = TOP + ROW_HEIGHT * len(rows) + AXIS_HEIGHT + LEGEND_HEIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        *_title(simulation),
        *_axis(simulation, len(rows)),
    ]
    for index, rule in enumerate(rows):
        parts += _row(simulation, rule, TOP + ROW_HEIGHT * index)
    parts += _legend(TOP + ROW_HEIGHT * len(rows) + AXIS_HEIGHT)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def rule_rows(simulation: Simulation) -> list[str]:
    """Return the rows to draw, in the order of the policy's rules: every active rule, even
    one that keeps nothing, and every other reason a survivor was kept (`oldest daily`, …)."""
    policy = simulation.policy
    rules = {rule for rule in COUNTED if getattr(policy, f"keep_{rule}")}
    if policy.keep_within is not None:
        rules.add(f"within {policy.keep_within}")
    for period in COUNTED[1:]:
        if (within := getattr(policy, f"keep_within_{period}")) is not None:
            rules.add(f"{period} within {within}")
    rules.update(rule for _, kept_by in simulation.survivors for rule in kept_by)
    return sorted(rules, key=_row_order)


def _row_order(rule: str) -> tuple[int, bool, str]:
    base = _base_rule(rule)
    position = ROW_ORDER.index(base) if base in ROW_ORDER else len(ROW_ORDER)
    return position, rule.startswith("oldest "), rule


def _base_rule(rule: str) -> str:
    """`oldest daily` → `daily`, `within 7d` → `within`, `oldest daily within 7d` →
    `daily within`; other reasons stay as they are."""
    rule = rule.removeprefix("oldest ")
    if rule.startswith("within "):
        return "within"
    period, within, _ = rule.partition(" within ")
    return f"{period} within" if within else rule


def _x(simulation: Simulation, moment: datetime) -> float:
    """Where `moment` lies across the plot; the plot spans the simulated days."""
    span = timedelta(days=simulation.days).total_seconds()
    return LEFT + PLOT_WIDTH * (moment - simulation.start).total_seconds() / span


def _title(simulation: Simulation) -> list[str]:
    local_start = simulation.start.astimezone(simulation.zone)
    policy = f"Policy: {simulation.policy.describe()} (timezone {simulation.zone.key})"
    detail = (
        f"{simulation.days} day(s) from {local_start:%Y-%m-%d %H:%M}, "
        f"{simulation.runs_per_day} run(s) a day: "
        f"{simulation.created} made, {simulation.deleted} deleted, "
        f"{len(simulation.survivors)} survive"
    )
    return [
        f'<text x="{MARGIN}" y="26" font-size="16" font-weight="bold">'
        "Which snapshots survive, and which rule keeps each</text>",
        f'<text x="{MARGIN}" y="48">{escape(policy)}</text>',
        f'<text x="{MARGIN}" y="66" fill="#555">{escape(detail)}</text>',
    ]


def _axis(simulation: Simulation, row_count: int) -> list[str]:
    """Grid lines and labels at day, week, month or year starts, whichever fits the span."""
    bottom = TOP + ROW_HEIGHT * row_count
    parts = [
        f'<line x1="{LEFT}" y1="{bottom}" x2="{LEFT + PLOT_WIDTH}" y2="{bottom}" stroke="#888"/>'
    ]
    for day, label in _ticks(simulation):
        x = _x(simulation, datetime.combine(day, datetime.min.time(), tzinfo=simulation.zone))
        if not LEFT <= x <= LEFT + PLOT_WIDTH:
            continue
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP - 8}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#e4e4e4"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle" fill="#555">'
            f"{escape(label)}</text>"
        )
    return parts


def _ticks(simulation: Simulation) -> list[tuple[date, str]]:
    """Day, week, month or year starts, as many as fit the plot without labels touching;
    a month is named with its year only where the year begins (and at the first label)."""
    first = simulation.start.astimezone(simulation.zone).date()
    days = [first + timedelta(days=offset) for offset in range(simulation.days + 1)]
    room = int(PLOT_WIDTH // LABEL_WIDTH)
    if simulation.days <= 14:
        return [(d, f"{d:%m-%d}") for d in days]
    if simulation.days <= 120:
        return [(d, f"{d:%m-%d}") for d in days if d.weekday() == 0]
    months = [d for d in days if d.day == 1]
    if len(months) / 12 <= room:
        step = next(step for step in (1, 2, 3, 6, 12) if len(months) / step <= room)
        shown = [d for d in months if (d.month - 1) % step == 0]
        return [(d, f"{d:%b %Y}" if d.month == 1 or d == shown[0] else f"{d:%b}") for d in shown]
    years = [d for d in days if (d.month, d.day) == (1, 1)]
    step = next(step for step in (1, 2, 5, 10, 20, 50) if len(years) / step <= room)
    return [(d, f"{d:%Y}") for d in years if d.year % step == 0]


def _row(simulation: Simulation, rule: str, top: int) -> list[str]:
    """A row's label with how many it keeps (`monthly: 2 kept`, never read as the setting),
    a faint band, and one dot per survivor the rule keeps."""
    kept = [snapshot for snapshot, kept_by in simulation.survivors if rule in kept_by]
    middle = top + ROW_HEIGHT / 2
    # A duration-bounded rule takes the colour of its period: `daily within 7d` as `daily`.
    colour = COLOURS.get(_base_rule(rule).removesuffix(" within"), OTHER_COLOUR)
    hollow = rule.startswith("oldest ")
    label = f"{rule}: {len(kept)} kept"
    # A label too long for the margin (`oldest weekly within 3m: 1 kept`) is squeezed to fit.
    fit = (
        f' textLength="{ROW_LABEL_ROOM}" lengthAdjust="spacingAndGlyphs"'
        if len(label) * CHAR_WIDTH > ROW_LABEL_ROOM
        else ""
    )
    parts = [
        f'<g class="rule" data-rule="{escape(rule)}">',
        f'<rect x="{LEFT}" y="{top + 3}" width="{PLOT_WIDTH}" height="{ROW_HEIGHT - 6}" '
        f'fill="{colour}" fill-opacity="0.06"/>',
        f'<text x="{LEFT - 10}" y="{middle + 4}" text-anchor="end"{fit}>{escape(label)}</text>',
    ]
    for snapshot in kept:
        when = snapshot.created.astimezone(simulation.zone)
        fill = "white" if hollow else colour
        parts.append(
            f'<circle class="mark" cx="{_x(simulation, snapshot.created):.1f}" cy="{middle}" '
            f'r="{DOT_RADIUS}" fill="{fill}" stroke="{colour}" stroke-width="1.5">'
            f"<title>{escape(f'{when:%Y-%m-%d %H:%M}: {rule}')}</title></circle>"
        )
    parts.append("</g>")
    return parts


def _legend(top: int) -> list[str]:
    y = top + 18
    return [
        f'<circle cx="{LEFT + 6}" cy="{y - 4}" r="{DOT_RADIUS}" fill="#555"/>',
        f'<text x="{LEFT + 18}" y="{y}">'
        "a snapshot the rule keeps after the last run, placed at the time it was made</text>",
        f'<circle cx="{LEFT + 6}" cy="{y + 18}" r="{DOT_RADIUS}" '
        'fill="white" stroke="#555" stroke-width="1.5"/>',
        f'<text x="{LEFT + 18}" y="{y + 22}">"oldest": the rule reached the oldest snapshot '
        "with count left (or within its duration) and keeps it too</text>",
        f'<text x="{LEFT + 18}" y="{y + 40}" fill="#555">'
        "A snapshot kept by several rules has a dot in each of their rows.</text>",
    ]
