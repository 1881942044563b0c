"""The layout's `[control]` block: comfort, tank, tariff windows, safety limits, authority timing, and which
channels and actuators play which role. Strict like the rest of the layout; every field has a sane default so
a site only writes what differs.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from controller.control.curve import HeatingCurve, supply_c
from controller.energy.params import EnergyParams
from controller.layout.base import Name, Strict
from controller.planner.params import PlannerParams

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


def _clock_time(text: str) -> str:
    if not _CLOCK.match(text):
        raise ValueError(f"'{text}' is not a time of day as HH:MM (00:00 .. 24:00)")
    return text


ClockTime = Annotated[str, AfterValidator(_clock_time)]
Window = tuple[ClockTime, ClockTime]


def minutes(text: str) -> int:
    """Minutes since local midnight of an HH:MM string (24:00 is 1440)."""
    hours, mins = text.split(":")
    return int(hours) * 60 + int(mins)


def in_windows(windows: tuple[Window, ...], local: time) -> bool:
    """Whether a local time of day falls in any window; a window may wrap past midnight (22:00-06:00)."""
    now = local.hour * 60 + local.minute
    for start_text, end_text in windows:
        start, end = minutes(start_text), minutes(end_text)
        if (start <= now < end) if start <= end else (now >= start or now < end):
            return True
    return False


class Comfort(Strict):
    setpoint_c: float = Field(default=20.5, ge=10, le=28, description="house air target while occupied")
    setback_c: float = Field(
        default=19.0, ge=5, le=28, description="house air target outside occupied hours (a heavy house recovers slowly)"
    )
    band_k: float = Field(default=0.5, gt=0, le=3, description="hysteresis: heat below target-band, stop above +band")
    expensive_relief_k: float = Field(
        default=1.0, ge=0, le=5, description="in expensive windows the house may sit this far below target"
    )
    cheap_boost_k: float = Field(
        default=1.0,
        ge=0,
        le=3,
        description="in cheap windows the house is heated this far above target (its mass stores heat)",
    )
    hard_min_c: float = Field(default=16.0, ge=5, le=25, description="below this the aux element may help")
    occupied: tuple[Window, ...] = (("06:30", "22:30"),)

    @model_validator(mode="after")
    def _ordered(self) -> Comfort:
        if not self.hard_min_c < self.setback_c <= self.setpoint_c:
            raise ValueError("need hard_min_c < setback_c <= setpoint_c")
        return self


class Tank(Strict):
    charge_target_c: float = Field(default=52.0, ge=25, le=70, description="charge until the bottom reaches this")
    max_c: float = Field(default=75.0, ge=40, le=95, description="over-temperature cut: heat sources off above this")

    @model_validator(mode="after")
    def _ordered(self) -> Tank:
        if not self.charge_target_c < self.max_c:
            raise ValueError("need charge_target_c < max_c")
        return self


class Tariff(Strict):
    """Time-of-use windows in local time. A fresh ATN price forecast (<= 48 h old) replaces them."""

    cheap: tuple[Window, ...] = (("00:00", "07:00"), ("13:00", "16:00"))
    expensive: tuple[Window, ...] = (("17:00", "21:00"),)
    cheap_price: float = Field(default=0.15, ge=0, le=100, description="per kWh in cheap windows (for the planner)")
    normal_price: float = Field(default=0.30, ge=0, le=100, description="per kWh outside the windows")
    expensive_price: float = Field(default=0.45, ge=0, le=100, description="per kWh in expensive windows")


class Safety(Strict):
    frost_c: float = Field(default=5.0, ge=0, le=15, description="any water below this: pumps run, heat is made")
    frost_outdoor_c: float = Field(
        default=2.0, ge=-10, le=10, description="with no water sensor left, circulate when outdoor is below this"
    )


class Authority(Strict):
    heartbeat_s: float = Field(default=10.0, gt=0, le=600)
    silence_timeout_s: float | None = Field(default=None, gt=0, le=3600, description="default 3 x heartbeat_s")
    handback_heartbeats: int = Field(default=2, ge=1, le=20)

    @property
    def silence_s(self) -> float:
        return self.silence_timeout_s if self.silence_timeout_s is not None else 3 * self.heartbeat_s


class Sensors(Strict):
    """Which channel plays which role in the policy."""

    house: Name = "house-air"
    outdoor: Name = "outdoor"
    tank_top: Name = "tank-top"
    tank_mid: Name = "tank-mid"
    tank_bottom: Name = "tank-bottom"
    water: tuple[Name, ...] = Field(
        default=("tank-top", "tank-mid", "tank-bottom", "hp-leaving", "hp-entering", "dist-supply", "dist-return"),
        description="every water temperature, for frost protection",
    )


class Actuators(Strict):
    """Which actuator plays which role."""

    heat_pump: Name = "heat-pump"
    store_pump: Name = "store-pump"
    distribution_pump: Name = "distribution-pump"
    aux: Name = "aux-element"


class ControlParams(Strict):
    tick_s: float = Field(default=1.0, ge=0.1, le=60)
    comfort: Comfort = Field(default_factory=Comfort)
    tank: Tank = Field(default_factory=Tank)
    heating_curve: HeatingCurve = Field(default_factory=HeatingCurve)
    tariff: Tariff = Field(default_factory=Tariff)
    safety: Safety = Field(default_factory=Safety)
    authority: Authority = Field(default_factory=Authority)
    sensors: Sensors = Field(default_factory=Sensors)
    actuators: Actuators = Field(default_factory=Actuators)
    planner: PlannerParams = Field(default_factory=PlannerParams)
    energy: EnergyParams = Field(default_factory=EnergyParams)

    @model_validator(mode="after")
    def _curve_below_charge(self) -> ControlParams:
        if self.heating_curve.max_supply_c > self.tank.charge_target_c:
            raise ValueError(
                f"heating_curve.max_supply_c ({self.heating_curve.max_supply_c:g}) is above tank.charge_target_c "
                f"({self.tank.charge_target_c:g}): the tank could never give the supply the curve asks for"
            )
        return self

    def supply_c(self, target_c: float, outdoor_c: float | None) -> float:
        """The heating curve's supply for this target and outdoor temperature (None: its assumed outdoor)."""
        return supply_c(self.heating_curve, target_c, outdoor_c, self.comfort.setpoint_c)
