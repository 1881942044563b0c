"""Conversions: published reference points and exact round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.conversions import (
    BetaModel,
    Divider,
    SteinhartHartModel,
    TableModel,
    rtd_resistance,
    rtd_temperature,
)


@pytest.mark.parametrize(
    ("temperature_c", "r0", "ohms"),
    [
        # IEC 60751 table values.
        (0.0, 100.0, 100.0),
        (100.0, 100.0, 138.5055),
        (-40.0, 100.0, 84.2707),
        (-100.0, 100.0, 60.2558),
        (200.0, 100.0, 175.8560),
        (0.0, 1000.0, 1000.0),
        (50.0, 1000.0, 1193.971),
        (-40.0, 1000.0, 842.707),
    ],
)
def test_rtd_reference_points(temperature_c: float, r0: float, ohms: float) -> None:
    assert rtd_resistance(temperature_c, r0) == pytest.approx(ohms, abs=2e-4 * r0 / 100)
    assert rtd_temperature(ohms, r0) == pytest.approx(temperature_c, abs=1e-3)


@given(st.floats(-200, 850), st.sampled_from([100.0, 1000.0]))
def test_rtd_round_trip(temperature_c: float, r0: float) -> None:
    assert rtd_temperature(rtd_resistance(temperature_c, r0), r0) == pytest.approx(temperature_c, abs=1e-6)


MODELS = [
    BetaModel(r25=10_000, beta=3950),
    BetaModel(r25=10_000, beta=3435),
    SteinhartHartModel(1.009249522e-3, 2.378405444e-4, 2.019202697e-7),
]


@pytest.mark.parametrize("model", MODELS, ids=repr)
@given(temperature_c=st.floats(-40, 125))
def test_thermistor_round_trip(model: BetaModel | SteinhartHartModel, temperature_c: float) -> None:
    assert model.temperature(model.resistance(temperature_c)) == pytest.approx(temperature_c, abs=1e-6)


def test_beta_reference_and_wrong_beta_error() -> None:
    right = BetaModel(r25=10_000, beta=3950)
    wrong = BetaModel(r25=10_000, beta=3435)
    assert right.resistance(25.0) == pytest.approx(10_000)
    # HARDWARE.md: a β 3950 part read as β 3435 is off by about -3.4 K at 0 °C and +6 K at 60 °C.
    assert wrong.temperature(right.resistance(0.0)) == pytest.approx(-3.4, abs=0.3)
    assert wrong.temperature(right.resistance(60.0)) - 60.0 == pytest.approx(6.0, abs=0.6)


def test_table_interpolates_in_log_resistance() -> None:
    table = TableModel((0.0, 25.0, 50.0), (32_650.0, 10_000.0, 3_603.0))
    assert table.temperature(10_000.0) == pytest.approx(25.0)
    midpoint = math.exp((math.log(10_000.0) + math.log(3_603.0)) / 2)
    assert table.temperature(midpoint) == pytest.approx(37.5)
    assert table.resistance(table.temperature(5_000.0)) == pytest.approx(5_000.0)


@pytest.mark.parametrize(
    ("temperatures", "resistances", "message"),
    [
        ((0.0,), (1.0,), "at least two"),
        ((0.0, 0.0), (2.0, 1.0), "strictly increasing"),
        ((0.0, 1.0), (1.0, 2.0), "fall as temperature rises"),
    ],
)
def test_table_rejects_nonsense(temperatures: tuple[float, ...], resistances: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TableModel(temperatures, resistances)


@pytest.mark.parametrize("wiring", ["ntc-to-ground", "ntc-to-supply"])
@given(r_ntc=st.floats(10, 1e6))
def test_divider_round_trip(wiring: str, r_ntc: float) -> None:
    divider = Divider(r_fixed=10_000, vref=3.3, wiring=wiring)  # type: ignore[arg-type]
    assert divider.resistance(divider.volts(r_ntc)) == pytest.approx(r_ntc, rel=1e-9)


@pytest.mark.parametrize(
    ("wiring", "r_ntc", "volts"),
    [("ntc-to-ground", math.inf, 3.3), ("ntc-to-ground", 0.0, 0.0), ("ntc-to-supply", math.inf, 0.0)],
)
def test_divider_rails(wiring: str, r_ntc: float, volts: float) -> None:
    divider = Divider(r_fixed=10_000, vref=3.3, wiring=wiring)  # type: ignore[arg-type]
    assert divider.volts(r_ntc) == pytest.approx(volts)
    with pytest.raises(ValueError, match="rails"):
        divider.resistance(volts)
