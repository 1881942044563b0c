"""Per-channel sensor front-ends: what is physically wired to an ADC input and how to turn volts into a value."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from controller.conversions import BetaModel, Divider, SteinhartHartModel, TableModel, ThermistorModel
from controller.layout.base import Strict


class NtcSensor(Strict):
    """An NTC thermistor in a divider. Name exactly one model: `beta` (with `r25`), `steinhart_hart` or `table`.

    Using the wrong β is not a small error (a β 3950 part read as β 3435 is off by +6 K at 60 °C), so there is
    no default part: the layout must say which one is fitted.
    """

    kind: Literal["ntc"]
    beta: float | None = Field(default=None, gt=1000, lt=10_000)
    r25: float | None = Field(default=None, gt=0, description="resistance at 25 °C, Ω (with beta)")
    steinhart_hart: tuple[float, float, float] | None = None
    table: tuple[tuple[float, float], ...] | None = Field(default=None, description="[[°C, Ω], ...]")
    r_fixed: float = Field(gt=0, description="the divider's fixed resistor, Ω")
    vref: float | None = Field(
        default=None, gt=0, le=5.5, description="this divider's supply, V; default: the board's supply_v"
    )
    wiring: Literal["ntc-to-ground", "ntc-to-supply"] = "ntc-to-ground"

    @model_validator(mode="after")
    def _one_model(self) -> NtcSensor:
        named = [n for n in ("beta", "steinhart_hart", "table") if getattr(self, n) is not None]
        if len(named) != 1:
            found = ", ".join(named) or "none"
            raise ValueError(f"name exactly one thermistor model (beta, steinhart_hart or table); found {found}")
        if self.beta is not None and self.r25 is None:
            raise ValueError("a beta model needs r25, the thermistor's resistance at 25 °C")
        if self.beta is None and self.r25 is not None:
            raise ValueError("r25 goes with beta only")
        if self.table is not None and len(self.table) < 2:
            raise ValueError("an R-T table needs at least two [°C, Ω] rows")
        return self

    def thermistor(self) -> ThermistorModel:
        """The thermistor model this sensor names."""
        if self.beta is not None and self.r25 is not None:
            return BetaModel(r25=self.r25, beta=self.beta)
        if self.steinhart_hart is not None:
            return SteinhartHartModel(*self.steinhart_hart)
        assert self.table is not None  # guaranteed by _one_model
        return TableModel(tuple(t for t, _ in self.table), tuple(r for _, r in self.table))

    def divider(self, board_supply_v: float) -> Divider:
        """The divider, fed from this sensor's own `vref` if it names one, else from the board's supply."""
        return Divider(r_fixed=self.r_fixed, vref=self.vref or board_supply_v, wiring=self.wiring)


class VoltsSensor(Strict):
    """The raw input voltage, for anything that is not a thermistor."""

    kind: Literal["volts"]


class LinearSensor(Strict):
    """A sensor with a linear voltage output, such as a Grundfos VFS flow sensor (0.5-3.5 V over its range).

    `volts` [v0, v1] maps linearly onto `values` [x0, x1] in `unit`. A live zero (0.5 V) lets a dead sensor be
    told from a zero reading: below v0 by more than `tolerance_v` the sensor is unpowered or its signal wire
    broken; above v1 by more it is shorted to its supply. Both are faults, never a value.
    """

    kind: Literal["linear"]
    volts: tuple[float, float] = Field(default=(0.5, 3.5), description="[V at values[0], V at values[1]]")
    values: tuple[float, float] = Field(description="the measured quantity at volts[0] and volts[1]")
    unit: str = Field(min_length=1, description="the quantity's unit, e.g. l/min")
    # An ADS1115 on 3.3 V clamps its input at VDD + 0.3 V: a signal shorted to a 5 V sensor supply reads 3.6 V,
    # only 0.1 V past a VFS's 3.5 V full scale, so the tolerance must stay under that to see the short.
    tolerance_v: float = Field(default=0.05, ge=0, le=1, description="how far past volts a reading may go")

    @model_validator(mode="after")
    def _span(self) -> LinearSensor:
        if self.volts[0] >= self.volts[1]:
            raise ValueError(f"volts {list(self.volts)} must be [low, high] with low < high")
        if self.values[0] == self.values[1]:
            raise ValueError("values must differ at the two ends of the span")
        return self

    def value(self, volts: float) -> float:
        """The quantity at `volts`, clamped to the span (the sensor's own output saturates at its ends)."""
        (v0, v1), (x0, x1) = self.volts, self.values
        fraction = min(1.0, max(0.0, (volts - v0) / (v1 - v0)))
        return x0 + fraction * (x1 - x0)

    def volts_for(self, value: float) -> float:
        """The output voltage at `value` (what an emulated sensor puts on its wire)."""
        (v0, v1), (x0, x1) = self.volts, self.values
        fraction = min(1.0, max(0.0, (value - x0) / (x1 - x0)))
        return v0 + fraction * (v1 - v0)

    def fault(self, volts: float) -> str:
        """Why `volts` is no reading, or an empty string when it is one. The words stay the same while the fault
        lasts (no volts in them), so the sampler logs it once."""
        if volts < self.volts[0] - self.tolerance_v:
            return f"no signal: below the sensor's live zero of {self.volts[0]:g} V (unpowered, or its wire broken)"
        if volts > self.volts[1] + self.tolerance_v:
            return f"above the sensor's {self.volts[1]:g} V full scale (signal shorted to its supply?)"
        return ""


Sensor = Annotated[NtcSensor | VoltsSensor | LinearSensor, Field(discriminator="kind")]
