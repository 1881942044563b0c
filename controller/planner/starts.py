"""Compressor starts as a budget, not only a price.

A price per start (the layout's `start_cost`, wear) alone cannot keep the starts in bounds in every weather: a
price that stops a mild week's many short cool runs is far too low for a cold week, where each stop between
long runs is worth little and the plan would start the compressor more often than the present rules; a price
high enough for the cold week makes the mild week dear (short cool runs are what a high COP is made of).

So each re-plan treats the starts over the plan's first day as a constraint: it raises the price per start up
`LADDER` only as far as needed for the plan (followed in the planner's model) to keep `max_starts_per_day`, and
a re-plan whose last price leaves starts to spare tries one rung lower, so the price comes down again when the
weather turns mild. This is a Lagrangian relaxation of the budget: each rung's plan is the cheapest for the
starts it makes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

# Currency per start. Finer at the low end, where mild weather's plans change most with it.
LADDER = (0.0, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)

PlanT = TypeVar("PlanT")


def count(running: bool, heat_pump: Iterable[bool]) -> int:
    """Compressor starts in a sequence of steps, from `running` before the first."""
    total = 0
    before = running
    for on in heat_pump:
        total += on and not before
        before = on
    return total


def rungs(above: float) -> tuple[float, ...]:
    """The ladder's prices above `above`."""
    return tuple(c for c in LADDER if c > above)


def first_rung(floor: float, previous: float | None) -> float:
    """Where a re-plan's search begins: one rung below the last plan's price, never below the layout's."""
    if previous is None or previous <= floor:
        return floor
    below = [c for c in LADDER if c < previous]
    return max(floor, below[-1]) if below else floor


def within_budget(
    solve: Callable[[float], PlanT],
    day_starts: Callable[[PlanT], int],
    *,
    budget: int,
    floor: float,
    previous: float | None,
) -> tuple[PlanT, float]:
    """The plan at the lowest price per start that keeps to `budget` starts in its first day (the top rung's plan
    if none does), and that price. With a previous price (it changes little from one re-plan to the next), the
    search solves at it once; with starts to spare it tries one rung lower, over the budget it walks up (one
    pass when the budget is met exactly, two with slack). Without one, it bisects the ladder from the layout's
    price (a handful of passes, where a walk could take a dozen)."""
    if previous is not None:
        price = max(floor, previous)
        plan = solve(price)
        made = day_starts(plan)
        if made <= budget:
            lower = first_rung(floor, price)
            if made < budget and lower < price:  # slack: perhaps the weather turned milder
                cheaper = solve(lower)
                if day_starts(cheaper) <= budget:
                    return cheaper, lower
            return plan, price
        for higher in rungs(price):
            price, plan = higher, solve(higher)
            if day_starts(plan) <= budget:
                break
        return plan, price
    ladder = (floor, *rungs(floor))
    solved: dict[int, PlanT] = {}

    def plan_at(i: int) -> PlanT:
        if i not in solved:
            solved[i] = solve(ladder[i])
        return solved[i]

    fails, keeps = -1, len(ladder) - 1  # the first rung that keeps the budget is in (fails, keeps]
    while keeps - fails > 1:
        middle = (fails + keeps) // 2
        if day_starts(plan_at(middle)) <= budget:
            keeps = middle
        else:
            fails = middle
    return plan_at(keeps), ladder[keeps]
