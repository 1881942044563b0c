"""A heat meter's register made from the derived heat: kWh of heat that only count up, for Home Assistant's Energy
dashboard (a `total_increasing` sensor: a value that goes down is taken for a meter reset) and the ATN.

Heat is integrated at each new sample (trapezoids between usable neighbours, gaps not filled: the same rules as the
daily totals, `controller.energy.integrate`). Defrost heat is negative: it lowers the *net* heat, and the register
shows the highest net heat reached, so a defrost is paid back before the register rises again, and over a day the
register moves by the day's net heat (never by more). The register moves in whole `step_kwh` and each new value is
saved to the store, in a commit synced to the card, *before* it is shown: a restart, a crash or a power cut
resumes from a value at least as high as anything ever published, so it never goes backwards, and the energy
since the last save is lost (a gap), never counted twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from controller.energy.integrate import J_PER_KWH, Sample, area, usable

HEAT_ENERGY_CHANNEL = "hp-heat-energy"
STORE_KEY = "heat-energy-register"
# 100 Wh: at 6 kW of heat one synced save a minute (a few hundred a day, ~1 KB each to the card); 10 Wh would be
# one every 6 s. Home Assistant's Energy dashboard works in hours, and heat meters show whole kWh.
STEP_KWH = 0.1


class RegisterSink(Protocol):
    """Where the register is kept across restarts (the store's small records, synced)."""

    def remember(self, key: str, value: object, synced: bool = False) -> bool: ...

    def recall(self, key: str) -> object: ...


@dataclass
class HeatRegister:
    """The register: `net_kwh` integrated so far (defrost lowers it), `shown_kwh` the saved value people see."""

    max_gap_s: float
    step_kwh: float = STEP_KWH
    net_kwh: float = 0.0
    shown_kwh: float = 0.0
    last: Sample | None = None
    sink: RegisterSink | None = None
    unsaved: str = ""
    """Why the latest value could not be saved ('' when saved): the register then holds still."""

    def restore(self, sink: RegisterSink) -> None:
        """Take the saved register (none saved: start at 0) and save every new value to `sink`."""
        self.sink = sink
        saved = sink.recall(STORE_KEY)
        if isinstance(saved, dict):
            shown, net = saved.get("shown_kwh"), saved.get("net_kwh")
            if isinstance(shown, int | float) and math.isfinite(shown) and shown >= 0:
                self.shown_kwh = float(shown)
                self.net_kwh = float(net) if isinstance(net, int | float) and math.isfinite(net) else self.shown_kwh
                self.net_kwh = max(self.net_kwh, self.shown_kwh)

    def add(self, sample: Sample) -> float:
        """Feed one heat sample (W); returns the register (kWh) to show now."""
        if self.last is not None and sample.t <= self.last.t:
            return self.shown_kwh  # a replay or the same sample seen again
        if self.last is not None and usable(self.last, sample, self.max_gap_s):
            self.net_kwh += area(self.last, sample, hold=False) / J_PER_KWH
        self.last = sample
        register = math.floor(self.net_kwh / self.step_kwh + 1e-9) * self.step_kwh
        register = round(register, 6)
        if register > self.shown_kwh:
            self._save(register)
        return self.shown_kwh

    def _save(self, register: float) -> None:
        if self.sink is not None:
            body = {"shown_kwh": register, "net_kwh": round(self.net_kwh, 9)}
            if not self.sink.remember(STORE_KEY, body, synced=True):
                self.unsaved = "the store could not save the register: it holds still until it can"
                return
        self.unsaved = ""
        self.shown_kwh = register
