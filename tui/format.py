"""Pure formatting helpers: durations, ages, clock times, temperatures, colours and sparklines.

Everything here is a function of its arguments (no clock reads), so screens stay deterministic under test.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime, tzinfo

from controller.numbers import fixed

UNIT_LABELS = {"degC": "°C", "V": "V", "W": "W", "kWh": "kWh", "bar": "bar", "%": "%", "m3": "m³", "l/min": "l/min"}
SPARK_LEVELS = "▁▂▃▄▅▆▇█"
MIN_SPANS = {"degC": 2.0, "V": 0.05, "W": 200.0, "kWh": 0.1, "bar": 0.2, "%": 5.0}
"""A sparkline's height covers at least this much of its unit, so a sensor's noise stays a flat line."""
MODE_STYLES = {"ATN": "mode-atn", "LOCAL": "mode-local", "OVERRIDE": "mode-override", "SAFE": "mode-safe"}
QUALITY_STYLES = {"ok": "green", "stale": "yellow", "fault": "bold red", "out_of_range": "magenta"}
SOURCE_STYLES = {"interlock": "bold yellow", "override": "bold magenta", "atn": "cyan", "local": "green", "safe": "red"}

# (°C, RGB): cold water is blue, a charged tank is orange-red.
_TEMPERATURE_STOPS: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (10.0, (40, 80, 200)),
    (25.0, (50, 150, 200)),
    (35.0, (200, 190, 70)),
    (45.0, (230, 140, 50)),
    (60.0, (215, 60, 50)),
)


def unit_label(unit: str) -> str:
    return UNIT_LABELS.get(unit, unit)


def value_text(value: float | None, unit: str, digits: int = 1) -> str:
    """`52.1 °C`, or `—` for a reading without a value (a fault)."""
    if value is None:
        return "—"
    return f"{fixed(value, digits)} {unit_label(unit)}".rstrip()


def power_text(watts: float | None) -> str:
    """`850 W` below a kilowatt, `2.53 kW` above; `—` without a value."""
    if watts is None:
        return "—"
    return f"{fixed(watts / 1000, 2)} kW" if abs(watts) >= 1000 else f"{fixed(watts, 0)} W"


def duration_text(seconds: float) -> str:
    """A countdown that visibly moves, short enough for a narrow panel: `45s`, `18m 03s`, `2h 05m`."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes}m {secs:02d}s"
    hours, rest = divmod(whole, 3600)
    return f"{hours}h {rest // 60:02d}m"


def span_text(seconds: float) -> str:
    """A chosen duration, rounded the way people say it: `10 min`, `1 h`, `1 h 30 min`, `45 s`."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes = round(whole / 60)
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def age_text(seconds: float | None) -> str:
    """How long ago: `0 s`, `42 s`, `3 min`, `5 h`, `2 d`; `never` when there was nothing."""
    if seconds is None:
        return "never"
    whole = max(0, int(seconds))
    if whole < 120:
        return f"{whole} s"
    if whole < 7200:
        return f"{whole // 60} min"
    if whole < 172800:
        return f"{whole // 3600} h"
    return f"{whole // 86400} d"


def clock_text(ts: float, tz: tzinfo | None, now: float | None = None) -> str:
    """`10:42:05`, with the date when `ts` is not within a day of `now`."""
    moment = datetime.fromtimestamp(ts, tz)
    if now is not None and abs(ts - now) >= 86400:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.strftime("%H:%M:%S")


def override_value_text(target: str, value: bool | float) -> str:
    """`ON`/`OFF` for a relay, `22.0 °C` for a setpoint."""
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if target.startswith("setpoint:"):
        return f"{value:.1f} °C"
    return f"{value:g}"


def temperature_rgb(celsius: float) -> tuple[int, int, int]:
    """A colour for a water temperature, interpolated between fixed stops."""
    stops = _TEMPERATURE_STOPS
    if celsius <= stops[0][0]:
        return stops[0][1]
    for (low_t, low_c), (high_t, high_c) in itertools.pairwise(stops):
        if celsius <= high_t:
            f = (celsius - low_t) / (high_t - low_t)
            r, g, b = (round(lo + (hi - lo) * f) for lo, hi in zip(low_c, high_c, strict=True))
            return r, g, b
    return stops[-1][1]


def temperature_hex(celsius: float) -> str:
    r, g, b = temperature_rgb(celsius)
    return f"#{r:02x}{g:02x}{b:02x}"


def sparkline(values: Iterable[float | None], width: int, min_span: float = 0.0) -> str:
    """The last `width` values as unicode blocks scaled to their own range, but never to less than `min_span`
    (centred on the values: ±0.01 °C of noise must not fill the whole height); a gap for a missing value."""
    points = list(values)[-width:] if width > 0 else []
    present = [v for v in points if v is not None]
    if not present:
        return " " * len(points)
    low, high = min(present), max(present)
    top = len(SPARK_LEVELS) - 1
    if high - low < 1e-9:  # flat: the middle level
        return "".join(" " if v is None else SPARK_LEVELS[top // 2] for v in points)
    if high - low < min_span:
        middle = (high + low) / 2
        low, high = middle - min_span / 2, middle + min_span / 2
    span = high - low
    chars = []
    for v in points:
        if v is None:
            chars.append(" ")
        else:
            chars.append(SPARK_LEVELS[round((v - low) / span * top)])
    return "".join(chars)
