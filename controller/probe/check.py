"""The commissioning checks, on any `Buses` (the Pi's, or the simulated house's), run once in this thread.

Nothing here switches a relay unless asked for that relay by name; nothing claims the other relays' pins.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from controller.clock import Clock
from controller.drivers.base import Buses, DeviceMissingError, RawFields, SensorError
from controller.drivers.gpio_relay import RelayError, RelayOutput
from controller.hardware import build_hardware
from controller.layout.buses import I2CBus
from controller.layout.model import Layout
from controller.sampler import judge, read_once


@dataclass
class BusScan:
    """One I2C bus: the addresses that acknowledged, against the ones the layout declares."""

    bus: str
    label: str
    answered: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # address -> device
    unexpected: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class DeviceCheck:
    name: str
    kind: str
    present: bool
    detail: str = ""


@dataclass
class ChannelCheck:
    name: str
    device: str
    raw: RawFields
    value: float | None
    unit: str
    quality: str
    detail: str = ""


@dataclass
class RelayCheck:
    name: str
    commanded: str
    read_back: str
    restored: str
    ok: bool
    detail: str = ""


@dataclass
class ProbeReport:
    buses: list[BusScan]
    devices: list[DeviceCheck]
    channels: list[ChannelCheck]
    relays: list[RelayCheck]

    @property
    def complete(self) -> bool:
        """Everything the layout declares answered, every channel read, every asked-for relay followed."""
        return (
            all(not scan.missing and not scan.error for scan in self.buses)
            and all(device.present for device in self.devices)
            and all(channel.quality != "fault" for channel in self.channels)
            and all(relay.ok for relay in self.relays)
        )


def scan_i2c(layout: Layout, buses: Buses) -> list[BusScan]:
    """Every I2C bus of the layout, scanned like i2cdetect (an empty write to 0x08..0x77)."""
    scans: list[BusScan] = []
    for name, config in layout.buses.items():
        if not isinstance(config, I2CBus):
            continue
        scan = BusScan(bus=name, label=buses.bus_label(name))
        expected = {
            getattr(device, "address", None): device_name
            for device_name, device in layout.devices.items()
            if device.bus == name
        }
        try:
            bus = buses.bus(name)
            answered = _scan(bus)
        except OSError as error:
            scan.error = f"scan failed: {error.strerror or error}"
            scans.append(scan)
            continue
        scan.answered = [f"0x{address:02x}" for address in answered]
        scan.missing = {f"0x{a:02x}": d for a, d in expected.items() if isinstance(a, int) and a not in answered}
        scan.unexpected = [f"0x{a:02x}" for a in answered if a not in expected]
        scans.append(scan)
    return scans


def _scan(bus: Any) -> list[int]:
    while not bus.try_lock():
        time.sleep(0.001)
    try:
        return sorted(int(address) for address in bus.scan())
    finally:
        bus.unlock()


def check_channels(layout: Layout, buses: Buses, clock: Clock) -> tuple[list[DeviceCheck], list[ChannelCheck]]:
    """Open every device and read every channel once: raw fields next to the converted value and its quality."""
    hardware = build_hardware(layout, buses, clock)
    try:
        devices: list[DeviceCheck] = []
        for name, slot in hardware.slots.items():
            try:
                slot.get()
                devices.append(DeviceCheck(name, slot.config.kind, True))
            except DeviceMissingError as error:
                devices.append(DeviceCheck(name, slot.config.kind, False, str(error)))
        channels: list[ChannelCheck] = []
        for sampled in hardware.channels:
            slot = hardware.slots[sampled.spec.device]
            raw: RawFields = {}
            try:  # raw first: reading a faulty channel clears the chip's fault bits
                raw = slot.get().raw(sampled.spec)
            except DeviceMissingError:
                pass  # the device's line says why
            except (SensorError, OSError, ValueError) as failed:
                raw = {"error": str(failed)}
            value, why = read_once(sampled)
            reading = judge(sampled, value, why, clock.now())
            channels.append(
                ChannelCheck(
                    sampled.name,
                    sampled.spec.device,
                    raw,
                    reading.value,
                    reading.unit,
                    str(reading.quality),
                    reading.detail,
                )
            )
        return devices, channels
    finally:
        hardware.close()


def switch_relay(layout: Layout, buses: Buses, name: str, on: bool, hold_s: float) -> RelayCheck:
    """Claim one relay (it starts in its safe state), switch it, read it back, hold, and put it back."""
    config = layout.actuators[name]
    state = "on" if on else "off"
    try:
        relay = RelayOutput(name, config, buses.pin(config.pin))
        read_back = "on" if relay.set(on) else "off"
    except RelayError as error:
        return RelayCheck(name, state, "mismatch", "", False, str(error))
    time.sleep(hold_s)
    try:
        restored = "on" if relay.to_safe_state() else "off"
    except RelayError as error:
        return RelayCheck(name, state, read_back, "mismatch", False, str(error))
    return RelayCheck(name, state, read_back, restored, read_back == state)


def probe(layout: Layout, buses: Buses, clock: Clock, switches: dict[str, bool], hold_s: float = 5.0) -> ProbeReport:
    """Everything `hearth probe` checks, in the order an installer would."""
    scans = scan_i2c(layout, buses)
    devices, channels = check_channels(layout, buses, clock)
    relays = [switch_relay(layout, buses, name, on, hold_s) for name, on in switches.items()]
    return ProbeReport(scans, devices, channels, relays)
