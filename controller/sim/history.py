"""A site's measured history, simulated: days of plant and control recorded into a real store exactly as a live
controller records them (thinned readings by deadband and keep-alive, the aux element's switching events), so
the model fit can be tested against the plant's known parameters."""

from __future__ import annotations

from collections.abc import Mapping

from controller.control.interlocks import ActuatorState
from controller.control.types import Event
from controller.layout.model import Layout
from controller.readings import Snapshot
from controller.sim.week import WeekReport, simulate
from controller.store.database import Store
from controller.store.recorder import policies_for

FLUSH_EVERY_S = 600.0


def record_history(
    layout: Layout,
    store: Store,
    *,
    days: float,
    weather: str = "mild",
    start: float = 1_767_225_600.0,
    tick_s: float = 60.0,
    seed: int = 1,
) -> WeekReport:
    """Simulate `days` and record them into `store`; the report of the simulation."""
    policies = policies_for(layout.channels)
    aux_name = layout.control.actuators.aux
    aux_on = False
    flushed = start

    def observe(snapshot: Snapshot, actuators: Mapping[str, ActuatorState]) -> None:
        nonlocal aux_on, flushed
        store.record(snapshot, policies)
        now = snapshot.taken_at
        if actuators[aux_name].on != aux_on:
            aux_on = actuators[aux_name].on
            message = f"{aux_name} {'on' if aux_on else 'off'}"
            store.add_event(Event(ts=now, kind="actuator", message=message, data={"actuator": aux_name, "on": aux_on}))
        if now - flushed >= FLUSH_EVERY_S:
            store.flush()
            flushed = now

    report = simulate(layout, days=days, weather=weather, start=start, tick_s=tick_s, seed=seed, observer=observe)
    store.flush()
    return report
