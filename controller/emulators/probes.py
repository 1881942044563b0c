"""Sensor front-ends: the plant simulator writes a temperature, the emulated chips read volts or ohms.

Faults act on the sensor, not the chip, so the same injected fault reaches whichever converter reads it:

* open: the element is broken, R = inf (a divider reads its rail; an RTD converter saturates),
* short: R = 0,
* stuck: the reading freezes at the temperature the probe had when the fault was set (a probe that fell out
  of its pocket, or a wet connector),
* noise: gaussian noise of `sigma_k` kelvin rms is added to the temperature before conversion.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from controller.conversions import Divider, ThermistorModel, rtd_resistance

FaultKind = Literal["open", "short", "stuck", "noise"]


@dataclass(frozen=True)
class SensorFault:
    """A fault injected into a probe; `sigma_k` only matters for "noise"."""

    kind: FaultKind
    sigma_k: float = 0.5


class _Probe:
    """Shared fault handling: what temperature the element effectively sits at, or None when open/short."""

    def __init__(self, seed: int) -> None:
        self.temperature_c = 20.0
        self._fault: SensorFault | None = None
        self._stuck_c = self.temperature_c
        self._rng = random.Random(seed)

    @property
    def fault(self) -> SensorFault | None:
        """The injected fault, or None. Setting a "stuck" fault freezes the current temperature."""
        return self._fault

    @fault.setter
    def fault(self, fault: SensorFault | None) -> None:
        if fault is not None and fault.kind == "stuck":
            self._stuck_c = self.temperature_c
        self._fault = fault

    def _effective_c(self) -> float:
        fault = self._fault
        if fault is not None and fault.kind == "stuck":
            return self._stuck_c
        if fault is not None and fault.kind == "noise":
            return self.temperature_c + self._rng.gauss(0.0, fault.sigma_k)
        return self.temperature_c  # healthy (open/short never get here: see _element_fault)

    def _element_fault(self) -> float | None:
        """R for an open (inf) or shorted (0) element; None when the element works."""
        if self._fault is None:
            return None
        if self._fault.kind == "open":
            return math.inf
        if self._fault.kind == "short":
            return 0.0
        return None


class ThermistorProbe(_Probe):
    """An NTC thermistor in a divider, read by an ADC input: `ads.set_input(0, probe.volts)`."""

    def __init__(self, model: ThermistorModel, divider: Divider, *, seed: int = 0) -> None:
        super().__init__(seed)
        self.model = model
        self.divider = divider

    def resistance(self) -> float:
        """The thermistor's resistance now (inf when open, 0 when shorted)."""
        broken = self._element_fault()
        return broken if broken is not None else self.model.resistance(self._effective_c())

    def volts(self) -> float:
        """What the ADC input sees (Divider.volts semantics: open and short read the divider's rails)."""
        return self.divider.volts(self.resistance())


class RtdProbe(_Probe):
    """A platinum RTD (IEC 60751) read by a MAX31865: `max.set_resistance(probe.resistance)`."""

    def __init__(self, r0: float, *, seed: int = 0) -> None:
        super().__init__(seed)
        self.r0 = r0

    def resistance(self) -> float:
        """The element's resistance now: math.inf when open, 0.0 when shorted."""
        broken = self._element_fault()
        return broken if broken is not None else rtd_resistance(self._effective_c(), self.r0)
