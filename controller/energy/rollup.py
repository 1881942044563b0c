"""Daily totals rolled up to months and heating seasons.

A heating season runs from 1 September to 31 August and is named by its two years ("2025/26"), so one winter
is never split across two totals. Sums add up; COP is heat over electricity of the sum (never a mean of daily
COPs); coverage and the temperature means are weighted by the hours behind them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date
from itertools import groupby

from controller.energy.daily import MEANS, DayTotals

SEASON_START_MONTH = 9


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def season_of(day: date) -> str:
    first = day.year if day.month >= SEASON_START_MONTH else day.year - 1
    return f"{first}/{(first + 1) % 100:02d}"


@dataclass(frozen=True)
class Rollup:
    name: str
    days: int
    hours: float
    elec_kwh: float
    heat_kwh: float
    running_h: float
    starts: int
    defrost_kwh: float
    coverage_pct: float
    cost: float | None
    means_c: dict[str, float | None]

    @property
    def cop(self) -> float | None:
        return self.heat_kwh / self.elec_kwh if self.elec_kwh > 0 else None

    def row(self, kind: str) -> dict[str, object]:
        """A flat record (`kind`: month or season) for the local socket and the TUI."""
        record: dict[str, object] = {"kind": kind, "cop": self.cop, **asdict(self)}
        means = record.pop("means_c")
        assert isinstance(means, dict)
        for channel, value in means.items():
            record[f"{channel}_mean_c"] = value
        return record


def totals_rows(days: Iterable[DayTotals]) -> list[dict[str, object]]:
    """Month then season rollups of `days`, as records."""
    items = list(days)
    return [r.row("month") for r in rollups(items, month_of)] + [r.row("season") for r in rollups(items, season_of)]


def rollup(name: str, days: Iterable[DayTotals]) -> Rollup:
    items = list(days)
    hours = sum(d.hours for d in items)
    costs = [d.cost for d in items if d.cost is not None]
    means: dict[str, float | None] = {}
    for channel in MEANS:
        weighted = [(d.means_c.get(channel), d.hours * d.coverage_pct) for d in items]
        known = [(v, w) for v, w in weighted if v is not None and w > 0]
        weight = sum(w for _, w in known)
        means[channel] = sum(v * w for v, w in known) / weight if weight else None
    return Rollup(
        name=name,
        days=len(items),
        hours=hours,
        elec_kwh=sum(d.elec_kwh for d in items),
        heat_kwh=sum(d.heat_kwh for d in items),
        running_h=sum(d.running_h for d in items),
        starts=sum(d.starts for d in items),
        defrost_kwh=sum(d.defrost_kwh for d in items),
        coverage_pct=sum(d.coverage_pct * d.hours for d in items) / hours if hours else 0.0,
        cost=sum(costs) if costs else None,
        means_c=means,
    )


def rollups(days: Iterable[DayTotals], key: Callable[[date], str]) -> list[Rollup]:
    """One rollup per key (month_of, season_of), in date order."""
    ordered = sorted(days, key=lambda d: d.day)
    return [rollup(name, group) for name, group in groupby(ordered, key=lambda d: key(d.day))]
