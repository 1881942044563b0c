"""The store side of the model fit: the hourly history of the layout's channels, read from the store's thinned
rows and the aux element's switching events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from controller.energy.integrate import Sample
from controller.layout.model import Layout
from controller.store.database import Store

if TYPE_CHECKING:
    from controller.planner.fitting.hours import Hour

# Roles of the series an hour is built from.
HOUSE, OUTDOOR, TANK_TOP, TANK_MID, TANK_BOTTOM = "house", "outdoor", "tank-top", "tank-mid", "tank-bottom"
POWER, FLOW, LEAVING, ENTERING, AUX = "power", "flow", "leaving", "entering", "aux"
ROLES = (HOUSE, OUTDOOR, TANK_TOP, TANK_MID, TANK_BOTTOM, POWER, FLOW, LEAVING, ENTERING, AUX)

AUX_LOOK_BACK_S = 86_400.0  # an aux element switched on up to a day before the history still counts as on


def channels(layout: Layout) -> dict[str, str]:
    """The roles of the fit and the layout channels that fill them (only channels the layout has)."""
    sensors, energy = layout.control.sensors, layout.control.energy
    wanted = {
        HOUSE: sensors.house,
        OUTDOOR: sensors.outdoor,
        TANK_TOP: sensors.tank_top,
        TANK_MID: sensors.tank_mid,
        TANK_BOTTOM: sensors.tank_bottom,
        POWER: energy.heat_pump_power,
        FLOW: energy.flow,
        LEAVING: energy.leaving,
        ENTERING: energy.entering,
    }
    return {role: name for role, name in wanted.items() if name in layout.channels}


def missing(layout: Layout) -> list[str]:
    """The roles the layout has no channel for (the house fit needs all but one tank probe; the heat pump's its
    meter and flow sensor)."""
    have = channels(layout)
    needed = (HOUSE, OUTDOOR, POWER, FLOW, LEAVING, ENTERING)
    gone = [role for role in needed if role not in have]
    if not any(role in have for role in (TANK_TOP, TANK_MID, TANK_BOTTOM)):
        gone.append("tank")
    return gone


def max_age_s(layout: Layout) -> float:
    """How long a stored row holds: 1.5 x the longest keep-alive of the channels used."""
    keepalives = [layout.channels[name].keepalive_s for name in channels(layout).values()]
    return 1.5 * max(keepalives, default=300.0)


def series_from_store(store: Store, layout: Layout, since: float, until: float) -> dict[str, list[Sample]]:
    """The stored rows of every role from `since` to `until` (the aux element's from its switching events)."""
    gap = max_age_s(layout)
    series: dict[str, list[Sample]] = {
        role: [Sample(r.ts, r.value) for r in store.history(name, since - gap, until)]
        for role, name in channels(layout).items()
    }
    aux_name = layout.control.actuators.aux
    series[AUX] = [
        Sample(event.ts, 1.0 if event.data.get("on") else 0.0)
        for event in store.events_of("actuator", since - AUX_LOOK_BACK_S, until)
        if event.data.get("actuator") == aux_name
    ]
    return series


def hours_from_store(store: Store, layout: Layout, since: float, until: float) -> list[Hour]:
    from controller.planner.fitting.hours import hours_from_series

    series = series_from_store(store, layout, since, until)
    return hours_from_series(series, since, until, max_age_s(layout), layout.control.energy.starting_w)
