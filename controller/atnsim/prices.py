"""Price series for the reference ATN, and the lease each price band asks for.

- `DailyProfile`: the built-in tariff by site-local hour: 0.15 from 00 to 07 and 13 to 16, 0.45 from 17 to 21,
  0.30 otherwise (hours are [start, end), so 07:00 is already normal).
- `FileSeries`: slots from a JSON list of `{"start", "end", "price"}` objects or a CSV of `start,end,price`
  (optional header line, `#` comments). Times are epoch seconds or ISO-8601; an ISO time without an offset is
  site-local time (`--timezone`).
- `band_at`: cheap, normal or expensive, relative to the next 24 h: the lowest third of that window's price range
  is cheap, the highest third expensive (for the daily profile this is exactly its 0.15 / 0.30 / 0.45 steps), so a
  price file in any currency or unit works without thresholds.
"""

from __future__ import annotations

import bisect
import csv
import io
import itertools
import json
import math
import random
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from controller import protocol

HORIZON_S = 24 * 3600.0
CHEAP, NORMAL, EXPENSIVE = 0.15, 0.30, 0.45
DEFAULT_BANDS: tuple[tuple[int, int, float], ...] = ((0, 7, CHEAP), (13, 16, CHEAP), (17, 21, EXPENSIVE))
"""(first local hour, end local hour exclusive, price); every other hour costs NORMAL."""


class Band(StrEnum):
    CHEAP = "cheap"
    NORMAL = "normal"
    EXPENSIVE = "expensive"


LEASES: dict[Band, dict[str, bool]] = {
    Band.CHEAP: {"heat-pump": True, "store-pump": True},  # charge the tank while energy is cheap
    Band.EXPENSIVE: {"heat-pump": False},  # live off the tank
    Band.NORMAL: {},  # the controller's local policy decides
}


def lease_actuators(band: Band) -> dict[str, bool]:
    """What a lease in this band commands; actuators it does not name follow the controller's local policy."""
    return dict(LEASES[band])


class PriceSeries(Protocol):
    def price_at(self, ts: float) -> float | None:
        """The price at `ts` (UTC epoch seconds), or None where the series says nothing."""
        ...

    def slots(self, start: float, end: float) -> list[protocol.PriceSlot]:
        """The slots overlapping [start, end), clipped to it, in time order."""
        ...


