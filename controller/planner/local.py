"""The planner as the local policy: re-plan when something the plan assumed has changed, decide each
15-minute step from the plan's value table at the measured state, and execute it with a comfort guard.

Re-planning (a full backward pass, ~0.2 s here) happens when there is no plan, when the plan is older than
`replan_after_h` or has less than half its horizon left, when the prices it assumed differ from a newly received price
forecast, when the comfort setpoint changes, or when the outdoor air is `outdoor_error_k` off its forecast.
In between, every new step reads the same value table at the measured state: a dynamic programme's solution is
a feedback law, and re-solving with unchanged inputs would give the same table.

Within a step: the heat pump runs (or not) for the whole step, as decided (15 minutes at least, so the plan
cannot short-cycle it); the emitters run while the house is below the temperature the plan expects at the
step's end (never below the comfort floor); the aux element runs where the plan uses it. The comfort guard
acts whatever the plan says: below the comfort floor the emitters run, the heat pump heats the house directly
while the tank's top is below the supply the heating curve asks for (`[control.heating_curve]`), and the aux
element helps if the house is still falling short with the heat pump running. (Within a plan the dynamic
programme needs no curve: its model of the emitters is the physics the curve approximates, and it chooses the
tank temperature by COP and the demand it forecasts over the next 24-48 h.)

Blind or degraded (no house, tank or outdoor temperature), or with the planner off in the layout, the present
rules (`controller.control.policy`) decide, and the reason says why.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from controller.control import policy
from controller.control.params import ControlParams
from controller.control.tariff import FORECAST_MAX_AGE_S
from controller.control.types import Command, PriceForecast, Source, WeatherForecast
from controller.planner.base import STEP_S, OutdoorHistory, comfort_floor_c, freshness

if TYPE_CHECKING:  # numpy comes with these: imported where a plan is solved, off the control tick's start-up
    from controller.planner.dp import Decision, Plan
    from controller.planner.forecast import Forecast

DAY_S = 86400.0
PREVIEW_STEPS = 96  # the next 24 h at least, for reasons and the TUI (the whole plan is rolled out)
DIST_HYSTERESIS_K = 0.15
GUARD_K = 0.2  # the emitters keep the house this far above the comfort floor
AUX_GUARD_K = 0.3  # the aux element helps when the house is this far below the floor with the heat pump on
WEATHER_REPLAN_K = 1.0  # a newer ATN weather forecast re-plans when it is this far off the plan's at some step
TANK_USEFUL_K = 1.0  # emitters only run when the tank top is this much warmer than the house


@dataclass(frozen=True, slots=True)
class PlanPoint:
    """One step of the plan as the model expects it to go: for the TUI and the reasons."""

    start: float
    heat_pump: bool
    aux: bool
    price: float
    tank_c: float
    house_c: float


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """Everything a re-plan needs, taken at `now`: solved inline, or off the control path by the caller."""

    now: float
    outdoor_c: float
    history: OutdoorHistory
    price_forecast: PriceForecast | None
    setpoint_c: float | None
    tank_c: float
    house_c: float
    running: bool
    weather: WeatherForecast | None = None  # the ATN's weather forecast, if any (used while fresh)
    start_cost: float | None = None  # the price per start the last plan settled on (`controller.planner.starts`)


@dataclass(frozen=True)
class Solved:
    request: PlanRequest
    plan: Plan
    preview: tuple[PlanPoint, ...]
    note: str
    weather_note: str = ""
    start_cost: float = 0.0
    passes: int = 1  # backward passes the start-budget search took
    pid: int = 0  # the process that solved it (fleet-sim solves in a planning process of its own)


@dataclass(frozen=True, slots=True)
class PlannerState:
    plan: Plan | None = None
    planned_at: float = -math.inf
    pinned: bool = False  # a plan given from outside (the bench's perfect-foresight optimum): never re-solved
    forecast_seen: float | None = None  # received_at of the last price forecast compared with the plan
    setpoint_c: float | None = None
    slot: int = -1
    decision: Decision | None = None
    preview: tuple[PlanPoint, ...] = ()
    peak_note: str = ""
    history: OutdoorHistory = field(default_factory=OutdoorHistory)
    replans: int = 0
    wanted: PlanRequest | None = None  # a re-plan asked of the caller (deferred planning), until adopted
    weather_used: float | None = None  # received_at of the ATN weather forecast the plan used (None: persistence)
    weather_note: str = ""  # where the plan's outdoor air came from
    start_cost: float | None = None  # the price per start of the plan in force (kept within the start budget)
    prices_due: float | None = None  # monotonic: until then the first plan waits for the ATN's prices (None: no wait)


def awaits_prices(state: PlannerState, forecast: PriceForecast | None, monotonic: float) -> bool:
    """Whether the first plan still waits for the ATN's price forecast (`first_plan_wait_s` from the start, with
    an ATN link): planning without the prices and again when they come would plan twice at every start."""
    return state.plan is None and forecast is None and state.prices_due is not None and monotonic < state.prices_due


def degraded(inputs: policy.PolicyInputs, params: ControlParams) -> str | None:
    """Why the planner cannot plan now, or None."""
    if not params.planner.enabled:
        return "planner off in the layout"
    if inputs.house_c is None:
        return "no house temperature"
    if inputs.tank_top_c is None and inputs.tank_mid_c is None and inputs.tank_bottom_c is None:
        return "no tank temperature"
    if inputs.outdoor_c is None:
        return "no outdoor temperature"
    return None


def tank_mean(inputs: policy.PolicyInputs) -> float:
    known = [t for t in (inputs.tank_top_c, inputs.tank_mid_c, inputs.tank_bottom_c) if t is not None]
    return sum(known) / len(known)


def forecast_for(
    now: float,
    params: ControlParams,
    timezone: str,
    outdoor_c: float,
    history: OutdoorHistory,
    price_forecast: PriceForecast | None,
    setpoint_c: float | None,
    weather: WeatherForecast | None = None,
) -> tuple[Forecast, str]:
    """What a plan from the slot holding `now` assumes over the layout's horizon, and where its outdoor air
    came from (the ATN's weather forecast or persistence)."""
    from controller.planner import forecast as fc
    from controller.planner import weather as outdoor_air

    steps = round(params.planner.horizon_h * 3600 / STEP_S)
    outdoor, note = outdoor_air.outdoor(fc.step_times(now, steps), now, outdoor_c, history, weather)
    forecast = fc.build(
        now, params, timezone, outdoor=outdoor, price_forecast=price_forecast, setpoint_c=setpoint_c, steps=steps
    )
    return forecast, note


def solve(
    now: float,
    params: ControlParams,
    timezone: str,
    outdoor_c: float,
    history: OutdoorHistory,
    price_forecast: PriceForecast | None,
    setpoint_c: float | None,
    weather: WeatherForecast | None = None,
) -> Plan:
    """A fresh plan from the slot holding `now` over the layout's horizon, at the layout's price per start."""
    from controller.planner.dp import Plan
    from controller.planner.model import Model

    forecast, _ = forecast_for(now, params, timezone, outdoor_c, history, price_forecast, setpoint_c, weather)
    return Plan(Model(params.planner), forecast, params.planner.start_cost)


def solve_request(request: PlanRequest, params: ControlParams, timezone: str) -> Solved:
    """Solve a re-plan within the start budget and roll it out from the state it was asked at (pure: safe in a
    worker thread)."""
    from controller.planner import starts
    from controller.planner.dp import Plan
    from controller.planner.model import Model

    r = request
    forecast, weather_note = forecast_for(
        r.now, params, timezone, r.outdoor_c, r.history, r.price_forecast, r.setpoint_c, r.weather
    )
    model = Model(params.planner)
    k = math.floor((r.now - forecast.t0) / STEP_S)

    def day_starts(plan: Plan) -> int:
        return starts.count(
            r.running, (d.action.heat_pump for d in plan.rollout(k, r.tank_c, r.house_c, r.running, 96))
        )

    passes = 0

    def plan_at(cost: float) -> Plan:
        nonlocal passes
        passes += 1
        return Plan(model, forecast, cost)

    plan, price = starts.within_budget(
        plan_at,
        day_starts,
        budget=params.planner.max_starts_per_day,
        floor=params.planner.start_cost,
        previous=r.start_cost,
    )
    points = preview(plan, k, r.tank_c, r.house_c, r.running)
    return Solved(
        r, plan, points, peak_note(points[:PREVIEW_STEPS], timezone), weather_note, price, passes, os.getpid()
    )


def adopt(state: PlannerState, solved: Solved) -> PlannerState:
    """The state with a solved plan in force (its decisions are re-read at the next tick)."""
    return replace(
        state,
        plan=solved.plan,
        planned_at=solved.request.now,
        setpoint_c=solved.request.setpoint_c,
        decision=None,
        preview=solved.preview,
        peak_note=solved.note,
        replans=state.replans + 1,
        wanted=None,
        weather_used=fresh_weather(solved.request.weather, solved.request.now),
        # The prices the plan assumed: a forecast that came while it was solved is compared with it at the next tick.
        forecast_seen=solved.request.price_forecast.received_at if solved.request.price_forecast else None,
        weather_note=solved.weather_note,
        start_cost=solved.start_cost,
    )


def fresh_weather(weather: WeatherForecast | None, now: float) -> float | None:
    """The received_at of the ATN's weather forecast if the planner may use it now, else None."""
    return weather.received_at if weather is not None and freshness(weather, now) is None else None


def preview(plan: Plan, k: int, tank_c: float, house_c: float, running: bool) -> tuple[PlanPoint, ...]:
    return tuple(
        PlanPoint(plan.t0 + (k + i) * STEP_S, d.action.heat_pump, d.action.aux, d.price, d.tank_end_c, d.house_end_c)
        for i, d in enumerate(plan.rollout(k, tank_c, house_c, running, plan.forecast.steps))
    )


def peak_note(points: tuple[PlanPoint, ...], timezone: str) -> str:
    """How the plan meets the next price peak: "the 17:00-21:00 peak is covered" (or how long it buys in it)."""
    if not points:
        return ""
    prices = [p.price for p in points]
    top, bottom = max(prices), min(prices)
    if top <= bottom * 1.05:
        return "flat prices"
    threshold = top - 0.2 * (top - bottom)
    first = next(i for i, p in enumerate(prices) if p >= threshold)
    last = first
    while last + 1 < len(prices) and prices[last + 1] >= threshold:
        last += 1
    zone = ZoneInfo(timezone)
    start = datetime.fromtimestamp(points[first].start, zone).strftime("%H:%M")
    end = datetime.fromtimestamp(points[last].start + STEP_S, zone).strftime("%H:%M")
    running = sum(1 for p in points[first : last + 1] if p.heat_pump)
    if running == 0:
        return f"the {start}–{end} peak is covered"
    return f"the heat pump runs {running * STEP_S / 3600:g} h in the {start}–{end} peak"


def _needs_plan(
    state: PlannerState,
    inputs: policy.PolicyInputs,
    params: ControlParams,
    now: float,
    prices_changed: bool,
    weather_changed: bool = False,
) -> bool:
    plan = state.plan
    if plan is None:
        return True
    if state.pinned:
        return False
    k = plan.step_at(now)
    planner = params.planner
    if (
        k is None
        or plan.end - now < planner.horizon_h * 1800
        or now - state.planned_at >= planner.replan_after_h * 3600
    ):
        return True
    if prices_changed or inputs.setpoint_c != state.setpoint_c:
        return True
    if weather_changed:
        return True
    assert inputs.outdoor_c is not None
    return abs(inputs.outdoor_c - float(plan.forecast.outdoor_c[k])) > planner.outdoor_error_k


def _weather_changed(
    state: PlannerState, weather: WeatherForecast | None, outdoor_c: float, now: float
) -> tuple[bool, PlannerState]:
    """Whether the outdoor air the plan assumed no longer holds: the ATN forecast it used went stale, or a newer
    one says something else (by more than `WEATHER_REPLAN_K` at some step). A newer forecast that agrees is
    noted without a re-plan (forecasts arrive hourly; a re-plan costs ~1 s of a Pi's CPU)."""
    used = fresh_weather(weather, now)
    plan = state.plan
    if used == state.weather_used or plan is None:
        return False, state
    if used is None:
        return True, state  # the forecast the plan used went stale: back to persistence
    import numpy as np

    from controller.planner import forecast as fc
    from controller.planner import weather as outdoor_air

    k = plan.step_at(now) or 0
    times = fc.step_times(plan.t0, plan.forecast.steps)[k:]
    fresh, note = outdoor_air.outdoor(times, now, outdoor_c, state.history, weather)
    if float(np.max(np.abs(fresh - plan.forecast.outdoor_c[k:]))) > WEATHER_REPLAN_K:
        return True, state
    agrees = note.split(" (")[0] + f" agrees with the plan's within {WEATHER_REPLAN_K:g} K"
    return False, replace(state, weather_used=used, weather_note=agrees)


def _prices_changed(
    state: PlannerState, forecast: PriceForecast | None, params: ControlParams, timezone: str, now: float
) -> bool:
    """Whether a newly received price forecast says something else than the plan assumed."""
    if forecast is None or state.plan is None or forecast.received_at == state.forecast_seen:
        return False
    if now - forecast.received_at > FORECAST_MAX_AGE_S:
        return False
    import numpy as np

    from controller.planner import forecast as fc

    plan = state.plan
    times = fc.step_times(plan.t0, plan.forecast.steps)
    fresh = fc.prices(times, now, params, ZoneInfo(timezone), forecast)
    k = plan.step_at(now) or 0
    return not np.allclose(fresh[k:], plan.forecast.price[k:], rtol=1e-6, atol=1e-9)


def decide(
    state: PlannerState,
    rules_state: policy.PolicyState,
    inputs: policy.PolicyInputs,
    params: ControlParams,
    now: float,
    timezone: str,
    price_forecast: PriceForecast | None,
    inline: bool = True,
    weather: WeatherForecast | None = None,
    await_prices: bool = False,
) -> tuple[PlannerState, policy.PolicyDecision]:
    """The local policy's decision: the plan's, or the present rules' when the planner cannot plan.

    `inline=False` never solves here: a needed re-plan is left in `state.wanted` for the caller to solve off the
    control path (`solve_request`, then `adopt`); meanwhile the current plan goes on, or the present rules decide
    while there is none yet. `await_prices` (`awaits_prices`): no first plan is asked yet; the present rules
    decide, as before any first plan."""
    slot = math.floor(now / STEP_S)
    if slot != state.slot:  # one outdoor sample per step is plenty for hourly means, and cheap
        state = replace(state, history=state.history.add(now, inputs.outdoor_c))
    why_not = degraded(inputs, params)
    if why_not is None and state.pinned and state.plan is not None and state.plan.step_at(now) is None:
        why_not = "the plan has ended"
    if why_not is not None:
        rules = policy.decide(rules_state, inputs, params)
        if not params.planner.enabled:
            return state, rules
        summary = f"present rules ({why_not}): {rules.summary}"
        return replace(state, decision=None, slot=slot), replace(rules, summary=summary)
    assert inputs.house_c is not None and inputs.outdoor_c is not None
    tank = tank_mean(inputs)
    house = inputs.house_c
    running = state.decision.action.heat_pump if state.decision is not None else rules_state.charging
    changed = _prices_changed(state, price_forecast, params, timezone, now)
    weather_changed, state = _weather_changed(state, weather, inputs.outdoor_c, now)
    if price_forecast is not None and price_forecast.received_at != state.forecast_seen:
        state = replace(state, forecast_seen=price_forecast.received_at)
    waiting = await_prices and state.plan is None
    if not waiting and _needs_plan(state, inputs, params, now, changed, weather_changed):
        request = PlanRequest(
            now, inputs.outdoor_c, state.history, price_forecast, inputs.setpoint_c, tank, house, running, weather,
            state.start_cost,
        )  # fmt: skip
        if inline:
            state = adopt(state, solve_request(request, params, timezone))
        elif state.wanted is None:
            state = replace(state, wanted=request)
    current = state.plan
    step = current.step_at(now) if current is not None else None
    if current is None or step is None:
        rules = policy.decide(rules_state, inputs, params)
        why = "waiting for the ATN's prices…" if waiting else "planning…"
        summary = f"present rules ({why}): {rules.summary}"
        return replace(state, decision=None, slot=slot), replace(rules, summary=summary)
    decision = state.decision
    if slot != state.slot or decision is None:  # a new step, a new plan, or back from the present rules
        decision = current.decide(step, tank, house, running)
        state = replace(state, slot=slot, decision=decision)
    note = "; ".join(n for n in (state.peak_note, state.weather_note) if n)
    return state, execute(decision, rules_state, inputs, params, note)


def comfort_floor(inputs: policy.PolicyInputs, params: ControlParams) -> float:
    return comfort_floor_c(params, inputs.occupied, inputs.setpoint_c)


def execute(
    decision: Decision, rules_state: policy.PolicyState, inputs: policy.PolicyInputs, params: ControlParams, note: str
) -> policy.PolicyDecision:
    """Commands for this tick from the step's decision, with the comfort guard."""
    assert inputs.house_c is not None
    roles = params.actuators
    house = inputs.house_c
    top = next(t for t in (inputs.tank_top_c, inputs.tank_mid_c, inputs.tank_bottom_c) if t is not None)
    floor = comfort_floor(inputs, params)
    action = decision.action
    target = max(decision.house_end_c, floor + GUARD_K)
    dist = house < target or (rules_state.heating_house and house < target + DIST_HYSTERESIS_K)
    dist = dist and top > house + TANK_USEFUL_K
    cold = house < floor
    supply = params.supply_c(floor + GUARD_K, inputs.outdoor_c)
    hp = action.heat_pump or (cold and top < supply)
    aux = action.aux or (cold and house < floor - AUX_GUARD_K and hp)
    aux = aux or (rules_state.aux and house < floor)
    price = f"{decision.price:.2f}/kWh"
    if action.heat_pump:
        cop = f", COP {decision.cop:.1f}" if decision.cop is not None else ""
        hp_why = f"plan: charging to {decision.tank_end_c:.0f} °C now: {price}{cop}"
    elif hp:
        hp_why = (
            f"comfort: house {house:.1f} °C below {floor:.1f} °C: heating it directly (tank top {top:.0f} °C < "
            f"the heating curve's {supply:.0f} °C)"
        )
    else:
        hp_why = f"plan: heat pump off at {price} (tank {tank_mean(inputs):.0f} °C)"
    if note:
        hp_why = f"{hp_why}; {note}"
    dist_why = f"house {house:.1f} °C, plan {decision.house_end_c:.1f} °C by the step's end (floor {floor:.1f} °C)"
    if action.aux:
        aux_why = "plan: aux element helps, the heat pump alone cannot keep the house comfortable"
    elif aux:
        aux_why = f"comfort: house {house:.1f} °C below {floor:.1f} °C with the heat pump on: aux element helps"
    else:
        aux_why = "no aux heat needed"
    wanted = {roles.heat_pump: hp, roles.store_pump: hp, roles.distribution_pump: dist, roles.aux: aux}
    why = {roles.heat_pump: hp_why, roles.store_pump: hp_why, roles.distribution_pump: dist_why, roles.aux: aux_why}
    commands = {
        name: Command(actuator=name, on=on, source=Source.LOCAL, reason=why[name]) for name, on in wanted.items()
    }
    state = policy.PolicyState(heating_house=dist, charging=hp, aux=aux)
    return policy.PolicyDecision(state, commands, f"{hp_why}; {dist_why}")
