"""The buses a layout runs on, and the clock that goes with them: one choice for `hearth run` and `hearth probe`."""

from __future__ import annotations

from controller.buses.real import RealBuses
from controller.clock import SimClock, SystemClock
from controller.layout.model import Layout, Sim
from controller.sim.world import SimBuses


def open_buses(layout: Layout, sim: Sim | None = None) -> tuple[RealBuses | SimBuses, SystemClock | SimClock]:
    """The buses and the clock the controller runs on.

    Backend "sim" (`sim` overrides the layout's [sim]): the simulated house. At speed 1 with no fixed start the
    controller runs on the clock a Pi uses (`SystemClock`), so stepping the machine's wall clock (NTP, `date -s`,
    libfaketime) shows exactly what a Pi would do; the plant keeps its own steady clock, so its physics never
    jumps with the wall. Faster, or from a fixed start, everything runs on one `SimClock`.

    Otherwise the Pi's buses on the system clock, after `preflight` (which raises HardwareUnavailableError in one
    line)."""
    if layout.backend == "sim":
        sim = sim or layout.sim
        start = sim.start.timestamp() if sim and sim.start else None
        speed = sim.speed if sim else 1.0
        plant_clock = SimClock(start=start, speed=speed)
        if speed == 1.0 and start is None:
            return SimBuses(layout, plant_clock, sim), SystemClock()
        return SimBuses(layout, plant_clock, sim), plant_clock
    buses = RealBuses(layout)
    buses.preflight()
    return buses, SystemClock()
