"""The emulated buses and chips, driven by the real, unmodified Adafruit drivers.

Most tests run on virtual time: the buses "sleep" each transaction's wire time on a `VirtualTime` and the chips
read the same clock, so a driver that busy-polls a conversion advances time exactly as on a Pi, and the suite
stays fast and deterministic. A few tests use real time to show that the timing is honest.
"""

from __future__ import annotations

import os

os.environ["BLINKA_SKIP_DEPENDENCY_CHECK"] = "1"

import errno
import math
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import adafruit_max31865
import digitalio
import pytest
from adafruit_ads1x15 import ads1x15
from adafruit_ads1x15.ads1115 import ADS1115
from adafruit_ads1x15.analog_in import AnalogIn
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.conversions import BetaModel, Divider, rtd_resistance
from controller.emulators.ads1115 import Ads1115Emulator, noise_lsb_rms
from controller.emulators.bus import EmulatedI2C, EmulatedSPI
from controller.emulators.gpio import EmulatedGPIO, EmulatedLine
from controller.emulators.max31865 import Max31865Emulator
from controller.emulators.probes import RtdProbe, SensorFault, ThermistorProbe

FSR = {2 / 3: 6.144, 1: 4.096, 2: 2.048, 4: 1.024, 8: 0.512, 16: 0.256}
RREF = 4300.0
RTD_LSB = RREF / 32768


class VirtualTime:
    """A clock that moves only when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        self.slept += max(0.0, seconds)


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


class Recorder:
    """An I2C target that records what it is sent and answers a fixed pattern."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def read(self, n: int) -> bytes:
        return bytes(range(1, n + 1))


# ---------------------------------------------------------------------------------------------------------
# GPIO


def test_gpio_line_identity_and_mapping() -> None:
    gpio = EmulatedGPIO("gpiochip4")
    line = gpio.line(17)
    assert gpio.line(17) is line
    assert dict(gpio.lines) == {17: line}
    assert line.number == 17 and line.direction == "input" and line.level is False


def test_switch_to_output_and_listeners() -> None:
    line = EmulatedGPIO().line(22)
    seen: list[bool] = []
    line.add_listener(seen.append)
    line.switch_to_output(value=True)
    assert (line.direction, line.value, line.level) == ("output", True, True)
    line.value = True  # no change, no call
    line.value = False
    line.value = False
    line.value = True
    assert seen == [True, False, True]


@pytest.mark.parametrize(
    ("pull", "board_pull", "external", "expected"),
    [
        (None, None, None, False),  # floating input reads low
        ("up", None, None, True),
        ("down", True, None, False),  # the software pull beats a weak board resistor
        (None, True, None, True),
        ("up", None, False, False),  # an external driver beats any pull
        (digitalio.Pull.UP, None, None, True),  # Blinka's constants are accepted too
    ],
)
def test_input_level_resolution(pull: object, board_pull: bool | None, external: bool | None, expected: bool) -> None:
    line = EmulatedLine(4)
    line.board_pull = board_pull
    line.drive(external)
    line.switch_to_input(pull=pull)
    assert line.value is expected
    with pytest.raises(AttributeError):
        line.value = True


def test_blinka_direction_constant() -> None:
    line = EmulatedLine(5)
    line.direction = digitalio.Direction.OUTPUT
    assert line.direction == "output" and line.value is False


def test_stuck_at_ignores_writes_and_notifies() -> None:
    line = EmulatedGPIO().line(23)
    seen: list[bool] = []
    line.add_listener(seen.append)
    line.switch_to_output(value=False)
    line.stuck_at = True
    assert line.value is True
    line.value = False  # the driver writes; the welded contact does not care
    assert line.level is True
    line.stuck_at = None
    assert line.level is False
    assert seen == [True, False]


def test_deinit_releases_the_line() -> None:
    line = EmulatedLine(6)
    line.switch_to_output(True)
    line.deinit()
    assert line.level is False
    with pytest.raises(ValueError):
        line.value = True


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["value", "stuck", "input", "output"]), st.booleans()), max_size=30))
def test_listener_sees_exactly_the_level_changes(ops: list[tuple[str, bool]]) -> None:
    line = EmulatedLine(7)
    line.board_pull = True
    seen: list[bool] = []
    line.add_listener(seen.append)
    levels = [line.level]
    for op, flag in ops:
        if op == "value" and line.direction == "output":
            line.value = flag
        elif op == "stuck":
            line.stuck_at = flag if flag else None
        elif op == "input":
            line.switch_to_input("down" if flag else None)
        elif op == "output":
            line.switch_to_output(flag)
        if line.level != levels[-1]:
            levels.append(line.level)
    assert seen == levels[1:]


# ---------------------------------------------------------------------------------------------------------
# Buses


def test_missing_address_is_remote_io_error() -> None:
    i2c = EmulatedI2C(1, timing=False)
    with pytest.raises(OSError) as raised:
        i2c.writeto(0x48, b"\x01")
    assert raised.value.errno == errno.EREMOTEIO == 121
    with pytest.raises(OSError) as raised:
        i2c.readfrom_into(0x48, bytearray(2))
    assert raised.value.errno == 121


