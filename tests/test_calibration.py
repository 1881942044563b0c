"""Calibration settings reach the conversions: the measured divider supply per board, a channel's offset or
two-point correction, a 2-wire RTD's lead resistance, and the MAX31865 fault thresholds from the plausible
range. Checked through the real drivers on the emulated chips, at the points HARDWARE.md documents."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.conversions import Divider
from controller.drivers.max31865 import Max31865Config, fault_thresholds
from controller.emulators.max31865 import REG_HFT_MSB, REG_LFT_LSB, REG_LFT_MSB
from controller.layout.calibration import Calibration
from controller.layout.load import LayoutError
from tests.simhelpers import Rig, layout_from

LAYOUT = """
backend = "sim"
[site]
id = "calibration-bench"
[buses.i2c-1]
kind = "i2c"
bus = 1
[buses.spi-0]
kind = "spi"
bus = 0
[devices.ads]
kind = "ads1115"
bus = "i2c-1"
address = 0x48
{supply}
[devices.rtd-a]
kind = "max31865"
bus = "spi-0"
cs_pin = 5
rtd = "pt100"
wires = 2
{leads}
[devices.rtd-b]
kind = "max31865"
bus = "spi-0"
cs_pin = 6
rtd = "pt1000"
wires = 3
[channels.tank-top]
device = "ads"
input = "A0"
sensor = {{ kind = "ntc", beta = 3950, r25 = 10000, r_fixed = 10000 }}
plausible = [-40, 120]
{calibration}
[channels.outdoor]
device = "ads"
input = "A1"
sensor = {{ kind = "ntc", beta = 3950, r25 = 10000, r_fixed = 10000, wiring = "ntc-to-supply" }}
plausible = [-40, 120]
[channels.dist-supply]
device = "rtd-a"
plausible = [0, 80]
[channels.dist-return]
device = "rtd-b"
plausible = [0, 80]
[sim]
bus_timing = false
"""
TRUE_RAIL_V = 3.333  # the board's 3.3 V rail, 1 % high


def rig(supply: str = "", leads: str = "", calibration: str = "") -> Rig:
    return Rig(layout_from(LAYOUT.format(supply=supply, leads=leads, calibration=calibration)))


def on_true_rail(bench: Rig) -> None:
    """The simulated board's dividers are really fed from TRUE_RAIL_V, whatever the layout says."""
    for name in ("tank-top", "outdoor"):
        probe = bench.world.thermistors[name]
        probe.divider = Divider(probe.divider.r_fixed, TRUE_RAIL_V, probe.divider.wiring)


@pytest.fixture
def uncalibrated() -> Iterator[Rig]:
    bench = rig()
    on_true_rail(bench)
    yield bench
    bench.close()


@pytest.fixture
def calibrated() -> Iterator[Rig]:
    bench = rig(supply=f"supply_v = {TRUE_RAIL_V}")
    on_true_rail(bench)
    yield bench
    bench.close()


# HARDWARE.md: a rail 1 % off gives up to 1.9 K (thermistor to ground, -20 °C) and 4.1 K (to supply, 90 °C).
RAIL_POINTS = [("tank-top", -20.0, 1.9), ("outdoor", 90.0, 4.1)]


@pytest.mark.parametrize(("channel", "temperature_c", "documented_k"), RAIL_POINTS)
def test_uncalibrated_rail_errs_as_documented(
    uncalibrated: Rig, channel: str, temperature_c: float, documented_k: float
) -> None:
    uncalibrated.world.thermistors[channel].temperature_c = temperature_c
    value, error = uncalibrated.read(channel)
    assert error == "" and value is not None
    assert abs(value - temperature_c) == pytest.approx(documented_k, abs=0.15)


@pytest.mark.parametrize(("channel", "temperature_c", "documented_k"), RAIL_POINTS)
def test_measured_rail_removes_the_error(
    calibrated: Rig, channel: str, temperature_c: float, documented_k: float
) -> None:
    calibrated.world.thermistors[channel].temperature_c = temperature_c
    value, error = calibrated.read(channel)
    assert error == "" and value == pytest.approx(temperature_c, abs=0.1)


def test_a_sensor_vref_overrides_the_board_supply() -> None:
    bench = rig(supply="supply_v = 3.2")
    try:
        sensor = bench.layout.channels["tank-top"].sensor
        assert sensor is not None and sensor.kind == "ntc"
        assert sensor.divider(3.2).vref == 3.2
        assert sensor.model_copy(update={"vref": 3.31}).divider(3.2).vref == 3.31
    finally:
        bench.close()


