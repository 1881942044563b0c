"""What a device-kind module provides, and the errors a read may end in.

Everything a driver object does runs on its bus's worker thread (controller.buses.worker), never on the
event loop: the CircuitPython drivers block (the ADS1115 busy-polls, the MAX31865 one-shot sleeps ~75 ms).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from controller.control.actuator_model import ActuatorModel
from controller.layout.channel import Channel


class SensorError(Exception):
    """A read that produced no trustworthy value: open or shorted sensor, chip fault, bus error.

    The message says what was seen and, where it helps, what to check; it becomes the reading's `detail`.
    """


class DeviceMissingError(Exception):
    """A device did not answer when it was opened (errno 121 on I2C, all-ones or all-zeros on SPI)."""


ChannelReader = Callable[[], float]
"""Reads one channel once, on the bus thread; returns the value in the channel's unit or raises SensorError."""

RawFields = dict[str, float | int | str]
"""What a chip reported for one channel before conversion (ADC code, volts, ohms, fault bits), for `hearth probe`."""


class SensorDevice(Protocol):
    """An opened sensor device: hands out one reader per channel wired to it."""

    def reader(self, channel_name: str, channel: Channel) -> ChannelReader: ...

    def raw(self, channel: Channel) -> RawFields:
        """The chip's raw view of one channel, read once; never raises SensorError (it shows what it saw)."""
        ...


class Buses(Protocol):
    """Bus objects by layout name (real busio objects on a Pi, emulated ones elsewhere) and GPIO lines."""

    def bus(self, name: str) -> Any: ...

    def bus_label(self, name: str) -> str: ...

    def pin(self, number: int) -> Any: ...


Finding = tuple[list[str | int], str]
"""A layout problem: the key path it is about and what is wrong."""


def _no_defaults(channel_input: str) -> Mapping[str, Any]:
    return {}


def _kind_only(config: Any) -> str:
    return str(config.kind)


def _no_serial_check(device: Mapping[str, Any], bus_name: str, bus: Mapping[str, Any]) -> Iterator[Finding]:
    return iter(())


@dataclass(frozen=True)
class DeviceKind:
    """One entry of the registry: a device kind's settings model, its inputs, and how to open it.

    `channel_defaults` gives channel settings that depend on the input (a meter's power channel is in W and
    plausible up to its rating, not -40..120 °C); the layout fills them in where a channel leaves them out.
    `check_bus` checks the raw bus settings against what the device can use (a meter's baud rates, a P1
    port's framing) and yields problems keyed by their path in the layout.
    """

    kind: str
    config: type[BaseModel]
    bus_kind: str
    inputs: Callable[[Any], tuple[str, ...]]
    default_unit: Callable[[Any, Channel], str]
    open: Callable[[str, Any, Buses], SensorDevice]
    channel_defaults: Callable[[str], Mapping[str, Any]] = _no_defaults
    check_bus: Callable[[Mapping[str, Any], str, Mapping[str, Any]], Iterator[Finding]] = _no_serial_check
    describe: Callable[[Any], str] = _kind_only


@dataclass(frozen=True)
class ActuatorKind:
    """One entry of the actuator registry: an actuator kind's settings model, and how it fills in the model the
    interlocks apply (safe state, minimum times, sequencing) from those settings."""

    kind: str
    config: type[BaseModel]
    model: Callable[[Any], ActuatorModel]
