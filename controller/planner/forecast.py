"""What a plan assumes about each 15-minute step ahead: price, outdoor air, free gains and comfort bounds.

- Prices: the ATN's price forecast where it covers a step (while fresh); beyond its end, the same time one day
  earlier (day-ahead prices repeat their shape better than anything else we know); without a forecast, the
  layout's time-of-use windows and their prices.
- Outdoor air: a persistence forecast from the outdoor sensor: the daily shape of the last few days (hourly
  means, exponentially weighted over days), shifted so that it meets the present reading and relaxing back to
  that shape over a few hours; just the present reading until a day of history exists.
- Gains: the layout's mean internal gain plus a half-sine of sun between sunrise and sunset (local time).
- Comfort: occupied steps between setpoint - comfort_low_k and setpoint + comfort_high_k; unoccupied steps
  down to the setback. A setpoint from an override or the ATN replaces the schedule.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from controller.control.params import ControlParams, in_windows
from controller.control.tariff import FORECAST_MAX_AGE_S
from controller.control.types import PriceForecast, PricePoint
from controller.planner.base import HISTORY_WEIGHT, STEP_S, OutdoorHistory, comfort_floor_c, slot_start
from controller.planner.model import Array

__all__ = [
    "HISTORY_WEIGHT",
    "Forecast",
    "OutdoorHistory",
    "build",
    "comfort_floor_c",
    "outdoor_forecast",
    "prices",
    "slot_start",
]

DAY_S = 86400.0
HOUR_S = 3600.0
PERSISTENCE_RELAX_S = 6 * HOUR_S


@dataclass(frozen=True)
class Forecast:
    t0: float  # start of step 0 (UTC epoch seconds, on a 15-minute boundary)
    price: Array
    outdoor_c: Array
    gains_w: Array
    low_c: Array  # comfort bounds at each step's end
    high_c: Array
    occupied: tuple[bool, ...]

    @property
    def steps(self) -> int:
        return len(self.price)


def outdoor_forecast(times: Array, now: float, outdoor_c: float, history: OutdoorHistory) -> Array:
    """Persistence: the recent daily shape meeting the present reading, relaxing back over `PERSISTENCE_RELAX_S`."""
    yesterday_now = history.at(now)
    out = np.full(len(times), outdoor_c)
    if yesterday_now is None:
        return out
    for i, t in enumerate(times):
        shape = history.at(float(t))
        if shape is not None:
            weight = math.exp(-max(0.0, float(t) - now) / PERSISTENCE_RELAX_S)
            out[i] = shape + (outdoor_c - yesterday_now) * weight
    return out


def _tariff_price(params: ControlParams, local: datetime) -> float:
    tariff = params.tariff
    if in_windows(tariff.expensive, local.time()):
        return tariff.expensive_price
    if in_windows(tariff.cheap, local.time()):
        return tariff.cheap_price
    return tariff.normal_price


def prices(times: Array, now: float, params: ControlParams, zone: ZoneInfo, forecast: PriceForecast | None) -> Array:
    """The price of each step (by its middle)."""
    points: tuple[PricePoint, ...] = ()
    if forecast is not None and now - forecast.received_at <= FORECAST_MAX_AGE_S and forecast.points:
        points = tuple(sorted(forecast.points, key=lambda point: point.start))
    starts = [point.start for point in points]
    out = np.empty(len(times))
    for i, t in enumerate(times):
        mid = float(t) + STEP_S / 2
        price = _lookup(points, starts, mid)
        back = mid
        while price is None and points and back > points[0].start:
            back -= DAY_S
            price = _lookup(points, starts, back)
        out[i] = price if price is not None else _tariff_price(params, datetime.fromtimestamp(mid, zone))
    return out


def _lookup(points: tuple[PricePoint, ...], starts: list[float], t: float) -> float | None:
    i = bisect.bisect_right(starts, t) - 1
    if i >= 0 and points[i].start <= t < points[i].end:
        return float(points[i].price)
    return None


def build(
    now: float,
    params: ControlParams,
    timezone: str,
    *,
    outdoor: Array,
    price_forecast: PriceForecast | None,
    setpoint_c: float | None,
    steps: int,
) -> Forecast:
    """A forecast of `steps` steps from the slot holding `now`, with the outdoor air given per step."""
    zone = ZoneInfo(timezone)
    t0 = slot_start(now)
    times = step_times(now, steps)
    planner, comfort = params.planner, params.comfort
    gains = np.empty(steps)
    low = np.empty(steps)
    high = np.empty(steps)
    occupied: list[bool] = []
    for i, t in enumerate(times):
        local_mid = datetime.fromtimestamp(float(t) + STEP_S / 2, zone)
        hour = local_mid.hour + local_mid.minute / 60
        sun = 0.0
        if planner.sunrise_local_h < hour < planner.sunset_local_h:
            day = planner.sunset_local_h - planner.sunrise_local_h
            sun = planner.solar_gain_peak_w * math.sin(math.pi * (hour - planner.sunrise_local_h) / day)
        gains[i] = planner.internal_gain_w + sun
        local_end = datetime.fromtimestamp(float(t) + STEP_S, zone)
        occupied_end = in_windows(comfort.occupied, local_end.time())
        occupied.append(occupied_end)
        setpoint = setpoint_c if setpoint_c is not None else comfort.setpoint_c
        low[i] = comfort_floor_c(params, occupied_end, setpoint_c)
        high[i] = setpoint + planner.comfort_high_k
    return Forecast(
        t0=t0,
        price=prices(times, now, params, zone, price_forecast),
        outdoor_c=outdoor,
        gains_w=gains,
        low_c=low,
        high_c=high,
        occupied=tuple(occupied),
    )


def step_times(now: float, steps: int) -> Array:
    """The start of each of `steps` steps from the slot holding `now`."""
    return np.asarray(slot_start(now) + STEP_S * np.arange(steps, dtype=np.float64), dtype=np.float64)
