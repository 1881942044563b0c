"""Score strategies on the same simulated weather and prices: a plain thermostat, the present rules, the planner
and the perfect-foresight optimum. Shared by bench/simulated_week.py and the tests."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from controller.layout.model import Layout
from controller.planner.base import STEP_S, OutdoorHistory
from controller.planner.local import PlannerState
from controller.sim.optimum import perfect_state
from controller.sim.pricing import DayAhead, PriceSource, TimeOfUse
from controller.sim.weather import WEATHER_PRESETS, Weather
from controller.sim.week import WeekReport, simulate, thermostat_strategy

START = 1_767_225_600.0  # 2026-01-01T00:00Z
STRATEGIES = ("thermostat", "present", "planner", "optimum", "optimum-starts")
BUDGETED = "optimum-starts"  # the optimum within the present rules' compressor starts
PRICES = ("time-of-use", "dynamic")


def with_planner(layout: Layout, enabled: bool) -> Layout:
    """The layout with the planner switched on or off (off: the present rules)."""
    control = layout.control
    planner = control.planner.model_copy(update={"enabled": enabled})
    return layout.model_copy(update={"control": control.model_copy(update={"planner": planner})})


def price_source(kind: str, layout: Layout, seed: int) -> PriceSource:
    if kind == "time-of-use":
        return TimeOfUse(layout.control, layout.site.timezone)
    if kind == "dynamic":
        return DayAhead(seed, layout.site.timezone)
    raise ValueError(f"unknown price series '{kind}'; known: {', '.join(PRICES)}")


WARM_DAYS = 3


def outdoor_history(weather: str, seed: int, start: float, days: float = WARM_DAYS) -> OutdoorHistory:
    """What a planner that has run before `start` remembers of the outdoor air: the `days` before it, sampled once
    a step as the live planner does. A site runs for months; a scored week that starts from a planner with no
    memory measures its first day after a boot (flat forecast) as much as the planner."""
    outdoor = Weather(WEATHER_PRESETS[weather], seed=seed)
    history = OutdoorHistory()
    t = start - days * 86400
    while t < start:
        history = history.add(t, outdoor.outdoor_c(t))
        t += STEP_S
    return history


@dataclass
class Scored:
    report: WeekReport
    wall_s: float


def run(
    layout: Layout,
    strategy: str,
    *,
    weather: str,
    prices: str,
    days: float,
    seed: int = 1,
    tick_s: float = 10.0,
    warm: bool = True,
    max_starts: int | None = None,
) -> Scored:
    """One strategy over `days` of `weather` under `prices` (the same seed gives the same weather and prices).
    `warm`: the planner starts with `WARM_DAYS` of outdoor history, as on a site that has been running;
    otherwise as just after a boot. `max_starts`: the start budget of the budgeted optimum."""
    began = time.perf_counter()
    present = with_planner(layout, False)
    source = price_source(prices, layout, seed)
    common = {"weather": weather, "days": days, "seed": seed, "start": START, "prices": source, "tick_s": tick_s}
    if strategy == "thermostat":
        report = simulate(present, strategy=thermostat_strategy, **common)  # type: ignore[arg-type]
    elif strategy == "present":
        report = simulate(present, **common)  # type: ignore[arg-type]
    elif strategy == "planner":
        memory = PlannerState(history=outdoor_history(weather, seed, START)) if warm else None
        report = simulate(with_planner(layout, True), planner=memory, **common)  # type: ignore[arg-type]
    elif strategy in ("optimum", BUDGETED):
        if strategy == BUDGETED and max_starts is None:
            raise ValueError(f"'{BUDGETED}' needs a start budget (max_starts)")
        planned = with_planner(layout, True)
        budget = max_starts if strategy == BUDGETED else None
        state = perfect_state(
            planned, weather=weather, seed=seed, start=START, days=days, prices=source, max_starts=budget
        )
        report = simulate(planned, planner=state, **common)  # type: ignore[arg-type]
    else:
        raise ValueError(f"unknown strategy '{strategy}'; known: {', '.join(STRATEGIES)}")
    return Scored(report, time.perf_counter() - began)


def compare(
    layout: Layout,
    *,
    weather: str,
    prices: str,
    days: float,
    seed: int = 1,
    strategies: Iterable[str] = STRATEGIES,
    tick_s: float = 10.0,
    warm: bool = True,
) -> dict[str, Scored]:
    """Each strategy on the same weather and prices; the budgeted optimum gets the present rules' starts."""
    common = {"weather": weather, "prices": prices, "days": days, "seed": seed, "tick_s": tick_s, "warm": warm}
    results: dict[str, Scored] = {}
    wanted = list(strategies)
    for name in wanted:
        budget = None
        if name == BUDGETED:
            present = results.get("present") or run(layout, "present", **common)  # type: ignore[arg-type]
            budget = present.report.starts
        results[name] = run(layout, name, max_starts=budget, **common)  # type: ignore[arg-type]
    return results
