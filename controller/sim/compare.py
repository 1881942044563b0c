"""Score strategies on the same simulated weather and prices: a plain thermostat, the present rules, the planner
and the perfect-foresight optimum. Shared by bench/simulated_week.py and the tests."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from controller.layout.model import Layout
from controller.sim.optimum import perfect_state
from controller.sim.pricing import DayAhead, PriceSource, TimeOfUse
from controller.sim.week import WeekReport, simulate, thermostat_strategy

START = 1_767_225_600.0  # 2026-01-01T00:00Z
STRATEGIES = ("thermostat", "present", "planner", "optimum")
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


@dataclass
class Scored:
    report: WeekReport
    wall_s: float


def run(
    layout: Layout, strategy: str, *, weather: str, prices: str, days: float, seed: int = 1, tick_s: float = 10.0
) -> Scored:
    """One strategy over `days` of `weather` under `prices` (the same seed gives the same weather and prices)."""
    began = time.perf_counter()
    present = with_planner(layout, False)
    source = price_source(prices, layout, seed)
    common = {"weather": weather, "days": days, "seed": seed, "start": START, "prices": source, "tick_s": tick_s}
    if strategy == "thermostat":
        report = simulate(present, strategy=thermostat_strategy, **common)  # type: ignore[arg-type]
    elif strategy == "present":
        report = simulate(present, **common)  # type: ignore[arg-type]
    elif strategy == "planner":
        report = simulate(with_planner(layout, True), **common)  # type: ignore[arg-type]
    elif strategy == "optimum":
        planned = with_planner(layout, True)
        state = perfect_state(planned, weather=weather, seed=seed, start=START, days=days, prices=source)
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
) -> dict[str, Scored]:
    return {
        name: run(layout, name, weather=weather, prices=prices, days=days, seed=seed, tick_s=tick_s)
        for name in strategies
    }
