"""The hardware layout as validated models.

A layout is human-written TOML with stable kebab-case names. Every model forbids unknown keys, so a typo is an
error and never a silently ignored setting. Keys are snake_case; names of buses, devices, channels and actuators
are kebab-case. Device-kind settings live with their driver (controller/drivers/<kind>.py) and are collected
into one discriminated union here through the registry. Imports go one way: this module -> registry -> driver
modules -> the layout's leaf models (base, sensors, buses, channel), which never import this module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from controller.control.actuator_model import ActuatorModel
from controller.control.params import ControlParams
from controller.drivers.registry import ACTUATOR_KINDS, DEVICE_KINDS, ActuatorConfig, DeviceConfig
from controller.layout.base import Name, Strict
from controller.layout.buses import Bus, I2CBus, SerialBus, SPIBus
from controller.layout.channel import Channel
from controller.links.config import Links


class Site(Strict):
    id: Name
    name: str = ""
    timezone: str = "UTC"


class Storage(Strict):
    path: str = Field(default="hearth.sqlite", description="relative paths are under the state directory")
    retention_days: float = Field(default=30.0, gt=0, le=3650)
    max_size_mb: float = Field(default=200.0, gt=1, le=100_000)
    commit_every_s: float = Field(
        default=2.0,
        ge=0.2,
        le=60,
        description="readings are committed this often (events at once); SD-card writes grow with commits",
    )


SimFault = Literal[
    "open", "short", "stuck", "noise", "absent", "bus-error", "timeout", "crc", "wrong-id", "exception", "unplugged",
    "cable",
]  # fmt: skip
SENSOR_FAULTS = ("open", "short", "stuck", "noise")
DEVICE_FAULTS = ("absent", "bus-error", "stuck")
# Meters: no answer, a reply with a bad CRC, a reply from another id, an exception reply (Modbus); the USB
# adapter unplugged (the port vanishes); the P1 cable pulled from the meter mid-telegram.
SERIAL_FAULTS = ("timeout", "crc", "wrong-id", "exception", "unplugged", "cable")


class Sim(Strict):
    """The simulated plant behind `backend = "sim"`."""

    seed: int = 1
    weather: Literal["mild", "cold", "freezing"] = "cold"
    start: datetime | None = Field(default=None, description="simulated start time (UTC); default now")
    speed: float = Field(default=1.0, gt=0, le=10_000)
    bus_timing: bool = Field(default=True, description="emulated buses take each transaction's wire time")
    initial_house_c: float = Field(default=19.5, ge=-30, le=40)
    initial_tank_c: float = Field(default=45.0, ge=0, le=90)
    probes: dict[Name, str] = Field(default_factory=dict, description="channel -> plant probe, when they differ")
    relays: dict[Name, str] = Field(default_factory=dict, description="actuator -> plant input, when they differ")
    faults: dict[Name, SimFault] = Field(
        default_factory=dict,
        description="faults present from the start: a channel's sensor (open, short, stuck, noise), a chip "
        "(absent, bus-error, stuck) or a meter (timeout, crc, wrong-id, exception, unplugged, cable)",
    )


def fill_channel_defaults(raw: Any) -> Any:
    """Give each channel the settings its device kind implies for its input, where the layout leaves them out.

    A meter's power channel is in W and plausible up to the meter's rating, and power swings back and forth as
    loads switch (no erratic check), where the channel defaults suit a temperature. Runs before validation on
    the raw mapping, so what `hearth layout show` prints is what runs.
    """
    if not isinstance(raw, dict):
        return raw
    devices, channels = raw.get("devices"), raw.get("channels")
    if not isinstance(devices, dict) or not isinstance(channels, dict):
        return raw
    filled: dict[str, Any] = {}
    for name, channel in channels.items():
        device = devices.get(channel.get("device")) if isinstance(channel, dict) else None
        kind = DEVICE_KINDS.get(str(device.get("kind"))) if isinstance(device, dict) else None
        if kind is None or not isinstance(channel, dict):
            filled[name] = channel
            continue
        defaults = kind.channel_defaults(str(channel.get("input", "")))
        filled[name] = {**defaults, **channel}
    return {**raw, "channels": filled}


class Layout(Strict):
    """A whole site: what hardware exists, how it is wired, and where data goes."""

    _kind_defaults = model_validator(mode="before")(fill_channel_defaults)

    backend: Literal["sim", "real"]
    site: Site
    buses: dict[Name, Bus] = Field(default_factory=dict)
    devices: dict[Name, DeviceConfig] = Field(default_factory=dict)
    channels: dict[Name, Channel] = Field(default_factory=dict)
    actuators: dict[Name, ActuatorConfig] = Field(default_factory=dict)
    control: ControlParams = Field(default_factory=ControlParams, description="see docs/layout.md")
    storage: Storage = Field(default_factory=Storage)
    links: Links = Field(default_factory=Links)
    sim: Sim | None = None

    def actuator_models(self) -> dict[str, ActuatorModel]:
        """Each actuator as the interlocks see it, filled in by its kind from its settings. (Not cached: a
        model_copy of the layout with other actuators must never see the old ones; four small objects a tick.)"""
        return {name: ACTUATOR_KINDS[config.kind].model(config) for name, config in self.actuators.items()}


__all__ = ["Bus", "Channel", "I2CBus", "Layout", "SPIBus", "SerialBus", "Sim", "Site", "Storage"]


SUMMARY_LEAVES_OUT = {"links", "storage"}


def layout_summary(layout: Layout) -> dict[str, Any]:
    """The layout as monitors over MQTT see it: everything but the links (brokers, users, password files) and
    the storage (local paths)."""
    return layout.model_dump(mode="json", exclude=SUMMARY_LEAVES_OUT)
