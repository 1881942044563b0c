"""Whole-chain accuracy: plant temperature -> probe -> emulated chip registers -> real Adafruit driver -> our
conversion. The RTD path must stay within 0.05 K of IEC 60751 from -40 to +120 °C; a thermistor within 0.1 K of
its declared model over 0..80 °C (where a 10 kΩ divider gives >= 80 LSB/K)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.simhelpers import Rig, demo_layout, layout_from

RTD_LAYOUT = """
backend = "sim"
[site]
id = "rtd-bench"
[buses.spi-0]
kind = "spi"
bus = 0
[devices.pt100]
kind = "max31865"
bus = "spi-0"
cs_pin = 5
rtd = "pt100"
wires = 4
[devices.pt1000]
kind = "max31865"
bus = "spi-0"
cs_pin = 6
rtd = "pt1000"
wires = 2
[channels.dist-supply]
device = "pt100"
plausible = [-50, 130]
[channels.dist-return]
device = "pt1000"
plausible = [-50, 130]
[sim]
bus_timing = false
"""


@pytest.fixture(scope="module")
def demo_rig() -> Iterator[Rig]:
    rig = Rig(demo_layout())
    yield rig
    rig.close()


@pytest.fixture(scope="module")
def rtd_rig() -> Iterator[Rig]:
    rig = Rig(layout_from(RTD_LAYOUT))
    yield rig
    rig.close()


@settings(max_examples=150, deadline=None)
@given(temperature_c=st.floats(-40.0, 120.0), channel=st.sampled_from(["dist-supply", "dist-return"]))
def test_rtd_chain_within_0_05_k(rtd_rig: Rig, temperature_c: float, channel: str) -> None:
    rtd_rig.world.rtds[channel].temperature_c = temperature_c
    value, error = rtd_rig.read(channel)
    assert error == ""
    assert value == pytest.approx(temperature_c, abs=0.05)


@pytest.mark.parametrize("temperature_c", [-40.0, -20.0, 0.0, 25.0, 60.0, 100.0, 120.0])
def test_rtd_chain_table_points(rtd_rig: Rig, temperature_c: float) -> None:
    for channel in ("dist-supply", "dist-return"):
        rtd_rig.world.rtds[channel].temperature_c = temperature_c
        value, error = rtd_rig.read(channel)
        assert error == "" and value == pytest.approx(temperature_c, abs=0.05), channel


THERMISTOR_CHANNELS = ["tank-top", "hp-leaving", "house-air", "outdoor"]  # beta, R-T table, Steinhart-Hart, mirror


@settings(max_examples=200, deadline=None)
@given(temperature_c=st.floats(0.0, 80.0), channel=st.sampled_from(THERMISTOR_CHANNELS))
def test_thermistor_chain_within_0_1_k(demo_rig: Rig, temperature_c: float, channel: str) -> None:
    demo_rig.world.thermistors[channel].temperature_c = temperature_c
    value, error = demo_rig.read(channel)
    assert error == ""
    assert value == pytest.approx(temperature_c, abs=0.1)
