"""The local fallback policy ("home alone"): a pure function from what the sensors say, the price band and the
time of day to what the heat pump, pumps and aux element should do, each with a reason a technician can read.

- Cheap window: charge the tank (start when its top falls below `charge_target_c`, stop when its bottom
  reaches it).
- Expensive window: no charging; the house runs from the tank, and may sit `expensive_relief_k` below target.
- The house is heated from the tank while the tank's top is at least the supply the heating curve asks for;
  when the tank is empty, the heat pump heats the house directly through it.
- The aux element only below the hard comfort minimum.
- Blind modes when critical sensors are missing, each saying what it can no longer see.
Hysteresis everywhere: the state carries what is running so that decisions do not flap.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import time

from controller.control.params import ControlParams, in_windows
from controller.control.tariff import Price
from controller.control.types import Command, Source

AUX_RELEASE_K = 1.0  # the aux element stops this far above the hard minimum
CHARGE_MARGIN_K = 3.0  # outside cheap windows, charge until the bottom is this far above the needed supply
BLIND_SUPPLY_BAND_K = 2.0  # blind house: the tank top is held within ± this of the heating curve


@dataclass(frozen=True, slots=True)
class PolicyState:
    heating_house: bool = False
    charging: bool = False
    aux: bool = False


@dataclass(frozen=True, slots=True)
class PolicyInputs:
    """Temperatures are None when their channel has no trustworthy value."""

    house_c: float | None
    outdoor_c: float | None
    tank_top_c: float | None
    tank_mid_c: float | None
    tank_bottom_c: float | None
    price: Price
    price_reason: str
    occupied: bool
    setpoint_c: float | None = None  # an override or the ATN's, replacing the schedule


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    state: PolicyState
    commands: dict[str, Command]
    summary: str


def occupied_now(params: ControlParams, local_time: time) -> bool:
    return in_windows(params.comfort.occupied, local_time)


def target_c(inputs: PolicyInputs, params: ControlParams) -> float:
    comfort = params.comfort
    target = (
        inputs.setpoint_c
        if inputs.setpoint_c is not None
        else (comfort.setpoint_c if inputs.occupied else comfort.setback_c)
    )
    if inputs.price is Price.EXPENSIVE:
        target -= comfort.expensive_relief_k
    elif inputs.price is Price.CHEAP:
        target += comfort.cheap_boost_k
    return target


def required_supply_c(target: float, outdoor_c: float | None, params: ControlParams) -> float:
    """The heating curve (`[control.heating_curve]`): the supply the emitters need at this outdoor temperature."""
    return params.supply_c(target, outdoor_c)


def _hysteresis(running: bool, value: float, start_below: float, stop_at: float) -> bool:
    if value < start_below:
        return True
    if value >= stop_at:
        return False
    return running


def decide(state: PolicyState, inputs: PolicyInputs, params: ControlParams) -> PolicyDecision:
    """What the local policy wants now, and the state to carry into the next decision."""
    roles = params.actuators
    top = inputs.tank_top_c if inputs.tank_top_c is not None else inputs.tank_mid_c
    bottom = inputs.tank_bottom_c if inputs.tank_bottom_c is not None else inputs.tank_mid_c
    target = target_c(inputs, params)
    band = params.comfort.band_k
    supply = required_supply_c(target, inputs.outdoor_c, params)

    def commands(hp: bool, store: bool, dist: bool, aux: bool, why: dict[str, str]) -> dict[str, Command]:
        wanted = {roles.heat_pump: hp, roles.store_pump: store, roles.distribution_pump: dist, roles.aux: aux}
        return {
            name: Command(actuator=name, on=on, source=Source.LOCAL, reason=why.get(name, why["*"]))
            for name, on in wanted.items()
        }

    if inputs.house_c is None and top is None:
        reason = "blind: no house or tank temperature; safe states hand heat to the heat pump's own controller"
        return PolicyDecision(PolicyState(), {}, reason)

    # Aux element: only below the hard comfort minimum (hysteresis above it).
    aux = state.aux
    if inputs.house_c is not None:
        hard_min = params.comfort.hard_min_c
        aux = _hysteresis(state.aux, inputs.house_c, hard_min, hard_min + AUX_RELEASE_K)
    aux_reason = (
        f"house {inputs.house_c:.1f} °C below the hard minimum {params.comfort.hard_min_c:g} °C"
        if aux and inputs.house_c is not None
        else "house above its hard minimum"
    )

    if top is None:
        assert inputs.house_c is not None
        heating = _hysteresis(state.heating_house, inputs.house_c, target - band, target + band)
        blind = (
            f"blind tank (no tank temperature): thermostat on house air {inputs.house_c:.1f} °C, target {target:.1f}"
        )
        decision = commands(heating, heating, heating, aux, {"*": blind, roles.aux: aux_reason})
        return PolicyDecision(PolicyState(heating, heating, aux), decision, blind)

    bottom_c = bottom if bottom is not None else top
    if inputs.house_c is None:
        # Weather compensation without feedback: the emitters run all the time and the tank top is held at the
        # supply the heating curve asks for. The curve aims between setback and setpoint: with no room sensor,
        # free gains (people, sun) would otherwise push the house too warm.
        supply = required_supply_c((params.comfort.setback_c + params.comfort.setpoint_c) / 2, inputs.outdoor_c, params)
        filling = top < supply - BLIND_SUPPLY_BAND_K or (state.charging and top < supply + BLIND_SUPPLY_BAND_K)
        blind = (
            f"blind house (no house temperature): emitters run continuously, tank held at the heating curve's "
            f"{supply:.1f} °C (top {top:.1f} °C)"
        )
        decision = commands(filling, filling, True, aux, {"*": blind, roles.aux: aux_reason})
        return PolicyDecision(PolicyState(True, filling, aux), decision, blind)
    heating = _hysteresis(state.heating_house, inputs.house_c, target - band, target + band)
    house_why = f"house {inputs.house_c:.1f} °C {'below' if heating else 'at or above'} target {target:.1f} ± {band:g}"

    tank_target = params.tank.charge_target_c
    if inputs.price is Price.CHEAP:
        # Buy heat now: fill the tank, and heat the house above its target (its mass keeps the heat for later).
        filling = _hysteresis(state.charging, top, tank_target, float("inf"))
        if state.charging and bottom_c >= tank_target:
            filling = False
        charging = filling or heating
        if filling:
            charge_why = (
                f"{inputs.price_reason}: charging the tank (top {top:.1f} °C, bottom {bottom_c:.1f} °C, "
                f"target {tank_target:g} °C)"
            )
        elif heating:
            charge_why = f"{inputs.price_reason}: storing heat in the house (target {target:.1f} °C)"
        else:
            charge_why = f"{inputs.price_reason}: tank charged (bottom {bottom_c:.1f} °C) and house warm"
    else:
        # Outside cheap windows, heat only what the house needs now: directly through the tank once its top
        # can no longer give the supply the heating curve asks for.
        needs = heating and top < supply
        charging = needs or (state.charging and heating and bottom_c < supply + CHARGE_MARGIN_K)
        where = "in an expensive window " if inputs.price is Price.EXPENSIVE else ""
        charge_why = (
            f"heating the house directly {where}(tank top {top:.1f} °C < needed supply {supply:.1f} °C)"
            if charging
            else f"{inputs.price_reason}: no charging (tank top {top:.1f} °C, needed supply {supply:.1f} °C)"
        )

    why = {
        "*": charge_why,
        roles.distribution_pump: house_why if heating else f"{house_why}: no heat needed",
        roles.aux: aux_reason,
    }
    new_state = replace(state, heating_house=heating, charging=charging, aux=aux)
    summary = f"{charge_why}; {house_why}"
    return PolicyDecision(new_state, commands(charging, charging, heating, aux, why), summary)
