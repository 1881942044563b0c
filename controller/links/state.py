"""The controller's state as a protocol `State` message: readings, actuators with who decided and why, mode,
overrides, alarms, link health and the planner's next hours. Built the same way for MQTT and the local socket."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

from controller import protocol
from controller.control.interlocks import ActuatorState
from controller.control.tick import TickResult
from controller.control.types import Override
from controller.planner.view import plan_state
from controller.readings import Snapshot


def change_signature(state: protocol.State) -> Hashable:
    """What makes a published state worth sending at once: the mode and its reason, each actuator's on/off and
    source, the overrides in force (readings are sent by their own period)."""
    return (
        state.mode,
        state.reason,
        tuple((n, a.on, a.source) for n, a in state.actuators.items()),
        tuple(o.id for o in state.overrides),
    )


def change_signature_of(
    result: TickResult | None, overrides: Sequence[Override], actual: Mapping[str, ActuatorState] | None
) -> Hashable:
    """`change_signature(state_message(...))` for the same inputs, without building the message (the links ask at
    every tick; the message is built only when this changed, or its period or a request is due)."""
    mode, reason = "LOCAL", "starting"
    actuators: tuple[tuple[str, bool, str], ...] = ()
    if result is not None:
        mode, reason = result.state.authority.mode.value, result.state.authority.reason
        actuators = tuple(
            (name, actual[name].on if actual and name in actual else command.on, command.source.value)
            for name, command in result.commands.items()
        )
    return (mode, reason, actuators, tuple(o.id for o in overrides))


def state_message(
    site: str,
    now: float,
    snapshot: Snapshot,
    result: TickResult | None,
    overrides: Sequence[Override] = (),
    link: protocol.LinkState | None = None,
    actual: Mapping[str, ActuatorState] | None = None,
    alarms: Sequence[protocol.Alarm] = (),
    speed: float = 1.0,
) -> protocol.State:
    """`actual` are the actuators' read-back states; without them, what was commanded is shown. `alarms` are the
    current ones (`controller.alarms.AlarmBoard`)."""
    readings = {
        name: protocol.ReadingState(
            # The protocol carries finite numbers only: a value that is not one is shown as none.
            value=round(r.value, 3) if r.value is not None and math.isfinite(r.value) else None,
            unit=r.unit,
            quality=r.quality.value,
            ts=r.timestamp,
            detail=r.detail,
        )
        for name, r in snapshot.readings.items()
    }
    actuators: dict[str, protocol.ActuatorStateMsg] = {}
    mode, reason, decision = "LOCAL", "starting", ""
    if result is not None:
        decision = result.summary
        authority = result.state.authority
        mode, reason = authority.mode.value, authority.reason
        for name, command in result.commands.items():
            hold = result.holds.get(name)
            actuators[name] = protocol.ActuatorStateMsg(
                on=actual[name].on if actual and name in actual else command.on,
                source=command.source.value,
                reason=command.reason,
                held_by=hold.interlock if hold else None,
                held_until=result.wall_time(hold.until) if hold and hold.until is not None else None,
            )
    return protocol.State(
        site=site,
        ts=now,
        mode=mode,
        reason=reason,
        readings=readings,
        actuators=actuators,
        overrides=[
            protocol.OverrideState(id=o.id, target=o.target, value=o.value, expires_at=o.expires_at, who=o.who)
            for o in overrides
        ],
        alarms=list(alarms),
        link=link,
        decision=decision,
        plan=plan_state(result.state.planner, now) if result is not None else None,
        speed=speed,
    )
