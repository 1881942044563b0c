"""The parts of the planner's model a fit estimates (house, COP, capacity), what each needs to be trusted, and
the fitted result of one part with its problems (none: it may be used). No numpy here: the controller loads the
stored fit at start-up without it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

HOUSE, COP, CAPACITY = "house", "cop", "capacity"


@dataclass(frozen=True)
class Rule:
    """What a part needs to be trusted."""

    min_samples: int
    min_spread_k: float  # the spread of the condition that tells its parameters apart
    max_residual: float  # RMS of the residuals over the mean of what was fitted
    max_uncertainty: Mapping[str, float]  # relative standard error of a fitted value
    bounds: Mapping[str, tuple[float, float]]
    max_jump: Mapping[str, float]  # relative change from the last accepted value


RULES = {
    HOUSE: Rule(
        min_samples=72,  # 24-h windows: four days of consecutive usable hours
        min_spread_k=1.0,  # of the windows' mean house - outdoor difference
        max_residual=0.10,
        max_uncertainty={"house_ua_w_per_k": 0.05, "house_capacitance_j_per_k": 0.15},
        bounds={
            "house_ua_w_per_k": (20.0, 2000.0),
            "house_capacitance_j_per_k": (1e6, 1e9),
            "time_constant_h": (5.0, 500.0),
            "free_gain_w": (0.0, 5000.0),
        },
        max_jump={"house_ua_w_per_k": 0.25, "house_capacitance_j_per_k": 0.4},
    ),
    COP: Rule(
        min_samples=24,
        min_spread_k=3.0,  # of the lift (leaving - outdoor)
        max_residual=0.10,
        max_uncertainty={"hp_carnot_efficiency": 0.05},
        bounds={"hp_carnot_efficiency": (0.2, 0.7)},
        max_jump={"hp_carnot_efficiency": 0.15},
    ),
    CAPACITY: Rule(
        min_samples=24,
        min_spread_k=4.0,  # of both the outdoor air and the entering water
        max_residual=0.10,
        max_uncertainty={"hp_nominal_heat_w": 0.05},
        bounds={
            "hp_nominal_heat_w": (1000.0, 100_000.0),
            "hp_capacity_air_slope_per_k": (0.0, 0.05),
            "hp_capacity_water_slope_per_k": (0.0, 0.03),
        },
        max_jump={"hp_nominal_heat_w": 0.25},
    ),
}
# The fitted values that go into [control.planner] (the others are reported, not used).
USED = {
    HOUSE: ("house_ua_w_per_k", "house_capacitance_j_per_k", "internal_gain_w"),
    COP: ("hp_carnot_efficiency",),
    CAPACITY: ("hp_nominal_heat_w", "hp_capacity_air_slope_per_k", "hp_capacity_water_slope_per_k"),
}


@dataclass(frozen=True)
class Part:
    """One fitted part of the model: its values, how well it fits, and what is wrong with it (empty: usable)."""

    name: str
    values: Mapping[str, float] = field(default_factory=dict)
    samples: int = 0
    residual: float | None = None  # RMS / mean
    spread_k: float = 0.0
    uncertainty: Mapping[str, float] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def accepted(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "values": dict(self.values),
            "samples": self.samples,
            "residual": self.residual,
            "spread_k": self.spread_k,
            "uncertainty": dict(self.uncertainty),
            "problems": list(self.problems),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Part:
        values = data.get("values")
        problems = data.get("problems")
        residual = data.get("residual")
        samples = data.get("samples")
        spread = data.get("spread_k")
        uncertainty = data.get("uncertainty")
        return cls(
            name=str(data.get("name")),
            values={str(k): float(v) for k, v in values.items()} if isinstance(values, dict) else {},
            samples=int(samples) if isinstance(samples, int) else 0,
            residual=float(residual) if isinstance(residual, int | float) else None,
            spread_k=float(spread) if isinstance(spread, int | float) else 0.0,
            uncertainty={str(k): float(v) for k, v in uncertainty.items()} if isinstance(uncertainty, dict) else {},
            problems=tuple(str(p) for p in problems) if isinstance(problems, list) else (),
        )
