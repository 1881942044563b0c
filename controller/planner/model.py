"""The planner's reduced plant: one well-mixed tank node, one house node, the heat pump, emitters and aux.

Every function takes numpy arrays that broadcast together (actions x tank grid x house grid in the dynamic
programme, single values when one decision is taken), so one code path serves the plan and its execution.

One step of `STEP_S` seconds with the actuators held:
- the heat pump gives its full capacity (a function of outdoor air and entering water) at a COP that is a
  fraction of the Carnot COP between condenser and evaporator; it is off if its leaving water would pass its
  own high limit or the air is below its lock-out;
- the emitters move heat from the tank to the house with a conductance `d x G` (d the share of full flow);
  the tank's response to that exchange is integrated exactly (an exponential), the house's explicitly (its
  time constant is ~30 h against a 15-minute step);
- the tank loses heat to the house it stands in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.planner.base import STEP_S
from controller.planner.params import PlannerParams

__all__ = ["STEP_S", "Array", "Coefficients", "Model", "StepResult"]

Array = npt.NDArray[np.float64]
WATER_CP_J_PER_KG_K = 4186.0
WATER_KG_PER_L = 0.99
KELVIN = 273.15
J_PER_KWH = 3.6e6
LEAVING_MARGIN_K = 1.0  # stay this far below the heat pump's own high limit


@dataclass(frozen=True)
class Coefficients:
    """One step as affine functions of the house temperature: `tank_a + tank_b x house` and likewise the house."""

    tank_a: Array
    tank_b: Array
    house_a: Array
    house_b: Array
    electric_kwh: Array
    heat_pump_kwh: Array
    feasible: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class StepResult:
    """Where one step ends and what it cost, for arrays of start states and actions."""

    tank_c: Array
    house_c: Array
    electric_kwh: Array  # heat pump plus aux element
    heat_pump_kwh: Array  # heat pump heat
    feasible: npt.NDArray[np.bool_]  # False where the heat pump would trip on its high limit


class Model:
    """The site as the planner sees it (from the layout's `[control.planner]`)."""

    def __init__(self, params: PlannerParams) -> None:
        self.params = params
        p = params
        self.tank_j_per_k = p.tank_volume_l * WATER_KG_PER_L * WATER_CP_J_PER_KG_K
        flow_w_per_k = p.distribution_pump_flow_kg_s * WATER_CP_J_PER_KG_K
        self.emitter_w_per_k = flow_w_per_k * (1.0 - math.exp(-p.emitter_ua_w_per_k / flow_w_per_k))
        self.store_flow_w_per_k = p.store_pump_flow_kg_s * WATER_CP_J_PER_KG_K

    def capacity_w(self, outdoor_c: Array | float, entering_c: Array | float) -> Array:
        p = self.params
        air = np.clip(1.0 + p.hp_capacity_air_slope_per_k * (np.asarray(outdoor_c) - 7.0), 0.2, 1.3)
        water = np.clip(1.0 - p.hp_capacity_water_slope_per_k * (np.asarray(entering_c) - 30.0), 0.5, 1.2)
        return np.asarray(p.hp_nominal_heat_w * air * water)

    def cop(self, outdoor_c: Array | float, leaving_c: Array | float) -> Array:
        p = self.params
        hot = np.asarray(leaving_c) + p.hp_condenser_approach_k + KELVIN
        cold = np.asarray(outdoor_c) - p.hp_evaporator_approach_k + KELVIN
        lift = np.maximum(hot - cold, 1.0)
        return np.asarray(np.clip(p.hp_carnot_efficiency * hot / lift, 1.0, 6.5))

    def coefficients(
        self,
        tank_c: Array,
        outdoor_c: float,
        gains_w: float,
        heat_pump: Array,
        aux: Array,
        share: Array,
    ) -> Coefficients:
        """One step from `tank_c` as affine functions of the house temperature: with everything else held, the
        tank and the house end at `a + b x house`. The heat pump's terms depend on the tank only, so the backward
        pass computes them per tank temperature and action, and the house enters in two operations."""
        p = self.params
        dt = STEP_S
        ct = self.tank_j_per_k
        q_hp = heat_pump * self.capacity_w(outdoor_c, tank_c)
        entering = tank_c + 0.5 * q_hp * dt / ct
        leaving = entering + q_hp / self.store_flow_w_per_k
        feasible = (heat_pump == 0) | (
            (leaving <= p.hp_max_leaving_c - LEAVING_MARGIN_K) & (outdoor_c >= p.hp_min_outdoor_c)
        )
        electric_w = q_hp / self.cop(outdoor_c, leaving) + aux * p.aux_w
        ua_loss = p.tank_loss_ua_w_per_k
        conductance = share * self.emitter_w_per_k
        decay = np.exp(-conductance * dt / ct)
        # (1 - decay) / conductance, with its limit dt / ct where nothing flows.
        gain = np.where(conductance > 0, (1.0 - decay) / np.maximum(conductance, 1e-12), dt / ct)
        # The tank relaxes toward the house (emitters, exactly) while taking the heat made less its loss:
        # tank_end = decay*tank + (1-decay)*house + gain*(q_made - loss*(tank - house)).
        made_w = q_hp + aux * p.aux_w
        tank_a = decay * tank_c + gain * (made_w - ua_loss * tank_c)
        tank_b = (1.0 - decay) + gain * ua_loss
        # The house takes what the tank did not keep, plus gains, less the envelope; the tank's loss is the
        # house's gain, so it cancels: house_end = house + (made*dt - ct*(tank_end - tank) + (gains -
        # envelope)*dt) / C.
        c = p.house_capacitance_j_per_k
        house_a = (dt * (made_w + gains_w + p.house_ua_w_per_k * outdoor_c) - ct * (tank_a - tank_c)) / c
        house_b = 1.0 - (ct * tank_b + dt * p.house_ua_w_per_k) / c
        return Coefficients(
            tank_a=np.asarray(tank_a),
            tank_b=np.asarray(tank_b),
            house_a=np.asarray(house_a),
            house_b=np.asarray(house_b),
            electric_kwh=np.asarray(electric_w * dt / J_PER_KWH),
            heat_pump_kwh=np.asarray(q_hp * dt / J_PER_KWH),
            feasible=np.asarray(feasible),
        )

    def step(
        self,
        tank_c: Array,
        house_c: Array,
        outdoor_c: float,
        gains_w: float,
        heat_pump: Array,
        aux: Array,
        share: Array,
    ) -> StepResult:
        """One step from (tank, house) with heat pump / aux on (0 or 1) and the emitters at `share` of flow."""
        c = self.coefficients(tank_c, outdoor_c, gains_w, heat_pump, aux, share)
        return StepResult(
            tank_c=c.tank_a + c.tank_b * house_c,
            house_c=c.house_a + c.house_b * house_c,
            electric_kwh=c.electric_kwh,
            heat_pump_kwh=c.heat_pump_kwh,
            feasible=c.feasible,
        )
