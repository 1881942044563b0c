"""The bench's perfect-foresight optimum under a start budget: the yardstick the planner is held to when it must
not start the compressor more often than the present rules."""

from __future__ import annotations

import pytest

from controller.planner.dp import Plan
from controller.sim.compare import START, outdoor_history, price_source, with_planner
from controller.sim.optimum import budgeted_plan, model_run, perfect_plan
from controller.sim.weather import WEATHER_PRESETS, Weather
from tests.simhelpers import demo_layout

LAYOUT = with_planner(demo_layout(), True)


def plan_for(budget: int | None) -> Plan:
    source = price_source("time-of-use", LAYOUT, 1)
    common = {"weather": "mild", "seed": 1, "start": START, "days": 1.0, "prices": source}
    if budget is None:
        return perfect_plan(LAYOUT, **common)  # type: ignore[arg-type]
    return budgeted_plan(LAYOUT, max_starts=budget, **common)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def free() -> tuple[int, float]:
    return model_run(plan_for(None), days=1.0)


@pytest.mark.parametrize("share", [0.7, 0.4])
def test_a_start_budget_is_kept_at_the_least_extra_cost(free: tuple[int, float], share: float) -> None:
    """With fewer starts allowed than the electricity-only optimum makes, the budgeted optimum keeps to the budget
    (followed in the planner's model) and costs at least as much, and a looser budget never costs more."""
    free_starts, free_cost = free
    assert free_starts >= 4  # mild weather, no start cost: many short cheap runs
    budget = max(1, int(free_starts * share))
    starts, cost = model_run(plan_for(budget), days=1.0)
    assert starts <= budget
    assert cost >= free_cost - 1e-6
    _, looser_cost = model_run(plan_for(min(free_starts, budget + 3)), days=1.0)
    assert looser_cost <= cost + 1e-6


def test_a_budget_the_free_optimum_meets_changes_nothing(free: tuple[int, float]) -> None:
    free_starts, free_cost = free
    assert model_run(plan_for(free_starts), days=1.0) == (free_starts, pytest.approx(free_cost))


def test_the_warm_history_is_the_days_before_the_start() -> None:
    history = outdoor_history("mild", 1, START, days=2)
    weather = Weather(WEATHER_PRESETS["mild"], seed=1)
    hour_before = START - 3600
    assert history.at(hour_before) is not None
    assert abs(history.at(hour_before) - weather.outdoor_c(hour_before + 1800)) < 3.0  # type: ignore[operator]
