"""The heat-pump panel shows the meters: electrical power, the loop's flow and the grid, each in its quality."""

from __future__ import annotations

import pytest

from tui.demo import sample_state
from tui.format import power_text
from tui.model import HearthModel
from tui.widgets.heat_pump import heat_pump_text, meters_text

NOW = 1_800_000_000.0


def model_with(**values: float | None) -> HearthModel:
    model = HearthModel()
    model.apply_state(sample_state(NOW, values=values), NOW)
    return model


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        ({}, "electric 2.14 kW  flow 18.2 l/min  grid import 2.89 kW"),
        ({"hp-power": 0.0, "hp-flow": 0.0}, "electric 0 W  flow 0.0 l/min  grid import 2.89 kW"),
        ({"grid-power": -1450.0}, "electric 2.14 kW  flow 18.2 l/min  grid export 1.45 kW"),
        ({"hp-power": None}, "electric —  flow 18.2 l/min  grid import 2.89 kW"),
        ({"grid-power": None, "hp-flow": None}, "electric 2.14 kW  flow —  grid —"),
    ],
)
def test_meters_line(values: dict[str, float | None], shown: str) -> None:
    assert meters_text(model_with(**values)).plain == shown


def test_the_panel_puts_the_meters_under_the_state_line() -> None:
    lines = heat_pump_text(model_with(), NOW, None).plain.splitlines()
    assert lines[0].startswith(" ON ")
    assert lines[1] == "electric 2.14 kW  flow 18.2 l/min  grid import 2.89 kW"


def test_a_site_without_meters_shows_no_meter_line() -> None:
    model = HearthModel()
    state = sample_state(NOW)
    for name in ("hp-power", "hp-flow", "grid-power"):
        del state.readings[name]
    model.apply_state(state, NOW)
    assert meters_text(model).plain == ""
    assert "electric" not in heat_pump_text(model, NOW, None).plain


@pytest.mark.parametrize(
    ("watts", "text"),
    [
        (None, "—"),
        (0.0, "0 W"),
        (999.4, "999 W"),
        (2534.0, "2.53 kW"),
        (-0.3, "0 W"),
        (-0.0, "0 W"),
        (-600.0, "-600 W"),
    ],
)
def test_power_text(watts: float | None, text: str) -> None:
    assert power_text(watts) == text


@pytest.mark.parametrize(
    ("heat", "shown"),
    [
        (-11.0, "heat 0 W"),  # the compressor off, the store pump circulating: the probes' noise (outside test 3)
        (49.0, "heat 0 W"),
        (76.8, "heat 77 W"),
        (-600.0, "heat -600 W"),  # a defrost takes heat back: shown, never clipped
        (4300.0, "heat 4.30 kW"),
    ],
)
def test_heat_within_the_probes_resolution_reads_zero(heat: float, shown: str) -> None:
    from controller.protocol import ReadingState

    model = HearthModel()
    state = sample_state(NOW)
    state.readings["hp-heat"] = ReadingState(value=heat, unit="W", quality="ok", ts=NOW)
    model.apply_state(state, NOW)
    assert shown in meters_text(model).plain