def test_probe_scan_and_buffer_slices() -> None:
    i2c = EmulatedI2C(1, timing=False)
    target = Recorder()
    i2c.attach(0x20, target)
    broken = Ads1115Emulator()
    broken.bus_error = True
    i2c.attach(0x49, broken)
    i2c.writeto(0x20, b"")  # the drivers' probe
    assert i2c.scan() == [0x20]
    i2c.writeto(0x20, b"abcdef", start=1, end=4)
    buffer = bytearray(b"......")
    i2c.writeto_then_readfrom(0x20, b"xyz", buffer, out_start=2, in_start=1, in_end=4)
    assert target.written == [b"", b"", b"bcd", b"z"]
    assert buffer == bytearray(b".\x01\x02\x03..")
    with pytest.raises(ValueError):
        i2c.attach(0x20, Recorder())


@pytest.mark.parametrize(
    ("frequency", "operation", "wire_bytes", "payload"),
    [
        (100_000, "write3", 4, 3),
        (400_000, "write3", 4, 3),
        (100_000, "read2", 3, 2),
        (100_000, "write1_read2", 5, 3),  # both address bytes (repeated start) count
        (100_000, "probe", 1, 0),
        (100_000, "missing", 1, 0),  # the NACKed address byte still took its time
    ],
)
def test_i2c_wire_time_and_counters(
    vt: VirtualTime, frequency: int, operation: str, wire_bytes: int, payload: int
) -> None:
    i2c = EmulatedI2C(1, frequency=frequency, sleep=vt.sleep)
    i2c.attach(0x20, Recorder())
    if operation == "write3":
        i2c.writeto(0x20, b"abc")
    elif operation == "read2":
        i2c.readfrom_into(0x20, bytearray(2))
    elif operation == "write1_read2":
        i2c.writeto_then_readfrom(0x20, b"\x00", bytearray(2))
    elif operation == "probe":
        i2c.writeto(0x20, b"")
    else:
        with pytest.raises(OSError):
            i2c.writeto(0x21, b"abc")
    assert vt.slept == pytest.approx(wire_bytes * 9 / frequency)
    assert (i2c.transactions, i2c.bytes_moved) == (1, payload)


def test_wall_time_is_at_least_wire_time() -> None:
    i2c = EmulatedI2C(1, frequency=100_000)
    i2c.attach(0x20, Recorder())
    spi = EmulatedSPI(0)
    for _ in range(5):
        started = time.perf_counter()
        i2c.writeto(0x20, bytes(10))
        assert time.perf_counter() - started >= 11 * 9 / 100_000
    assert spi.try_lock()
    spi.configure(baudrate=100_000)
    started = time.perf_counter()
    spi.write(bytes(100))
    assert time.perf_counter() - started >= 100 * 8 / 100_000


def test_timing_off_is_fast() -> None:
    i2c = EmulatedI2C(1, timing=False)
    i2c.attach(0x20, Recorder())
    started = time.perf_counter()
    for _ in range(2000):
        i2c.writeto(0x20, bytes(10))
    assert time.perf_counter() - started < 0.5  # 2000 x 0.99 ms of wire time were skipped
    assert (i2c.transactions, i2c.bytes_moved) == (2000, 20_000)


def test_try_lock_is_exclusive_across_threads() -> None:
    i2c = EmulatedI2C(1, timing=False)
    assert i2c.try_lock()
    assert not i2c.try_lock()
    other: list[bool] = []
    thread = threading.Thread(target=lambda: other.append(i2c.try_lock()))
    thread.start()
    thread.join()
    assert other == [False]
    i2c.unlock()
    i2c.unlock()  # tolerated
    assert i2c.try_lock()


def test_spi_configure_needs_the_lock_and_deinit_ends_use(vt: VirtualTime) -> None:
    spi = EmulatedSPI(0, sleep=vt.sleep)
    with pytest.raises(RuntimeError):
        spi.configure(baudrate=500_000)
    assert spi.try_lock()
    spi.configure(baudrate=500_000, phase=1)
    spi.write(b"\x00\x01\x02")
    assert vt.slept == pytest.approx(3 * 8 / 500_000)
    buffer = bytearray(2)
    spi.readinto(buffer)  # nobody selected: MISO is pulled up
    assert buffer == b"\xff\xff"
    spi.deinit()
    with pytest.raises(ValueError):
        spi.write(b"\x00")


# ---------------------------------------------------------------------------------------------------------
# ADS1115


def make_ads(
    vt: VirtualTime | None,
    *,
    gain: float = 1,
    data_rate: int = 860,
    mode: int = ads1x15.Mode.SINGLE,
    vdd: float = 3.3,
    noise_scale: float = 0.0,
    seed: int = 0,
) -> tuple[EmulatedI2C, Ads1115Emulator, ADS1115]:
    """Bus, chip and real driver. With `vt`, everything runs on virtual time; without, on real time."""
    if vt is None:
        i2c = EmulatedI2C(1, timing=False)
        chip = Ads1115Emulator(vdd=vdd, noise_scale=noise_scale, seed=seed)
    else:
        i2c = EmulatedI2C(1, sleep=vt.sleep)
        chip = Ads1115Emulator(vdd=vdd, clock=vt.monotonic, noise_scale=noise_scale, seed=seed)
    i2c.attach(0x48, chip)
    ads = ADS1115(i2c, address=0x48, mode=mode, data_rate=data_rate, gain=gain)
    return i2c, chip, ads


