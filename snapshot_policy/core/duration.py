"""Durations as operators write them: `36h`, `7d`, `2w`, `3m`, `1y`, or combined like `1y6m`.

Months and years are calendar units (as in restic's `--keep-within`), so a duration is
subtracted on the calendar of a time zone rather than converted to seconds.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

_PART = re.compile(r"(\d+)([hdwmy])")
_WHOLE = re.compile(r"(?:\d+[hdwmy])+")
# Longer than any retention or schedule makes sense for, and short enough for datetime's range.
MAX_DAYS = 100 * 366


@dataclass(frozen=True)
class Duration:
    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Return the Duration written as `text`. Raise ValueError if it is not one."""
        compact = text.strip().lower()
        if not _WHOLE.fullmatch(compact):
            raise ValueError(
                f"{text!r} is not a duration; write a number and a unit, "
                "h (hours), d (days), w (weeks), m (months) or y (years), e.g. 36h, 7d, 1y6m"
            )
        totals = {"h": 0, "d": 0, "w": 0, "m": 0, "y": 0}
        for number, unit in _PART.findall(compact):
            totals[unit] += int(number)
        duration = cls(totals["y"], totals["m"], totals["d"] + 7 * totals["w"], totals["h"])
        if duration == cls():
            raise ValueError(f"{text!r} is a zero duration; give a positive one")
        if (
            duration.years * 366 + duration.months * 31 + duration.days + duration.hours / 24
            > MAX_DAYS
        ):
            raise ValueError(f"{text[:40]!r} is longer than 100 years; give a shorter duration")
        return duration

    @property
    def is_calendar(self) -> bool:
        """True when the length depends on the calendar (months or years)."""
        return bool(self.years or self.months)

    def as_timedelta(self) -> timedelta:
        """Return the fixed length. Raise ValueError for months and years, which have none."""
        if self.is_calendar:
            raise ValueError(f"{self} has no fixed length; use days or hours")
        return timedelta(days=self.days, hours=self.hours)

    def before(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """Return `moment` minus this duration, counted on the calendar of `zone`.

        Years, months and days move the wall clock (a week before Monday 09:00 is Monday
        09:00, whatever DST did in between); hours are elapsed time. A month back from
        31 March is the last day of February: the day is clamped to the month's length,
        so the window never comes out shorter than the operator wrote.
        """
        local = moment.astimezone(zone)
        month_index = local.year * 12 + (local.month - 1) - self.years * 12 - self.months
        year, month = divmod(month_index, 12)
        day = min(local.day, calendar.monthrange(year, month + 1)[1])
        date = local.date().replace(year=year, month=month + 1, day=day) - timedelta(days=self.days)
        wall = datetime.combine(date, local.time(), tzinfo=zone)
        return wall.astimezone(moment.tzinfo) - timedelta(hours=self.hours)

    def __str__(self) -> str:
        parts = [(self.years, "y"), (self.months, "m"), (self.days, "d"), (self.hours, "h")]
        return "".join(f"{number}{unit}" for number, unit in parts if number)
