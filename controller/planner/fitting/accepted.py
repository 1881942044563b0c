"""Which model the planner uses: the last accepted fit of each part, or the layout's values, and why.

A fit is kept in the store (`STORE_KEY`) with the parts of the latest attempt and the last accepted part of each
kind. A part refused today (too little data, out of bounds, poor residuals, a jump) leaves the last accepted one
in force, which passed every check when it was made; with none, the layout's values stand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from controller.planner.fitting.parts import CAPACITY, COP, HOUSE, USED, Part
from controller.planner.params import PlannerParams

STORE_KEY = "planner-model"
PARTS = (HOUSE, COP, CAPACITY)


@dataclass(frozen=True)
class ModelFit:
    fitted_at: float
    since: float
    until: float
    latest: tuple[Part, ...]  # today's attempt, accepted or not
    accepted: Mapping[str, Part] = field(default_factory=dict)  # in force: the last accepted part of each kind

    def to_json(self) -> dict[str, object]:
        return {
            "fitted_at": self.fitted_at,
            "since": self.since,
            "until": self.until,
            "latest": [p.to_json() for p in self.latest],
            "accepted": {name: p.to_json() for name, p in self.accepted.items()},
        }

    @classmethod
    def from_json(cls, data: object) -> ModelFit | None:
        """The stored fit, or None when there is none or it no longer reads (then the layout's values stand)."""
        if not isinstance(data, dict):
            return None
        try:
            latest = data["latest"]
            accepted = data["accepted"]
            if not isinstance(latest, list) or not isinstance(accepted, dict):
                return None
            return cls(
                fitted_at=float(data["fitted_at"]),
                since=float(data["since"]),
                until=float(data["until"]),
                latest=tuple(Part.from_json(p) for p in latest if isinstance(p, dict)),
                accepted={str(k): Part.from_json(p) for k, p in accepted.items() if isinstance(p, dict) and k in PARTS},
            )
        except (KeyError, TypeError, ValueError):
            return None


def combine(
    parts: Sequence[Part], previous: ModelFit | None, now: float, since: float, until: float, accept: bool = False
) -> ModelFit:
    """Today's parts with what stays in force: each accepted part replaces the previous one of its kind.
    `accept` takes a part whose only problems are jumps from the last accepted fit (a person decided)."""
    accepted = dict(previous.accepted) if previous is not None else {}
    for part in parts:
        if accept and part.problems and all(" from the last accepted " in p for p in part.problems):
            part = replace(part, problems=())
        if part.accepted:
            accepted[part.name] = part
    return ModelFit(now, since, until, tuple(parts), accepted)


def effective(params: PlannerParams, fit: ModelFit | None) -> PlannerParams:
    """The planner's parameters: the layout's, with every accepted part's values in place of its own."""
    if fit is None or not params.fit_model:
        return params
    update = {name: fit.accepted[part].values[name] for part in PARTS if part in fit.accepted for name in USED[part]}
    return params.model_copy(update=update) if update else params


LABELS = {HOUSE: "house", COP: "COP", CAPACITY: "capacity"}


def _values(part: Part) -> str:
    v = part.values
    if part.name == HOUSE:
        return (
            f"UA {v['house_ua_w_per_k']:.0f} W/K, C {v['house_capacitance_j_per_k'] / 1e6:.1f} MJ/K, "
            f"free gains {v['free_gain_w']:.0f} W"
        )
    if part.name == COP:
        return f"{v['hp_carnot_efficiency']:.3f} of Carnot"
    return (
        f"{v['hp_nominal_heat_w'] / 1000:.2f} kW at A7/W30, {100 * v['hp_capacity_air_slope_per_k']:.2f} %/K air, "
        f"{100 * v['hp_capacity_water_slope_per_k']:.2f} %/K water"
    )


def describe(params: PlannerParams, fit: ModelFit | None) -> str:
    """One line: which model each part of the planner uses, and why."""
    if not params.fit_model:
        return "planner model: the layout's (fit_model = false)"
    if fit is None:
        return "planner model: the layout's (no fit yet)"
    latest = {p.name: p for p in fit.latest}
    out = []
    for name in PARTS:
        today = latest.get(name)
        kept = fit.accepted.get(name)
        label = LABELS[name]
        if today is not None and today.accepted:
            residual = 100 * (today.residual or 0.0)
            out.append(f"{label} fitted ({_values(today)}; {today.samples} samples, residual {residual:.1f} %)")
            continue
        why = "; ".join(today.problems) if today is not None else "not fitted"
        if kept is not None:
            out.append(f"{label} from the last accepted fit ({_values(kept)}), today's refused: {why}")
        else:
            out.append(f"{label} from the layout: {why}")
    return "planner model: " + "; ".join(out)
