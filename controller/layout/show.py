"""`hearth layout show`: the layout as a readable tree of buses, devices, channels and actuators."""

from __future__ import annotations

from controller.drivers.ads1115 import Ads1115Config
from controller.drivers.gpio_relay import GpioRelay
from controller.drivers.max31865 import Max31865Config
from controller.drivers.registry import DEVICE_KINDS, DeviceConfig
from controller.layout.buses import I2CBus, SerialBus, SPIBus
from controller.layout.channel import Channel
from controller.layout.model import Layout
from controller.layout.sensors import LinearSensor, NtcSensor, VoltsSensor


def _bus_line(name: str, bus: I2CBus | SPIBus | SerialBus) -> str:
    if isinstance(bus, I2CBus):
        return f"{name}: I2C bus {bus.bus} at {bus.frequency / 1000:g} kHz"
    if isinstance(bus, SPIBus):
        return f"{name}: SPI bus {bus.bus}"
    return f"{name}: serial {bus.port} {bus.baudrate} {bus.bytesize}{bus.parity}{bus.stopbits}"


def _device_line(name: str, device: DeviceConfig) -> str:
    if isinstance(device, Ads1115Config):
        text = f"{name}: ads1115 at 0x{device.address:02x}, ±{device.range_v} V, {device.data_rate} SPS"
    elif not isinstance(device, Max31865Config):
        text = f"{name}: {DEVICE_KINDS[device.kind].describe(device)}"
    else:
        text = (
            f"{name}: max31865 on CS GPIO{device.cs_pin}, {device.rtd.upper()} {device.wires}-wire, "
            f"Rref {device.reference_ohms:g} Ω, {device.filter_hz} Hz filter"
        )
    return text + (f"  ({device.description})" if device.description else "")


def _sensor_text(channel: Channel, kind: str) -> str:
    sensor = channel.sensor
    if isinstance(sensor, VoltsSensor):
        return "volts"
    if isinstance(sensor, LinearSensor):
        (v0, v1), (x0, x1) = sensor.volts, sensor.values
        return f"linear {v0:g}-{v1:g} V = {x0:g}-{x1:g} {sensor.unit}"
    if isinstance(sensor, NtcSensor):
        if sensor.beta is not None and sensor.r25 is not None:
            model = f"NTC {sensor.r25 / 1000:g} kΩ β{sensor.beta:g}"
        elif sensor.steinhart_hart is not None:
            model = "NTC Steinhart-Hart"
        else:
            model = f"NTC R-T table ({len(sensor.table or ())} rows)"
        return f"{model}, {sensor.r_fixed / 1000:g} kΩ {sensor.wiring}"
    return "RTD" if kind == "max31865" else kind


def _channel_line(name: str, channel: Channel, unit: str, kind: str) -> str:
    low, high = channel.plausible
    return (
        f"{channel.input or 'rtd':6} {name:18} {_sensor_text(channel, kind)}; {unit}, "
        f"every {channel.sample_period_s:g} s, "
        f"deadband {channel.deadband:g}, plausible {low:g}..{high:g}"
    )


def _actuator_line(name: str, actuator: GpioRelay) -> str:
    parts = [
        f"{name}: relay on GPIO{actuator.pin}{' (active low)' if actuator.active_low else ''}",
        f"{actuator.contacts}, safe {actuator.safe_state}",
    ]
    if actuator.min_on_s or actuator.min_off_s:
        parts.append(f"min on {actuator.min_on_s:g} s / off {actuator.min_off_s:g} s")
    if actuator.max_starts_per_hour:
        parts.append(f"≤ {actuator.max_starts_per_hour} starts/h")
    if actuator.requires:
        parts.append(
            f"requires {', '.join(actuator.requires)} "
            f"(pre-run {actuator.prerun_s:g} s, post-run {actuator.postrun_s:g} s)"
        )
    text = "; ".join(parts)
    return text + (f"  ({actuator.description})" if actuator.description else "")


def render(layout: Layout, units: dict[str, str]) -> str:
    """The whole layout as indented text. `units` gives each channel's effective unit."""
    site = layout.site
    lines = [
        f"site {site.id}" + (f" — {site.name}" if site.name else ""),
        f"  backend {layout.backend}, timezone {site.timezone}",
    ]
    lines.append("buses")
    for bus_name, bus in layout.buses.items():
        lines.append(f"  {_bus_line(bus_name, bus)}")
        for device_name, device in layout.devices.items():
            if device.bus != bus_name:
                continue
            lines.append(f"    {_device_line(device_name, device)}")
            for channel_name, channel in layout.channels.items():
                if channel.device == device_name:
                    lines.append(f"      {_channel_line(channel_name, channel, units[channel_name], device.kind)}")
    lines.append("actuators")
    lines.extend(f"  {_actuator_line(name, actuator)}" for name, actuator in layout.actuators.items())
    storage = layout.storage
    lines.append(f"storage {storage.path}, keep {storage.retention_days:g} days, at most {storage.max_size_mb:g} MB")
    if layout.sim is not None:
        sim = layout.sim
        lines.append(
            f"simulation seed {sim.seed}, {sim.weather} weather, speed {sim.speed:g}x, "
            f"bus timing {'on' if sim.bus_timing else 'off'}"
        )
    return "\n".join(lines)
