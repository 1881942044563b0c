"""The hardware layout as validated models.

A layout is human-written TOML with stable kebab-case names. Every model forbids unknown keys, so a typo is an
error and never a silently ignored setting. Keys are snake_case; names of buses, devices, channels and actuators
are kebab-case. Device-kind settings live with their driver (controller/drivers/<kind>.py) and are collected
into one discriminated union here through the registry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from controller.control.params import ControlParams
from controller.drivers.registry import ActuatorConfig, DeviceConfig
from controller.layout.base import Name, Strict
from controller.layout.sensors import Sensor
from controller.links.config import Links


class Site(Strict):
    id: Name
    name: str = ""
    timezone: str = "UTC"


class I2CBus(Strict):
    kind: Literal["i2c"]
    bus: int = Field(ge=0, le=31, description="Linux I2C bus number: /dev/i2c-N")
    frequency: int = Field(default=100_000, ge=10_000, le=1_000_000, description="bus clock in Hz")


class SPIBus(Strict):
    kind: Literal["spi"]
    bus: int = Field(ge=0, le=6, description="SPI controller number: /dev/spidevN.x")


class SerialBus(Strict):
    kind: Literal["serial"]
    port: str = Field(min_length=1, description="device path, e.g. /dev/ttyUSB0")
    baudrate: int = Field(default=9600, ge=300, le=4_000_000)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1


Bus = Annotated[I2CBus | SPIBus | SerialBus, Field(discriminator="kind")]


class Channel(Strict):
    """One measured quantity: which device input it comes from, how it converts, how often and how trusted."""

    device: Name
    input: str = Field(default="", description="the device's input: A0..A3 or A0-A1 ... for ads1115")
    sensor: Sensor | None = None
    unit: str | None = Field(default=None, description="defaults to the sensor's unit (degC or V)")
    sample_period_s: float = Field(default=1.0, ge=0.05, le=3600)
    deadband: float = Field(default=0.1, ge=0, description="store a new value only past this change")
    keepalive_s: float = Field(default=300.0, ge=1, le=86_400, description="store at least this often")
    plausible: tuple[float, float] = Field(default=(-40.0, 120.0), description="[min, max]; outside is out_of_range")
    max_jitter: float | None = Field(
        default=1.0, gt=0, description="median sample-to-sample change above which the sensor is erratic (fault)"
    )
    description: str = ""

    @model_validator(mode="after")
    def _ordered_range(self) -> Channel:
        if self.plausible[0] >= self.plausible[1]:
            raise ValueError(f"plausible range {list(self.plausible)} must be [min, max] with min < max")
        return self


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


SimFault = Literal["open", "short", "stuck", "noise", "absent", "bus-error"]
SENSOR_FAULTS = ("open", "short", "stuck", "noise")
DEVICE_FAULTS = ("absent", "bus-error", "stuck")


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
        description="faults present from the start: a channel's sensor (open, short, stuck, noise) or a device "
        "(absent, bus-error, stuck)",
    )


class Layout(Strict):
    """A whole site: what hardware exists, how it is wired, and where data goes."""

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
