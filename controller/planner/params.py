"""The layout's `[control.planner]` block: the planner's model of the site, its horizon and comfort margins.

The defaults describe the demo house (a ~150 m² house, a 300 l tank, an 8 kW monobloc), i.e. the same values
as `controller.sim.plant.PlantParams`; a real site writes its own (from the heat pump's datasheet, the house's
heat-loss survey, the tank's label).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from controller.layout.base import Strict


class PlannerParams(Strict):
    enabled: bool = Field(default=True, description="plan the local policy; false keeps the present rules")
    horizon_h: float = Field(
        default=48.0, ge=24, le=72, description="how far ahead each plan looks; re-solved when half of it is left"
    )
    replan_after_h: float = Field(
        default=24.0, gt=0, le=48, description="re-solve at the latest this long after the last plan"
    )
    comfort_low_k: float = Field(
        default=1.0, ge=0, le=3, description="while occupied the plan keeps the house at least setpoint - this"
    )
    comfort_high_k: float = Field(
        default=1.5, ge=0.2, le=4, description="and at most setpoint + this (the house's mass stores heat)"
    )
    start_cost: float = Field(
        default=0.002, ge=0, le=5, description="currency per compressor start (wear): the least the plan counts"
    )
    max_starts_per_day: int = Field(
        default=4,
        ge=1,
        le=72,
        description="compressor starts a plan may make in its first day; it prices starts higher as needed",
    )
    first_plan_wait_s: float = Field(
        default=60.0,
        ge=0,
        le=600,
        description="with an ATN link, the first plan after a start waits this long for the ATN's price forecast "
        "(the present rules decide meanwhile) rather than planning without it and again when it comes; 0: no wait",
    )
    outdoor_error_k: float = Field(
        default=4.0, gt=0, le=20, description="re-plan when the outdoor air is this far off the plan's forecast"
    )
    fit_model: bool = Field(
        default=True,
        description="fit the house and heat-pump models from the site's history; a part that passes its checks "
        "replaces the values below (`hearth model show`)",
    )
    fit_days: int = Field(default=14, ge=4, le=60, description="how many days of history each daily fit uses")
    # House.
    house_ua_w_per_k: float = Field(default=180.0, gt=0, le=2000)
    house_capacitance_j_per_k: float = Field(default=20e6, gt=0, le=1e9)
    internal_gain_w: float = Field(default=300.0, ge=0, le=5000, description="daily mean of people and appliances")
    solar_gain_peak_w: float = Field(default=800.0, ge=0, le=20000, description="at solar noon, a half-sine")
    sunrise_local_h: float = Field(default=8.0, ge=0, le=24)
    sunset_local_h: float = Field(default=16.0, ge=0, le=24)
    # Tank.
    tank_volume_l: float = Field(default=300.0, gt=0, le=5000)
    tank_loss_ua_w_per_k: float = Field(default=2.0, ge=0, le=100)
    # Heat pump: capacity at A7/W30 entering, falling with colder air and warmer water; COP a fraction of
    # Carnot between condenser (leaving + approach) and evaporator (outdoor - approach).
    hp_nominal_heat_w: float = Field(default=8000.0, gt=0, le=100_000)
    hp_capacity_air_slope_per_k: float = Field(default=0.015, ge=0, le=0.1)
    hp_capacity_water_slope_per_k: float = Field(default=0.006, ge=0, le=0.1)
    hp_carnot_efficiency: float = Field(default=0.45, gt=0, le=1)
    hp_condenser_approach_k: float = Field(default=3.0, ge=0, le=20)
    hp_evaporator_approach_k: float = Field(default=6.0, ge=0, le=20)
    hp_max_leaving_c: float = Field(default=58.0, ge=30, le=80, description="the heat pump's own high limit")
    hp_min_outdoor_c: float = Field(default=-25.0, ge=-40, le=10, description="below this it locks itself out")
    store_pump_flow_kg_s: float = Field(default=0.3, gt=0, le=10)
    distribution_pump_flow_kg_s: float = Field(default=0.25, gt=0, le=10)
    emitter_ua_w_per_k: float = Field(default=450.0, gt=0, le=10_000)
    aux_w: float = Field(default=3000.0, ge=0, le=20_000, description="the aux element's power")

    @model_validator(mode="after")
    def _ordered(self) -> PlannerParams:
        if self.sunset_local_h <= self.sunrise_local_h:
            raise ValueError("need sunrise_local_h < sunset_local_h")
        return self
