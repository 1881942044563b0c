"""Compressor starts and COP now, from the heat pump's electrical power.

heatpumpmonitor.org's definitions: the compressor runs while electrical power is at or above the starting power
(100 W by default: below it the unit's controller, pumps and crankcase heater idle); a start is the power rising
through it. A sample without a value neither starts nor stops anything: the next known value is compared with the
last known one.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.energy.integrate import Sample

STARTING_W = 100.0


def start_times(samples: Sequence[Sample], starting_w: float = STARTING_W) -> list[float]:
    """When the power rose through `starting_w`: the first known sample at or above it after one below."""
    times: list[float] = []
    previous: float | None = None
    for sample in samples:
        if sample.value is None:
            continue
        if previous is not None and previous < starting_w <= sample.value:
            times.append(sample.t)
        previous = sample.value
    return times


def count_starts(samples: Sequence[Sample], starting_w: float = STARTING_W) -> int:
    return len(start_times(samples, starting_w))


def cop_now(
    elec: Sequence[Sample], heat: Sequence[Sample], window_s: float, now: float, starting_w: float = STARTING_W
) -> float | None:
    """COP over the last `window_s` seconds: mean heat / mean electrical power over the known samples in the
    window. None (undefined, never infinite) when the compressor is off now or nothing is known."""
    recent_e = [s.value for s in elec if s.value is not None and now - window_s <= s.t <= now]
    recent_h = [s.value for s in heat if s.value is not None and now - window_s <= s.t <= now]
    latest = next((s.value for s in reversed(elec) if s.value is not None and s.t <= now), None)
    if not recent_e or not recent_h or latest is None or latest < starting_w:
        return None
    mean_e = sum(recent_e) / len(recent_e)
    return (sum(recent_h) / len(recent_h)) / mean_e if mean_e > 0 else None
