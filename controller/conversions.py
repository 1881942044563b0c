"""Temperature conversions, both directions, as pure functions.

The forward direction (temperature -> resistance -> volts) is what the plant simulator feeds the emulated chips;
the inverse is what the drivers apply to what the real chips report. Keeping both in one place means the
simulator and the controller can never disagree about a formula.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

KELVIN = 273.15
T0_KELVIN = 298.15  # 25 °C, the reference temperature of thermistor datasheets

# IEC 60751 Callendar-Van Dusen coefficients.
CVD_A = 3.9083e-3
CVD_B = -5.775e-7
CVD_C = -4.183e-12


def rtd_resistance(temperature_c: float, r0: float) -> float:
    """Resistance of a platinum RTD (IEC 60751) at `temperature_c`."""
    t = temperature_c
    r = r0 * (1.0 + CVD_A * t + CVD_B * t * t)
    if t < 0.0:
        r += r0 * CVD_C * (t - 100.0) * t**3
    return r


def rtd_temperature(resistance: float, r0: float) -> float:
    """Temperature of a platinum RTD from its resistance: exact inverse of `rtd_resistance`.

    Above 0 °C the quadratic is solved in closed form; below it, Newton's method on the full quartic
    converges to machine precision in a few steps from the quadratic's answer.
    """
    if resistance <= 0.0:
        raise ValueError(f"RTD resistance must be positive, got {resistance}")
    ratio = resistance / r0
    disc = CVD_A * CVD_A - 4.0 * CVD_B * (1.0 - ratio)
    if disc < 0.0:
        raise ValueError(f"RTD resistance {resistance} Ω is beyond the IEC 60751 curve")
    t = (-CVD_A + math.sqrt(disc)) / (2.0 * CVD_B)
    if ratio >= 1.0:
        return t
    for _ in range(20):
        f = rtd_resistance(t, r0) - resistance
        dfdt = r0 * (CVD_A + 2 * CVD_B * t + CVD_C * (4 * t**3 - 300 * t * t))
        step = f / dfdt
        t -= step
        if abs(step) < 1e-10:
            break
    return t


class ThermistorModel(Protocol):
    """An NTC thermistor's resistance-temperature relation."""

    def resistance(self, temperature_c: float) -> float: ...

    def temperature(self, resistance: float) -> float: ...


@dataclass(frozen=True, slots=True)
class BetaModel:
    """1/T = 1/T0 + ln(R/R0)/β, with T0 = 25 °C."""

    r25: float
    beta: float

    def resistance(self, temperature_c: float) -> float:
        t = temperature_c + KELVIN
        return self.r25 * math.exp(self.beta * (1.0 / t - 1.0 / T0_KELVIN))

    def temperature(self, resistance: float) -> float:
        if resistance <= 0.0:
            raise ValueError(f"thermistor resistance must be positive, got {resistance}")
        inv_t = 1.0 / T0_KELVIN + math.log(resistance / self.r25) / self.beta
        return 1.0 / inv_t - KELVIN


@dataclass(frozen=True, slots=True)
class SteinhartHartModel:
    """1/T = a + b ln R + c (ln R)^3."""

    a: float
    b: float
    c: float

    def temperature(self, resistance: float) -> float:
        if resistance <= 0.0:
            raise ValueError(f"thermistor resistance must be positive, got {resistance}")
        ln_r = math.log(resistance)
        return 1.0 / (self.a + self.b * ln_r + self.c * ln_r**3) - KELVIN

    def resistance(self, temperature_c: float) -> float:
        # Solve c x^3 + b x + (a - 1/T) = 0 for x = ln R (Cardano; one real root for b, c > 0).
        y = self.a - 1.0 / (temperature_c + KELVIN)
        if self.c == 0.0:
            return math.exp(-y / self.b)
        x_term = math.sqrt((self.b / (3.0 * self.c)) ** 3 + (y / (2.0 * self.c)) ** 2)
        ln_r = math.cbrt(x_term - y / (2.0 * self.c)) - math.cbrt(x_term + y / (2.0 * self.c))
        return math.exp(ln_r)


@dataclass(frozen=True, slots=True)
class TableModel:
    """A manufacturer's R-T table, interpolated linearly in (T, ln R). Temperatures must be increasing."""

    temperatures_c: tuple[float, ...]
    resistances: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.temperatures_c) != len(self.resistances) or len(self.temperatures_c) < 2:
            raise ValueError("an R-T table needs at least two (temperature, resistance) pairs")
        if any(b <= a for a, b in zip(self.temperatures_c, self.temperatures_c[1:], strict=False)):
            raise ValueError("R-T table temperatures must be strictly increasing")
        if any(b >= a for a, b in zip(self.resistances, self.resistances[1:], strict=False)):
            raise ValueError("R-T table resistances must fall as temperature rises (NTC)")

    @staticmethod
    def _interpolate(x: float, xs: Sequence[float], ys: Sequence[float]) -> float:
        i = min(max(bisect.bisect_left(xs, x), 1), len(xs) - 1)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0)

    def resistance(self, temperature_c: float) -> float:
        logs = [math.log(r) for r in self.resistances]
        return math.exp(self._interpolate(temperature_c, self.temperatures_c, logs))

    def temperature(self, resistance: float) -> float:
        if resistance <= 0.0:
            raise ValueError(f"thermistor resistance must be positive, got {resistance}")
        # ln R falls with T: search the reversed (increasing) sequence.
        logs = [math.log(r) for r in reversed(self.resistances)]
        temps = list(reversed(self.temperatures_c))
        return self._interpolate(math.log(resistance), logs, temps)


DividerWiring = Literal["ntc-to-ground", "ntc-to-supply"]


@dataclass(frozen=True, slots=True)
class Divider:
    """A thermistor in a voltage divider with a fixed resistor, fed from `vref`.

    `ntc-to-ground`: V = Vref · R_ntc / (R_ntc + R_fixed); `ntc-to-supply`: V = Vref · R_fixed / (R_ntc + R_fixed).
    """

    r_fixed: float
    vref: float
    wiring: DividerWiring = "ntc-to-ground"

    def volts(self, r_ntc: float) -> float:
        if math.isinf(r_ntc):
            return self.vref if self.wiring == "ntc-to-ground" else 0.0
        share = r_ntc / (r_ntc + self.r_fixed)
        return self.vref * (share if self.wiring == "ntc-to-ground" else 1.0 - share)

    def resistance(self, volts: float) -> float:
        """The thermistor's resistance for a measured voltage. Raises ValueError at the rails (open/short)."""
        if not 0.0 < volts < self.vref:
            raise ValueError(f"{volts:.4f} V is at or beyond the divider's rails (0 .. {self.vref} V)")
        if self.wiring == "ntc-to-ground":
            return self.r_fixed * volts / (self.vref - volts)
        return self.r_fixed * (self.vref - volts) / volts
