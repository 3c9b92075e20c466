"""ISO weeks in the report's time zone: what "last week" means to the people reading it.

A week runs from Monday 00:00 to the next Monday 00:00 *local* time, so a report for Berlin
starts when Berlin's Monday starts, daylight saving included. An SLO evaluation made at `t`
judges the window ending at `t`, so a week holds the evaluations with start < t <= end (the
same half-open rule as `monitor.engine.budgets`): the one made at Monday 00:00 belongs to Sunday.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_WEEK = re.compile(r"^(\d{4})-?W(\d{2})$", re.IGNORECASE)


@dataclass(frozen=True)
class Week:
    year: int
    number: int
    tz: ZoneInfo

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    def local_midnight(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=self.tz)

    @property
    def start(self) -> datetime:
        """Monday 00:00 local, as an aware UTC time."""
        return self.local_midnight(self.monday).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return self.local_midnight(self.monday + timedelta(days=7)).astimezone(UTC)

    def days(self) -> list[tuple[date, datetime, datetime]]:
        """Each local day of the week with its bounds in UTC (23 or 25 hours on DST days)."""
        out = []
        for i in range(7):
            day = self.monday + timedelta(days=i)
            out.append(
                (
                    day,
                    self.local_midnight(day).astimezone(UTC),
                    self.local_midnight(day + timedelta(days=1)).astimezone(UTC),
                )
            )
        return out

    def previous(self) -> Week:
        return week_of(self.start - timedelta(days=1), self.tz)

    def title(self) -> str:
        last = self.monday + timedelta(days=6)
        return f"{self.label} ({self.monday:%a %d %b} – {last:%a %d %b %Y})"


def week_of(when: datetime, tz: ZoneInfo) -> Week:
    """The week a moment falls in, as seen in `tz`."""
    year, number, _ = when.astimezone(tz).isocalendar()
    return Week(year, number, tz)


def last_complete_week(now: datetime, tz: ZoneInfo) -> Week:
    """The week before the one `now` is in: what Monday's report is about."""
    return week_of(now, tz).previous()


def parse_week(text: str, tz: ZoneInfo) -> Week:
    """`2026-W47` (or `2026W47`); raises ValueError naming the accepted form."""
    match = _WEEK.match(text.strip())
    if match:
        year, number = int(match.group(1)), int(match.group(2))
        try:
            date.fromisocalendar(year, number, 1)
        except ValueError:
            pass
        else:
            return Week(year, number, tz)
    raise ValueError(f"not an ISO week: {text!r} (write e.g. 2026-W47)")
