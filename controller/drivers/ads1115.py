"""ADS1115 16-bit ADC (I2C 0x48-0x4B): thermistors in dividers, or raw volts.

Uses adafruit_ads1x15 unchanged, always in single-shot mode: in continuous mode driver 3.0.5 ignores the
requested channel and re-reads the chip's current mux (HARDWARE.md), which would silently swap channels.

The default data rate is 860 SPS. A single-shot read busy-polls the OS bit until the conversion ends, so the
bus is held for one conversion time per read: 1.2 ms at 860 SPS against 7.8 ms at 128 SPS. The extra noise at
860 SPS (about 2 LSB rms on the 4.096 V range) is about 0.03 K at the >= 80 LSB/K a 10 kΩ divider gives, well
under the thermistor model's own accuracy, and thermal signals are slow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, field_validator

from controller.buses.deadline import DeadlineBus, DeadlinePassed
from controller.drivers.base import Buses, ChannelReader, DeviceKind, DeviceMissingError, RawFields, SensorError
from controller.layout.base import Name, Strict
from controller.layout.channel import Channel
from controller.layout.sensors import LinearSensor, NtcSensor

# Full-scale range (V) -> the driver's gain setting.
GAIN_FOR_RANGE: dict[float, float] = {6.144: 2 / 3, 4.096: 1, 2.048: 2, 1.024: 4, 0.512: 8, 0.256: 16}
# Input name -> (positive pin, negative pin or None), in the driver's Pin numbering.
INPUTS: dict[str, tuple[int, int | None]] = {
    "A0": (0, None),
    "A1": (1, None),
    "A2": (2, None),
    "A3": (3, None),
    "A0-A1": (0, 1),
    "A0-A3": (0, 3),
    "A1-A3": (1, 3),
    "A2-A3": (2, 3),
}
# A divider reading this close to a rail means an open or shorted thermistor, not a temperature.
RAIL_MARGIN = 0.005
CONFIG_POINTER = 0x01
CONFIG_OS_IDLE = 0x8000  # config bit 15 reads 1 when no conversion is in progress


class Ads1115Config(Strict):
    kind: Literal["ads1115"]
    bus: Name
    address: int = Field(description="0x48 (ADDR to GND), 0x49 (VDD), 0x4A (SDA) or 0x4B (SCL)")
    range_v: float = Field(default=4.096, description="full-scale range, V: 6.144, 4.096, 2.048, 1.024, 0.512, 0.256")
    data_rate: Literal[8, 16, 32, 64, 128, 250, 475, 860] = 860
    supply_v: float = Field(
        default=3.3,
        ge=1.8,
        le=5.5,
        description="the supply of this board's dividers as measured, V (the ADC reads against its own reference)",
    )
    description: str = ""

    @field_validator("address")
    @classmethod
    def _known_address(cls, value: int) -> int:
        if not 0x48 <= value <= 0x4B:
            raise ValueError(
                f"0x{value:02x} is not an ADS1115 address; the ADDR pin selects 0x48 (GND), 0x49 (VDD), "
                "0x4a (SDA) or 0x4b (SCL)"
            )
        return value

    @field_validator("range_v")
    @classmethod
    def _known_range(cls, value: float) -> float:
        if value not in GAIN_FOR_RANGE:
            raise ValueError(f"range_v must be one of {', '.join(f'{r:g}' for r in GAIN_FOR_RANGE)} V")
        return value


class Ads1115Device:
    """An opened ADS1115. Construct and use only on the bus worker thread."""

    def __init__(
        self, name: str, config: Ads1115Config, buses: Buses, clock: Callable[[], float] = time.monotonic
    ) -> None:
        from adafruit_ads1x15 import ads1x15
        from adafruit_ads1x15.ads1115 import ADS1115

        self._name = name
        self._config = config
        self._where = f"{buses.bus_label(config.bus)} address 0x{config.address:02x}"
        self._bus = DeadlineBus(buses.bus(config.bus), clock)
        # Three conversion times plus bus slack: a longer read means the chip is not converting.
        self._read_timeout_s = 3.0 / config.data_rate + 0.05
        try:
            self._ads = ADS1115(
                self._bus,
                gain=GAIN_FOR_RANGE[config.range_v],
                data_rate=config.data_rate,
                mode=ads1x15.Mode.SINGLE,
                address=config.address,
            )
        except (ValueError, OSError) as error:
            # The driver turns the errno 121 of its probe into ValueError("No I2C device at address").
            raise DeviceMissingError(
                f"device {name}: no ADS1115 answers on {self._where} (errno 121, Remote I/O error); "
                "check power, SDA/SCL wiring and the ADDR pin"
            ) from error

    def raw(self, channel: Channel) -> RawFields:
        from adafruit_ads1x15.analog_in import AnalogIn

        positive, negative = INPUTS[channel.input]
        analog = AnalogIn(self._ads, positive, negative)
        code = analog.value
        volts = float(analog.convert_to_voltage(code))
        fields: RawFields = {"code": code, "volts": round(volts, 5)}
        if isinstance(channel.sensor, NtcSensor):
            divider = channel.sensor.divider(self._config.supply_v)
            fields["supply_v"] = divider.vref
            if 0.0 < volts < divider.vref:
                fields["ohms"] = round(divider.resistance(volts), 1)
        return fields

    def _late_result(self, late: DeadlinePassed) -> int:
        """The deadline passed while the driver polled for the end of the conversion it started. That proves
        only that this thread was away long enough (CPU load, the GIL): the chip itself says whether it is
        stuck. A chip that has finished holds this conversion's result; one still converting is stuck."""
        self._bus.disarm()
        try:
            config = self._ads._read_register(CONFIG_POINTER)
            if not config & CONFIG_OS_IDLE:
                raise SensorError(f"{late.strerror}: the chip still reports a conversion in progress") from late
            return int(self._ads._conversion_value(self._ads.get_last_result(False)))
        except OSError as error:
            raise SensorError(
                f"I2C error on {self._where} after a late conversion: {error.strerror or error} (errno {error.errno})"
            ) from error

    def reader(self, channel_name: str, channel: Channel) -> ChannelReader:
        from adafruit_ads1x15.analog_in import AnalogIn

        positive, negative = INPUTS[channel.input]
        analog = AnalogIn(self._ads, positive, negative)
        where = f"{self._where} input {channel.input}"
        sensor = channel.sensor

        def read_volts() -> float:
            self._bus.arm(self._read_timeout_s, f"conversion on {where}")
            try:
                code = analog.value
            except DeadlinePassed as late:
                code = self._late_result(late)
            except OSError as error:
                raise SensorError(f"I2C error on {where}: {error.strerror or error} (errno {error.errno})") from error
            finally:
                self._bus.disarm()
            if code >= 32767 or code <= -32768:
                raise SensorError(f"{where} is at full scale ({code}): open sensor or input above range")
            return float(analog.convert_to_voltage(code))

        if isinstance(sensor, LinearSensor):
            linear = sensor

            def read_linear() -> float:
                volts = read_volts()
                problem = linear.fault(volts)
                if problem:
                    raise SensorError(f"{where}: {problem}")
                return linear.value(volts)

            return read_linear
        if not isinstance(sensor, NtcSensor):
            return read_volts

        model = sensor.thermistor()
        divider = sensor.divider(self._config.supply_v)
        high_rail_fault = "open" if sensor.wiring == "ntc-to-ground" else "shorted"
        low_rail_fault = "shorted" if sensor.wiring == "ntc-to-ground" else "open"

        def read_temperature() -> float:
            volts = read_volts()
            if volts >= divider.vref * (1 - RAIL_MARGIN):
                raise SensorError(f"thermistor {high_rail_fault}: {where} reads {volts:.3f} V, at the supply rail")
            if volts <= divider.vref * RAIL_MARGIN:
                raise SensorError(f"thermistor {low_rail_fault}: {where} reads {volts:.3f} V, at ground")
            return model.temperature(divider.resistance(volts))

        return read_temperature


def _inputs(config: Ads1115Config) -> tuple[str, ...]:
    return tuple(INPUTS)


def _default_unit(config: Ads1115Config, channel: Channel) -> str:
    if isinstance(channel.sensor, LinearSensor):
        return channel.sensor.unit
    return "degC" if isinstance(channel.sensor, NtcSensor) else "V"


def _open(name: str, config: Any, buses: Buses) -> Ads1115Device:
    return Ads1115Device(name, config, buses)


KIND = DeviceKind(
    kind="ads1115",
    config=Ads1115Config,
    bus_kind="i2c",
    inputs=_inputs,
    default_unit=_default_unit,
    open=_open,
)
