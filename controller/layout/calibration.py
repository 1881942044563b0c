"""A channel's correction after conversion: an offset, or a two-point line through two reference readings.

Measured against a reference thermometer (or a meter, for volts) on site; docs/layout.md says how.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from controller.layout.base import Strict


class Calibration(Strict):
    """`offset` is added to every value. `two_point = [[read, true], [read, true]]` maps the two readings the
    channel gave onto the two true values and the line through them onto everything else; it already holds
    the offset, so the two do not go together."""

    offset: float = Field(default=0.0, ge=-50, le=50, description="added to every converted value")
    two_point: tuple[tuple[float, float], tuple[float, float]] | None = Field(
        default=None, description="[[read, true], [read, true]] at two reference points"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Calibration:
        if self.two_point is None:
            return self
        if self.offset != 0.0:
            raise ValueError("give an offset or a two_point correction, not both: two_point includes the offset")
        (read_low, true_low), (read_high, true_high) = self.two_point
        if read_low == read_high:
            raise ValueError(f"the two points must be read at different values, both read {read_low:g}")
        gain = (true_high - true_low) / (read_high - read_low)
        if not 0.8 <= gain <= 1.25:
            raise ValueError(
                f"the two points give a gain of {gain:.3f}; beyond 0.8..1.25 the sensor model or wiring is wrong, "
                "not the calibration"
            )
        return self

    def apply(self, value: float) -> float:
        """The corrected value."""
        if self.two_point is None:
            return value + self.offset
        (read_low, true_low), (read_high, true_high) = self.two_point
        return true_low + (value - read_low) * (true_high - true_low) / (read_high - read_low)
