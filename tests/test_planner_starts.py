"""Compressor starts as a budget: each re-plan keeps the plan's starts over its first day within the layout's
`max_starts_per_day`, raising its price per start (from the layout's `start_cost` up a ladder) only as far as
needed, and trying one rung lower at the next re-plan."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.control.params import ControlParams
from controller.planner import forecast as fc
from controller.planner import starts
from controller.planner.dp import Plan
from controller.planner.model import Model

PARAMS = ControlParams()
T0 = 1_767_225_600.0  # 2026-01-01T00:00Z


def make_forecast(outdoor: float, prices: list[float]) -> fc.Forecast:
    f = fc.build(
        T0, PARAMS, "Europe/Brussels", outdoor=np.full(192, outdoor), price_forecast=None, setpoint_c=None, steps=192
    )
    return fc.Forecast(f.t0, np.array((prices * 192)[:192]), f.outdoor_c, f.gains_w, f.low_c, f.high_c, f.occupied)


@pytest.mark.parametrize(
    ("running", "heat_pump", "expected"),
    [
        (False, [], 0),
        (False, [True, True, False, True], 2),
        (True, [True, True, False, True], 1),
        (True, [False, False], 0),
        (False, [False, True, False, True, False, True], 3),
    ],
)
def test_counting_starts(running: bool, heat_pump: list[bool], expected: int) -> None:
    assert starts.count(running, heat_pump) == expected


def test_the_ladder_starts_at_the_layouts_price_and_one_rung_below_the_last() -> None:
    assert starts.first_rung(floor=0.01, previous=None) == 0.01
    assert starts.first_rung(floor=0.01, previous=0.05) == 0.03
    assert starts.first_rung(floor=0.01, previous=0.01) == 0.01
    assert starts.first_rung(floor=0.04, previous=0.05) == 0.04  # never below the layout's own price
    assert starts.rungs(0.03) == tuple(c for c in starts.LADDER if c > 0.03)


@settings(max_examples=8, deadline=None)
@given(
    outdoor=st.floats(-8, 14),
    prices=st.lists(st.floats(0.05, 0.6), min_size=4, max_size=4),
    budget=st.integers(1, 6),
    tank=st.floats(25, 45),
)
def test_a_plan_keeps_to_the_start_budget_at_the_least_price(
    outdoor: float, prices: list[float], budget: int, tank: float
) -> None:
    """The plan chosen has no more starts over its first day than the budget (when a rung of the ladder gets
    there), and the rung below it (if the search had any) would have broken the budget."""
    f = make_forecast(outdoor, [p for p in prices for _ in range(24)])
    model = Model(PARAMS.planner)

    def day_starts(plan: Plan) -> int:
        return starts.count(False, [d.action.heat_pump for d in plan.rollout(0, tank, 20.5, False, 96)])

    plan, price = starts.within_budget(
        lambda cost: Plan(model, f, cost), day_starts, budget=budget, floor=0.0, previous=None
    )
    assert plan.start_cost == price
    top = starts.LADDER[-1]
    if price < top:
        assert day_starts(plan) <= budget
    if price > 0.0:
        below = max(c for c in starts.LADDER if c < price)
        assert day_starts(Plan(model, f, below)) > budget


def starts_by_price(table: dict[float, int]) -> tuple[list[float], object, object]:
    """A fake planner whose plan is its price and whose starts come from `table` (falling as the price rises)."""
    solved: list[float] = []

    def solve(price: float) -> float:
        solved.append(price)
        return price

    def day_starts(plan: float) -> int:
        return min((n for p, n in table.items() if p <= plan), default=99) if plan not in table else table[plan]

    return solved, solve, day_starts


@pytest.mark.parametrize(
    ("what", "previous", "table", "price", "passes"),
    [
        ("the last price keeps the budget exactly: one pass", 0.05, {0.03: 6, 0.05: 4}, 0.05, 1),
        ("slack: one rung lower keeps it too", 0.05, {0.03: 4, 0.05: 3}, 0.03, 2),
        ("slack, but one rung lower breaks it", 0.05, {0.03: 5, 0.05: 3}, 0.05, 2),
        ("the last price breaks it: up the ladder", 0.05, {0.05: 6, 0.07: 5, 0.1: 4}, 0.1, 3),
        ("never below the layout's price", 0.01, {0.01: 1}, 0.01, 1),
    ],
)
def test_a_re_plan_starts_from_the_last_price(
    what: str, previous: float, table: dict[float, int], price: float, passes: int
) -> None:
    solved, solve, day_starts = starts_by_price(table)
    _, chosen = starts.within_budget(solve, day_starts, budget=4, floor=0.01, previous=previous)  # type: ignore[arg-type]
    assert (chosen, len(solved)) == (price, passes), what