def raw_read(i2c: EmulatedI2C, pointer: int, n: int = 2) -> bytes:
    buffer = bytearray(n)
    i2c.writeto_then_readfrom(0x48, bytes([pointer]), buffer)
    return bytes(buffer)


@pytest.mark.parametrize("noise_scale", [0.0, 1.0])
@pytest.mark.parametrize("pin", [0, 1, 2, 3])
@pytest.mark.parametrize("gain", list(FSR))
def test_ads_single_ended_voltage(vt: VirtualTime, gain: float, pin: int, noise_scale: float) -> None:
    _, chip, ads = make_ads(vt, gain=gain, noise_scale=noise_scale)
    fsr = FSR[gain]
    wanted = min(0.73 * fsr, 3.1) - 0.003 * pin
    for ain in range(4):  # every other input holds something else, so a wrong mux shows
        chip.set_input(ain, wanted if ain == pin else 0.05 + 0.1 * ain)
    channel = AnalogIn(ads, pin)
    lsb = fsr / 32768
    if noise_scale == 0.0:
        assert abs(channel.voltage - wanted) <= 0.5 * lsb + 1e-12
        assert ads.read(pin + 4) == channel.value
    else:
        reads = [channel.voltage for _ in range(8)]
        assert abs(statistics.fmean(reads) - wanted) <= 2 * lsb


@pytest.mark.parametrize(
    ("pair", "positive", "negative"),
    [((0, 1), 1.5, 2.0), ((0, 3), 2.5, 0.5), ((1, 3), 0.2, 0.1), ((2, 3), 3.0, 3.2)],
)
def test_ads_differential(vt: VirtualTime, pair: tuple[int, int], positive: float, negative: float) -> None:
    _, chip, ads = make_ads(vt)
    for ain in range(4):
        chip.set_input(ain, 1.111)
    chip.set_input(pair[0], positive)
    chip.set_input(pair[1], negative)
    assert AnalogIn(ads, *pair).voltage == pytest.approx(positive - negative, abs=0.5 * 4.096 / 32768)


@pytest.mark.parametrize(
    ("vdd", "gain", "a0", "a1", "pair", "expected"),
    [
        (3.3, 2, 3.3, 0.0, False, 32767),  # open thermistor at the rail on the 2.048 V range
        (5.0, 1, 4.5, 0.0, False, 32767),
        (3.3, 16, 0.256, 0.0, False, 32767),  # exactly full scale saturates, noise or not
        (3.3, 2, 0.0, 3.0, True, -32768),  # differential below -FSR
        (3.3, 2 / 3, 5.0, 0.0, False, round(3.6 / 6.144 * 32768)),  # clamped at VDD + 0.3 V
    ],
)
def test_ads_saturation(
    vt: VirtualTime, vdd: float, gain: float, a0: float, a1: float, pair: bool, expected: int
) -> None:
    _, chip, ads = make_ads(vt, vdd=vdd, gain=gain, noise_scale=0.0 if gain == 2 / 3 else 1.0)
    chip.set_input(0, a0)
    chip.set_input(1, a1)
    channel = AnalogIn(ads, 0, 1) if pair else AnalogIn(ads, 0)
    assert [channel.value for _ in range(5)] == [expected] * 5


def test_ads_noise_grows_with_data_rate(vt: VirtualTime) -> None:
    spreads = {}
    for rate in (8, 860):
        _, chip, ads = make_ads(vt, data_rate=rate, noise_scale=1.0, seed=rate)
        chip.set_input(0, 1.23456)
        channel = AnalogIn(ads, 0)
        codes = [channel.value for _ in range(60)]
        assert abs(statistics.fmean(codes) - 1.23456 / 4.096 * 32768) <= 1.0
        spreads[rate] = statistics.stdev(codes)
    assert 0.3 <= spreads[8] <= 0.9  # 0.5 LSB of noise plus quantisation
    assert 1.5 <= spreads[860] <= 2.7
    assert noise_lsb_rms(8) == pytest.approx(0.5) and noise_lsb_rms(860) == pytest.approx(2.0)


def test_ads_single_shot_takes_its_conversion_time_on_real_time() -> None:
    i2c = EmulatedI2C(1)
    chip = Ads1115Emulator()
    i2c.attach(0x48, chip)
    ads = ADS1115(i2c, address=0x48, mode=ads1x15.Mode.SINGLE, data_rate=128, gain=1)
    chip.set_input(0, 1.0)
    channel = AnalogIn(ads, 0)
    before = i2c.transactions
    started = time.perf_counter()
    assert channel.voltage == pytest.approx(1.0, abs=4 * 4.096 / 32768)
    assert time.perf_counter() - started >= 1 / 128
    # Each poll is a real transaction of ~0.45 ms at 100 kHz, not a spin of millions of instant ones. On a busy
    # machine fewer polls fit in the 7.8 ms (seen: 5); at least the configuration write, one poll and the read.
    assert 3 <= i2c.transactions - before <= 30


