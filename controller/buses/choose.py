"""The buses a layout runs on, and the clock that goes with them: one choice for `hearth run` and `hearth probe`."""

from __future__ import annotations

from controller.buses.real import RealBuses
from controller.clock import SimClock, SystemClock
from controller.layout.model import Layout, Sim
from controller.sim.world import SimBuses


def open_buses(layout: Layout, sim: Sim | None = None) -> tuple[RealBuses | SimBuses, SystemClock | SimClock]:
    """The simulated house on its own clock for backend "sim" (`sim` overrides the layout's [sim]); otherwise the
    Pi's buses on the system clock, after `preflight` (which raises HardwareUnavailableError in one line)."""
    if layout.backend == "sim":
        sim = sim or layout.sim
        start = sim.start.timestamp() if sim and sim.start else None
        clock = SimClock(start=start, speed=sim.speed if sim else 1.0)
        return SimBuses(layout, clock, sim), clock
    buses = RealBuses(layout)
    buses.preflight()
    return buses, SystemClock()
