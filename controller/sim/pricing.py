"""What electricity costs in a simulation, and what the controller is told about it.

- `TimeOfUse`: the layout's own time-of-use windows and prices; no forecast is sent (the controller reads the
  same windows from its layout).
- `DayAhead`: seeded dynamic prices (`controller.atnsim.prices.DayAheadSeries`), sent as the ATN would send a
  day-ahead market: from 13:00 local the forecast reaches the end of tomorrow.
"""

from __future__ import annotations

from typing import Protocol
from zoneinfo import ZoneInfo

from controller.atnsim.prices import DayAheadSeries
from controller.control.params import ControlParams
from controller.control.tariff import Price, price_band
from controller.control.types import PriceForecast, PricePoint

HOUR_S = 3600.0


class PriceSource(Protocol):
    name: str

    def price_at(self, ts: float) -> float: ...

    def forecast(self, now: float) -> PriceForecast | None: ...


class TimeOfUse:
    name = "time-of-use"

    def __init__(self, params: ControlParams, timezone: str) -> None:
        self.tariff = params.tariff
        self.timezone = timezone
        self._by_band = {
            Price.CHEAP: self.tariff.cheap_price,
            Price.NORMAL: self.tariff.normal_price,
            Price.EXPENSIVE: self.tariff.expensive_price,
        }
        self._cache: dict[float, float] = {}

    def price_at(self, ts: float) -> float:
        minute = ts // 60  # windows are on whole minutes
        price = self._cache.get(minute)
        if price is None:
            if len(self._cache) > 10_000:
                self._cache.clear()
            price = self._cache[minute] = self._by_band[price_band(ts, self.tariff, self.timezone, None)[0]]
        return price

    def forecast(self, now: float) -> PriceForecast | None:
        return None


class DayAhead:
    name = "dynamic"

    def __init__(self, seed: int, timezone: str) -> None:
        self.series = DayAheadSeries(seed, ZoneInfo(timezone))
        self._published = -1.0
        self._forecast: PriceForecast | None = None
        self._hour = -1.0
        self._price = 0.0

    def price_at(self, ts: float) -> float:
        hour = ts // HOUR_S  # whole hours in every zone this bench uses
        if hour != self._hour:
            self._hour, self._price = hour, self.series.price_at(ts)
        return self._price

    def forecast(self, now: float) -> PriceForecast:
        published = self.series.published_at(now)
        if published != self._published or self._forecast is None:
            start = published - 13 * HOUR_S  # from the start of the publishing day
            end = self.series.known_until(now)
            points = tuple(PricePoint(start=s.start, end=s.end, price=s.price) for s in self.series.slots(start, end))
            self._forecast = PriceForecast(received_at=published, points=points)
            self._published = published
        return self._forecast
