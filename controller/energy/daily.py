"""Daily totals by local day, with the definitions heatpumpmonitor.org uses (emoncms "My Heatpump" app), so a
Hearth site's figures compare with the hundreds of systems published there:

- electricity and heat kWh: integrated from power (W); heat is net of defrost (negative heat counts);
- COP = heat kWh / electricity kWh (None on a day with no electricity);
- running hours: time with electrical power >= the starting power (100 W by default);
- starts: electrical power rising through the starting power;
- defrost kWh: the heat taken back out of the water (the integral of negative heat), as a positive number;
- means of flow, return, outdoor and house temperatures over the time they were measured;
- data coverage: the share of the day for which both electricity and heat are known;
- cost: each interval's electricity at the price in force at its middle.

The heat pump meter's own counter, where there is one, is differenced over the same day and reported next to
the integral (the counter keeps counting through a gap the integral leaves out, so a gap shows as a difference).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from controller.energy.days import day_bounds, days_between
from controller.energy.integrate import J_PER_KWH, Integral, Sample, area, integrate, ordered, split_at, usable
from controller.energy.starts import STARTING_W, count_starts

ELEC = "elec"  # heat pump electrical power, W
HEAT = "heat"  # heat output, W
FLOW_C = "flow"  # leaving (flow) water temperature, °C
RETURN_C = "return"  # entering (return) water temperature, °C
OUTDOOR_C = "outdoor"
HOUSE_C = "house"
METER_KWH = "meter"  # the meter's own import counter, kWh
MEANS = (FLOW_C, RETURN_C, OUTDOOR_C, HOUSE_C)

PriceAt = Callable[[float], float | None]  # price per kWh in force at a UTC instant; None: unknown


@dataclass(frozen=True)
class DayTotals:
    day: date
    hours: float  # the local day's length: 23, 24 or 25
    elec_kwh: float
    heat_kwh: float
    running_h: float
    starts: int
    defrost_kwh: float
    coverage_pct: float
    gap_s: float
    cost: float | None
    means_c: Mapping[str, float | None] = field(default_factory=dict)
    meter_kwh: float | None = None

    @property
    def cop(self) -> float | None:
        return self.heat_kwh / self.elec_kwh if self.elec_kwh > 0 else None

    @property
    def meter_difference_pct(self) -> float | None:
        """(integrated − counter) / counter in %, or None without a counter or with nothing counted."""
        if self.meter_kwh is None or self.meter_kwh <= 0:
            return None
        return (self.elec_kwh - self.meter_kwh) / self.meter_kwh * 100.0

    @classmethod
    def from_row(cls, record: Mapping[str, Any]) -> DayTotals:
        """The inverse of `row` (a stored or received record); raises KeyError/ValueError/TypeError if it is not
        one."""
        means = {name: _optional_float(record.get(f"{name}_mean_c")) for name in MEANS}
        return cls(
            day=date.fromisoformat(str(record["day"])),
            hours=float(record["hours"]),
            elec_kwh=float(record["elec_kwh"]),
            heat_kwh=float(record["heat_kwh"]),
            running_h=float(record["running_h"]),
            starts=int(record["starts"]),
            defrost_kwh=float(record["defrost_kwh"]),
            coverage_pct=float(record["coverage_pct"]),
            gap_s=float(record["gap_s"]),
            cost=_optional_float(record.get("cost")),
            means_c=means,
            meter_kwh=_optional_float(record.get("meter_kwh")),
        )

    def row(self) -> dict[str, object]:
        """A flat record for the store, a table, CSV or JSON."""
        record = asdict(self)
        record["day"] = self.day.isoformat()
        means = record.pop("means_c")
        for name in MEANS:
            record[f"{name}_mean_c"] = means.get(name)
        record["cop"] = self.cop
        record["meter_difference_pct"] = self.meter_difference_pct
        return record


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def negative_part(samples: Sequence[Sample]) -> list[Sample]:
    return [Sample(s.t, None if s.value is None else min(0.0, s.value)) for s in samples]


def running_s(samples: Sequence[Sample], max_gap_s: float, starting_w: float) -> float:
    """Seconds of usable intervals that begin at or above `starting_w`."""
    return sum(
        b.t - a.t
        for a, b in itertools.pairwise(samples)
        if usable(a, b, max_gap_s) and a.value is not None and a.value >= starting_w
    )


def cost_of(samples: Sequence[Sample], max_gap_s: float, price: PriceAt, hold: bool = False) -> float | None:
    """Each usable interval's energy at the price at its middle; None when no interval had a price."""
    total, priced = 0.0, False
    for a, b in itertools.pairwise(samples):
        if not usable(a, b, max_gap_s):
            continue
        rate = price((a.t + b.t) / 2.0)
        if rate is None:
            continue
        total += area(a, b, hold) / J_PER_KWH * rate
        priced = True
    return total if priced else None


