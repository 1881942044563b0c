"""The outdoor air a plan assumes: the ATN's weather forecast while it is fresh, else persistence.

The ATN may send a weather forecast (`atn/weather`, docs/protocol.md): outdoor temperatures over time slots. The
planner uses it while it was issued at most `WEATHER_MAX_AGE_S` ago and covers the present; the forecast's
offset from the outdoor sensor now (a forecast is for a grid cell, the sensor is on this wall) fades over
`OFFSET_FADE_S`. Steps beyond the forecast's end, and every step when it is stale or absent, take the
persistence forecast from the outdoor sensor (`controller.planner.forecast.outdoor_forecast`). The note says
which, for the reasons and the TUI.
"""

from __future__ import annotations

import bisect
import math
from datetime import UTC, datetime

import numpy as np

from controller.control.types import WeatherForecast, WeatherPoint
from controller.planner.base import STEP_S, OutdoorHistory, freshness
from controller.planner.forecast import outdoor_forecast
from controller.planner.model import Array

OFFSET_FADE_S = 6 * 3600.0


def outdoor(
    times: Array, now: float, outdoor_c: float, history: OutdoorHistory, weather: WeatherForecast | None
) -> tuple[Array, str]:
    """The outdoor air at the middle of each step from `times`, and a note saying where it came from."""
    persistence = outdoor_forecast(times, now, outdoor_c, history)
    why_not = freshness(weather, now)
    if why_not is not None:
        return persistence, f"weather: persistence ({why_not})"
    assert weather is not None
    points = sorted(weather.points, key=lambda p: p.start)
    starts = [p.start for p in points]
    at_now = _at(points, starts, now)
    assert at_now is not None
    offset = outdoor_c - at_now
    out = persistence.copy()
    covered = 0
    for i, t in enumerate(times):
        mid = float(t) + STEP_S / 2
        value = _at(points, starts, mid)
        if value is not None:
            out[i] = value + offset * math.exp(-max(0.0, mid - now) / OFFSET_FADE_S)
            covered += 1
    issued = datetime.fromtimestamp(weather.issued_at, UTC).strftime("%H:%M UTC")
    note = f"weather: the ATN's forecast issued {issued} ({covered * STEP_S / 3600:g} h of the plan"
    note += ")" if covered == len(times) else ", persistence after)"
    return np.asarray(out, dtype=np.float64), note


def _at(points: list[WeatherPoint], starts: list[float], t: float) -> float | None:
    i = bisect.bisect_right(starts, t) - 1
    if i >= 0 and points[i].start <= t < points[i].end:
        return float(points[i].outdoor_c)
    return None
