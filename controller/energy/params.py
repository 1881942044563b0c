"""The layout's `[control.energy]` block: which measured channels feed the derived ones (heat, COP, the real
compressor starts), and heatpumpmonitor.org's starting power. A name that is not a channel of the layout means
that input is not measured at this site (then, e.g., compressor starts are timed from the relay's read-back)."""

from __future__ import annotations

from pydantic import Field

from controller.energy.solar import SolarParams
from controller.layout.base import Name, Strict


class EnergyParams(Strict):
    heat_pump_power: Name = Field(default="hp-power", description="heat pump electrical power (W), from its meter")
    heat_pump_energy: Name = Field(default="hp-energy", description="the heat pump meter's import counter (kWh)")
    flow: Name = Field(default="hp-flow", description="heat-pump loop flow (l/min)")
    leaving: Name = Field(default="hp-leaving", description="water leaving the heat pump (°C)")
    entering: Name = Field(default="hp-entering", description="water entering the heat pump (°C)")
    grid_power: Name = Field(default="grid-power", description="net grid power (W, + import, - export), from P1")
    starting_w: float = Field(default=100.0, gt=0, le=5000, description="the compressor runs at or above this")
    cop_window_s: float = Field(default=300.0, ge=10, le=3600, description="COP now: mean over this window")
    solar: SolarParams = Field(default_factory=SolarParams)
