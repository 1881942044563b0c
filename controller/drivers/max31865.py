"""MAX31865 RTD-to-digital converter (SPI): PT100/PT1000, 2/3/4-wire.

Uses adafruit_max31865 unchanged, in auto-convert mode (a read is two short SPI transactions instead of the
driver's ~75 ms one-shot). The driver's `read_rtd` falls back to a one-shot conversion when it sees the fault
bit and then leaves the chip with auto-convert on and bias off (config 0x50): the chip stops converting and the
value freezes. So each read goes through the driver's own register accessors: the config register first (a chip
that lost power, or was left at 0x50, is put back into auto-convert), then the RTD register with its fault bit.
A fault reads the status register, clears it and re-arms auto-convert explicitly.

All MAX31865 instances share one module-level buffer in the driver, so two of them must never be called from
two threads at once. Devices on one SPI bus already share that bus's worker thread; `_DRIVER_LOCK` also
serialises devices on different SPI buses (SPI0 and SPI1 each have their own thread).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

from pydantic import Field, model_validator

from controller.conversions import rtd_resistance, rtd_temperature
from controller.drivers.base import Buses, ChannelReader, DeviceKind, DeviceMissingError, RawFields, SensorError
from controller.layout.base import Name, Strict
from controller.layout.channel import Channel

CONFIG_REG = 0x00
RTD_MSB_REG = 0x01
HIGH_THRESHOLD_MSB_REG = 0x03
FAULT_STATUS_REG = 0x07
CONFIG_BIAS = 0x80
CONFIG_AUTO = 0x40
CONFIG_3WIRE = 0x10
CONFIG_50HZ = 0x01
FULL_SCALE = 0x7FFF
FAULT_NAMES = (
    "RTD above high threshold",
    "RTD below low threshold",
    "REFIN- > 0.85 x VBIAS",
    "REFIN- < 0.85 x VBIAS (force open)",
    "RTDIN- < 0.85 x VBIAS (force open)",
    "over/under-voltage",
)
R0 = {"pt100": 100.0, "pt1000": 1000.0}
DEFAULT_RREF = {"pt100": 430.0, "pt1000": 4300.0}
# After auto-convert is switched on, the first conversion ends only after ~66 ms (50 Hz filter); before that the
# RTD register still reads 0, which would look like a shorted RTD.
FIRST_CONVERSION_S = 0.07
# The fault thresholds sit this far beyond the channel's plausible range: between the two a reading is
# out_of_range (a real if unlikely temperature), beyond it the chip itself flags a fault.
THRESHOLD_MARGIN_K = 10.0
# Below this share of R0 (about -120 °C) a fault is a short; above this multiple (about +400 °C) an open.
SHORT_BELOW_R0 = 0.5
OPEN_ABOVE_R0 = 2.5
_DRIVER_LOCK = threading.Lock()  # the driver's _BUFFER is one bytearray shared by every instance


def _ratio_fault(ratio: int) -> str:
    """What a ratio at either end of the scale means, or "" for a ratio that can be a temperature."""
    if ratio >= FULL_SCALE:
        return "RTD open"
    if ratio == 0:
        return "RTD shorted"
    return ""


def threshold_code(ohms: float, rref: float) -> int:
    """The 16-bit fault-threshold register value for a resistance (15-bit ratio in bits 15..1)."""
    return min(max(round(ohms / rref * 32768), 0), FULL_SCALE) << 1


def fault_thresholds(plausible: tuple[float, float], r0: float, lead_ohms: float, rref: float) -> tuple[int, int]:
    """(low, high) threshold registers for a channel: its plausible range widened by THRESHOLD_MARGIN_K, in
    the resistance the chip measures (a 2-wire RTD's leads included)."""
    low_c, high_c = plausible[0] - THRESHOLD_MARGIN_K, plausible[1] + THRESHOLD_MARGIN_K
    low = rtd_resistance(max(low_c, -200.0), r0) + lead_ohms
    high = rtd_resistance(min(high_c, 850.0), r0) + lead_ohms
    return threshold_code(low, rref), threshold_code(high, rref)


class Max31865Config(Strict):
    kind: Literal["max31865"]
    bus: Name
    cs_pin: int = Field(ge=0, le=27, description="BCM GPIO number of the chip-select line")
    rtd: Literal["pt100", "pt1000"] = "pt1000"
    rref: float | None = Field(default=None, gt=0, description="reference resistor, Ω (430 / 4300 by default)")
    wires: Literal[2, 3, 4] = 3
    filter_hz: Literal[50, 60] = 50
    lead_ohms: float = Field(
        default=0.0, ge=0, le=50, description="2-wire only: both leads together, Ω, subtracted from every reading"
    )
    description: str = ""

    @property
    def reference_ohms(self) -> float:
        return self.rref if self.rref is not None else DEFAULT_RREF[self.rtd]

    @model_validator(mode="after")
    def _leads_only_for_two_wires(self) -> Max31865Config:
        if self.lead_ohms and self.wires != 2:
            raise ValueError(
                f"lead_ohms applies to 2-wire RTDs only: a {self.wires}-wire connection cancels its leads itself"
            )
        return self


class Max31865Device:
    """An opened MAX31865. Construct and use only on the bus worker thread."""

    def __init__(self, name: str, config: Max31865Config, buses: Buses) -> None:
        import adafruit_max31865

        self._name = name
        self._config = config
        self._where = f"{buses.bus_label(config.bus)} chip-select GPIO{config.cs_pin}"
        self._r0 = R0[config.rtd]
        self._rref = config.reference_ohms
        self._thresholds: tuple[int, int] | None = None  # (low, high) registers, once a channel names its range
        self._expected = (
            CONFIG_BIAS
            | CONFIG_AUTO
            | (CONFIG_3WIRE if config.wires == 3 else 0)
            | (CONFIG_50HZ if config.filter_hz == 50 else 0)
        )
        with _DRIVER_LOCK:
            self._sensor = adafruit_max31865.MAX31865(
                buses.bus(config.bus),
                buses.pin(config.cs_pin),
                rtd_nominal=int(self._r0),
                ref_resistor=self._rref,
                wires=config.wires,
                filter_frequency=config.filter_hz,
            )
            self._sensor.auto_convert = True
            config_now = self._sensor._read_u8(CONFIG_REG)
        self._first_conversion_at: float | None = time.monotonic() + FIRST_CONVERSION_S
        if config_now != self._expected:
            raise DeviceMissingError(
                f"device {name}: no MAX31865 answers on {self._where} (config reads 0x{config_now:02x}, "
                f"expected 0x{self._expected:02x}); check power, MISO/MOSI/SCK and the CS wire"
            )

    def _ensure_converting(self) -> None:
        """Put the chip back into auto-convert when its config says it is not converting."""
        config_now = self._sensor._read_u8(CONFIG_REG)
        if config_now == self._expected:
            return
        if config_now == 0xFF:
            raise SensorError(f"no answer from {self._where}: SPI reads 0xFF (board unplugged or MISO open)")
        # Power-on reset (0x00), or the driver's one-shot fallback left bias off (0x50): re-arm.
        self._sensor.clear_faults()
        self._sensor.auto_convert = True
        self._write_thresholds()  # a power-on reset put them back to 0x0000 / 0xFFFF
        if self._sensor._read_u8(CONFIG_REG) != self._expected:
            raise SensorError(
                f"{self._where} has stopped converting: config reads 0x{config_now:02x} and will not re-arm "
                "(no power, MISO stuck low, or a hung chip?)"
            )
        raise SensorError(f"{self._where} had stopped converting (config 0x{config_now:02x}); re-armed")

    def _write_thresholds(self) -> None:
        if self._thresholds is None:
            return
        low, high = self._thresholds
        for offset, value in enumerate((high >> 8, high & 0xFF, low >> 8, low & 0xFF)):
            self._sensor._write_u8(HIGH_THRESHOLD_MSB_REG + offset, value)

    def program_thresholds(self, plausible: tuple[float, float]) -> tuple[int, int]:
        """Program the fault thresholds from a channel's plausible range; returns the (low, high) registers."""
        self._thresholds = fault_thresholds(plausible, self._r0, self._config.lead_ohms, self._rref)
        with _DRIVER_LOCK:
            self._write_thresholds()
        # The next conversion is the first one judged against these thresholds.
        self._first_conversion_at = max(self._first_conversion_at or 0.0, time.monotonic() + FIRST_CONVERSION_S)
        return self._thresholds

    def raw(self, channel: Channel) -> RawFields:
        if self._thresholds is None:
            self.program_thresholds(channel.plausible)
        with _DRIVER_LOCK:
            if self._first_conversion_at is not None:
                time.sleep(max(0.0, self._first_conversion_at - time.monotonic()))
                self._first_conversion_at = None
            config_now = self._sensor._read_u8(CONFIG_REG)
            register = self._sensor._read_u16(RTD_MSB_REG)
            status = self._sensor._read_u8(FAULT_STATUS_REG)
        ratio = register >> 1
        flags = [name for bit, name in zip(range(7, 1, -1), FAULT_NAMES, strict=True) if status & (1 << bit)]
        return {
            "config": f"0x{config_now:02x}",
            "ratio": ratio,
            "ohms": round(ratio / 32768 * self._rref, 2),
            "lead_ohms": self._config.lead_ohms,
            "fault_status": f"0x{status:02x}",
            "faults": ", ".join(flags) or "none",
        }

    def _fault(self, ratio: int) -> SensorError:
        flags = self._sensor.fault
        names = [label for label, flag in zip(FAULT_NAMES, flags, strict=True) if flag] or ["fault bit set"]
        self._sensor.clear_faults()
        self._sensor.auto_convert = True
        ohms = ratio / 32768 * self._rref
        what = _ratio_fault(ratio) or (
            "RTD shorted"
            if ohms < SHORT_BELOW_R0 * self._r0
            else "RTD open"
            if ohms > OPEN_ABOVE_R0 * self._r0
            else "RTD fault"
        )
        return SensorError(f"{what} on {self._where}: {', '.join(names)} (reads {ohms:.1f} Ω)")

    def read_ohms(self) -> float:
        """One auto-convert read: the RTD's resistance in Ω, or SensorError."""
        with _DRIVER_LOCK:
            return self._read_ohms_locked()

    def _read_ohms_locked(self) -> float:
        if self._first_conversion_at is not None:
            # Devices of one bus are all armed before any is read, so this waits once per bus, not per chip.
            time.sleep(max(0.0, self._first_conversion_at - time.monotonic()))
            self._first_conversion_at = None
        self._ensure_converting()
        register: int = self._sensor._read_u16(RTD_MSB_REG)
        ratio = register >> 1
        if register & 1:
            raise self._fault(ratio)
        broken = _ratio_fault(ratio)
        if broken:
            raise SensorError(f"{broken} on {self._where}: ratio {ratio}")
        return ratio / 32768 * self._rref - self._config.lead_ohms

    def reader(self, channel_name: str, channel: Channel) -> ChannelReader:
        self.program_thresholds(channel.plausible)

        def read_temperature() -> float:
            ohms = self.read_ohms()
            if ohms <= 0.0:
                raise SensorError(f"RTD shorted on {self._where}: {ohms:.1f} Ω after lead_ohms")
            return rtd_temperature(ohms, self._r0)

        return read_temperature


def _inputs(config: Max31865Config) -> tuple[str, ...]:
    return ("", "rtd")


def _default_unit(config: Max31865Config, channel: Channel) -> str:
    return "degC"


def _open(name: str, config: Any, buses: Buses) -> Max31865Device:
    return Max31865Device(name, config, buses)


KIND = DeviceKind(
    kind="max31865",
    config=Max31865Config,
    bus_kind="spi",
    inputs=_inputs,
    default_unit=_default_unit,
    open=_open,
)