def timezone(name: str) -> tzinfo:
    """A zone by IANA name; ValueError with a hint for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone '{name}'; use an IANA name such as UTC or Europe/London") from error


class DailyProfile:
    """The same prices every day, by site-local hour."""

    def __init__(self, tz: tzinfo | None = None, bands: Sequence[tuple[int, int, float]] = DEFAULT_BANDS) -> None:
        self.tz = tz or ZoneInfo("UTC")
        self.hourly = [NORMAL] * 24
        for first, end, price in bands:
            for hour in range(first, end):
                self.hourly[hour] = price

    def price_at(self, ts: float) -> float:
        return self.hourly[datetime.fromtimestamp(ts, self.tz).hour]

    def _hour_start(self, ts: float) -> float:
        return datetime.fromtimestamp(ts, self.tz).replace(minute=0, second=0, microsecond=0).timestamp()

    def slots(self, start: float, end: float) -> list[protocol.PriceSlot]:
        spans: list[tuple[float, float, float]] = []
        t = self._hour_start(start)
        while t < end:
            following = max(self._hour_start(t + 3601.0), t + 1.0)  # robust across DST changes
            price = self.price_at(t)
            if spans and spans[-1][2] == price and spans[-1][1] == t:
                spans[-1] = (spans[-1][0], following, price)
            else:
                spans.append((t, following, price))
            t = following
        return _clipped(spans, start, end)


class FileSeries:
    """Slots from a price file, sorted and non-overlapping; nothing is known outside them."""

    def __init__(self, spans: Sequence[tuple[float, float, float]]) -> None:
        self.spans = tuple(sorted(spans))
        self._starts = [start for start, _, _ in self.spans]

    def _index(self, ts: float) -> int:
        return bisect.bisect_right(self._starts, ts) - 1

    def price_at(self, ts: float) -> float | None:
        i = self._index(ts)
        if i >= 0 and self.spans[i][0] <= ts < self.spans[i][1]:
            return self.spans[i][2]
        return None

    def slots(self, start: float, end: float) -> list[protocol.PriceSlot]:
        first = max(0, self._index(start))
        chosen: list[tuple[float, float, float]] = []
        for span in self.spans[first:]:
            if span[0] >= end:
                break
            chosen.append(span)
        return _clipped(chosen, start, end)


def _clipped(spans: Iterable[tuple[float, float, float]], start: float, end: float) -> list[protocol.PriceSlot]:
    result = []
    for s, e, price in spans:
        s, e = max(s, start), min(e, end)
        if e > s:
            result.append(protocol.PriceSlot(start=s, end=e, price=price))
    return result


def band_at(series: PriceSeries, ts: float, horizon_s: float = HORIZON_S) -> Band:
    """Cheap, normal or expensive at `ts`, relative to the prices of the following `horizon_s`."""
    price = series.price_at(ts)
    window = [slot.price for slot in series.slots(ts, ts + horizon_s)]
    if price is None or not window:
        return Band.NORMAL
    low, high = min(window), max(window)
    third = (high - low) / 3
    if third <= 0:
        return Band.NORMAL
    if price <= low + third:
        return Band.CHEAP
    if price >= high - third:
        return Band.EXPENSIVE
    return Band.NORMAL


# ---- price files ----------------------------------------------------------------------------------------------


class PriceFileError(ValueError):
    """A price file that cannot be used; the message names the file and the line or item."""


def _time(value: object, tz: tzinfo) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"'{text}' is neither epoch seconds nor an ISO-8601 time") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz)
            return moment.timestamp()
    else:
        raise ValueError(f"{value!r} is not a time")
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a time")
    return number


def _price(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"price {value!r} is not a number")
    try:
        price = float(value)
    except ValueError:
        raise ValueError(f"price '{value}' is not a number") from None
    if not math.isfinite(price):
        raise ValueError(f"price {value!r} is not finite")
    return price


def _span(start: object, end: object, price: object, tz: tzinfo) -> tuple[float, float, float]:
    s, e = _time(start, tz), _time(end, tz)
    if e <= s:
        raise ValueError("the slot ends before it starts")
    return s, e, _price(price)


def parse_prices(text: str, *, name: str = "prices", tz: tzinfo | None = None, fmt: str | None = None) -> FileSeries:
    """Parse a price file's text; `fmt` is "json" or "csv" (guessed from the first character when None)."""
    zone = tz or ZoneInfo("UTC")
    kind = fmt or ("json" if text.lstrip().startswith(("[", "{")) else "csv")
    located: list[tuple[str, tuple[float, float, float]]] = []
    if kind == "json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            raise PriceFileError(f"{name}: not JSON: {error}") from error
        if not isinstance(items, list):
            raise PriceFileError(f"{name}: expected a JSON list of {{start, end, price}} objects")
        for i, item in enumerate(items):
            where = f"{name}: item {i}"
            if not isinstance(item, dict) or set(item) != {"start", "end", "price"}:
                raise PriceFileError(f"{where}: expected an object with exactly start, end and price")
            try:
                located.append((where, _span(item["start"], item["end"], item["price"], zone)))
            except ValueError as error:
                raise PriceFileError(f"{where}: {error}") from None
    else:
        for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            cells = [cell.strip() for cell in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            where = f"{name}:{line_no}"
            if not located and [c.lower() for c in cells] == ["start", "end", "price"]:
                continue  # header
            if len(cells) != 3:
                raise PriceFileError(f"{where}: expected start,end,price, got {len(cells)} fields")
            try:
                located.append((where, _span(cells[0], cells[1], cells[2], zone)))
            except ValueError as error:
                raise PriceFileError(f"{where}: {error}") from None
    if not located:
        raise PriceFileError(f"{name}: no price slots")
    located.sort(key=lambda item: item[1][0])
    for (_, before), (where, after) in itertools.pairwise(located):
        if after[0] < before[1]:
            raise PriceFileError(f"{where}: this slot overlaps the one before it")
    return FileSeries(tuple(span for _, span in located))


def load_prices(path: str | Path, tz: tzinfo | None = None) -> FileSeries:
    """Load a JSON or CSV price file (by extension, else by content); PriceFileError says what is wrong."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PriceFileError(f"{file}: cannot read it: {error}") from error
    suffix = file.suffix.lower().lstrip(".")
    return parse_prices(text, name=str(file), tz=tz, fmt=suffix if suffix in ("json", "csv") else None)


# ---- seeded dynamic day-ahead prices --------------------------------------------------------------------------

# Hourly shape of a winter day-ahead market (site-local hours): low at night, a morning peak, a midday solar
# dip, the evening peak highest. Added to a daily level; every day and every hour gets its own noise.
DYNAMIC_SHAPE: tuple[float, ...] = (
    -0.06, -0.08, -0.09, -0.09, -0.08, -0.05, 0.02, 0.10, 0.12, 0.06, 0.00, -0.06,
    -0.10, -0.12, -0.10, -0.04, 0.06, 0.16, 0.20, 0.18, 0.10, 0.04, -0.01, -0.04,
)  # fmt: skip
DYNAMIC_LEVEL = 0.28
DYNAMIC_DAY_SIGMA = 0.05
DYNAMIC_HOUR_SIGMA = 0.025
DYNAMIC_FLOOR = 0.02
PUBLISHED_AT_LOCAL_H = 13  # day-ahead prices for tomorrow are known from 13:00 today


class DayAheadSeries:
    """Seeded hourly day-ahead prices with morning and evening peaks and a midday solar dip.

    `price_at(ts)` depends only on the seed and the local hour holding `ts`; `known_until(now)` is the end of
    what a day-ahead market has published by `now` (the end of tomorrow from 13:00 local, else of today).
    """

    def __init__(self, seed: int, tz: tzinfo | None = None) -> None:
        self.seed = seed
        self.tz = tz or ZoneInfo("UTC")

    def _day(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.tz).replace(hour=0, minute=0, second=0, microsecond=0)

    def price_at(self, ts: float) -> float:
        local = datetime.fromtimestamp(ts, self.tz)
        day = local.date().isoformat()
        level = DYNAMIC_LEVEL + random.Random(f"hearth-prices/{self.seed}/{day}").gauss(0.0, DYNAMIC_DAY_SIGMA)
        noise = random.Random(f"hearth-prices/{self.seed}/{day}/{local.hour}").gauss(0.0, DYNAMIC_HOUR_SIGMA)
        return round(max(DYNAMIC_FLOOR, level + DYNAMIC_SHAPE[local.hour] + noise), 4)

    def slots(self, start: float, end: float) -> list[protocol.PriceSlot]:
        spans: list[tuple[float, float, float]] = []
        t = datetime.fromtimestamp(start, self.tz).replace(minute=0, second=0, microsecond=0).timestamp()
        while t < end:
            following = t + 3600.0
            spans.append((t, following, self.price_at(t)))
            t = following
        return _clipped(spans, start, end)

    def published_at(self, now: float) -> float:
        """When the prices known at `now` were published (13:00 local today, or yesterday before that)."""
        today = self._day(now)
        release = today.replace(hour=PUBLISHED_AT_LOCAL_H).timestamp()
        return release if now >= release else (today - timedelta(days=1)).replace(hour=PUBLISHED_AT_LOCAL_H).timestamp()

    def known_until(self, now: float) -> float:
        """The end of the prices published by `now`: midnight after tomorrow's (local) from 13:00, else tonight's."""
        published = datetime.fromtimestamp(self.published_at(now), self.tz)
        return (published.replace(hour=0) + timedelta(days=2)).timestamp()