@pytest.mark.parametrize(
    ("calibration", "read", "expected"),
    [
        (Calibration(offset=-0.4), 20.0, 19.6),
        (Calibration(offset=0.25), -5.0, -4.75),
        (Calibration(two_point=((0.3, 0.0), (99.1, 100.0))), 0.3, 0.0),
        (Calibration(two_point=((0.3, 0.0), (99.1, 100.0))), 99.1, 100.0),
        (Calibration(two_point=((0.3, 0.0), (99.1, 100.0))), 49.7, 50.0),
        (Calibration(two_point=((10.0, 10.5), (60.0, 60.0))), 35.0, 35.25),
    ],
)
def test_calibration_table(calibration: Calibration, read: float, expected: float) -> None:
    assert calibration.apply(read) == pytest.approx(expected, abs=1e-9)


def test_channel_calibration_reaches_the_reading() -> None:
    bench = rig(supply=f"supply_v = {TRUE_RAIL_V}", calibration="calibration = { offset = -0.5 }")
    try:
        on_true_rail(bench)
        bench.world.thermistors["tank-top"].temperature_c = 40.0
        value, error = bench.read("tank-top")
        assert error == "" and value == pytest.approx(39.5, abs=0.1)
    finally:
        bench.close()


@pytest.mark.parametrize(
    ("calibration", "message"),
    [
        ("{ offset = 1, two_point = [[0, 0], [100, 100]] }", "give an offset or a two_point correction, not both"),
        ("{ two_point = [[20, 20], [20, 21]] }", "the two points must be read at different values"),
        ("{ two_point = [[0, 0], [10, 20]] }", "the two points give a gain of 2.000"),
        ("{ ofset = 1 }", "calibration.ofset: unknown key 'ofset'"),
    ],
)
def test_bad_calibration_is_a_layout_error(calibration: str, message: str) -> None:
    with pytest.raises(LayoutError) as caught:
        layout_from(LAYOUT.format(supply="", leads="", calibration=f"calibration = {calibration}"))
    assert any(message in str(problem) for problem in caught.value.problems), caught.value


# HARDWARE.md: a 2-wire PT100 reads its leads too, 0.39 Ω per K: 1 Ω of lead is about +2.6 K.
def test_two_wire_leads_read_high_and_lead_ohms_removes_them() -> None:
    bench = rig()
    try:
        bench.world.chips["rtd-a"].lead_ohms = 0.5  # each lead: 1 Ω in the loop
        bench.world.rtds["dist-supply"].temperature_c = 50.0
        value, error = bench.read("dist-supply")
        assert error == "" and value == pytest.approx(52.6, abs=0.1)
    finally:
        bench.close()
    bench = rig(leads="lead_ohms = 1.0")
    try:
        bench.world.rtds["dist-supply"].temperature_c = 50.0
        value, error = bench.read("dist-supply")
        assert error == "" and value == pytest.approx(50.0, abs=0.05)
    finally:
        bench.close()


def test_lead_ohms_only_for_two_wires() -> None:
    with pytest.raises(ValueError, match="lead_ohms applies to 2-wire RTDs only"):
        Max31865Config(kind="max31865", bus="spi-0", cs_pin=5, wires=3, lead_ohms=1.0)


def test_thresholds_are_programmed_from_the_plausible_range() -> None:
    bench = rig(leads="lead_ohms = 1.0")
    try:
        bench.read("dist-supply")
        chip = bench.world.chips["rtd-a"]
        high = chip.peek(REG_HFT_MSB) << 8 | chip.peek(REG_HFT_MSB + 1)
        low = chip.peek(REG_LFT_MSB) << 8 | chip.peek(REG_LFT_LSB)
        assert (low, high) == fault_thresholds((0.0, 80.0), 100.0, 1.0, 430.0)
        # -10 °C and 90 °C of a PT100 (96.09 Ω and 134.71 Ω, IEC 60751 tables) plus the leads, as 15-bit ratios
        # of the 430 Ω reference in bits 15..1.
        assert low >> 1 == pytest.approx(97.09 / 430 * 32768, abs=1)
        assert high >> 1 == pytest.approx(135.71 / 430 * 32768, abs=1)
    finally:
        bench.close()


@pytest.mark.parametrize(
    ("channel", "device", "fault", "named"),
    [("dist-supply", "rtd-a", "short", "RTD shorted"), ("dist-return", "rtd-b", "open", "RTD open")],
)
def test_open_and_short_are_named_on_a_real_chip(channel: str, device: str, fault: str, named: str) -> None:
    """A short behind 2 Ω of leads reads a few ohms, not zero: without thresholds it was an out_of_range
    -240 °C; the programmed low threshold makes the chip flag it and the driver name it."""
    bench = rig()
    try:
        bench.world.chips[device].lead_ohms = 1.0
        bench.world.inject(channel, fault)
        value, error = bench.read(channel)
        assert value is None and error.startswith(named), error
        threshold = "below low threshold" if fault == "short" else "above high threshold"
        assert threshold in error
    finally:
        bench.close()
