"""The simulated Pi: emulated buses and chips for every device of a layout, fed by the plant simulator.

`SimBuses` is a `Buses` like the real one, so the very same drivers and sampler run on it. The plant reads the
relay coils from the emulated GPIO lines (through each relay's wiring) and writes its temperatures into the
probes in front of the chips: thermistor dividers for ADS1115 inputs, RTD elements for MAX31865s.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from controller.clock import Clock
from controller.drivers.ads1115 import INPUTS, Ads1115Config
from controller.drivers.dsmr_p1 import INTERVAL_S, DsmrP1Config
from controller.drivers.gpio_relay import load_state
from controller.drivers.max31865 import R0, Max31865Config
from controller.emulators.ads1115 import Ads1115Emulator
from controller.emulators.bus import EmulatedI2C, EmulatedSPI
from controller.emulators.gpio import EmulatedGPIO
from controller.emulators.max31865 import Max31865Emulator
from controller.emulators.modbus_slave import ModbusSlaveEmulator, RegisterBank, meter_values
from controller.emulators.p1 import P1Emitter, P1Meter
from controller.emulators.probes import RtdProbe, SensorFault, ThermistorProbe
from controller.emulators.serial_port import EmulatedSerialPort
from controller.layout.buses import I2CBus, SerialBus, SPIBus
from controller.layout.model import Layout, Sim
from controller.layout.sensors import LinearSensor, NtcSensor
from controller.meters.line import SerialLine, SerialPort
from controller.meters.modbus import ModbusMeterConfig
from controller.sim.grid import grid_flows, tariff
from controller.sim.plant import Plant, PlantInputs, PlantParams
from controller.sim.weather import WEATHER_PRESETS

PLANT_STEP_S = 1.0
METER_START_KWH = 1523.25  # an installed meter has counted for a while before Hearth sees it
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
        self.flow_sensors: dict[str, tuple[Ads1115Emulator, int, LinearSensor]] = {}
        self._flow_faults: dict[str, str | None] = {}
        self._unplugged: set[str] = set()
        self._serial_dir: Path | None = None
        self.serial_ports: dict[str, EmulatedSerialPort] = {}
        self.modbus_slaves: dict[str, ModbusSlaveEmulator] = {}
        self.meters: dict[str, tuple[ModbusSlaveEmulator, int, RegisterBank, tuple[tuple[str, int], ...]]] = {}
        self.p1_emitters: dict[str, P1Emitter] = {}
        self._open_serial_ports()
        self._attach_chips(timing)
        self._attach_meters(timing)
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

    def _open_serial_ports(self) -> None:
        """Each serial bus becomes a pty pair behind a link named like the real port, in a private folder."""
        for name, bus in self.layout.buses.items():
            if not isinstance(bus, SerialBus):
                continue
            if self._serial_dir is None:
                self._serial_dir = Path(tempfile.mkdtemp(prefix="hearth-serial-"))
            port = EmulatedSerialPort(self._serial_dir / Path(bus.port).name)
            self.serial_ports[name] = port
            self.buses[name] = SerialPort(SerialLine.of(bus, str(port.path), self.bus_label(name)))

    def _attach_meters(self, timing: bool) -> None:
        zone = ZoneInfo(self.layout.site.timezone)
        for name, device in self.layout.devices.items():
            if isinstance(device, ModbusMeterConfig):
                slave = self.modbus_slaves.get(device.bus)
                if slave is None:
                    line = self.buses[device.bus].line
                    slave = ModbusSlaveEmulator(
                        self.serial_ports[device.bus],
                        baudrate=line.baudrate,
                        bits_per_char=line.bits_per_char,
                        timing=timing,
                    ).start()
                    self.modbus_slaves[device.bus] = slave
                registers = device.registers
                pairs = tuple((q.name, q.address) for q in registers.quantities)
                self.meters[name] = (slave, device.device_id, slave.add_meter(device.device_id), pairs)
            elif isinstance(device, DsmrP1Config):
                meter = P1Meter(version=device.dsmr)
                emitter = P1Emitter(self.serial_ports[device.bus], meter, zone, INTERVAL_S[device.dsmr])
                self.p1_emitters[name] = emitter.start()

    def probe_for(self, channel: str) -> str:
        """The plant probe a channel senses: as mapped under [sim.probes], else its own name."""
        return self.sim.probes.get(channel, channel)

    def _attach_probes(self) -> None:
        for index, (name, channel) in enumerate(self.layout.channels.items()):
            if channel.device not in self.chips:
                continue  # a meter: it reads the plant's own meters
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
            elif isinstance(chip, Ads1115Emulator) and isinstance(channel.sensor, LinearSensor):
                positive, _ = INPUTS[channel.input]
                self.flow_sensors[name] = (chip, positive, channel.sensor)
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
        if target in self.flow_sensors:
            # A broken signal wire reads 0 V; a signal shorted to the sensor's 5 V supply clips the ADC input.
            self._flow_faults[target] = fault
            self._publish_probes()
            log.info("fault injected" if fault else "fault cleared", target=target, fault=fault)
            return
        if target in self.meters:
            slave, device_id, _, _ = self.meters[target]
            if fault == "unplugged" or (fault is None and not slave.port.plugged):
                (slave.port.unplug if fault else slave.port.plug)()
            slave.faults[device_id] = fault if fault in ("timeout", "crc", "wrong-id", "exception") else None  # type: ignore[assignment]
            log.info("fault injected" if fault else "fault cleared", target=target, fault=fault)
            return
        if target in self.p1_emitters:
            self.p1_emitters[target].set_fault(fault)  # type: ignore[arg-type]
            log.info("fault injected" if fault else "fault cleared", target=target, fault=fault)
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

    def _publish_probes(self, dt_s: float = 0.0) -> None:
        temperatures = self.plant.probes()
        for name, probe in self.thermistors.items():
            probe.temperature_c = temperatures[self.probe_for(name)]
        for name, rtd in self.rtds.items():
            rtd.temperature_c = temperatures[self.probe_for(name)]
        flows = self.plant.flows()
        for name, (ads, pin, sensor) in self.flow_sensors.items():
            fault = self._flow_faults.get(name)
            volts = {"open": 0.0, "short": 4.0}.get(fault or "", sensor.volts_for(flows[self.probe_for(name)]))
            ads.set_input(pin, volts)
        self._publish_meters(dt_s)

    def _publish_meters(self, dt_s: float) -> None:
        """The heat pump's electricity meters count its power; the smart meter the whole house's."""
        plant = self.plant
        for _, _, bank, quantities in self.meters.values():
            phases = 3 if any(name.endswith("-l3") for name, _ in quantities) else 1
            import_kwh = METER_START_KWH + plant.heat_pump_electric_kwh
            bank.set_floats(meter_values(quantities, plant.heat_pump_electric_w, import_kwh, 0.0, phases))
        if self.p1_emitters:
            flows, rate = grid_flows(plant), tariff(plant)
            for emitter in self.p1_emitters.values():
                emitter.update(flows, rate, dt_s, plant.time)

    def step(self) -> None:
        """Advance the plant to the clock's now with the relays as they are, and update every probe."""
        now = self.clock.now()
        dt = now - self._last_step
        if dt > 0:
            self.plant.step(dt, self.plant_inputs())
            self._last_step = now
            self._publish_probes(dt)

    async def run(self) -> None:
        """Step the plant every simulated second, forever."""
        while True:
            self.step()
            await self.clock.sleep(PLANT_STEP_S)

    def close(self) -> None:
        """Stop the meters' emulator threads and remove their ports; the chips hold no OS resources."""
        for emitter in self.p1_emitters.values():
            emitter.stop()
        for slave in self.modbus_slaves.values():
            slave.stop()
        for name, port in self.serial_ports.items():
            self.buses[name].close()
            port.close()
        if self._serial_dir is not None:
            shutil.rmtree(self._serial_dir, ignore_errors=True)
