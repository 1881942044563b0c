"""Is energy cheap, normal or expensive right now? From the layout's time-of-use windows in the site's local
time, or, when the ATN has sent one in the last 48 h, from its price forecast."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from controller.control.params import Tariff, in_windows
from controller.control.types import PriceForecast

FORECAST_MAX_AGE_S = 48 * 3600
FORECAST_HORIZON_S = 24 * 3600


class Price(StrEnum):
    CHEAP = "cheap"
    NORMAL = "normal"
    EXPENSIVE = "expensive"


def local_time(now: float, timezone: str) -> datetime:
    return datetime.fromtimestamp(now, ZoneInfo(timezone))


def price_band(now: float, tariff: Tariff, timezone: str, forecast: PriceForecast | None) -> tuple[Price, str]:
    """The price band at `now` and a sentence saying where it comes from."""
    if forecast is not None and now - forecast.received_at <= FORECAST_MAX_AGE_S:
        current = next((p for p in forecast.points if p.start <= now < p.end), None)
        horizon = sorted(p.price for p in forecast.points if now - 3600 <= p.start < now + FORECAST_HORIZON_S)
        if current is not None and len(horizon) >= 3:
            third = len(horizon) // 3
            low, high = horizon[third - 1], horizon[-third]
            if current.price <= low:
                return Price.CHEAP, f"forecast price {current.price:g} is in the cheapest third"
            if current.price >= high:
                return Price.EXPENSIVE, f"forecast price {current.price:g} is in the dearest third"
            return Price.NORMAL, f"forecast price {current.price:g}"
    local = local_time(now, timezone).time()
    if in_windows(tariff.expensive, local):
        return Price.EXPENSIVE, "expensive time-of-use window"
    if in_windows(tariff.cheap, local):
        return Price.CHEAP, "cheap time-of-use window"
    return Price.NORMAL, "normal tariff"
