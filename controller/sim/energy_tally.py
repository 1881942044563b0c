"""A simulated house's energy, measured the way the live controller measures it.

`SimTally` samples the plant at each step as the meters and sensors would (electrical power, the meter's import
counter as its float32 register holds it, heat from the flow and the two pipe temperatures, the temperatures
behind the daily means) and hands the samples to `controller.energy.daily`, so a simulated week and a live site
report the same figures. It also counts the PV the heat pump absorbs: of the power the PV array would have
exported with the heat pump and immersion element off, the part they used instead.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from controller.energy.daily import (
    ELEC,
    FLOW_C,
    HEAT,
    HOUSE_C,
    METER_KWH,
    OUTDOOR_C,
    RETURN_C,
    DayTotals,
    PriceAt,
    daily_totals,
)
from controller.energy.integrate import J_PER_KWH, Sample, integrate
from controller.energy.physics import heat_w
from controller.sim.grid import GridParams, household_w, pv_w
from controller.sim.plant import Plant
from controller.sim.world import METER_START_KWH


def float32(value: float) -> float:
    """`value` as an Eastron meter's float32 input register pair holds it."""
    result: float = struct.unpack(">f", struct.pack(">f", value))[0]
    return result


@dataclass
class SimTally:
    grid: GridParams = field(default_factory=GridParams)
    samples: dict[str, list[Sample]] = field(
        default_factory=lambda: {n: [] for n in (ELEC, HEAT, FLOW_C, RETURN_C, OUTDOOR_C, HOUSE_C, METER_KWH)}
    )
    pv_kwh: float = 0.0
    pv_surplus_kwh: float = 0.0  # what would have been exported with the heat pump and element off
    pv_absorbed_kwh: float = 0.0  # of that, what they used

    def observe(self, plant: Plant, now: float) -> None:
        """Sample the plant at `now` (its latest state)."""
        probes, flows = plant.probes(), plant.flows()
        values = {
            ELEC: plant.heat_pump_electric_w,
            HEAT: heat_w(flows["hp-flow"], probes["hp-leaving"], probes["hp-entering"]),
            FLOW_C: probes["hp-leaving"],
            RETURN_C: probes["hp-entering"],
            OUTDOOR_C: probes["outdoor"],
            HOUSE_C: probes["house-air"],
            METER_KWH: float32(METER_START_KWH + plant.heat_pump_electric_kwh),
        }
        for name, value in values.items():
            self.samples[name].append(Sample(now, value))

    def count_pv(self, plant: Plant, dt_s: float) -> None:
        """Count `dt_s` seconds of the plant's PV, at its latest state."""
        pv = pv_w(plant, self.grid)
        surplus = max(0.0, pv - household_w(plant, self.grid))
        used = plant.heat_pump_electric_w + plant.aux_electric_w
        self.pv_kwh += pv * dt_s / J_PER_KWH
        self.pv_surplus_kwh += surplus * dt_s / J_PER_KWH
        self.pv_absorbed_kwh += min(used, surplus) * dt_s / J_PER_KWH

    def days(self, zone: ZoneInfo, max_gap_s: float, price: PriceAt | None = None) -> list[DayTotals]:
        return daily_totals(self.samples, zone, max_gap_s=max_gap_s, price=price)

    def integration_error_pct(self, max_gap_s: float) -> float | None:
        """Electricity integrated from the power samples against the meter counter's increase, in %."""
        counter = self.samples[METER_KWH]
        if len(counter) < 2 or counter[-1].value is None or counter[0].value is None:
            return None
        counted = counter[-1].value - counter[0].value
        integrated = integrate(self.samples[ELEC], max_gap_s).kwh
        return (integrated - counted) / counted * 100.0 if counted > 0 else None
