"""The ADS1115 read deadline judges the chip, not the scheduler.

A single-shot read starts a conversion and busy-polls the chip's OS bit. A thread that loses the CPU (a loaded
Pi, or the test suite at load 6 on 2 cores) for longer than the deadline right after starting a conversion
must still get its reading: the chip went on converting meanwhile. Only a chip that still says "converting"
once the deadline has passed is stuck. Everything here runs on one virtual clock, so the interleaving is exact.
"""

from __future__ import annotations

from typing import Any

import pytest

from controller.drivers.ads1115 import Ads1115Device
from controller.drivers.base import SensorError
from controller.emulators.ads1115 import Ads1115Emulator
from controller.emulators.bus import EmulatedI2C
from tests.simhelpers import demo_layout

CHANNEL = "tank-top"  # ads-tank A0 in the demo layout: a 10 kΩ NTC divider, plausible 0..95 °C


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


class Descheduled:
    """An I2C bus whose caller loses the CPU for `pause` seconds right after each write: a single-shot read's
    only write is the one that starts the conversion, so the first poll comes `pause` seconds later."""

    def __init__(self, bus: EmulatedI2C, vt: VirtualTime) -> None:
        self._bus = bus
        self._vt = vt
        self.pause = 0.0

    def writeto(self, *args: Any, **kwargs: Any) -> None:
        self._bus.writeto(*args, **kwargs)
        self._vt.sleep(self.pause)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)


class OneBus:
    def __init__(self, bus: Any) -> None:
        self._bus = bus

    def bus(self, name: str) -> Any:
        return self._bus

    def bus_label(self, name: str) -> str:
        return f"emulated I2C bus 1 ({name})"

    def pin(self, number: int) -> Any:
        raise AssertionError("an ADS1115 needs no GPIO")


@pytest.fixture
def rig() -> tuple[VirtualTime, Descheduled, Ads1115Emulator, Any]:
    vt = VirtualTime()
    i2c = EmulatedI2C(1, sleep=vt.sleep)  # each transaction takes its wire time on the virtual clock
    chip = Ads1115Emulator(clock=vt.monotonic, noise_scale=0.0)
    chip.set_input(0, 1.2)  # about 33 °C on the demo's tank divider
    i2c.attach(0x48, chip)
    bus = Descheduled(i2c, vt)
    layout = demo_layout()
    channel = layout.channels[CHANNEL]
    device = Ads1115Device("ads-tank", layout.devices[channel.device], OneBus(bus), clock=vt.monotonic)
    return vt, bus, chip, device.reader(CHANNEL, channel)


@pytest.mark.parametrize("pause_s", [0.06, 0.5, 3.0])
def test_a_reader_descheduled_after_starting_a_conversion_still_reads(
    rig: tuple[VirtualTime, Descheduled, Ads1115Emulator, Any], pause_s: float
) -> None:
    _vt, bus, chip, read = rig
    expected = read()
    bus.pause = pause_s  # longer than the deadline (3 conversions at 860 SPS + 50 ms = 53.5 ms)
    assert read() == pytest.approx(expected)
    chip.set_input(0, 1.5)  # and it is this conversion's result, not the previous one's
    assert read() < expected - 5


def test_a_stuck_chip_still_times_out(rig: tuple[VirtualTime, Descheduled, Ads1115Emulator, Any]) -> None:
    vt, bus, chip, read = rig
    chip.stuck = True
    started = vt.now
    with pytest.raises(SensorError, match="did not finish in time"):
        read()
    assert 0.05 < vt.now - started < 0.1  # polled until the deadline, not for ever
    bus.pause = 0.5  # descheduled as well: still stuck, still named
    with pytest.raises(SensorError, match="did not finish in time"):
        read()
    chip.stuck = False
    assert 0 < read() < 95
