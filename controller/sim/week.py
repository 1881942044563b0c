"""Simulated days of plant + control, fast: the plant simulator and the real control tick (authority, policy,
interlocks), with the readings taken straight from the plant's probes instead of through the emulated chips.

Used by the week tests and bench/simulated_week.py. It checks every actuator switch against its anti-short-cycle
limits independently of the interlocks, measures comfort in occupied hours, splits heat-pump energy by price band
and prices it, so a cheap-window policy can be compared with a plain thermostat on the same weather.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from zoneinfo import ZoneInfo

from controller.atnsim.weather import perfect_forecast
from controller.control.interlocks import HOUR_S, ActuatorState
from controller.control.policy import occupied_now
from controller.control.tariff import Price, local_time, price_band
from controller.control.tick import ControlState, TickInputs, control_tick, initial_state
from controller.control.types import Command, Source, WeatherForecast
from controller.energy.daily import DayTotals
from controller.energy.rollup import rollup
from controller.layout.model import Layout
from controller.planner.local import PlannerState
from controller.readings import Quality, Reading, Snapshot
from controller.sim.energy_tally import SimTally
from controller.sim.grid import grid_flows
from controller.sim.plant import FLOWS, PROBES, Plant, PlantInputs, PlantParams
from controller.sim.pricing import PriceSource, TimeOfUse
from controller.sim.weather import WEATHER_PRESETS

COMFORT_BELOW_K = 1.5  # occupied hours count as comfortable from setpoint - 1.5 K ...
COMFORT_ABOVE_K = 2.0  # ... to setpoint + 2 K (the expensive-window relief is 1 K, the band 0.5 K)

Strategy = Callable[[ControlState, TickInputs, Layout], tuple[ControlState, dict[str, Command]]]
Observer = Callable[[Snapshot, Mapping[str, ActuatorState]], None]  # each tick's readings and actuators


@dataclass
class WeekReport:
    days: float
    weather: str
    occupied_s: float = 0.0
    comfortable_s: float = 0.0
    coldest_occupied_c: float = 99.0
    violations: list[str] = field(default_factory=list)
    energy_kwh: dict[Price, float] = field(default_factory=lambda: dict.fromkeys(Price, 0.0))
    aux_kwh: float = 0.0
    heat_kwh: float = 0.0  # heat-pump heat
    cost: float = 0.0
    starts: int = 0
    cpu_s: float = 0.0
    replans: int = 0

    @property
    def cop(self) -> float:
        total = sum(self.energy_kwh.values())
        return self.heat_kwh / total if total else 0.0

    energy_days: list[DayTotals] = field(default_factory=list)  # heat pump only, by local day, as a live site
    pv_kwh: float = 0.0
    pv_surplus_kwh: float = 0.0
    pv_absorbed_kwh: float = 0.0
    integration_error_pct: float | None = None  # integrated power against the meter's counter

    @property
    def comfort_share(self) -> float:
        return self.comfortable_s / self.occupied_s if self.occupied_s else 1.0

    @property
    def cheap_share(self) -> float:
        total = sum(self.energy_kwh.values())
        return self.energy_kwh[Price.CHEAP] / total if total else 0.0

    def summary(self) -> str:
        total = sum(self.energy_kwh.values())
        return (
            f"{self.weather} {self.days:g} days: comfortable {self.comfort_share:.1%} of occupied hours "
            f"(coldest {self.coldest_occupied_c:.1f} °C), heat pump {total:.1f} kWh "
            f"({self.cheap_share:.0%} in cheap windows), aux {self.aux_kwh:.1f} kWh, cost {self.cost:.2f}, "
            f"COP {self.cop:.2f}, {self.starts} compressor starts, {len(self.violations)} interlock violations, "
            f"CPU {self.cpu_s:.1f} s"
        )

    def energy_summary(self) -> str:
        """The heat pump's figures as the live controller reports them (controller.energy), and the PV absorbed."""
        week = rollup(self.weather, self.energy_days)
        cop = f"{week.cop:.2f}" if week.cop is not None else "-"
        error = f"{self.integration_error_pct:+.3f} %" if self.integration_error_pct is not None else "-"
        absorbed = self.pv_absorbed_kwh / self.pv_surplus_kwh if self.pv_surplus_kwh else 0.0
        cost = f"{week.cost:.2f}" if week.cost is not None else "-"
        return (
            f"{self.weather}: heat {week.heat_kwh:.1f} kWh, electricity {week.elec_kwh:.1f} kWh, COP {cop}, "
            f"{week.starts} starts, {week.running_h:.1f} h running, defrost {week.defrost_kwh:.1f} kWh, "
            f"heat-pump cost {cost}; PV {self.pv_kwh:.1f} kWh, surplus {self.pv_surplus_kwh:.1f} kWh, "
            f"absorbed {self.pv_absorbed_kwh:.1f} kWh ({absorbed:.0%}); integrated vs meter counter {error}"
        )