def test_ads_os_bit_and_registers(vt: VirtualTime) -> None:
    i2c = EmulatedI2C(1, sleep=vt.sleep)
    chip = Ads1115Emulator(clock=vt.monotonic, noise_scale=0.0)
    i2c.attach(0x48, chip)
    assert raw_read(i2c, 0x01) == b"\x85\x83"
    assert raw_read(i2c, 0x02) + raw_read(i2c, 0x03) == b"\x80\x00\x7f\xff"
    i2c.writeto(0x48, b"\x02\x12\x34")
    assert raw_read(i2c, 0x02, 4) == b"\x12\x34\x12\x34"
    i2c.writeto(0x48, b"\x00\x55\x55")  # the conversion register is read-only
    assert raw_read(i2c, 0x00) == b"\x00\x00"
    chip.set_input(2, 2.048)
    i2c.writeto(0x48, bytes([0x01, 0x80 | 0x60 | 0x03, 0x83]))  # OS, AIN2, 4.096 V, single, 128 SPS
    assert raw_read(i2c, 0x01)[0] & 0x80 == 0  # converting
    vt.sleep(1 / 128)
    assert raw_read(i2c, 0x01)[0] & 0x80 == 0x80
    assert raw_read(i2c, 0x00) == (16384).to_bytes(2, "big")
    assert chip.conversions == 1
    i2c.writeto(0x48, b"\x01")  # a one-byte write only moves the pointer
    buffer = bytearray(2)
    i2c.readfrom_into(0x48, buffer)
    assert buffer == b"\xe3\x83"


def test_ads_continuous_mode_converts_back_to_back(vt: VirtualTime) -> None:
    i2c = EmulatedI2C(1, sleep=vt.sleep)
    chip = Ads1115Emulator(clock=vt.monotonic, noise_scale=0.0)
    i2c.attach(0x48, chip)
    volts = [1.0]
    chip.set_input(0, lambda: volts[0])  # evaluated at each conversion
    i2c.writeto(0x48, bytes([0x01, 0x42, 0xE3]))  # AIN0, 4.096 V, continuous, 860 SPS
    vt.sleep(1.01 / 860)
    assert int.from_bytes(raw_read(i2c, 0x00), "big") == 8000
    volts[0] = 2.0
    vt.sleep(1 / 860)
    assert int.from_bytes(raw_read(i2c, 0x00), "big") == 16000
    vt.sleep(10 / 860)
    raw_read(i2c, 0x00)
    assert chip.conversions >= 12


def test_ads_continuous_mode_driver_ignores_the_channel() -> None:
    """The driver bug, reproduced by a correct chip: in continuous mode the requested pin is never written.

    The driver reads the chip's current mux and writes it back, so after power-up (mux 000 = AIN0-AIN1) every
    `AnalogIn` reads AIN0 - AIN1, whichever pin it names. Real time: the driver sleeps 2/data_rate itself.
    """
    _, chip, ads = make_ads(None, mode=ads1x15.Mode.CONTINUOUS)
    for ain, volts in enumerate((1.0, 0.25, 2.0, 0.5)):
        chip.set_input(ain, volts)
    lsb = 4.096 / 32768
    assert AnalogIn(ads, 2).voltage == pytest.approx(0.75, abs=lsb)  # AIN0 - AIN1, not AIN2 = 2.0
    assert AnalogIn(ads, 3).voltage == pytest.approx(0.75, abs=lsb)
    assert (chip.peek(0x01) >> 12) & 0x7 == 0
    ads.mode = ads1x15.Mode.SINGLE  # the chip itself was right all along
    assert AnalogIn(ads, 2).voltage == pytest.approx(2.0, abs=lsb)


def test_ads_missing_device_and_bus_error(vt: VirtualTime) -> None:
    i2c, chip, ads = make_ads(vt)
    with pytest.raises(ValueError, match="No I2C device at address"):
        ADS1115(i2c, address=0x49)
    chip.bus_error = True
    with pytest.raises(OSError) as raised:
        AnalogIn(ads, 0).value  # noqa: B018 - the read is the point
    assert raised.value.errno == errno.EIO
    with pytest.raises(ValueError, match="No I2C device"):
        ADS1115(i2c, address=0x48)  # a chip that fails every transfer fails the probe too
    chip.bus_error = False
    assert isinstance(AnalogIn(ads, 0).value, int)


def test_ads_stuck_never_finishes_a_conversion(vt: VirtualTime) -> None:
    i2c, chip, ads = make_ads(vt)
    chip.set_input(0, 1.0)
    channel = AnalogIn(ads, 0)
    assert channel.voltage == pytest.approx(1.0, abs=4.096 / 32768)
    chip.stuck = True
    i2c.writeto(0x48, bytes([0x01, 0xC3, 0xE3]))  # OS: start a single-shot on AIN0
    vt.sleep(1.0)
    assert raw_read(i2c, 0x01)[0] & 0x80 == 0  # still "converting": the driver would poll for ever
    chip.stuck = False  # back, idle: the hung conversion is abandoned
    assert raw_read(i2c, 0x01)[0] & 0x80 == 0x80
    chip.set_input(0, 2.0)
    assert channel.voltage == pytest.approx(2.0, abs=4.096 / 32768)


