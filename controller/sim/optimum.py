"""The perfect-foresight optimum of a simulated run: the planner's dynamic programme solved once over the whole
run (plus a day, so its end does not drain the stores), knowing the simulation's own outdoor temperature, free
gains and prices exactly. Its value tables are then followed by the same execution as the planner's (the same
tick, interlocks and comfort guard), in the same plant, so the two are scored by the same rules and differ
only in what they know: forecasts and a 36-hour horizon against the truth over the whole run.

Its objective is the electricity bill alone (no cost per compressor start, unlike the planner's): the cheapest
this model and execution can heat the house comfortably with perfect knowledge, whatever the starts.

It is not a lower bound of any policy's cost: the plan optimises the planner's reduced model, and the plant
differs from it (stratification, sub-step dynamics, the heat pump's soft start). It is the best this model and
this execution can do with perfect knowledge, which is the fair yardstick for the planner.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from controller.layout.model import Layout
from controller.planner import forecast as fc
from controller.planner.dp import Plan
from controller.planner.local import PlannerState
from controller.planner.model import STEP_S, Model
from controller.sim.plant import Plant, PlantParams
from controller.sim.pricing import PriceSource
from controller.sim.weather import WEATHER_PRESETS

SAMPLES_PER_STEP = 5


def perfect_plan(layout: Layout, *, weather: str, seed: int, start: float, days: float, prices: PriceSource) -> Plan:
    params = layout.control
    steps = round((days + 1) * 86400 / STEP_S)
    plant = Plant(PlantParams(weather=WEATHER_PRESETS[weather]), start_time=start, seed=seed)
    times = fc.step_times(start, steps)
    offsets = (np.arange(SAMPLES_PER_STEP) + 0.5) * STEP_S / SAMPLES_PER_STEP
    outdoor = np.array([np.mean([plant.weather.outdoor_c(float(t + o)) for o in offsets]) for t in times])
    gains = np.array(
        [
            np.mean([plant.internal_gain_w(float(t + o)) + plant.solar_gain_w(float(t + o)) for o in offsets])
            for t in times
        ]
    )
    price = np.array([prices.price_at(float(t) + STEP_S / 2) for t in times])
    shape = fc.build(
        start, params, layout.site.timezone, outdoor=outdoor, price_forecast=None, setpoint_c=None, steps=steps
    )
    truth = replace(shape, price=price, gains_w=gains)
    return Plan(Model(params.planner), truth, start_cost=0.0)


def perfect_state(
    layout: Layout, *, weather: str, seed: int, start: float, days: float, prices: PriceSource
) -> PlannerState:
    """A planner state that follows the perfect plan for the whole run and never re-plans."""
    plan = perfect_plan(layout, weather=weather, seed=seed, start=start, days=days, prices=prices)
    return PlannerState(plan=plan, planned_at=start, pinned=True)
