"""The site's measured history as hourly aggregates: what the model fit regresses on.

Each hour holds the means of the house and outdoor air, how far the house and the tank's mean temperature rose,
the heat pump's heat and electricity (integrated), how long the compressor ran and the mean leaving and entering
water while it ran, and whether the aux element ran (its heat is not measured, so such hours are left out of
the house's balance). Hours with less than `MIN_COVERAGE` of their minutes known are dropped, never filled.

The series are sampled on a one-minute grid, each channel holding its last stored value for at most `max_age_s`
(the store keeps a row when a value moves past its deadband and at least every keep-alive, so between rows a
channel held its value): the same reading of thinned rows as the energy book's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.energy.integrate import Sample
from controller.energy.physics import heat_w
from controller.planner.fitting.history import (
    AUX,
    ENTERING,
    FLOW,
    HOUSE,
    LEAVING,
    OUTDOOR,
    POWER,
    ROLES,
    TANK_BOTTOM,
    TANK_MID,
    TANK_TOP,
)

GRID_S = 60.0
HOUR_S = 3600.0
MIN_COVERAGE = 0.9  # an hour counts when at least 90 % of its minutes have every input

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Hour:
    start: float  # UTC epoch seconds, on the hour
    house_c: float
    outdoor_c: float
    house_rise_k: float  # house air at the hour's end minus at its start
    tank_rise_k: float  # tank mean (top, mid, bottom) at the end minus at the start
    heat_j: float  # heat pump heat into the water
    elec_j: float  # heat pump electricity
    running_s: float  # seconds with the compressor running (power >= the starting power)
    leaving_c: float | None  # mean water leaving the heat pump while it ran (None: it did not run)
    entering_c: float | None
    aux: bool  # the aux element ran in this hour


def hold(samples: Sequence[Sample], grid: Array, max_age_s: float) -> Array:
    """Each grid instant's last sample value at or before it (NaN if none, if None, or older than `max_age_s`)."""
    if not samples:
        return np.full(len(grid), np.nan)
    times = np.array([s.t for s in samples], dtype=np.float64)
    values = np.array([np.nan if s.value is None else s.value for s in samples], dtype=np.float64)
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    index = np.searchsorted(times, grid, side="right") - 1
    out = np.where(index >= 0, values[np.maximum(index, 0)], np.nan)
    age = grid - times[np.maximum(index, 0)]
    return np.asarray(np.where((index >= 0) & (age <= max_age_s), out, np.nan), dtype=np.float64)


def hours_from_series(
    series: Mapping[str, Sequence[Sample]], since: float, until: float, max_age_s: float, starting_w: float
) -> list[Hour]:
    """The whole hours between `since` and `until` with enough data. `series` maps ROLES to samples; AUX samples
    are 1 (on) or 0 (off), each held until the next (an aux element with no record counts as off)."""
    first = np.ceil(since / HOUR_S) * HOUR_S
    count = int((until - first) // HOUR_S)
    if count <= 0:
        return []
    per_hour = int(HOUR_S / GRID_S)
    grid = first + GRID_S * np.arange(count * per_hour + 1, dtype=np.float64)
    held = {role: hold(series.get(role, ()), grid, max_age_s) for role in ROLES if role != AUX}
    held[AUX] = hold(series.get(AUX, ()), grid, np.inf)  # a switch holds until the next one
    tank = _mean_of_known(np.vstack([held[TANK_TOP], held[TANK_MID], held[TANK_BOTTOM]]))
    heat = _heat(held[FLOW], held[LEAVING], held[ENTERING])
    power = held[POWER]
    aux = np.nan_to_num(held[AUX], nan=0.0) > 0.5
    known = ~(np.isnan(held[HOUSE]) | np.isnan(held[OUTDOOR]) | np.isnan(tank) | np.isnan(power) | np.isnan(heat))
    hours = []
    for h in range(count):
        a, b = h * per_hour, (h + 1) * per_hour  # minutes [a, b); edges a and b
        minutes = slice(a, b)
        if known[minutes].mean() < MIN_COVERAGE or not (known[a] and known[b]):
            continue
        ok = known[minutes]
        running = ok & (power[minutes] >= starting_w)
        run_s = float(running.sum() * GRID_S)
        scale = per_hour / max(1, int(ok.sum()))  # the few unknown minutes: at the hour's mean rate
        hours.append(
            Hour(
                start=float(grid[a]),
                house_c=float(held[HOUSE][minutes][ok].mean()),
                outdoor_c=float(held[OUTDOOR][minutes][ok].mean()),
                house_rise_k=float(held[HOUSE][b] - held[HOUSE][a]),
                tank_rise_k=float(tank[b] - tank[a]),
                heat_j=float(heat[minutes][ok].sum() * GRID_S * scale),
                elec_j=float(power[minutes][ok].sum() * GRID_S * scale),
                running_s=run_s * scale,
                leaving_c=float(held[LEAVING][minutes][running].mean()) if run_s else None,
                entering_c=float(held[ENTERING][minutes][running].mean()) if run_s else None,
                aux=bool(aux[a : b + 1].any()),
            )
        )
    return hours


def _mean_of_known(rows: Array) -> Array:
    """The mean of the non-NaN values of each column (NaN where none is)."""
    count = (~np.isnan(rows)).sum(axis=0)
    total = np.nan_to_num(rows, nan=0.0).sum(axis=0)
    return np.asarray(np.where(count > 0, total / np.maximum(count, 1), np.nan), dtype=np.float64)


def _heat(flow: Array, leaving: Array, entering: Array) -> Array:
    out = np.full(len(flow), np.nan)
    for i, (f, lv, en) in enumerate(zip(flow, leaving, entering, strict=True)):
        if not (np.isnan(f) or np.isnan(lv) or np.isnan(en)):
            out[i] = heat_w(float(f), float(lv), float(en))
    return out