def policy_strategy(state: ControlState, inputs: TickInputs, layout: Layout) -> tuple[ControlState, dict[str, Command]]:
    result = control_tick(state, inputs, layout)
    return result.state, result.commands


def probe_wiring(layout: Layout) -> tuple[tuple[str, str, str], ...]:
    """Where each layout channel is read in the plant, worked out once per run: (channel, kind, probe) with kind
    "flow", "hp-power", "grid-power" or "probe"; channels the plant has no probe for are left out."""
    sim = layout.sim
    energy = layout.control.energy
    wiring = []
    for name in layout.channels:
        probe = sim.probes.get(name, name) if sim else name
        if probe in FLOWS:
            wiring.append((name, "flow", probe))
        elif name == energy.heat_pump_power:
            wiring.append((name, "hp-power", probe))
        elif name == energy.grid_power:
            wiring.append((name, "grid-power", probe))
        elif probe in PROBES:
            wiring.append((name, "probe", probe))
    return tuple(wiring)


def snapshot_from(
    plant: Plant,
    layout: Layout,
    now: float,
    broken: frozenset[str],
    wiring: tuple[tuple[str, str, str], ...] | None = None,
) -> Snapshot:
    """Every layout channel read straight from its plant probe; `broken` channels read as faults. Of the meters,
    the heat pump's power (the interlocks time compressor starts from it) and the grid's net power (the
    solar-surplus rule) are read; the week runs without serial emulators. `wiring`: `probe_wiring(layout)`."""
    probes = plant.probes()
    flows = plant.flows()
    readings = {}
    for name, kind, probe in wiring if wiring is not None else probe_wiring(layout):
        if kind == "flow":
            readings[name] = Reading(name, flows[probe], "l/min", Quality.OK, now)
        elif kind == "probe":
            if name in broken:
                readings[name] = Reading(name, None, "degC", Quality.FAULT, now, "injected failure")
            else:
                readings[name] = Reading(name, probes[probe], "degC", Quality.OK, now)
        else:
            quality = Quality.FAULT if name in broken else Quality.OK
            watts = plant.heat_pump_electric_w if kind == "hp-power" else grid_flows(plant).net_w
            readings[name] = Reading(name, watts, "W", quality, now)
    return Snapshot(now, MappingProxyType(readings))


def check_switch(name: str, before: ActuatorState, on: bool, now: float, layout: Layout, report: WeekReport) -> None:
    """Record a violation if this real switch breaks the actuator's anti-short-cycle limits (`now`: monotonic)."""
    config = layout.actuator_models()[name]
    ran = now - before.since
    if on and ran < config.min_off_s:
        report.violations.append(f"{name} restarted after {ran:.0f} s off at {now:.0f}")
    if not on and ran < config.min_on_s:
        report.violations.append(f"{name} stopped after {ran:.0f} s on at {now:.0f}")
    limit = config.max_starts_per_hour
    if on and limit is not None and len([t for t in before.starts if t > now - HOUR_S]) >= limit:
        report.violations.append(f"{name} started more than {limit} times in an hour at {now:.0f}")


