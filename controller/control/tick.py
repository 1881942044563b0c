"""One control decision: a pure function of (state, inputs, layout) that returns what every actuator should do,
who decided it and why, what the interlocks held, and the events to record.

Authority, highest first: interlocks (always, last), a technician override, the ATN lease (in `ATN` mode),
the local policy. In `SAFE` mode every actuator is asked for its safe state (the interlocks still apply, so
frost protection still runs the pumps).

Two clocks: `TickInputs.monotonic` times everything that protects equipment or decides authority (the
interlocks, the authority's silence and lease life); `TickInputs.now` (wall time) picks the tariff band and the
occupancy schedule and dates the events. The overrides handed in are the ones in force, as their book judged them
on the monotonic clock (`controller.overrides`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from controller.control import authority, policy
from controller.control.authority import AuthorityInputs, AuthorityState, HeldLease
from controller.control.interlocks import ActuatorState, Hold, SafetyInputs, apply_interlocks
from controller.control.params import ControlParams
from controller.control.tariff import local_time, price_band
from controller.control.types import Command, Event, Mode, Override, PriceForecast, Source, WeatherForecast, clock_text
from controller.energy.solar import SolarState, solar_step
from controller.energy.starts import follow_power
from controller.layout.model import Layout
from controller.planner import local
from controller.readings import Snapshot

SETPOINT_PREFIX = "setpoint:"
COMFORT_SETPOINT = "setpoint:comfort"


@dataclass(frozen=True, slots=True)
class ControlState:
    authority: AuthorityState
    policy: policy.PolicyState
    actuators: Mapping[str, ActuatorState]
    planner: local.PlannerState = field(default_factory=local.PlannerState)
    solar: SolarState = field(default_factory=SolarState)


@dataclass(frozen=True, slots=True)
class TickInputs:
    now: float  # wall time (UTC epoch seconds)
    monotonic: float  # the monotonic clock, for every protective or authority duration
    snapshot: Snapshot
    heartbeats: Sequence[float] = ()  # arrival times, monotonic
    lease: HeldLease | None = None
    overrides: Sequence[Override] = ()  # those in force now
    forecast: PriceForecast | None = None
    weather: WeatherForecast | None = None  # the ATN's weather forecast, for the planner
    critical_fault: str | None = None
    plan_inline: bool = True  # False: a re-plan is left in state.planner.wanted for the caller to solve


@dataclass
class TickResult:
    state: ControlState
    requests: dict[str, Command]
    commands: dict[str, Command]
    holds: dict[str, Hold]
    events: list[Event] = field(default_factory=list)
    summary: str = ""
    now: float = 0.0  # the tick's wall time
    monotonic: float = 0.0  # and its monotonic time

    def wall_time(self, monotonic: float) -> float:
        """A monotonic time of this tick (a hold's `until`) as wall time, for people and the protocol."""
        return self.now + (monotonic - self.monotonic)


def initial_state(
    layout: Layout,
    monotonic: float,
    actuator_states: Mapping[str, bool],
    starts: Mapping[str, tuple[float, ...]] | None = None,
) -> ControlState:
    """The state at boot: LOCAL, nothing running in the policy, actuators as read back from the hardware.

    Every actuator counts as having switched to its state at `monotonic` (boot): a compressor found off may have
    just stopped (a power blip, a crash), so its minimum off-time runs from boot; whatever ran before is unknown.
    `starts` are the real starts restored from before the restart (`controller.control.restart`).
    """
    known = starts or {}
    return ControlState(
        authority=authority.boot(monotonic, atn_link=layout.links.atn is not None),
        policy=policy.PolicyState(),
        planner=local.PlannerState(prices_due=_prices_due(layout, monotonic)),
        actuators={
            name: ActuatorState(on, monotonic, known.get(name, ()), from_boot=True)
            for name, on in actuator_states.items()
        },
    )


def _prices_due(layout: Layout, monotonic: float) -> float | None:
    """Until when the first plan waits for the ATN's prices (`first_plan_wait_s`); None without an ATN link."""
    wait = layout.control.planner.first_plan_wait_s
    return monotonic + wait if layout.links.atn is not None and wait > 0 else None


def _value(snapshot: Snapshot, channel: str) -> float | None:
    return snapshot.value(channel)


def safety_inputs(snapshot: Snapshot, params: ControlParams) -> SafetyInputs:
    sensors = params.sensors
    tank = (sensors.tank_top, sensors.tank_mid, sensors.tank_bottom)
    return SafetyInputs(
        tank_c=tuple(_value(snapshot, name) for name in tank),
        water_c=tuple(_value(snapshot, name) for name in sensors.water),
        outdoor_c=_value(snapshot, sensors.outdoor),
    )


def blind_fault(snapshot: Snapshot, params: ControlParams) -> str | None:
    """A critical fault when no house and no water temperature is left: nothing to control against."""
    sensors = params.sensors
    if _value(snapshot, sensors.house) is None and all(_value(snapshot, n) is None for n in sensors.water):
        return "no house or water temperature is readable"
    return None


def follow_meter(
    actuators: Mapping[str, ActuatorState], snapshot: Snapshot, layout: Layout, monotonic: float
) -> Mapping[str, ActuatorState]:
    """The heat pump's state with its real run updated from its meter's power, where the layout has the meter."""
    params = layout.control
    heat_pump, channel = params.actuators.heat_pump, params.energy.heat_pump_power
    if heat_pump not in actuators or channel not in layout.channels:
        return actuators
    current = actuators[heat_pump]
    real = follow_power(current.real, snapshot.value(channel), params.energy.starting_w, monotonic)
    return {**actuators, heat_pump: replace(current, real=real)}


def surplus_charge(
    state: SolarState, snapshot: Snapshot, layout: Layout, monotonic: float, requests: dict[str, Command]
) -> SolarState:
    """The solar-surplus rule (`controller.energy.solar`): while it holds, a local request to keep the heat pump
    and its store pump off becomes a request to charge the tank, with the rule's reason. It never overrides a
    technician, the ATN or SAFE mode, and the interlocks still apply."""
    params = layout.control
    energy = params.energy
    if energy.grid_power not in layout.channels:
        return state
    grid = snapshot.value(energy.grid_power)
    state, reason = solar_step(state, grid, snapshot.value(params.sensors.tank_bottom), energy.solar, monotonic)
    roles = params.actuators
    if reason is None:
        return state
    for name in (roles.heat_pump, roles.store_pump):
        asked = requests.get(name)
        if asked is not None and asked.source is Source.LOCAL and not asked.on:
            requests[name] = Command(actuator=name, on=True, source=Source.LOCAL, reason=reason)
    return state


def control_tick(state: ControlState, inputs: TickInputs, layout: Layout) -> TickResult:
    """Decide every actuator for `inputs.now`."""
    params = layout.control
    now, monotonic = inputs.now, inputs.monotonic
    overridden = {o.target: o for o in inputs.overrides}
    fault = inputs.critical_fault or blind_fault(inputs.snapshot, params)
    auth, events = authority.step(
        state.authority,
        AuthorityInputs(
            now=monotonic,
            wall=now,
            heartbeats=inputs.heartbeats,
            lease=inputs.lease,
            overridden=sorted(overridden),
            critical_fault=fault,
        ),
        params.authority,
    )

    # The local policy always runs, so its hysteresis state is current when it is needed.
    price, price_reason = price_band(now, params.tariff, layout.site.timezone, inputs.forecast)
    held = auth.lease if auth.base is Mode.ATN and auth.lease is not None and auth.lease.live(monotonic) else None
    lease = held.lease if held is not None else None
    setpoint = overridden.get(COMFORT_SETPOINT)
    setpoint_c = float(setpoint.value) if setpoint is not None else (lease.setpoints.get("comfort") if lease else None)
    sensors = params.sensors
    snapshot = inputs.snapshot
    planner_state, decision = local.decide(
        state.planner,
        state.policy,
        policy.PolicyInputs(
            house_c=_value(snapshot, sensors.house),
            outdoor_c=_value(snapshot, sensors.outdoor),
            tank_top_c=_value(snapshot, sensors.tank_top),
            tank_mid_c=_value(snapshot, sensors.tank_mid),
            tank_bottom_c=_value(snapshot, sensors.tank_bottom),
            price=price,
            price_reason=price_reason,
            occupied=policy.occupied_now(params, local_time(now, layout.site.timezone).time()),
            setpoint_c=setpoint_c,
        ),
        params,
        now,
        layout.site.timezone,
        inputs.forecast,
        inline=inputs.plan_inline,
        weather=inputs.weather,
        await_prices=local.awaits_prices(state.planner, inputs.forecast, monotonic),
    )

    requests: dict[str, Command] = {}
    models = layout.actuator_models()
    for name in layout.actuators:
        override = overridden.get(name)
        if auth.mode is Mode.SAFE:
            requests[name] = Command(
                actuator=name, on=models[name].safe_on, source=Source.SAFE, reason=f"SAFE mode: {fault}"
            )
        elif override is not None:
            requests[name] = Command(
                actuator=name,
                on=bool(override.value),
                source=Source.OVERRIDE,
                reason=f"override by {override.who} until {clock_text(override.expires_at)}"
                + (f": {override.reason}" if override.reason else ""),
            )
        elif lease is not None and name in lease.actuators:
            requests[name] = Command(
                actuator=name, on=lease.actuators[name], source=Source.ATN, reason=f"ATN lease {lease.id}"
            )
        elif name in decision.commands:
            requests[name] = decision.commands[name]
        else:
            requests[name] = Command(
                actuator=name, on=models[name].safe_on, source=Source.SAFE, reason=decision.summary
            )

    solar = surplus_charge(state.solar, snapshot, layout, monotonic, requests)
    safety = safety_inputs(snapshot, params)
    actuators = follow_meter(state.actuators, snapshot, layout, monotonic)
    result = apply_interlocks(requests, actuators, models, safety, params, monotonic)
    new_state = ControlState(auth, decision.state, actuators, planner_state, solar)
    return TickResult(
        state=new_state,
        requests=requests,
        commands=result.commands,
        holds=result.holds,
        events=events,
        summary=f"{auth.mode.value}: {decision.summary}",
        now=now,
        monotonic=monotonic,
    )
