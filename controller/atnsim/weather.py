"""The reference ATN's weather forecast: hourly outdoor temperatures for the next 48 h from a simulated weather
(the same seeded `controller.sim.weather.Weather` the simulated plant feels, so a demo's forecast is right; a
real ATN would take a weather service's), sent on `atn/weather` at every (re)connect and then every hour."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

from controller import protocol
from controller.control.types import WeatherForecast, WeatherPoint
from controller.sim.weather import WEATHER_PRESETS, Weather

SLOT_S = 3600.0
HORIZON_S = 48 * 3600.0
SAMPLES_PER_SLOT = 4
WEATHER_EVERY_S = 3600.0


@dataclass(frozen=True)
class WeatherFeed:
    preset: str
    seed: int

    def __post_init__(self) -> None:
        if self.preset not in WEATHER_PRESETS:
            raise ValueError(f"unknown weather '{self.preset}'; known: {', '.join(WEATHER_PRESETS)}")

    def message(self, now: float, name: str) -> protocol.Weather:
        """The forecast issued at `now`: hourly means from the hour holding `now`, 48 h ahead."""
        weather = Weather(WEATHER_PRESETS[self.preset], seed=self.seed)
        points = [protocol.WeatherSlot(start=a, end=b, outdoor_c=c) for a, b, c in hourly_means(weather, now)]
        return protocol.Weather(id=f"{name[:20]}-wx-{uuid.uuid4().hex[:16]}", issued_at=now, points=points)


def hourly_means(weather: Weather, now: float) -> list[tuple[float, float, float]]:
    """(start, end, mean °C) of each hour from the one holding `now`, `HORIZON_S` ahead."""
    first = math.floor(now / SLOT_S) * SLOT_S
    out = []
    for i in range(round(HORIZON_S / SLOT_S)):
        start = first + i * SLOT_S
        samples = [weather.outdoor_c(start + (k + 0.5) * SLOT_S / SAMPLES_PER_SLOT) for k in range(SAMPLES_PER_SLOT)]
        out.append((start, start + SLOT_S, round(sum(samples) / len(samples), 2)))
    return out


def perfect_forecast(weather: Weather, now: float) -> WeatherForecast:
    """What the controller would hold after receiving the feed's forecast at `now` (the bench's weather)."""
    points = tuple(WeatherPoint(start=a, end=b, outdoor_c=c) for a, b, c in hourly_means(weather, now))
    return WeatherForecast(received_at=now, issued_at=now, points=points)
