"""Interlocks: the pure filter applied last to every command, whoever issued it.

`apply_interlocks` takes what was asked for and returns what may happen, with the reason and, where it is a
matter of time, until when. Nothing can bypass it: overrides, the ATN and the local policy all pass through.

Order of rules:
1. Safety, which acts at once and is the only thing that may cut a minimum on-time short:
   - over-temperature cut: any tank temperature at or above `tank.max_c` turns every heat source off;
   - frost: any water temperature below `safety.frost_c` turns the pumps on (and asks for heat);
   - a rule whose input is missing falls back to the declared safe behaviour: with no tank temperature to
     watch, the aux element (which could overheat the tank unobserved) is held off; with no water temperature
     at all and a cold or unknown outdoor temperature, the pumps circulate.
2. Sequencing: an actuator's `requires` run for `prerun_s` before it starts and `postrun_s` after it stops.
3. Anti-short-cycle: minimum on and off times and maximum starts per hour, timed from the real start and stop:
   for a compressor with an electricity meter, from its power rising through (and falling below) the starting
   power (`ActuatorState.real`, kept by `controller.energy.starts.follow_power`); otherwise from the relay's
   read-back, never from the command. The reason says which. With a meter, starts per hour count both kinds (a
   meter gap must not hide a start), and an enable whose compressor stopped by itself is dropped once the hour's
   starts are used up, so the heat pump's own controller cannot start it again either.

Every time here (`now`, `ActuatorState.since` and `starts`, `Hold.until`) is on the monotonic clock: an NTP step
of the wall clock must neither cancel a minimum off-time nor stretch a minimum on-time.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from controller.control.actuator_model import ActuatorModel
from controller.control.params import ControlParams
from controller.control.types import Command, Source
from controller.energy.starts import RealRun

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class ActuatorState:
    """What an actuator really did: its state, since when, and its real starts in the last hour (monotonic)."""

    on: bool
    since: float
    starts: tuple[float, ...] = ()
    real: RealRun | None = None  # the compressor as its meter sees it, where it has one
    from_boot: bool = False  # found so at start-up: `since` is the start, what it did before is unknown

    def after(self, on: bool, now: float) -> ActuatorState:
        """The state once it has really switched to `on` at `now` (a start is recorded, old ones dropped)."""
        if on == self.on:
            return self
        recent = tuple(t for t in self.starts if t > now - HOUR_S)
        return ActuatorState(on, now, (*recent, now) if on else recent, self.real)


@dataclass(frozen=True, slots=True)
class Hold:
    """Why an actuator is not doing what was asked: the interlock, until when (monotonic; None: while it lasts),
    why."""

    actuator: str
    interlock: str
    until: float | None
    reason: str


@dataclass(frozen=True, slots=True)
class SafetyInputs:
    """The temperatures the safety rules watch; None where the sensor has no trustworthy value."""

    tank_c: tuple[float | None, ...]
    water_c: tuple[float | None, ...]
    outdoor_c: float | None


@dataclass
class InterlockResult:
    commands: dict[str, Command]
    holds: dict[str, Hold] = field(default_factory=dict)


def _known(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def dependants_first(configs: Mapping[str, ActuatorModel]) -> list[str]:
    """Actuators ordered so that each comes before the ones it requires."""
    return list(_dependants_first(tuple((name, tuple(config.requires)) for name, config in configs.items())))


@functools.lru_cache(maxsize=256)
def _dependants_first(requires: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[str, ...]:
    """`dependants_first` on (actuator, what it requires) pairs: the same few layouts at every tick, so kept."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name in visiting:
            return
        visiting.add(name)
        for other, needs in requires:
            if name in needs:
                visit(other)
        visiting.discard(name)
        order.append(name)

    for name, _ in requires:
        visit(name)
    return tuple(order)


def apply_interlocks(
    requests: Mapping[str, Command],
    states: Mapping[str, ActuatorState],
    configs: Mapping[str, ActuatorModel],
    safety: SafetyInputs,
    params: ControlParams,
    now: float,
) -> InterlockResult:
    """Filter `requests` (one per actuator) into what may happen at `now` (monotonic)."""
    roles = params.actuators
    heat_sources = {roles.heat_pump, roles.aux}
    pumps = {roles.store_pump, roles.distribution_pump}
    result = InterlockResult(commands={})
    forced: dict[str, Command] = {}

    # 1. Safety.
    tank = _known(safety.tank_c)
    water = _known(safety.water_c)
    if tank and max(tank) >= params.tank.max_c:
        reason = f"over-temperature cut: tank at {max(tank):.1f} °C >= {params.tank.max_c:g} °C"
        for name in heat_sources & configs.keys():
            forced[name] = Command(actuator=name, on=False, source=Source.INTERLOCK, reason=reason)
    elif not tank and roles.aux in configs:
        reason = "no tank temperature to guard against over-temperature: aux element held off"
        forced[roles.aux] = Command(actuator=roles.aux, on=False, source=Source.INTERLOCK, reason=reason)
    frost = ""
    if water and min(water) < params.safety.frost_c:
        frost = f"frost protection: water at {min(water):.1f} °C < {params.safety.frost_c:g} °C"
    elif not water and (safety.outdoor_c is None or safety.outdoor_c < params.safety.frost_outdoor_c):
        outdoor = "unknown" if safety.outdoor_c is None else f"{safety.outdoor_c:.1f} °C"
        frost = f"frost protection (blind): no water temperature and outdoor {outdoor}"
    if frost:
        for name in pumps & configs.keys():
            forced[name] = Command(actuator=name, on=True, source=Source.INTERLOCK, reason=frost)
        hp = roles.heat_pump
        if hp in configs and hp not in forced:
            forced[hp] = Command(actuator=hp, on=True, source=Source.INTERLOCK, reason=frost)

    for name in dependants_first(configs):
        original = requests.get(name) or _safe(name, configs[name])
        asked = forced.get(name) or original
        final = asked
        if name not in forced or forced[name].on:
            # Everything but a safety cut goes through sequencing and then anti-short-cycle, last: a pump that
            # another actuator needs still keeps its own minimum off-time, and a compressor keeps its minimum
            # off-time even in frost (the pumps and the aux element carry the frost duty meanwhile).
            final = _required_by_others(name, final, states, configs, result, now)
            final = _sequencing(name, final, states, configs, result, now) if final.on else final
            final = _anti_short_cycle(name, final, states[name], configs[name], result, now)
        result.commands[name] = final
        if final.on != original.on and name not in result.holds:
            result.holds[name] = Hold(name, "safety", None, final.reason)
    return result


