"""Compressor starts and COP now, from the heat pump's electrical power.

heatpumpmonitor.org's definitions: the compressor runs while electrical power is at or above the starting power
(100 W by default: below it the unit's controller, pumps and crankcase heater idle); a start is the power rising
through it. A sample without a value neither starts nor stops anything: the next known value is compared with the
last known one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from controller.energy.integrate import Sample

STARTING_W = 100.0
HOUR_S = 3600.0


def rises_through(previous: float | None, value: float, starting_w: float) -> bool:
    """The one definition of a start: the power was known below `starting_w` and is now at or above it."""
    return previous is not None and previous < starting_w <= value


@dataclass(frozen=True, slots=True)
class RealRun:
    """The compressor as its electricity meter sees it (monotonic times): running or not, since when, its real
    starts in the last hour, and whether the latest power reading was usable (`metered`)."""

    running: bool
    since: float
    starts: tuple[float, ...] = ()
    metered: bool = True
    power_w: float | None = None


def follow_power(run: RealRun | None, power_w: float | None, starting_w: float, now: float) -> RealRun:
    """The run after a power reading at `now` (monotonic); None: no usable reading (the state is kept, marked
    unmetered, and no start or stop is invented)."""
    if power_w is None:
        return RealRun(False, now, (), False) if run is None else replace(run, metered=False, power_w=None)
    running = power_w >= starting_w
    if run is None:
        return RealRun(running, now, (), True, power_w)
    recent = tuple(t for t in run.starts if t > now - HOUR_S)
    if running and not run.running:  # a rise through the starting power, or a start hidden by a meter gap
        return RealRun(True, now, (*recent, now), True, power_w)
    if run.running and not running:
        return RealRun(False, now, recent, True, power_w)
    return RealRun(run.running, run.since, recent, True, power_w)


def start_times(samples: Sequence[Sample], starting_w: float = STARTING_W) -> list[float]:
    """When the power rose through `starting_w`: the first known sample at or above it after one below."""
    times: list[float] = []
    previous: float | None = None
    for sample in samples:
        if sample.value is None:
            continue
        if rises_through(previous, sample.value, starting_w):
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
