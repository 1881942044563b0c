"""The perfect-foresight optimum of a simulated run: the planner's dynamic programme solved once over the whole
run (plus a day, so its end does not drain the stores), knowing the simulation's own outdoor temperature, free
gains and prices exactly. Its value tables are then followed by the same execution as the planner's (the same
tick, interlocks and comfort guard), in the same plant, so the two are scored by the same rules and differ
only in what they know: forecasts and a 36-hour horizon against the truth over the whole run.

Its objective is the electricity bill alone (no cost per compressor start, unlike the planner's): the cheapest
this model and execution can heat the house comfortably with perfect knowledge, whatever the starts. The
interlocks allow every one of its starts (it holds the compressor a whole 15-minute step at least: above the
minimum on and off times, at most 2 starts an hour against the limit of 3), so it is a schedule the real plant
would let happen; but in mild weather it gets there with many short, cool runs (~100 starts a week).

`budgeted_plan` is the same optimum held to a start budget (the bench gives it the present rules' starts, the
most the planner may make): the electricity-only optimum with a price per start, the smallest price on the
planner's own ladder (`controller.planner.starts`) whose plan, followed in the planner's model, keeps to the
budget (a Lagrangian relaxation: it finds the cheapest plan for the starts it makes, not necessarily for every
budget in between).

It is not a lower bound of any policy's cost: the plan optimises the planner's reduced model, and the plant
differs from it (stratification, sub-step dynamics, the heat pump's soft start). It is the best this model and
this execution can do with perfect knowledge, which is the fair yardstick for the planner.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from controller.layout.model import Layout
from controller.planner import forecast as fc
from controller.planner import starts
from controller.planner.dp import Plan
from controller.planner.local import PlannerState
from controller.planner.model import STEP_S, Model
from controller.sim.plant import Plant, PlantParams
from controller.sim.pricing import PriceSource
from controller.sim.weather import WEATHER_PRESETS

SAMPLES_PER_STEP = 5
INITIAL_TANK_C = 45.0  # the plant's initial state in `controller.sim.week.simulate`
INITIAL_HOUSE_C = 20.0


def perfect_plan(
    layout: Layout,
    *,
    weather: str,
    seed: int,
    start: float,
    days: float,
    prices: PriceSource,
    start_cost: float = 0.0,
) -> Plan:
    return Plan(Model(layout.control.planner), _truth(layout, weather, seed, start, days, prices), start_cost)


def budgeted_plan(
    layout: Layout, *, weather: str, seed: int, start: float, days: float, prices: PriceSource, max_starts: int
) -> Plan:
    """The perfect plan that keeps to `max_starts` compressor starts over `days` (followed in the model)."""
    truth = _truth(layout, weather, seed, start, days, prices)
    model = Model(layout.control.planner)
    plan, _ = starts.within_budget(
        lambda cost: Plan(model, truth, cost),
        lambda plan: model_run(plan, days)[0],
        budget=max_starts,
        floor=0.0,
        previous=None,
    )
    return plan


def model_run(plan: Plan, days: float) -> tuple[int, float]:
    """Compressor starts and the electricity bill of `plan` followed in its own model for `days` from the
    simulation's initial state."""
    steps = round(days * 86400 / STEP_S)
    rollout = plan.rollout(0, INITIAL_TANK_C, INITIAL_HOUSE_C, False, steps)
    made = starts.count(False, (d.action.heat_pump for d in rollout))
    return made, sum(d.price * d.electric_kwh for d in rollout)


def _truth(layout: Layout, weather: str, seed: int, start: float, days: float, prices: PriceSource) -> fc.Forecast:
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
    return replace(shape, price=price, gains_w=gains)


def perfect_state(
    layout: Layout,
    *,
    weather: str,
    seed: int,
    start: float,
    days: float,
    prices: PriceSource,
    max_starts: int | None = None,
) -> PlannerState:
    """A planner state that follows the perfect plan for the whole run and never re-plans (within `max_starts`
    compressor starts, if given)."""
    common = {"weather": weather, "seed": seed, "start": start, "days": days, "prices": prices}
    if max_starts is None:
        plan = perfect_plan(layout, **common)  # type: ignore[arg-type]
    else:
        plan = budgeted_plan(layout, max_starts=max_starts, **common)  # type: ignore[arg-type]
    return PlannerState(plan=plan, planned_at=start, pinned=True)
