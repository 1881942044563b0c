"""The plan as people see it: the next hours of planned heat-pump use against price, with the tank's and the
house's planned temperatures, for the state message (the TUI's Plan screen, MQTT monitors)."""

from __future__ import annotations

import math

from controller import protocol
from controller.planner.base import STEP_S
from controller.planner.local import PlannerState

HOURS_SHOWN = 24
SHOWN_KEPT = 4096  # plans shown, remembered by (preview, step): a fleet-sim process holds hundreds of sites

# What a plan shows changes only with the plan (its preview) and the planner step `now` is in, while the state
# message that carries it is built at every control tick (and more often with watchers): 24 hourly models built
# each time were a tenth of an idle controller's cost in a fleet. The preview's id is only a key while it lives,
# so the key also holds its first point and its length, and the whole memo is dropped when it grows too big.
_shown: dict[tuple[int, float, int, int, int], protocol.PlanState] = {}


def plan_state(state: PlannerState, now: float, hours: int = HOURS_SHOWN) -> protocol.PlanState | None:
    """The next `hours` whole hours of the current plan (from the hour holding `now`), or None with no plan."""
    if state.plan is None or not state.preview:
        return None
    key = (id(state.preview), state.preview[0].start, len(state.preview), math.floor(now / STEP_S), hours)
    shown = _shown.get(key)
    if shown is None or shown.made_at != state.planned_at or shown.note != state.peak_note:
        if len(_shown) >= SHOWN_KEPT:
            _shown.clear()
        shown = _shown[key] = _plan_state(state, now, hours)
    return shown


def _plan_state(state: PlannerState, now: float, hours: int) -> protocol.PlanState:
    first_hour = math.floor(now / 3600.0) * 3600.0
    buckets: dict[float, list[tuple[bool, bool, float, float, float]]] = {}
    for point in state.preview:
        if point.start + STEP_S <= now:
            continue
        hour = math.floor(point.start / 3600.0) * 3600.0
        if hour >= first_hour + hours * 3600.0:
            break
        buckets.setdefault(hour, []).append((point.heat_pump, point.aux, point.price, point.tank_c, point.house_c))
    shown = [
        protocol.PlanHour(
            start=hour,
            heat_pump=sum(p[0] for p in steps) / len(steps),
            aux=sum(p[1] for p in steps) / len(steps),
            price=round(sum(p[2] for p in steps) / len(steps), 4),
            tank_c=round(steps[-1][3], 1),
            house_c=round(steps[-1][4], 2),
        )
        for hour, steps in sorted(buckets.items())
    ]
    return protocol.PlanState(made_at=state.planned_at, note=state.peak_note, hours=shown)
