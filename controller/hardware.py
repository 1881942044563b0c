"""Wiring: turn a validated layout and a set of buses into bus workers, sampled channels and relays.

The same code runs on a Pi (real busio/digitalio) and in simulation (emulated buses): only the `Buses` object
differs. Devices open lazily on their bus thread; one that does not answer makes its channels `fault` with the
reason and is tried again every `DEVICE_RETRY_S`, so an unplugged board never stops the controller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from controller.buses.worker import BusWorker
from controller.clock import Clock
from controller.drivers.base import Buses, ChannelReader, DeviceMissingError, SensorDevice
from controller.drivers.gpio_relay import RelayOutput
from controller.drivers.registry import DEVICE_KINDS, DeviceConfig
from controller.layout.channel import Channel
from controller.layout.model import Layout
from controller.layout.units import channel_units
from controller.sampler import SampledChannel

DEVICE_RETRY_S = 30.0
GPIO_WORKER = "gpio"
log = structlog.get_logger("hearth.hardware")


class DeviceSlot:
    """A device that is opened on first use (on its bus thread) and re-tried after a failure."""

    def __init__(self, name: str, config: DeviceConfig, buses: Buses, clock: Clock) -> None:
        self.name = name
        self.config = config
        self._buses = buses
        self._clock = clock
        self._device: SensorDevice | None = None
        self._error: DeviceMissingError | None = None
        self._retry_at = 0.0

    def get(self) -> SensorDevice:
        if self._device is not None:
            return self._device
        now = self._clock.monotonic()
        if self._error is not None and now < self._retry_at:
            raise self._error
        try:
            self._device = DEVICE_KINDS[self.config.kind].open(self.name, self.config, self._buses)
        except DeviceMissingError as error:
            if self._error is None:
                log.error("device missing", device=self.name, detail=str(error), retry_s=DEVICE_RETRY_S)
            self._error = error
            self._retry_at = now + DEVICE_RETRY_S
            raise
        if self._error is not None:
            log.info("device found", device=self.name)
        self._error = None
        return self._device

    def reader(self, channel_name: str, channel: Channel) -> ChannelReader:
        read = self.get().reader(channel_name, channel)
        calibration = channel.calibration
        if calibration is None:
            return read
        return lambda: calibration.apply(read())

    def retry_now(self) -> None:
        """Try a missing device again at its next read instead of waiting out DEVICE_RETRY_S."""
        self._retry_at = 0.0


@dataclass
class Hardware:
    """Everything the layout describes, bound to buses and worker threads."""

    workers: dict[str, BusWorker]
    slots: dict[str, DeviceSlot]
    channels: list[SampledChannel]
    relays: dict[str, RelayOutput] = field(default_factory=dict)

    def open_relays(self, layout: Layout, buses: Buses) -> None:
        """Claim every relay pin and drive it to its safe state at once (blocking, on the GPIO thread)."""

        def claim() -> dict[str, RelayOutput]:
            return {name: RelayOutput(name, config, buses.pin(config.pin)) for name, config in layout.actuators.items()}

        self.relays = self.workers[GPIO_WORKER].run_blocking(claim)

    def to_safe_state(self) -> dict[str, bool]:
        """Drive every relay to its declared safe state; blocking, so it also works after the loop is gone."""

        def drive() -> dict[str, bool]:
            return {name: relay.to_safe_state() for name, relay in self.relays.items()}

        return self.workers[GPIO_WORKER].run_blocking(drive) if self.relays else {}

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()


def build_hardware(layout: Layout, buses: Buses, clock: Clock) -> Hardware:
    """Bind the layout to `buses`: one worker per bus (plus one for GPIO), one slot per device."""
    workers = {name: BusWorker(name) for name in layout.buses}
    workers[GPIO_WORKER] = BusWorker(GPIO_WORKER)
    slots = {name: DeviceSlot(name, config, buses, clock) for name, config in layout.devices.items()}
    units = channel_units(layout)
    channels = []
    for name, spec in layout.channels.items():
        slot = slots[spec.device]
        channels.append(
            SampledChannel(
                name=name,
                spec=spec,
                unit=units[name],
                bus=slot.config.bus,
                make_reader=lambda slot=slot, name=name, spec=spec: slot.reader(name, spec),  # type: ignore[misc]
            )
        )
    return Hardware(workers=workers, slots=slots, channels=channels)
