"""A fleet site's house: the plant simulator read directly, for `hearth fleet-sim` at hundreds of sites.

`hearth run` on `backend = "sim"` puts register-level emulators (ADS1115, MAX31865, a Modbus meter and a P1
port on pty pairs) between the plant and the real drivers, each bus with its worker thread: the code path of a
Pi, and about 1-2 % of a core per house here. A fleet of 500 on two cores has about 0.2 % per house, so
`PlantHouse` hands the sampler what those chips would have converted: each channel's value straight from the
plant (the same `Plant`, the same physics and weather), a meter's counters from the plant's own integrals.
What stays real per site: the sampler (quality, plausibility, staleness), the relays' driver on emulated GPIO
lines (the plant reads the coils through each relay's wiring, as in `SimBuses`), the control loop with its pure
tick and interlocks, the store on disk and the ATN link.

What is simplified, and why it is the same physics:
- No sensor conversion error: a thermistor channel reads the plant's water temperature, not a divider voltage
  through a 16-bit ADC and its beta model (a few hundredths of a kelvin), and a layout's calibration is not
  applied (it corrects a real probe's error, which this house does not have).
- No bus threads: the emulated GPIO answers at once, so relay calls run inline on the event loop.
- The P1 meter is the emulator's own counter model (`controller.emulators.p1.P1Meter`), read without its
  telegram and CRC; the heat pump's Modbus meter is the plant's integral, as `SimBuses` writes it to the meter's
  registers.
A channel this house cannot read (a device kind or input it does not model) is refused when the fleet is
planned, with its name, not read as zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from controller.buses.worker import BusWorker
from controller.clock import Clock, every
from controller.drivers.ads1115 import Ads1115Config
from controller.drivers.dsmr_p1 import DsmrP1Config
from controller.drivers.gpio_relay import load_state
from controller.drivers.max31865 import Max31865Config
from controller.emulators.gpio import EmulatedGPIO, EmulatedLine
from controller.emulators.modbus_slave import meter_values
from controller.emulators.p1 import P1Meter
from controller.layout.channel import Channel
from controller.layout.model import Layout, Sim
from controller.layout.sensors import LinearSensor
from controller.layout.units import channel_units
from controller.meters.modbus import ModbusMeterConfig
from controller.sampler import SampledChannel
from controller.sim.grid import grid_flows, tariff
from controller.sim.plant import Plant, PlantInputs, PlantParams
from controller.sim.weather import WEATHER_PRESETS
from controller.sim.world import METER_START_KWH, PLANT_STEP_S

T = TypeVar("T")
PLANT_BUS = "plant"
P1_INPUTS = ("power", "power-delivered", "power-received", "tariff")


class InlineWorker(BusWorker):
    """A `BusWorker` that runs each call at once on the calling thread: for emulated devices that answer in
    microseconds, where a thread hop per call would cost more than the call."""

    def __init__(self, name: str) -> None:  # no executor: nothing here ever blocks
        self.name = name

    async def run(self, function: Callable[[], T]) -> T:
        return function()

    def run_blocking(self, function: Callable[[], T]) -> T:
        return function()

    def close(self) -> None:
        return None


class UnmodelledChannelError(ValueError):
    """A channel of the layout that `PlantHouse` cannot read from the plant."""


class PlantHouse:
    """One simulated house: the plant, its relays' GPIO lines and meter counters, read directly (see module)."""

    def __init__(self, layout: Layout, clock: Clock, sim: Sim | None = None) -> None:
        self.layout = layout
        self.sim = sim or layout.sim or Sim()
        self.clock = clock
        self.gpio = EmulatedGPIO()
        self.plant = Plant(
            PlantParams(weather=WEATHER_PRESETS[self.sim.weather]),
            start_time=self.sim.start.timestamp() if self.sim.start is not None else clock.now(),
            seed=self.sim.seed,
            initial_house_c=self.sim.initial_house_c,
            initial_tank_c=self.sim.initial_tank_c,
        )
        self.p1 = P1Meter()
        self._last_step = clock.now()
        self.units = channel_units(layout)
        self.readers = {name: self._reader(name, channel) for name, channel in layout.channels.items()}

    # ---- the Buses protocol (only GPIO is used: there are no chips) ---------------------------------------

    def bus(self, name: str) -> object:
        raise KeyError(f"{name}: a fleet house has no buses; its channels read the plant")

    def bus_label(self, name: str) -> str:
        return f"the plant ({name})"

    def pin(self, number: int) -> EmulatedLine:
        return self.gpio.line(number)

    # ---- channels ------------------------------------------------------------------------------------------

    def _reader(self, name: str, channel: Channel) -> Callable[[], float]:
        device = self.layout.devices[channel.device]
        probe = self.sim.probes.get(name, name)
        plant = self.plant
        if isinstance(device, Ads1115Config) and isinstance(channel.sensor, LinearSensor):
            return lambda: plant.flows()[probe]
        if isinstance(device, Ads1115Config | Max31865Config):
            if probe not in plant.probes():
                raise UnmodelledChannelError(f"channel {name}: the plant has no probe {probe!r} ([sim.probes])")
            return lambda: plant.probes()[probe]
        if isinstance(device, ModbusMeterConfig):
            addresses = {q.name: q.address for q in device.registers.quantities}
            if channel.input not in addresses:
                raise UnmodelledChannelError(f"channel {name}: meter input {channel.input!r} is not modelled")
            pairs = tuple(addresses.items())
            phases = 3 if any(q.endswith("-l3") for q in addresses) else 1
            address = addresses[channel.input]
            return lambda: meter_values(
                pairs, plant.heat_pump_electric_w, METER_START_KWH + plant.heat_pump_electric_kwh, 0.0, phases
            )[address]
        if isinstance(device, DsmrP1Config):
            return self._p1_reader(name, channel.input)
        raise UnmodelledChannelError(f"channel {name}: device kind {device.kind} is not modelled by a fleet house")

    def _p1_reader(self, name: str, quantity: str) -> Callable[[], float]:
        meter = self.p1
        if quantity.startswith(("import-energy-t", "export-energy-t")) and quantity[-1] in "12":
            counters = meter.import_kwh if quantity.startswith("import") else meter.export_kwh
            index = int(quantity[-1]) - 1
            return lambda: counters[index]
        values: dict[str, Callable[[], float]] = {
            "power": lambda: meter.flows.net_w,
            "power-delivered": lambda: meter.flows.delivered_w,
            "power-received": lambda: meter.flows.received_w,
            "tariff": lambda: float(meter.tariff),
        }
        if quantity not in values:
            known = ", ".join([*P1_INPUTS, "import-energy-t1/t2", "export-energy-t1/t2"])
            raise UnmodelledChannelError(f"channel {name}: P1 input {quantity!r} is not modelled (known: {known})")
        return values[quantity]

    def channels(self) -> list[SampledChannel]:
        """The layout's channels for a `Sampler`, all on one inline "bus" that reads the plant."""
        return [
            SampledChannel(
                name=name,
                spec=spec,
                unit=self.units[name],
                bus=PLANT_BUS,
                make_reader=lambda reader=self.readers[name]: reader,  # type: ignore[misc]
            )
            for name, spec in self.layout.channels.items()
        ]

    # ---- the plant -----------------------------------------------------------------------------------------

    def plant_inputs(self) -> PlantInputs:
        states = {
            self.sim.relays.get(name, name): load_state(config, self.gpio.line(config.pin).level)
            for name, config in self.layout.actuators.items()
        }
        return PlantInputs.from_mapping(states)

    def step(self) -> None:
        """Advance the plant to the clock's now with the relays as they are; count the smart meter."""
        now = self.clock.now()
        dt = now - self._last_step
        if dt > 0:
            self.plant.step(dt, self.plant_inputs())
            self._last_step = now
            self.p1.advance(grid_flows(self.plant), tariff(self.plant), dt, self.plant.time)

    async def run(self, step_s: float = PLANT_STEP_S) -> None:
        """Step the plant every `step_s` (on a fixed grid), forever."""
        self.step()
        async for _ in every(self.clock, step_s):
            self.step()
