"""The simulated Pi: emulated buses and chips for every device of a layout, fed by the plant simulator.

`SimBuses` is a `Buses` like the real one, so the very same drivers and sampler run on it. The plant reads the
relay coils from the emulated GPIO lines (through each relay's wiring) and writes its temperatures into the
probes in front of the chips: thermistor dividers for ADS1115 inputs, RTD elements for MAX31865s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from controller.clock import Clock
from controller.drivers.ads1115 import INPUTS, Ads1115Config
from controller.drivers.gpio_relay import load_state
from controller.drivers.max31865 import R0, Max31865Config
from controller.emulators.ads1115 import Ads1115Emulator
from controller.emulators.bus import EmulatedI2C, EmulatedSPI
from controller.emulators.gpio import EmulatedGPIO
from controller.emulators.max31865 import Max31865Emulator
from controller.emulators.probes import RtdProbe, SensorFault, ThermistorProbe
from controller.layout.buses import I2CBus, SerialBus, SPIBus
from controller.layout.model import Layout, Sim
from controller.layout.sensors import NtcSensor
from controller.sim.plant import Plant, PlantInputs, PlantParams
from controller.sim.weather import WEATHER_PRESETS

PLANT_STEP_S = 1.0
NOISE_FAULT_SIGMA_K = 3.0  # enough to make a sensor erratic, as a loose connector or mains pickup does
log = structlog.get_logger("hearth.sim")


def instant_clock() -> Callable[[], float]:
    """A chip clock for untimed buses: every look at it is one second later, so conversions are done at once."""
    counter = [0.0]

    def tick() -> float:
        counter[0] += 1.0
        return counter[0]

    return tick


class SimBuses:
    """Emulated buses, chips, GPIO and probes for one layout, plus the plant that drives them."""

    def __init__(self, layout: Layout, clock: Clock, sim: Sim | None = None) -> None:
        self.layout = layout
        self.sim = sim or layout.sim or Sim()
        self.clock = clock
        timing = self.sim.bus_timing
        self.gpio = EmulatedGPIO()
        self.buses: dict[str, Any] = {}
        for name, bus in layout.buses.items():
            if isinstance(bus, I2CBus):
                self.buses[name] = EmulatedI2C(bus.bus, frequency=bus.frequency, timing=timing)
            elif isinstance(bus, SPIBus):
                self.buses[name] = EmulatedSPI(bus.bus, timing=timing)
        self.chips: dict[str, Ads1115Emulator | Max31865Emulator] = {}
        self.thermistors: dict[str, ThermistorProbe] = {}
        self.rtds: dict[str, RtdProbe] = {}
        self._unplugged: set[str] = set()
        self._attach_chips(timing)
        self._attach_probes()
        params = PlantParams(weather=WEATHER_PRESETS[self.sim.weather])
        start = self.sim.start.timestamp() if self.sim.start is not None else clock.now()
        self.plant = Plant(
            params,
            start_time=start,
            seed=self.sim.seed,
            initial_house_c=self.sim.initial_house_c,
            initial_tank_c=self.sim.initial_tank_c,
        )
        self._last_step = clock.now()
        self._publish_probes()
        for target, fault in self.sim.faults.items():
            self.inject(target, fault)

    # ---- Buses ----------------------------------------------------------------------------------------

    def bus(self, name: str) -> Any:
        return self.buses[name]

    def bus_label(self, name: str) -> str:
        config = self.layout.buses[name]
        if isinstance(config, SerialBus):
            return f"emulated serial {config.port} ({name})"
        return f"emulated {config.kind.upper()} bus {config.bus} ({name})"

    def pin(self, number: int) -> Any:
        return self.gpio.line(number)

    # ---- wiring -----------------------------------------------------------------------------------------

    def _attach_chips(self, timing: bool) -> None:
        for index, (name, device) in enumerate(self.layout.devices.items()):
            chip_clock = time.monotonic if timing else instant_clock()
            seed = self.sim.seed * 1000 + index
            if isinstance(device, Ads1115Config):
                ads = Ads1115Emulator(clock=chip_clock, seed=seed)
                self.buses[device.bus].attach(device.address, ads)
                self.chips[name] = ads
            elif isinstance(device, Max31865Config):
                # The simulated house's leads are what the layout says they are: lead_ohms covers both.
                rtd = Max31865Emulator(
                    rref=device.reference_ohms,
                    clock=chip_clock,
                    seed=seed,
                    wires=device.wires,
                    lead_ohms=device.lead_ohms / 2,
                )
                self.buses[device.bus].attach(self.gpio.line(device.cs_pin), rtd)
                self.chips[name] = rtd

    def probe_for(self, channel: str) -> str:
        """The plant probe a channel senses: as mapped under [sim.probes], else its own name."""
        return self.sim.probes.get(channel, channel)

    def _attach_probes(self) -> None:
        for index, (name, channel) in enumerate(self.layout.channels.items()):
            chip = self.chips[channel.device]
            device = self.layout.devices[channel.device]
            seed = self.sim.seed * 7919 + index
            if isinstance(chip, Ads1115Emulator) and isinstance(channel.sensor, NtcSensor):
                assert isinstance(device, Ads1115Config)
                divider = channel.sensor.divider(device.supply_v)
                probe = ThermistorProbe(channel.sensor.thermistor(), divider, seed=seed)
                positive, _ = INPUTS[channel.input]
                chip.set_input(positive, probe.volts)
                self.thermistors[name] = probe
            elif isinstance(chip, Max31865Emulator) and isinstance(device, Max31865Config):
                rtd_probe = RtdProbe(R0[device.rtd], seed=seed)
                chip.set_resistance(rtd_probe.resistance)
                self.rtds[name] = rtd_probe

    # ---- fault injection --------------------------------------------------------------------------------

    def inject(self, target: str, fault: str | None) -> None:
        """Inject (or with None, clear) a fault: on a channel's probe, or on a device (chip or bus)."""
        if target in self.thermistors or target in self.rtds:
            probe = self.thermistors.get(target) or self.rtds[target]
            probe.fault = None if fault is None else SensorFault(fault, sigma_k=NOISE_FAULT_SIGMA_K)  # type: ignore[arg-type]
            return
        device = self.layout.devices[target]
        chip = self.chips[target]
        if isinstance(chip, Ads1115Emulator) and isinstance(device, Ads1115Config):
            bus = self.buses[device.bus]
            if fault == "absent" and target not in self._unplugged:
                bus.detach(device.address)
                self._unplugged.add(target)
            elif fault != "absent" and target in self._unplugged:
                bus.attach(device.address, chip)
                self._unplugged.discard(target)
            chip.bus_error = fault == "bus-error"
            chip.stuck = fault == "stuck"
        elif isinstance(chip, Max31865Emulator):
            chip.bus_error = "miso-high" if fault in ("absent", "bus-error") else None
            chip.stuck = fault == "stuck"
        log.info("fault injected" if fault else "fault cleared", target=target, fault=fault)

    # ---- the plant --------------------------------------------------------------------------------------

    def relay_states(self) -> dict[str, bool]:
        """Each actuator's load state as the plant sees it, from the physical level of its GPIO line."""
        return {
            name: load_state(config, self.gpio.line(config.pin).level) for name, config in self.layout.actuators.items()
        }

    def plant_inputs(self) -> PlantInputs:
        return PlantInputs.from_mapping(
            {self.sim.relays.get(name, name): on for name, on in self.relay_states().items()}
        )

    def _publish_probes(self) -> None:
        temperatures = self.plant.probes()
        for name, probe in self.thermistors.items():
            probe.temperature_c = temperatures[self.probe_for(name)]
        for name, rtd in self.rtds.items():
            rtd.temperature_c = temperatures[self.probe_for(name)]

    def step(self) -> None:
        """Advance the plant to the clock's now with the relays as they are, and update every probe."""
        now = self.clock.now()
        dt = now - self._last_step
        if dt > 0:
            self.plant.step(dt, self.plant_inputs())
            self._last_step = now
            self._publish_probes()

    async def run(self) -> None:
        """Step the plant every simulated second, forever."""
        while True:
            self.step()
            await self.clock.sleep(PLANT_STEP_S)

    def close(self) -> None:
        """Nothing to release: emulated buses hold no OS resources."""