@settings(max_examples=80, deadline=None)
@given(
    volts=st.floats(min_value=-1.0, max_value=4.5, allow_nan=False),
    gain=st.sampled_from(list(FSR)),
)
def test_ads_code_is_the_ideal_transfer_function(volts: float, gain: float) -> None:
    _, chip, ads = make_ads(VirtualTime(), gain=gain)
    chip.set_input(1, volts)
    clamped = min(max(volts, -0.3), 3.6)
    fsr = FSR[gain]
    expected = 32767 if clamped >= fsr else min(max(round(clamped / fsr * 32768), -32768), 32767)
    assert AnalogIn(ads, 1).value == expected


# ---------------------------------------------------------------------------------------------------------
# MAX31865


@dataclass
class MaxRig:
    spi: EmulatedSPI
    gpio: EmulatedGPIO
    chip: Max31865Emulator
    cs: EmulatedLine
    sensor: adafruit_max31865.MAX31865


@contextmanager
def driver_time(vt: VirtualTime) -> Iterator[None]:
    """Let the driver's own sleeps (10 ms bias settle, 65 ms conversion) pass on virtual time."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(adafruit_max31865, "time", vt)
        yield


def make_max(
    vt: VirtualTime,
    resistance: float = 1000.0,
    *,
    cs_number: int = 5,
    filter_hz: int = 60,
    noise_scale: float = 1.0,
    spi: EmulatedSPI | None = None,
    gpio: EmulatedGPIO | None = None,
) -> MaxRig:
    spi = spi or EmulatedSPI(0, sleep=vt.sleep)
    gpio = gpio or EmulatedGPIO()
    chip = Max31865Emulator(rref=RREF, clock=vt.monotonic, noise_scale=noise_scale, seed=cs_number)
    chip.set_resistance(resistance)
    cs = gpio.line(cs_number)
    spi.attach(cs, chip)
    sensor = adafruit_max31865.MAX31865(
        spi, cs, rtd_nominal=1000, ref_resistor=RREF, wires=3, filter_frequency=filter_hz
    )
    return MaxRig(spi, gpio, chip, cs, sensor)


def write_threshold(sensor: adafruit_max31865.MAX31865, msb_address: int, ohms: float) -> None:
    value = round(ohms / RREF * 32768) << 1
    sensor._write_u8(msb_address, value >> 8)
    sensor._write_u8(msb_address + 1, value & 0xFF)


@pytest.mark.parametrize("filter_hz", [50, 60])
@pytest.mark.parametrize("ohms", [100.0, 431.7, 1000.0, 1385.06, 2000.0, 4299.0])
def test_max_one_shot_resistance(vt: VirtualTime, ohms: float, filter_hz: int) -> None:
    with driver_time(vt):
        rig = make_max(vt, ohms, filter_hz=filter_hz)
        started = vt.now
        assert abs(rig.sensor.resistance - ohms) <= RTD_LSB
        assert vt.now - started >= 0.075
    assert rig.chip.conversions == 1
    assert rig.chip.peek(0x00) == 0x10 | (1 if filter_hz == 50 else 0)  # bias off again, 3-wire


def test_max_one_shot_on_real_time() -> None:
    gpio = EmulatedGPIO()
    spi = EmulatedSPI(0)
    chip = Max31865Emulator()
    chip.set_resistance(1100.0)
    spi.attach(gpio.line(8), chip)
    sensor = adafruit_max31865.MAX31865(spi, gpio.line(8), rtd_nominal=1000, ref_resistor=RREF, wires=3)
    started = time.perf_counter()
    assert abs(sensor.resistance - 1100.0) <= RTD_LSB
    assert time.perf_counter() - started >= 0.075


def test_max_temperature_through_a_probe(vt: VirtualTime) -> None:
    probe = RtdProbe(1000.0)
    probe.temperature_c = 55.5
    with driver_time(vt):
        rig = make_max(vt)
        rig.chip.set_resistance(probe.resistance)
        assert rig.sensor.temperature == pytest.approx(55.5, abs=0.05)


def test_max_auto_convert_reads_fast(vt: VirtualTime) -> None:
    with driver_time(vt):
        rig = make_max(vt, 1000.0)
        rig.sensor.auto_convert = True
        vt.sleep(1 / 60)
        before, started = rig.spi.transactions, vt.now
        assert abs(rig.sensor.resistance - 1000.0) <= RTD_LSB
        assert vt.now - started < 0.001  # two short transactions, no 75 ms one-shot
        assert rig.spi.transactions - before == 4
        rig.chip.set_resistance(1200.0)
        assert abs(rig.sensor.resistance - 1000.0) <= RTD_LSB  # next result is not due yet
        vt.sleep(1 / 60)
        assert abs(rig.sensor.resistance - 1200.0) <= RTD_LSB


NO_FAULT = (False, False, False, False, False, False)


@pytest.mark.parametrize(
    ("ohms", "low_ohms", "high_ohms", "expected_code", "expected_fault"),
    [
        (math.inf, None, None, 32767, (True, False, False, False, False, False)),  # reset high threshold
        (0.0, 10.0, None, 0, (False, True, False, False, False, False)),
        (3500.0, None, 3000.0, round(3500 / RREF * 32768), (True, False, False, False, False, False)),
        (1000.0, 500.0, 3000.0, round(1000 / RREF * 32768), NO_FAULT),
    ],
)
def test_max_threshold_faults(
    vt: VirtualTime,
    ohms: float,
    low_ohms: float | None,
    high_ohms: float | None,
    expected_code: int,
    expected_fault: tuple[bool, ...],
) -> None:
    with driver_time(vt):
        rig = make_max(vt, ohms, noise_scale=0.0)
        if low_ohms is not None:
            write_threshold(rig.sensor, 0x05, low_ohms)
        if high_ohms is not None:
            write_threshold(rig.sensor, 0x03, high_ohms)
        assert rig.sensor.read_rtd() == expected_code
        assert rig.sensor.fault == expected_fault
        assert rig.chip.peek(0x02) & 1 == (expected_fault != NO_FAULT)


# Datasheet, fault status register: "RTD High Threshold ... the RTD resistance ratio is greater than or equal to
# the value in the High Fault Threshold register"; "RTD Low Threshold ... less than or equal to ... Low Fault
# Threshold". Both bounds are inclusive: a code exactly at a threshold trips it, one LSB inside does not.
@pytest.mark.parametrize(
    ("code", "low_code", "high_code", "expected_fault"),
    [
        (8000, 8000, 20000, (False, True, False, False, False, False)),
        (8001, 8000, 20000, NO_FAULT),
        (20000, 8000, 20000, (True, False, False, False, False, False)),
        (19999, 8000, 20000, NO_FAULT),
    ],
)
def test_max_thresholds_are_inclusive(
    vt: VirtualTime, code: int, low_code: int, high_code: int, expected_fault: tuple[bool, ...]
) -> None:
    with driver_time(vt):
        rig = make_max(vt, code * RREF / 32768, noise_scale=0.0)
        for address, value in ((0x03, high_code << 1), (0x05, low_code << 1)):
            rig.sensor._write_u8(address, value >> 8)
            rig.sensor._write_u8(address + 1, value & 0xFF)
        assert rig.sensor.read_rtd() == code
        assert rig.sensor.fault == expected_fault


# Datasheet, "2-wire, 3-wire and 4-wire": a 2-wire connection measures the leads in series with the RTD; in
# 3-wire mode the chip compensates matched leads; a 4-wire connection senses at the element, so no lead counts.
@pytest.mark.parametrize(
    ("wires", "three_wire_mode", "measured"), [(2, False, 1004.0), (3, True, 1000.0), (4, False, 1000.0)]
)
def test_max_leads_per_wiring(vt: VirtualTime, wires: int, three_wire_mode: bool, measured: float) -> None:
    with driver_time(vt):
        spi, gpio = EmulatedSPI(0, sleep=vt.sleep), EmulatedGPIO()
        chip = Max31865Emulator(rref=RREF, clock=vt.monotonic, noise_scale=0.0, wires=wires, lead_ohms=2.0)  # type: ignore[arg-type]
        chip.set_resistance(1000.0)
        spi.attach(gpio.line(5), chip)
        sensor = adafruit_max31865.MAX31865(
            spi, gpio.line(5), rtd_nominal=1000, ref_resistor=RREF, wires=3 if three_wire_mode else wires
        )
        assert abs(sensor.resistance - measured) <= RTD_LSB


@pytest.mark.parametrize(
    ("ohms", "overvoltage", "expected_fault"),
    [
        (math.inf, False, (False, False, True, False, False, False)),  # bit 5: REFIN- > 0.85 VBIAS
        (0.0, False, (False, False, False, False, True, False)),  # bit 3: RTDIN- < 0.85 VBIAS
        (1000.0, True, (False, False, False, False, False, True)),  # bit 2: over/under-voltage
        (1000.0, False, NO_FAULT),
    ],
)
def test_max_fault_detection_cycle(
    vt: VirtualTime, ohms: float, overvoltage: bool, expected_fault: tuple[bool, ...]
) -> None:
    rig = make_max(vt, ohms)
    rig.chip.overvoltage = overvoltage
    rig.sensor._write_u8(0x00, 0x80 | 0x10 | 0x04)  # 100X010X: automatic fault detection
    assert rig.sensor._read_u8(0x00) & 0x0C == 0x04  # still running
    vt.sleep(0.001)
    assert rig.sensor._read_u8(0x00) & 0x0C == 0x00  # finished
    assert rig.sensor.fault == expected_fault
    assert rig.chip.conversions == 0  # detection is not a conversion


def test_max_clear_faults(vt: VirtualTime) -> None:
    with driver_time(vt):
        rig = make_max(vt, math.inf)
        rig.sensor.read_rtd()
        assert rig.sensor.fault[0] and rig.chip.peek(0x02) & 1
        rig.sensor._write_u8(0x00, 0x02 | 0x04)  # clear with D2 set: the datasheet says it does nothing
        assert rig.sensor.fault[0]
        rig.sensor.clear_faults()
        assert rig.sensor.fault == NO_FAULT
        assert rig.chip.peek(0x02) & 1 == 0
        assert rig.sensor._read_u8(0x00) & 0x02 == 0  # self-clearing


def test_max_config_0x50_gotcha(vt: VirtualTime) -> None:
    """After a fault in auto mode the driver's one-shot fallback leaves auto on and bias off (0x50).

    The driver still believes it is in auto-convert mode, but the chip converts nothing: readings freeze at the
    last value until auto_convert is set again.
    """
    with driver_time(vt):
        rig = make_max(vt, 1000.0)
        rig.sensor.auto_convert = True
        vt.sleep(0.02)
        assert abs(rig.sensor.resistance - 1000.0) <= RTD_LSB
        rig.chip.set_resistance(math.inf)  # the RTD opens
        vt.sleep(0.02)
        assert rig.sensor.resistance == pytest.approx(RREF, abs=2 * RTD_LSB)  # saturated
        assert rig.chip.peek(0x00) == 0x50
        rig.chip.set_resistance(1000.0)  # and comes back; the latched fault sends the driver down one-shot
        assert abs(rig.sensor.resistance - 1000.0) <= RTD_LSB
        assert rig.chip.peek(0x00) == 0x50
        rig.chip.set_resistance(1100.0)
        vt.sleep(1.0)
        conversions = rig.chip.conversions
        assert abs(rig.sensor.resistance - 1000.0) <= RTD_LSB  # stale
        assert rig.chip.conversions == conversions
        assert rig.sensor.auto_convert and not rig.sensor.bias
        rig.sensor.auto_convert = True  # explicit recovery
        vt.sleep(0.02)
        assert abs(rig.sensor.resistance - 1100.0) <= RTD_LSB


def test_max_auto_convert_without_bias_converts_nothing(vt: VirtualTime) -> None:
    rig = make_max(vt, 1000.0)
    rig.sensor._write_u8(0x00, 0x40)
    vt.sleep(1.0)
    assert rig.chip.conversions == 0
    assert rig.sensor._read_u16(0x01) == 0


def test_max_stuck_stops_converting_and_drops_bias(vt: VirtualTime) -> None:
    rig = make_max(vt, 1000.0)
    rig.sensor.auto_convert = True
    vt.sleep(0.02)
    assert abs(rig.sensor.resistance - 1000.0) <= RTD_LSB
    rig.chip.stuck = True
    rig.chip.set_resistance(1200.0)
    vt.sleep(0.02)
    conversions = rig.chip.conversions
    assert abs(rig.sensor.resistance - 1000.0) <= RTD_LSB  # stale, and the driver cannot tell
    assert rig.sensor._read_u8(0x00) == 0x50  # but the config register shows it: bias has dropped
    rig.sensor.auto_convert = True
    assert rig.sensor._read_u8(0x00) == 0xD0  # re-arming takes...
    vt.sleep(0.02)
    assert rig.sensor._read_u8(0x00) == 0x50  # ...only until the next conversion falls due
    assert rig.chip.conversions == conversions
    rig.chip.stuck = False
    rig.sensor.auto_convert = True
    vt.sleep(0.02)
    assert abs(rig.sensor.resistance - 1200.0) <= RTD_LSB


def test_max_registers_auto_increment(vt: VirtualTime) -> None:
    rig = make_max(vt, 1000.0)
    write_threshold(rig.sensor, 0x03, 3000.0)
    rig.sensor._write_u8(0x07, 0xFF)  # fault status is read-only
    rig.sensor._write_u8(0x01, 0xFF)  # so is the RTD register
    assert rig.spi.try_lock()
    rig.cs.value = False
    rig.spi.write(b"\x00")
    buffer = bytearray(9)
    rig.spi.readinto(buffer)
    rig.cs.value = True
    rig.spi.unlock()
    high = round(3000 / RREF * 32768) << 1
    assert bytes(buffer) == bytes([0x10, 0, 0, high >> 8, high & 0xFF, 0, 0, 0, 0x10])  # wraps after 0x07


def test_two_max31865_on_one_bus(vt: VirtualTime) -> None:
    spi = EmulatedSPI(0, sleep=vt.sleep)
    gpio = EmulatedGPIO()
    with driver_time(vt):
        first = make_max(vt, 1000.0, cs_number=5, spi=spi, gpio=gpio)
        second = make_max(vt, 1500.0, cs_number=6, spi=spi, gpio=gpio)
        assert abs(first.sensor.resistance - 1000.0) <= RTD_LSB
        assert abs(second.sensor.resistance - 1500.0) <= RTD_LSB
        second.sensor.auto_convert = True
        vt.sleep(0.02)
        assert abs(second.sensor.resistance - 1500.0) <= RTD_LSB
        assert first.sensor.auto_convert is False and second.sensor.auto_convert is True
        assert (first.chip.conversions, second.chip.conversions) == (1, 2)
    # Both selected at once (a stuck CS line): each hears the command, their outputs wire-AND on MISO.
    first.cs.stuck_at = False
    assert second.sensor._read_u8(0x00) == 0xD0 & 0x10


@pytest.mark.parametrize(("mode", "fill"), [("miso-high", 0xFF), ("miso-low", 0x00)])
def test_max_disconnected_board(vt: VirtualTime, mode: str, fill: int) -> None:
    with driver_time(vt):
        rig = make_max(vt, 1000.0)
        rig.chip.bus_error = mode  # type: ignore[assignment]
        assert rig.sensor._read_u8(0x00) == fill
        rig.sensor._write_u8(0x00, 0xC1)  # lost
        resistance = rig.sensor.resistance
        assert resistance == pytest.approx(RREF * 32767 / 32768 if fill else 0.0)
        rig.chip.bus_error = None
        assert rig.chip.peek(0x00) == 0x10


@settings(max_examples=40, deadline=None)
@given(ohms=st.floats(min_value=0.0, max_value=RREF * 1.2, allow_nan=False))
def test_max_code_is_the_ideal_ratio(ohms: float) -> None:
    vt = VirtualTime()
    with driver_time(vt):
        rig = make_max(vt, ohms, noise_scale=0.0)
        assert rig.sensor.read_rtd() == min(round(ohms / RREF * 32768), 32767)


# ---------------------------------------------------------------------------------------------------------
# Probes

NTC = BetaModel(r25=10_000.0, beta=3950.0)


@pytest.mark.parametrize(
    ("wiring", "fault", "expected"),
    [
        ("ntc-to-ground", None, None),
        ("ntc-to-ground", "open", 3.3),
        ("ntc-to-ground", "short", 0.0),
        ("ntc-to-supply", "open", 0.0),
        ("ntc-to-supply", "short", 3.3),
    ],
)
def test_thermistor_probe_faults(wiring: str, fault: str | None, expected: float | None) -> None:
    divider = Divider(r_fixed=10_000.0, vref=3.3, wiring=wiring)  # type: ignore[arg-type]
    probe = ThermistorProbe(NTC, divider)
    probe.temperature_c = 40.0
    probe.fault = None if fault is None else SensorFault(fault)  # type: ignore[arg-type]
    healthy = divider.volts(NTC.resistance(40.0))
    assert probe.volts() == pytest.approx(healthy if expected is None else expected)


@pytest.mark.parametrize("probe_kind", ["thermistor", "rtd"])
def test_stuck_freezes_the_temperature_at_the_moment_of_the_fault(probe_kind: str) -> None:
    divider = Divider(r_fixed=10_000.0, vref=3.3)
    probe: ThermistorProbe | RtdProbe = ThermistorProbe(NTC, divider) if probe_kind == "thermistor" else RtdProbe(100.0)
    probe.temperature_c = 40.0
    frozen = probe.resistance()
    probe.fault = SensorFault("stuck")
    probe.temperature_c = 60.0
    assert probe.resistance() == frozen
    probe.fault = None
    assert probe.resistance() != frozen


@pytest.mark.parametrize("sigma_k", [0.2, 1.0])
def test_noise_fault_adds_kelvin_noise(sigma_k: float) -> None:
    probe = RtdProbe(1000.0, seed=3)
    probe.temperature_c = 50.0
    probe.fault = SensorFault("noise", sigma_k=sigma_k)
    slope = (rtd_resistance(50.001, 1000.0) - rtd_resistance(49.999, 1000.0)) / 0.002
    # The curve is linear to well within the noise over a few kelvin: invert it by its slope.
    temperatures = [50.0 + (probe.resistance() - rtd_resistance(50.0, 1000.0)) / slope for _ in range(400)]
    assert statistics.fmean(temperatures) == pytest.approx(50.0, abs=4 * sigma_k / 20)
    assert statistics.stdev(temperatures) == pytest.approx(sigma_k, rel=0.15)


def test_rtd_probe_open_and_short() -> None:
    probe = RtdProbe(100.0)
    probe.fault = SensorFault("open")
    assert probe.resistance() == math.inf
    probe.fault = SensorFault("short")
    assert probe.resistance() == 0.0


def test_thermistor_through_the_adc_end_to_end(vt: VirtualTime) -> None:
    divider = Divider(r_fixed=10_000.0, vref=3.3)
    probe = ThermistorProbe(NTC, divider)
    _, chip, ads = make_ads(vt, data_rate=128, noise_scale=1.0)
    chip.set_input(0, probe.volts)
    channel = AnalogIn(ads, 0)
    for celsius in (0.0, 21.5, 45.0, 80.0):
        probe.temperature_c = celsius
        assert NTC.temperature(divider.resistance(channel.voltage)) == pytest.approx(celsius, abs=0.05)
    probe.fault = SensorFault("open")
    assert abs(channel.value - round(3.3 / 4.096 * 32768)) <= 8  # the supply rail, not a temperature
