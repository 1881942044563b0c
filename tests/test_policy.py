"""The local fallback policy: a table of situations and what it decides, with hysteresis and blind modes."""

from __future__ import annotations

import pytest

from controller.control.policy import PolicyInputs, PolicyState, decide, required_supply_c
from controller.control.tariff import Price
from tests.simhelpers import demo_layout

PARAMS = demo_layout().control
HP, STORE, DIST, AUX = "heat-pump", "store-pump", "distribution-pump", "aux-element"


def inputs(**changes: object) -> PolicyInputs:
    base: dict[str, object] = {
        "house_c": 20.5,
        "outdoor_c": 0.0,
        "tank_top_c": 48.0,
        "tank_mid_c": 44.0,
        "tank_bottom_c": 38.0,
        "price": Price.NORMAL,
        "price_reason": "normal tariff",
        "occupied": True,
    }
    base.update(changes)
    return PolicyInputs(**base)  # type: ignore[arg-type]


CASES = [
    # (what, state, inputs, expected {actuator: on}, words in the heat pump's reason)
    (
        "cheap window, tank top below target: charge",
        PolicyState(),
        inputs(price=Price.CHEAP),
        {HP: True, STORE: True},
        "charging the tank",
    ),
    (
        "cheap window, charging until the bottom reaches target",
        PolicyState(charging=True),
        inputs(price=Price.CHEAP, tank_top_c=55.0, tank_bottom_c=50.0),
        {HP: True},
        "charging",
    ),
    (
        "cheap window, bottom reached target and house warm: stop",
        PolicyState(charging=True),
        inputs(price=Price.CHEAP, house_c=22.1, tank_top_c=56.0, tank_bottom_c=52.5),
        {HP: False},
        "tank charged",
    ),
    (
        "cheap window, stopped and top still above target: stay off",
        PolicyState(),
        inputs(price=Price.CHEAP, house_c=22.1, tank_top_c=53.0, tank_bottom_c=45.0),
        {HP: False},
        "tank charged",
    ),
    (
        "cheap window, tank full but house below its boosted target: store heat in the house",
        PolicyState(),
        inputs(price=Price.CHEAP, house_c=20.8, tank_top_c=53.0, tank_bottom_c=52.5),
        {HP: True, DIST: True},
        "storing heat in the house",
    ),
    (
        "normal, house cold, tank useful: discharge, no heat pump",
        PolicyState(),
        inputs(house_c=19.5),
        {HP: False, DIST: True},
        "no charging",
    ),
    (
        "normal, house cold, tank empty: direct heating",
        PolicyState(),
        inputs(house_c=19.5, tank_top_c=30.0, tank_mid_c=28.0, tank_bottom_c=25.0),
        {HP: True, STORE: True, DIST: True},
        "heating the house directly",
    ),
    ("normal, house warm: nothing runs", PolicyState(), inputs(house_c=21.2), {HP: False, DIST: False}, "no charging"),
    (
        "hysteresis: inside the band keeps heating",
        PolicyState(heating_house=True),
        inputs(house_c=20.7),
        {DIST: True},
        "",
    ),
    (
        "hysteresis: inside the band stays off",
        PolicyState(heating_house=False),
        inputs(house_c=20.3),
        {DIST: False},
        "",
    ),
    (
        "expensive window relaxes the target: 19.8 °C needs nothing",
        PolicyState(),
        inputs(price=Price.EXPENSIVE, house_c=19.8),
        {HP: False, DIST: False},
        "",
    ),
    (
        "expensive window, house cold and tank empty: direct heating to protect comfort",
        PolicyState(),
        inputs(price=Price.EXPENSIVE, house_c=18.5, tank_top_c=25.0, tank_mid_c=24.0, tank_bottom_c=23.0),
        {HP: True, DIST: True},
        "in an expensive window",
    ),
    (
        "aux only below the hard minimum",
        PolicyState(),
        inputs(house_c=15.5, tank_top_c=25.0, tank_mid_c=24.0, tank_bottom_c=23.0),
        {AUX: True, HP: True},
        "",
    ),
    ("aux not above the hard minimum", PolicyState(), inputs(house_c=16.5), {AUX: False}, ""),
    ("setback outside occupied hours", PolicyState(), inputs(occupied=False, house_c=19.0), {DIST: False}, ""),
    (
        "a setpoint override replaces the schedule",
        PolicyState(),
        inputs(setpoint_c=23.0, house_c=21.0),
        {DIST: True},
        "",
    ),
    (
        "blind tank: thermostat on house air",
        PolicyState(),
        inputs(house_c=19.0, tank_top_c=None, tank_mid_c=None, tank_bottom_c=None),
        {HP: True, STORE: True, DIST: True},
        "blind tank",
    ),
    (
        "blind house: emitters run, tank top held at the heating curve",
        PolicyState(),
        inputs(house_c=None, tank_top_c=26.0, tank_mid_c=25.0),
        {DIST: True, HP: True},
        "blind house",
    ),
    (
        "blind house: tank top at the curve, heat pump rests",
        PolicyState(),
        inputs(house_c=None, tank_top_c=30.0, tank_mid_c=28.0),
        {DIST: True, HP: False},
        "blind house",
    ),
    (
        "tank top missing: the middle stands in for it",
        PolicyState(),
        inputs(price=Price.CHEAP, tank_top_c=None, tank_mid_c=40.0),
        {HP: True},
        "top 40.0",
    ),
]


@pytest.mark.parametrize(("what", "state", "given", "expected", "reason_words"), CASES, ids=[c[0] for c in CASES])
def test_policy_table(
    what: str, state: PolicyState, given: PolicyInputs, expected: dict[str, bool], reason_words: str
) -> None:
    decision = decide(state, given, PARAMS)
    assert {name: decision.commands[name].on for name in expected} == expected
    assert reason_words in decision.commands[HP].reason
    assert all(command.reason for command in decision.commands.values())


def test_totally_blind_asks_nothing_so_safe_states_rule() -> None:
    decision = decide(PolicyState(), inputs(house_c=None, tank_top_c=None, tank_mid_c=None, tank_bottom_c=None), PARAMS)
    assert decision.commands == {}
    assert "blind" in decision.summary


@pytest.mark.parametrize(
    ("outdoor", "supply"),
    [(None, 30.75), (20.0, 28.0), (0.0, 30.75), (-10.0, 35.75), (-40.0, 50.0)],
)
def test_heating_curve(outdoor: float | None, supply: float) -> None:
    assert required_supply_c(20.5, outdoor, PARAMS) == pytest.approx(supply, abs=0.05)
