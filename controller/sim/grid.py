"""The house's grid connection as its smart meter sees it: household loads, the heat pump, the immersion
element and a PV array on three phases.

The household's base load follows the plant's internal-gain profile (the same people switch on the same kettle);
the PV array follows the plant's sun, so it exports at midday when the house needs little. The smart meter
nets the three phases into one total, as DSMR meters do: 1-0:1.7.0 / 2.7.0 are the positive and negative parts
of the sum, the per-phase lines the parts of each phase.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.sim.plant import Plant

PHASES = 3


@dataclass(frozen=True)
class GridParams:
    base_load_w: float = 350.0  # the household's daily mean (fridge, lights, cooking, standby), shaped by hour
    base_load_split: tuple[float, float, float] = (0.45, 0.30, 0.25)
    pv_peak_w: float = 4000.0  # the array's output at the plant's solar noon
    heat_pump_phase: int = 1
    aux_phase: int = 3
    pv_phase: int = 2
    voltage_v: float = 230.0


@dataclass(frozen=True)
class GridFlows:
    """Per-phase net active power (W, positive = import) and voltages at one instant."""

    phase_w: tuple[float, float, float]
    voltage_v: tuple[float, float, float]

    @property
    def net_w(self) -> float:
        return sum(self.phase_w)

    @property
    def delivered_w(self) -> float:
        return max(0.0, self.net_w)

    @property
    def received_w(self) -> float:
        return max(0.0, -self.net_w)


def household_w(plant: Plant, params: GridParams) -> float:
    """The household's own load (W) now: the base load shaped like the plant's internal gains."""
    return params.base_load_w * plant.internal_gain_w(plant.time) / plant.params.internal_gain_w


def pv_w(plant: Plant, params: GridParams) -> float:
    """The PV array's output (W) now, following the plant's sun."""
    peak = plant.params.solar_gain_peak_w
    return params.pv_peak_w * plant.solar_gain_w(plant.time) / peak if peak > 0 else 0.0


def grid_flows(plant: Plant, params: GridParams = GridParams()) -> GridFlows:
    phases = [household_w(plant, params) * share for share in params.base_load_split]
    phases[params.heat_pump_phase - 1] += plant.heat_pump_electric_w
    phases[params.aux_phase - 1] += plant.aux_electric_w
    phases[params.pv_phase - 1] -= pv_w(plant, params)
    # A loaded phase sags a little: 0.4 Ω of supply impedance.
    volts = [params.voltage_v - 0.4 * p / params.voltage_v for p in phases]
    return GridFlows((phases[0], phases[1], phases[2]), (volts[0], volts[1], volts[2]))


def tariff(plant: Plant) -> int:
    """The Dutch two-rate tariff the meter shows: 1 (low) nights 23-07 and weekends, 2 (normal) otherwise."""
    local_s = plant.time + plant.params.weather.utc_offset_h * 3600.0
    hour = (local_s / 3600.0) % 24.0
    weekday = (int(local_s // 86_400) + 3) % 7  # 1970-01-01 was a Thursday: Monday = 0
    return 1 if weekday >= 5 or hour >= 23.0 or hour < 7.0 else 2
