"""Local days in the site's time zone: their boundaries as UTC instants (DST days last 23 or 25 hours)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def day_start(day: date, zone: ZoneInfo) -> float:
    """The UTC epoch second at which local `day` begins."""
    return datetime.combine(day, time(0), zone).timestamp()


def local_day(t: float, zone: ZoneInfo) -> date:
    """The local date at UTC epoch second `t`."""
    return datetime.fromtimestamp(t, UTC).astimezone(zone).date()


def day_bounds(day: date, zone: ZoneInfo) -> tuple[float, float]:
    """[start, end) of local `day` in UTC epoch seconds."""
    return day_start(day, zone), day_start(day + timedelta(days=1), zone)


def days_between(start: float, end: float, zone: ZoneInfo) -> list[date]:
    """Every local day that overlaps [start, end)."""
    first, last = local_day(start, zone), local_day(max(start, end - 1e-6), zone)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
