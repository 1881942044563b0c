"""Compressor starts and COP now, from the heat pump's electrical power.

heatpumpmonitor.org's definitions: the compressor runs while electrical power is at or above the starting power
(100 W by default: below it the unit's controller, pumps and crankcase heater idle); a start is the power rising
through it. A sample without a value neither starts nor stops anything: the next known value is compared with the
last known one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from controller.energy.integrate import Sample, integrate, ordered

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
    """COP over the last `window_s` seconds (from the compressor's start, if it started within them): the heat over
    the electricity of the same stretch of time, each the time-weighted mean of its samples (trapezoids; a sample
    without a value is a gap), so a meter read every 30 s and a flow probe read every second weigh the same minutes
    alike. None (undefined, never infinite) when the compressor is off now or nothing is known."""
    latest = next((s.value for s in reversed(elec) if s.value is not None and s.t <= now), None)
    if latest is None or latest < starting_w:
        return None
    # Since the compressor's last start within the window, if there was one: the meter is read less often than the
    # water probes, so before its first reading above the starting power the heat is already flowing and the
    # electricity still reads 0 (at --speed a poll is minutes of simulated time).
    start = max([now - window_s, *start_times([s for s in elec if now - window_s <= s.t <= now], starting_w)])
    mean_e, mean_h = _window_mean(elec, start, now), _window_mean(heat, start, now)
    if mean_e is None or mean_h is None or mean_e <= 0:
        return None
    return mean_h / mean_e


def _window_mean(samples: Sequence[Sample], start: float, end: float) -> float | None:
    """The time-weighted mean of the samples within [start, end]; a lone sample is its own mean."""
    inside = ordered(s for s in samples if start <= s.t <= end)
    integral = integrate(inside, max_gap_s=end - start)
    if integral.covered_s > 0:
        return integral.area / integral.covered_s
    known = [s.value for s in inside if s.value is not None]
    return known[-1] if known else None
