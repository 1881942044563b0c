"""The store side of energy: daily totals computed from the stored readings, closed into the store before
retention prunes the readings, and read back for `hearth energy`, the TUI and the links.

Stored readings are thinned (kept on a change beyond the deadband, and at least every `keepalive_s`), so between
two stored readings a channel held its value within the deadband: the heat channel is rebuilt by holding each
input's last value (for at most the longest keep-alive), and integration bridges intervals up to that long.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from controller.control.tariff import Price, price_band
from controller.control.types import PriceForecast
from controller.energy.daily import (
    ELEC,
    FLOW_C,
    HEAT,
    HOUSE_C,
    METER_KWH,
    OUTDOOR_C,
    RETURN_C,
    DayTotals,
    PriceAt,
    daily_totals,
)
from controller.energy.days import day_bounds, local_day
from controller.energy.integrate import Sample
from controller.energy.physics import heat_or_none
from controller.layout.model import Layout
from controller.store.database import Store

DAY_S = 86_400.0


def roles(layout: Layout) -> dict[str, str]:
    """The daily-total roles and the layout channels that fill them (only channels the layout has)."""
    energy, sensors = layout.control.energy, layout.control.sensors
    wanted = {
        ELEC: energy.heat_pump_power,
        METER_KWH: energy.heat_pump_energy,
        FLOW_C: energy.leaving,
        RETURN_C: energy.entering,
        OUTDOOR_C: sensors.outdoor,
        HOUSE_C: sensors.house,
    }
    return {role: channel for role, channel in wanted.items() if channel in layout.channels}


def max_gap_s(layout: Layout) -> float:
    """The longest interval between two stored readings that still counts: 1.5 x the longest keep-alive of the
    channels behind the totals (the store keeps a reading at least that often while the channel is healthy)."""
    energy = layout.control.energy
    names = [energy.heat_pump_power, energy.flow, energy.leaving, energy.entering]
    keepalives = [layout.channels[n].keepalive_s for n in names if n in layout.channels]
    return 1.5 * max(keepalives, default=300.0)


def held_heat(
    flow: Sequence[Sample], leaving: Sequence[Sample], entering: Sequence[Sample], max_age_s: float
) -> list[Sample]:
    """Heat (W) at every instant any of its inputs was stored, from each input's last stored value; None when an
    input has none or its last is older than `max_age_s`."""
    events = sorted(
        [(s.t, 0, s.value) for s in flow] + [(s.t, 1, s.value) for s in leaving] + [(s.t, 2, s.value) for s in entering]
    )
    last: list[tuple[float, float | None] | None] = [None, None, None]
    samples: list[Sample] = []
    for t, index, value in events:
        last[index] = (t, value)
        known = [item[1] if item is not None and t - item[0] <= max_age_s else None for item in last]
        heat = heat_or_none(known[0], known[1], known[2])
        if samples and samples[-1].t == t:
            samples[-1] = Sample(t, heat)
        else:
            samples.append(Sample(t, heat))
    return samples


def price_function(layout: Layout, forecast: PriceForecast | None) -> PriceAt:
    """The price in force at a time: the ATN's forecast where it covers it, else the layout's tariff."""
    tariff, zone = layout.control.tariff, layout.site.timezone
    by_band = {
        Price.CHEAP: tariff.cheap_price,
        Price.NORMAL: tariff.normal_price,
        Price.EXPENSIVE: tariff.expensive_price,
    }
    points = forecast.points if forecast is not None else ()

    def price(t: float) -> float | None:
        for point in points:
            if point.start <= t < point.end:
                return point.price
        return by_band[price_band(t, tariff, zone, None)[0]]

    return price


def compute_days(
    store: Store,
    layout: Layout,
    days: Sequence[date],
    forecast: PriceForecast | None = None,
    live_until: float | None = None,
) -> list[DayTotals]:
    """The totals of `days` from the stored readings. `live_until`: the store is being written by a running
    controller up to this time, so each channel's last row still holds then (the recorder keeps a row as soon as
    the value moves past its deadband, and one every keep-alive anyway)."""
    if not days:
        return []
    zone = ZoneInfo(layout.site.timezone)
    gap = max_gap_s(layout)
    since, until = day_bounds(days[0], zone)[0] - gap, day_bounds(days[-1], zone)[1] + gap
    channels = roles(layout)

    def samples(name: str) -> list[Sample]:
        rows = [Sample(r.ts, r.value) for r in store.history(name, since, until)]
        if live_until is not None and rows and rows[-1].value is not None and 0 < live_until - rows[-1].t <= gap:
            rows.append(Sample(live_until, rows[-1].value))
        return rows

    series = {role: samples(name) for role, name in channels.items()}
    energy = layout.control.energy
    if all(n in layout.channels for n in (energy.flow, energy.leaving, energy.entering)):
        series[HEAT] = held_heat(samples(energy.flow), samples(energy.leaving), samples(energy.entering), gap)
    totals = daily_totals(
        series,
        zone,
        max_gap_s=gap,
        starting_w=energy.starting_w,
        price=price_function(layout, forecast),
        days=days,
        hold=True,
    )
    return totals


def close_days(store: Store, layout: Layout, now: float, look_back_days: int = 2) -> int:
    """Compute and keep, as final, the complete local days of the last `look_back_days` not yet closed; keep
    today so far as provisional. Run it before each prune, so totals are kept before their readings go.
    Returns the days closed."""
    zone = ZoneInfo(layout.site.timezone)
    today = local_day(now, zone)
    days = [today - timedelta(days=i) for i in range(look_back_days, -1, -1)]
    stored = {day: final for day, _, final in store.energy_days(days[0].isoformat(), today.isoformat())}
    wanted = [d for d in days if not stored.get(d.isoformat(), False)]
    closed = 0
    for totals in compute_days(store, layout, wanted, store.latest_forecast(now), live_until=now):
        final = totals.day < today
        if final and totals.coverage_pct == 0 and totals.meter_kwh is None:
            continue  # nothing was recorded that day (the controller was not running): nothing to keep
        store.save_energy_day(totals.day.isoformat(), json.dumps(totals.row()), final=final, now=now)
        closed += final
    return closed


def recent_days(store: Store, layout: Layout, now: float, count: int, live: bool = False) -> list[DayTotals]:
    """The last `count` local days up to today (so far), oldest first: closed days from the store, the others
    computed from the readings still there. `live`: a running controller writes this store (see
    `compute_days`)."""
    zone = ZoneInfo(layout.site.timezone)
    today = local_day(now, zone)
    days = [today - timedelta(days=i) for i in range(count - 1, -1, -1)]
    stored: dict[date, DayTotals] = {}
    for day, body, final in store.energy_days(days[0].isoformat(), today.isoformat()):
        if final:
            stored[date.fromisoformat(day)] = DayTotals.from_row(json.loads(body))
    missing = [d for d in days if d not in stored]
    forecast = store.latest_forecast(now)
    computed = {t.day: t for t in compute_days(store, layout, missing, forecast, now if live else None)}
    return [stored.get(d) or computed[d] for d in days]


def rows(days: Sequence[DayTotals]) -> list[Mapping[str, object]]:
    return [d.row() for d in days]
