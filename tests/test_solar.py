"""The solar-surplus rule: charge the tank with PV that would be exported, after the export has lasted, until
the tank bottom is warm or the house imports again for a while; within the interlocks, with its reason."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from controller.control.tick import ControlState, TickInputs, control_tick, initial_state
from controller.control.types import Source
from controller.energy.solar import SolarParams, SolarState, solar_step
from controller.layout.model import Layout
from controller.readings import Quality, Reading, Snapshot
from tests.simhelpers import demo_layout

P = SolarParams(enabled=True, export_w=1000, for_s=300, import_w=300, tank_c=60)  # a tank bottom of 60 °C ends a charge


def run(steps: list[tuple[float, float | None, float | None]]) -> list[bool]:
    state, out = SolarState(), []
    for now, grid, tank in steps:
        state, reason = solar_step(state, grid, tank, P, now)
        out.append(reason is not None)
    return out


@pytest.mark.parametrize(
    ("steps", "charging"),
    [
        # export must last for_s before a charge starts
        ([(0, -1500, 40), (100, -1500, 40), (299, -1500, 40), (300, -1500, 40)], [False, False, False, True]),
        # a dip below the threshold restarts the wait
        ([(0, -1500, 40), (200, -500, 40), (300, -1500, 40), (500, -1500, 40), (600, -1500, 40)],
         [False, False, False, False, True]),
        # once charging, the heat pump's own draw turns export into a small import: it goes on
        ([(0, -2000, 40), (300, -2000, 40), (400, 200, 40), (900, 250, 40)], [False, True, True, True]),
        # importing more than import_w for for_s ends it
        ([(0, -2000, 40), (300, -2000, 40), (400, 900, 40), (699, 900, 40), (700, 900, 40)],
         [False, True, True, True, False]),
        # after a warm tank ended a charge, it waits until the bottom has cooled by restart_k
        ([(0, -2000, 40), (300, -2000, 40), (301, -2000, 60), (400, -2000, 57), (500, -2000, 54), (800, -2000, 54)],
         [False, True, False, False, False, True]),
        # a warm tank bottom ends it at once; no P1 reading or no tank reading too
        ([(0, -2000, 40), (300, -2000, 40), (301, -2000, 60)], [False, True, False]),
        ([(0, -2000, 40), (300, -2000, 40), (301, None, 40)], [False, True, False]),
        ([(0, -2000, 40), (300, -2000, 40), (301, -2000, None)], [False, True, False]),
    ],
)  # fmt: skip
def test_solar_step(steps: list[tuple[float, float | None, float | None]], charging: list[bool]) -> None:
    assert run(steps) == charging


def test_disabled_never_charges() -> None:
    off = SolarParams(enabled=False)
    assert solar_step(SolarState(0.0, True, None), -5000, 30, off, 1000) == (SolarState(), None)


def with_solar(layout: Layout) -> Layout:
    energy = layout.control.energy
    solar = energy.solar.model_copy(update={"enabled": True})
    control = layout.control.model_copy(update={"energy": energy.model_copy(update={"solar": solar})})
    return layout.model_copy(update={"control": control})


def snapshot(t: float, grid: float) -> Snapshot:
    values = {"house-air": 21.5, "outdoor": 8.0, "tank-top": 48.0, "tank-mid": 46.0, "tank-bottom": 45.0}
    readings = {n: Reading(n, v, "degC", Quality.OK, t) for n, v in values.items()}
    readings["grid-power"] = Reading("grid-power", grid, "W", Quality.OK, t)
    return Snapshot(t, MappingProxyType(readings))


def test_the_tick_charges_with_surplus_and_says_so() -> None:
    layout = with_solar(demo_layout())
    state: ControlState = initial_state(layout, 0.0, dict.fromkeys(layout.actuators, False))
    start = 1_767_268_800.0  # 2026-01-01 12:00 UTC: 13:00 local, a warm house, nothing else to do
    asked = {}
    for i in range(0, 700, 10):
        result = control_tick(
            state, TickInputs(now=start + i, monotonic=float(i), snapshot=snapshot(start + i, -2500)), layout
        )
        state = result.state
        asked[i] = result.requests["heat-pump"]
    assert not asked[200].on
    charge = asked[600]
    assert charge.on and charge.source is Source.LOCAL and charge.reason.startswith("solar surplus: charging the tank")
    assert result.requests["store-pump"].on
