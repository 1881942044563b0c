"""What the control tick needs of the planner at start-up, without numpy: the step length, the outdoor
history it keeps, the comfort floor. (numpy is imported where plans are solved: off the control path.)"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from controller.control.params import ControlParams
from controller.control.types import WeatherForecast
from controller.protocol import MAX_WEATHER_AGE_S

STEP_S = 900.0
WEATHER_MAX_AGE_S = MAX_WEATHER_AGE_S  # forecasts are re-issued every few hours; half a day old is stale
HOUR_S = 3600.0
# Each hour's slot is an exponentially weighted mean over days: a new day's hour moves it by this share. One day
# alone is a noisy sample of the daily shape (its own fronts and clouds); ~3 days of memory cut the persistence
# forecast's error by ~20 % on the simulator's weather (RMS over 48 h: mild 2.0 -> 1.6 K, cold 1.4 -> 1.2 K).
HISTORY_WEIGHT = 0.3


@dataclass(frozen=True, slots=True)
class OutdoorHistory:
    """The outdoor air's daily shape: per UTC hour, a mean over the last days weighted by `HISTORY_WEIGHT` per
    day; the hour being filled is accumulated."""

    hourly: tuple[float | None, ...] = (None,) * 24
    hour: int = -1  # absolute hour number being accumulated
    total: float = 0.0
    count: int = 0

    def add(self, now: float, outdoor_c: float | None) -> OutdoorHistory:
        if outdoor_c is None:
            return self
        hour = math.floor(now / HOUR_S)
        if hour == self.hour:
            return replace(self, total=self.total + outdoor_c, count=self.count + 1)
        hourly = self.hourly
        if self.count:
            slots = list(hourly)
            mean = self.total / self.count
            before = slots[self.hour % 24]
            slots[self.hour % 24] = mean if before is None else before + HISTORY_WEIGHT * (mean - before)
            if hour - self.hour > 24:  # a gap of more than a day: nothing left is recent
                slots = [None] * 24
            hourly = tuple(slots)
        return OutdoorHistory(hourly, hour, outdoor_c, 1)

    def at(self, t: float) -> float | None:
        return self.hourly[math.floor(t / HOUR_S) % 24]


def comfort_floor_c(params: ControlParams, occupied: bool, setpoint_c: float | None) -> float:
    """The lowest house temperature the plan allows: setpoint - comfort_low_k while occupied (or under a setpoint
    override or the ATN's), the setback otherwise (not lower: a house let down further at night needs more
    than the heat pump can give to be back by morning on a cold day, and then the aux element)."""
    comfort = params.comfort
    if setpoint_c is not None:
        return setpoint_c - params.planner.comfort_low_k
    if occupied:
        return comfort.setpoint_c - params.planner.comfort_low_k
    return min(comfort.setback_c, comfort.setpoint_c - params.planner.comfort_low_k)


def slot_start(now: float) -> float:
    return math.floor(now / STEP_S) * STEP_S


def freshness(weather: WeatherForecast | None, now: float) -> str | None:
    """Why the ATN's forecast cannot be used now (None: it can)."""
    if weather is None:
        return "no ATN weather forecast"
    age = now - min(weather.issued_at, weather.received_at)  # the ATN's clock may be a little ahead
    if age > WEATHER_MAX_AGE_S:
        return f"the ATN's weather forecast is {age / 3600:.0f} h old (at most {WEATHER_MAX_AGE_S / 3600:.0f} h)"
    if not any(p.start <= now < p.end for p in weather.points):
        return "the ATN's weather forecast does not cover now"
    return None
