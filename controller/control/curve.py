"""The weather-compensated heating curve: the supply temperature the emitters need to hold the house at its
target at a given outdoor temperature, when the heat pump heats the house directly.

The layout's `[control.heating_curve]` gives it in one of two forms (not both):
- `slope` and `shift_k`: supply = target + shift_k + slope x (target - outdoor), the form most heat-pump
  controllers use (slope 0.3..0.6 for underfloor heating, 0.8..1.5 for radiators; a parallel shift trims it);
- `points`: two (outdoor, supply) pairs measured at the comfort setpoint, e.g. `[[-10, 45], [15, 28]]`: the line
  through them, which a different target moves by (1 + slope) K per K, like the first form. `shift_k` trims it.

Either way the result is clamped to `min_supply_c`..`max_supply_c`. With no outdoor reading the curve uses
`assumed_outdoor_c`. The curve never falls as the outdoor air gets colder, nor as the target rises.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from controller.layout.base import Strict

DEFAULT_SLOPE = 0.5
MAX_SLOPE = 3.0
MIN_POINT_SPREAD_K = 5.0  # two points closer than this in outdoor temperature make a wild slope

Point = tuple[float, float]


class HeatingCurve(Strict):
    slope: float | None = Field(
        default=None, ge=0, le=MAX_SLOPE, description="K of supply per K of (target - outdoor); default 0.5"
    )
    shift_k: float = Field(default=0.0, ge=-15, le=15, description="a parallel shift of the whole curve")
    points: tuple[Point, Point] | None = Field(
        default=None, description="instead of slope: two [outdoor °C, supply °C] pairs at the comfort setpoint"
    )
    min_supply_c: float = Field(default=28.0, ge=20, le=60, description="lowest useful supply to the emitters")
    max_supply_c: float = Field(default=50.0, ge=25, le=70, description="highest supply the curve asks for")
    assumed_outdoor_c: float = Field(
        default=0.0, ge=-30, le=20, description="the curve's outdoor temperature when no sensor gives one"
    )

    @model_validator(mode="after")
    def _consistent(self) -> HeatingCurve:
        problems: list[str] = []
        if self.slope is not None and self.points is not None:
            problems.append("give either slope (with shift_k) or points, not both")
        if not self.min_supply_c < self.max_supply_c:
            problems.append(f"need min_supply_c < max_supply_c, got {self.min_supply_c:g} and {self.max_supply_c:g}")
        if self.points is not None:
            problems.extend(_point_problems(self.points))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def line(self, reference_c: float) -> tuple[float, float]:
        """The curve as (slope, shift): supply = target + shift + slope x (target - outdoor), before clamping.
        `reference_c` is the room temperature the points were taken at (the comfort setpoint)."""
        if self.points is None:
            return (DEFAULT_SLOPE if self.slope is None else self.slope), self.shift_k
        (cold_out, cold_supply), (warm_out, warm_supply) = sorted(self.points)
        slope = (cold_supply - warm_supply) / (warm_out - cold_out)
        shift = cold_supply - reference_c - slope * (reference_c - cold_out)
        return slope, shift + self.shift_k


def _point_problems(points: tuple[Point, Point]) -> list[str]:
    problems = []
    for outdoor, supply in points:
        if not -40 <= outdoor <= 30:
            problems.append(f"points: outdoor {outdoor:g} °C is outside -40..30 °C")
        if not 15 <= supply <= 80:
            problems.append(f"points: supply {supply:g} °C is outside 15..80 °C")
    (cold_out, cold_supply), (warm_out, warm_supply) = sorted(points)
    if warm_out - cold_out < MIN_POINT_SPREAD_K:
        problems.append(
            f"points: the two outdoor temperatures ({cold_out:g} and {warm_out:g} °C) must be at least "
            f"{MIN_POINT_SPREAD_K:g} K apart"
        )
    elif cold_supply < warm_supply:
        problems.append(
            f"points: the supply at {cold_out:g} °C ({cold_supply:g}) is below the supply at {warm_out:g} °C "
            f"({warm_supply:g}); a heating curve rises as it gets colder"
        )
    elif (slope := (cold_supply - warm_supply) / (warm_out - cold_out)) > MAX_SLOPE:
        problems.append(f"points: slope {slope:.2f} is above {MAX_SLOPE:g}")
    return problems


def supply_c(curve: HeatingCurve, target_c: float, outdoor_c: float | None, reference_c: float) -> float:
    """The supply the emitters need to hold `target_c` at `outdoor_c` (None: `assumed_outdoor_c`), clamped."""
    slope, shift = curve.line(reference_c)
    outdoor = curve.assumed_outdoor_c if outdoor_c is None else outdoor_c
    supply = target_c + shift + slope * (target_c - outdoor)
    return min(max(supply, curve.min_supply_c), curve.max_supply_c)