def _safe(name: str, config: ActuatorModel) -> Command:
    return Command(actuator=name, on=config.safe_on, source=Source.SAFE, reason="no request: safe state")


def _held(name: str, on: bool, interlock: str, until: float | None, reason: str, result: InterlockResult) -> Command:
    result.holds[name] = Hold(name, interlock, until, reason)
    return Command(actuator=name, on=on, source=Source.INTERLOCK, reason=reason)


def _anti_short_cycle(
    name: str, asked: Command, state: ActuatorState, config: ActuatorModel, result: InterlockResult, now: float
) -> Command:
    real = state.real if state.real is not None and state.real.metered else None
    timed = "from the meter's power" if real is not None else "from the relay's read-back"
    if real is not None:
        # The compressor's own run: it may start after its enable, or stop by itself while enabled.
        running, since = real.running, real.since
    else:
        running, since = state.on, state.since
    limit = config.max_starts_per_hour
    starts = _recent_starts(state, now)
    if state.on and not asked.on and running and now - since < config.min_on_s:
        until = since + config.min_on_s
        return _held(name, True, "min-on", until, f"minimum on-time {config.min_on_s:g} s ({timed})", result)
    if state.on and asked.on and real is not None and not running and limit is not None and len(starts) >= limit:
        until = starts[-limit] + HOUR_S
        reason = f"at most {limit} starts per hour (real starts, {timed}): enable dropped while stopped"
        return _held(name, False, "max-starts", until, reason, result)
    if not state.on and asked.on:
        off_since = max(state.since, since) if not running else now
        if now - off_since < config.min_off_s:
            until = off_since + config.min_off_s
            timed += "; counted from this start: it may have run before" if state.from_boot and not running else ""
            return _held(name, False, "min-off", until, f"minimum off-time {config.min_off_s:g} s ({timed})", result)
        if limit is not None and len(starts) >= limit:
            until = starts[-limit] + HOUR_S
            return _held(name, False, "max-starts", until, f"at most {limit} starts per hour ({timed})", result)
    return asked


def _recent_starts(state: ActuatorState, now: float) -> list[float]:
    """Starts in the last hour: the relay's, or the meter's where there are more of those (a start is never lost
    to a meter gap nor to an enable the compressor did not answer)."""
    relay = sorted(t for t in state.starts if t > now - HOUR_S)
    if state.real is None:
        return relay
    metered = sorted(t for t in state.real.starts if t > now - HOUR_S)
    return metered if len(metered) >= len(relay) else relay


def _sequencing(
    name: str,
    asked: Command,
    states: Mapping[str, ActuatorState],
    configs: Mapping[str, ActuatorModel],
    result: InterlockResult,
    now: float,
) -> Command:
    """Hold a start until everything it requires has run for `prerun_s`."""
    config = configs[name]
    if states[name].on:
        return asked
    for needed in config.requires:
        needed_state = states[needed]
        ready_at = needed_state.since + config.prerun_s if needed_state.on else None
        if ready_at is None or now < ready_at:
            reason = f"sequencing: {needed} must run {config.prerun_s:g} s before {name} starts"
            return _held(name, False, "prerun", ready_at, reason, result)
    return asked


def _required_by_others(
    name: str,
    asked: Command,
    states: Mapping[str, ActuatorState],
    configs: Mapping[str, ActuatorModel],
    result: InterlockResult,
    now: float,
) -> Command:
    """Keep `name` on while an actuator that requires it wants to run (pre-run), runs, or post-runs."""
    if asked.on:
        return asked
    for other, config in configs.items():
        if name not in config.requires:
            continue
        decided = result.commands.get(other)
        if decided is not None and decided.on:
            return _held(name, True, "sequencing", None, f"{other} requires {name}", result)
        if other in result.holds and result.holds[other].interlock == "prerun":
            return _held(name, True, "sequencing", None, f"pre-run for {other}", result)
        other_state = states[other]
        stopped_at = now if other_state.on else other_state.since
        if now < stopped_at + config.postrun_s:
            until = stopped_at + config.postrun_s
            unknown = " (it may have run before this start)" if other_state.from_boot and not other_state.on else ""
            return _held(name, True, "postrun", until, f"post-run after {other} stops{unknown}", result)
    return asked