def simulate(
    layout: Layout,
    *,
    days: float = 7.0,
    weather: str = "cold",
    start: float = 1_767_225_600.0,  # 2026-01-01T00:00Z
    tick_s: float = 10.0,
    seed: int = 1,
    strategy: Strategy = policy_strategy,
    failures: Mapping[str, float] | None = None,
    prices: PriceSource | None = None,
    planner: PlannerState | None = None,
    observer: Observer | None = None,
    weather_forecast: bool = False,
) -> WeekReport:
    """Run `days` of plant and control. `failures` maps channel names to the day they fail (for good);
    `prices` is what energy costs and what the controller is told (the layout's time-of-use by default);
    `planner` is a planner state to start from (the bench's perfect-foresight plan); `observer` sees each tick's
    snapshot and the actuators' states after it (a recorded history, as a live site's store would hold);
    `weather_forecast` hands the controller, every hour, what the reference ATN would send: the next 48 h of the
    plant's own weather as hourly means (a perfect weather forecast)."""
    began = time.process_time()
    plant = Plant(PlantParams(weather=WEATHER_PRESETS[weather]), start_time=start, seed=seed, initial_house_c=20.0)
    now = start
    state = initial_state(layout, 0.0, {name: False for name in layout.actuators})
    if planner is not None:
        state = replace(state, planner=planner)
    source = prices or TimeOfUse(layout.control, layout.site.timezone)
    report = WeekReport(days=days, weather=weather)
    relays = layout.sim.relays if layout.sim else {}
    params = layout.control
    end = start + days * 86400
    failing = dict(failures or {})
    wiring = probe_wiring(layout)
    band_quarter = -1.0
    band = Price.NORMAL
    tally = SimTally()
    sent: WeatherForecast | None = None
    tally.observe(plant, now)
    while now < end:
        broken = frozenset(name for name, day in failing.items() if now >= start + day * 86400)
        snapshot = snapshot_from(plant, layout, now, broken, wiring)
        monotonic = now - start  # simulated time never steps: the monotonic clock is the time since the start
        forecast = source.forecast(now)
        if weather_forecast and (sent is None or now - sent.received_at >= 3600):
            sent = perfect_forecast(plant.weather, now)
        inputs = TickInputs(now=now, monotonic=monotonic, snapshot=snapshot, forecast=forecast, weather=sent)
        state, commands = strategy(state, inputs, layout)
        actuators = dict(state.actuators)
        for name, command in commands.items():
            if command.on != actuators[name].on:
                check_switch(name, actuators[name], command.on, monotonic, layout, report)
                actuators[name] = actuators[name].after(command.on, monotonic)
        state = replace(state, actuators=actuators)
        if observer is not None:
            observer(snapshot, actuators)
        plant_inputs = PlantInputs.from_mapping({relays.get(n, n): s.on for n, s in actuators.items()})
        electric_before = plant.heat_pump_electric_kwh
        aux_before = plant.aux_electric_kwh
        plant.step(tick_s, plant_inputs)
        now += tick_s
        quarter = now // 900
        if quarter != band_quarter:  # the band only feeds the cheap-share figure: per quarter-hour is plenty
            band_quarter = quarter
            band, _ = price_band(now, params.tariff, layout.site.timezone, forecast)
        tally.observe(plant, now)
        tally.count_pv(plant, tick_s)
        used = plant.heat_pump_electric_kwh - electric_before
        aux_used = plant.aux_electric_kwh - aux_before
        report.energy_kwh[band] += used
        report.aux_kwh += aux_used
        report.cost += (used + aux_used) * source.price_at(now - tick_s / 2)
        if occupied_now(params, local_time(now, layout.site.timezone).time()):
            house = plant.state.house_c  # the house-air probe
            report.occupied_s += tick_s
            report.coldest_occupied_c = min(report.coldest_occupied_c, house)
            setpoint = params.comfort.setpoint_c
            if setpoint - COMFORT_BELOW_K <= house <= setpoint + COMFORT_ABOVE_K:
                report.comfortable_s += tick_s
    report.starts = plant.compressor_starts
    report.heat_kwh = plant.heat_pump_heat_kwh
    report.replans = state.planner.replans
    zone = ZoneInfo(layout.site.timezone)
    report.energy_days = tally.days(zone, max_gap_s=3 * tick_s, price=source.price_at)
    report.pv_kwh, report.pv_surplus_kwh = tally.pv_kwh, tally.pv_surplus_kwh
    report.pv_absorbed_kwh = tally.pv_absorbed_kwh
    report.integration_error_pct = tally.integration_error_pct(max_gap_s=3 * tick_s)
    report.cpu_s = time.process_time() - began
    return report


def thermostat_strategy(
    state: ControlState, inputs: TickInputs, layout: Layout
) -> tuple[ControlState, dict[str, Command]]:
    """A plain thermostat for comparison: heat pump, store and distribution pumps on below setpoint - band, off
    above setpoint + band, all day, whatever the price; still through the same interlocks."""
    result = control_tick(state, inputs, layout)  # for the interlocks and authority bookkeeping
    params = layout.control
    house = inputs.snapshot.value(params.sensors.house)
    running = state.policy.heating_house
    if house is not None:
        running = house < params.comfort.setpoint_c - params.comfort.band_k or (
            running and house < params.comfort.setpoint_c + params.comfort.band_k
        )
    roles = params.actuators
    wanted = {roles.heat_pump: running, roles.store_pump: running, roles.distribution_pump: running, roles.aux: False}
    requests = {
        name: Command(actuator=name, on=on, source=Source.LOCAL, reason="thermostat") for name, on in wanted.items()
    }
    from controller.control.interlocks import apply_interlocks
    from controller.control.tick import safety_inputs

    final = apply_interlocks(
        requests,
        state.actuators,
        layout.actuator_models(),
        safety_inputs(inputs.snapshot, params),
        params,
        inputs.monotonic,
    )
    new_policy = replace(result.state.policy, heating_house=running)
    return replace(result.state, policy=new_policy), final.commands