COUNTER_MAX_KW = 100.0
"""No household meter counts faster (an SDM630 at 3 x 100 A is ~70 kW): a faster step is a misread value."""


def counter_delta(samples: Sequence[Sample], max_kw: float = COUNTER_MAX_KW) -> float | None:
    """A cumulative counter's increase over `samples`: the sum of its steps between values. A step back (a meter
    swapped or reset) counts nothing, and so does a step up faster than `max_kw` (a misread value: a reply taken for
    another register's; the step back from it then counts nothing either); None with fewer than two values."""
    known = [s for s in samples if s.value is not None]
    if len(known) < 2:
        return None
    total = 0.0
    for a, b in itertools.pairwise(known):
        assert a.value is not None and b.value is not None
        step, hours = b.value - a.value, (b.t - a.t) / 3600.0
        if step > 0 and hours > 0 and step <= max_kw * hours:
            total += step
    return total


def _mean(integral: Integral) -> float | None:
    return integral.area / integral.covered_s if integral.covered_s > 0 else None


def daily_totals(
    channels: Mapping[str, Sequence[Sample]],
    zone: ZoneInfo,
    *,
    max_gap_s: float,
    starting_w: float = STARTING_W,
    price: PriceAt | None = None,
    days: Sequence[date] | None = None,
    hold: bool = False,
) -> list[DayTotals]:
    """Totals for every local day the samples touch (or for `days`). `channels` maps the names above (ELEC,
    HEAT, the MEANS, METER_KWH) to samples; a missing channel counts as never measured. `hold`: the samples are
    the store's thinned rows (see `controller.energy.integrate`)."""
    series = {name: ordered(samples) for name, samples in channels.items()}
    every = [s.t for samples in series.values() for s in samples]
    if days is None:
        days = days_between(min(every), max(every), zone) if every else []
    bounds = [day_bounds(day, zone) for day in days]
    cuts = sorted({t for pair in bounds for t in pair})

    def pieces(name: str, gap_s: float) -> dict[float, list[Sample]]:
        split = split_at(series.get(name, []), cuts, gap_s, hold)
        return {cut: split[i + 1] for i, cut in enumerate(cuts)}  # keyed by the piece's start

    elec, heat = pieces(ELEC, max_gap_s), pieces(HEAT, max_gap_s)
    means = {name: pieces(name, max_gap_s) for name in MEANS}
    meter = pieces(METER_KWH, float("inf")) if METER_KWH in series else None
    totals = []
    for day, (start, end) in zip(days, bounds, strict=True):
        length = end - start
        e, h = elec[start], heat[start]
        e_int, h_int = integrate(e, max_gap_s, hold), integrate(h, max_gap_s, hold)
        covered = min(e_int.covered_s, h_int.covered_s)
        totals.append(
            DayTotals(
                day=day,
                hours=length / 3600.0,
                elec_kwh=e_int.kwh,
                heat_kwh=h_int.kwh,
                running_h=running_s(e, max_gap_s, starting_w) / 3600.0,
                starts=count_starts(e, starting_w),
                defrost_kwh=max(0.0, -integrate(negative_part(h), max_gap_s, hold).kwh),
                coverage_pct=covered / length * 100.0,
                gap_s=length - covered,
                cost=cost_of(e, max_gap_s, price, hold) if price is not None else None,
                means_c={name: _mean(integrate(means[name][start], max_gap_s, hold)) for name in MEANS},
                meter_kwh=counter_delta(meter[start]) if meter is not None else None,
            )
        )
    return totals
