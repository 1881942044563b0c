"""One local day's curves for the Energy screen's plot: electrical power, heat, flow and the temperatures, as
time-weighted means over fixed buckets (5 minutes: 288 a day, 276 or 300 on a DST day), from the store's
readings.

Stored readings are thinned (a row when the value moved past its deadband, and one every keep-alive), so each row
held until the next: a bucket's mean is the held value weighted by the time it held within the bucket
(`integrate` with `hold=True`, cut exactly at the bucket edges by `split_at`). An interval longer than `max_gap_s`
or without a value is a gap: a bucket with nothing covered is None, drawn as a break in the line, never as zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from controller.energy.book import max_gap_s
from controller.energy.days import day_bounds
from controller.energy.derived import HEAT_CHANNEL
from controller.energy.integrate import Sample, integrate, ordered, split_at
from controller.layout.model import Layout
from controller.store.database import Store

BUCKET_S = 300.0
# role -> (what it is, unit); the order is the order of the plot's legend
ROLES: dict[str, tuple[str, str]] = {
    "elec": ("electricity", "W"),
    "heat": ("heat", "W"),
    "flow_rate": ("flow", "l/min"),
    "flow_c": ("flow temperature", "degC"),
    "return_c": ("return temperature", "degC"),
    "outdoor_c": ("outdoor", "degC"),
    "house_c": ("house", "degC"),
    "tank_top_c": ("tank top", "degC"),
}


def plot_channels(layout: Layout) -> dict[str, str]:
    """role -> the layout's channel behind it (only those the layout has; heat when it is derived)."""
    energy, sensors = layout.control.energy, layout.control.sensors
    wanted = {
        "elec": energy.heat_pump_power,
        "flow_rate": energy.flow,
        "flow_c": energy.leaving,
        "return_c": energy.entering,
        "outdoor_c": sensors.outdoor,
        "house_c": sensors.house,
        "tank_top_c": sensors.tank_top,
    }
    found = {role: name for role, name in wanted.items() if name in layout.channels}
    if all(name in layout.channels for name in (energy.flow, energy.leaving, energy.entering)):
        found["heat"] = HEAT_CHANNEL
    return {role: found[role] for role in ROLES if role in found}


def bucket_means(
    samples: Sequence[Sample], start: float, end: float, bucket_s: float, max_gap: float
) -> list[float | None]:
    """The time-weighted mean of held `samples` in each bucket of [start, end); None where nothing is covered."""
    count = max(1, math.ceil((end - start) / bucket_s - 1e-9))
    cuts = [start + i * bucket_s for i in range(count + 1)]
    pieces = split_at(ordered(samples), cuts, max_gap, hold=True)[1 : count + 1]
    means: list[float | None] = []
    for piece in pieces:
        integral = integrate(piece, max_gap, hold=True)
        means.append(round(integral.area / integral.covered_s, 3) if integral.covered_s > 0 else None)
    return means


def day_curves(
    store: Store, layout: Layout, day: date, now: float | None = None, bucket_s: float = BUCKET_S
) -> dict[str, Any]:
    """The record the Energy screen plots: the day's bounds, the bucket length, and per role its channel, unit and
    bucket means. `now`: a running controller writes this store up to then (each channel's last row holds until
    then; nothing is drawn after it)."""
    zone = ZoneInfo(layout.site.timezone)
    start, end = day_bounds(day, zone)
    gap = max_gap_s(layout)
    series: dict[str, Mapping[str, Any]] = {}
    for role, channel in plot_channels(layout).items():
        rows = [Sample(r.ts, r.value) for r in store.history(channel, start - gap, end)]
        if now is not None and rows and rows[-1].value is not None and 0 < now - rows[-1].t <= gap:
            rows.append(Sample(now, rows[-1].value))
        what, unit = ROLES[role]
        values = bucket_means(rows, start, end, bucket_s, gap)
        series[role] = {"channel": channel, "what": what, "unit": unit, "values": values}
    return {"day": day.isoformat(), "start": start, "end": end, "bucket_s": bucket_s, "series": series}
