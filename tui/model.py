"""What the TUI knows about the controller: the latest State, short trends, recent events, ended overrides.

Plain Python, no Textual: the app feeds it and the screens read it. Every buffer is bounded, so a TUI left
open for a month uses the same memory as on its first minute.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from controller.protocol import ActuatorStateMsg, EventMsg, OverrideState, ReadingState, State
from tui.transport import ConnectionStatus

TREND_POINTS = 60
EVENT_LINES = 2000
ENDED_OVERRIDES = 5
EXPIRY_SLACK_S = 2.0
"""An override gone within this long of its expiry expired; earlier, someone released it."""

# Which channels and actuators the overview pictures, by their stable layout names.
HOUSE_CHANNELS = ("house-air", "house")
OUTDOOR_CHANNELS = ("outdoor", "outdoor-air")
TANK_CHANNELS = (("top", "tank-top"), ("mid", "tank-mid"), ("bottom", "tank-bottom"))
HEAT_PUMP_ACTUATORS = ("heat-pump", "hp")
HEAT_PUMP_POWER_CHANNELS = ("hp-power", "heat-pump-power")
HEAT_PUMP_FLOW_CHANNELS = ("hp-flow", "heat-pump-flow")
HEAT_PUMP_HEAT_CHANNELS = ("hp-heat",)  # derived by the controller (controller.energy.derived)
HEAT_PUMP_COP_CHANNELS = ("hp-cop",)
GRID_POWER_CHANNELS = ("grid-power",)
COMFORT_SETPOINT = "setpoint:comfort"


@dataclass(frozen=True, slots=True)
class EndedOverride:
    override: OverrideState
    at: float
    how: Literal["expired", "released"]


@dataclass
class HearthModel:
    """Fed by the app; read by the screens."""

    state: State | None = None
    status: ConnectionStatus = field(default_factory=lambda: ConnectionStatus("connecting"))
    role: str | None = None
    """the role the controller gave us when we last connected (None: not connected yet)"""
    received_at: float | None = None
    """when the latest State arrived, by the TUI's clock"""
    trends: dict[str, deque[float | None]] = field(default_factory=dict)
    events: deque[EventMsg] = field(default_factory=lambda: deque(maxlen=EVENT_LINES))
    events_total: int = 0
    """how many events ever arrived: screens use it to append only what is new"""
    ended: deque[EndedOverride] = field(default_factory=lambda: deque(maxlen=ENDED_OVERRIDES))
    channels_version: int = 0
    """bumped when the set of channels or actuators changes (a table must rebuild its rows)"""
    _sample_ts: dict[str, float] = field(default_factory=dict)

    def apply_state(self, state: State, now: float) -> list[EndedOverride]:
        """Take a new State; returns the overrides that ended since the previous one."""
        previous = self.state
        ended: list[EndedOverride] = []
        if previous is not None:
            still = {o.id for o in state.overrides}
            for gone in previous.overrides:
                if gone.id not in still:
                    how: Literal["expired", "released"] = (
                        "expired" if state.ts >= gone.expires_at - EXPIRY_SLACK_S else "released"
                    )
                    ended.append(EndedOverride(gone, min(state.ts, gone.expires_at), how))
            if previous.readings.keys() != state.readings.keys() or previous.actuators.keys() != state.actuators.keys():
                self.channels_version += 1
        else:
            self.channels_version += 1
        for name, reading in state.readings.items():
            if self._sample_ts.get(name) != reading.ts:
                self._sample_ts[name] = reading.ts
                trend = self.trends.get(name)
                if trend is None:
                    trend = self.trends[name] = deque(maxlen=TREND_POINTS)
                trend.append(reading.value)
        for name in [n for n in self.trends if n not in state.readings]:
            del self.trends[name]
            self._sample_ts.pop(name, None)
        self.ended.extend(ended)
        self.state = state
        self.received_at = now
        return ended

    def controller_now(self, now: float) -> float:
        """The controller's clock at `now` (the TUI's clock): every time in a State (expiries, holds, leases, sample
        times) is on it, and under `--speed` it runs faster than ours. Between States it moves at the State's
        speed from the State's own timestamp."""
        if self.state is None or self.received_at is None:
            return now
        return self.state.ts + max(0.0, now - self.received_at) * self.state.speed

    def state_age(self, now: float) -> float | None:
        """Real seconds since the controller built the latest State (None before the first). At speed 1 the
        State's own timestamp counts (a retained MQTT State may be old when it arrives); a simulation's clock is
        not ours, so then it is the time since it arrived."""
        if self.state is None or self.received_at is None:
            return None
        if self.state.speed == 1.0:
            return now - self.state.ts
        return now - self.received_at

    def add_event(self, event: EventMsg) -> None:
        self.events.append(event)
        self.events_total += 1

    # ---- what the overview pictures --------------------------------------------------------------------

    def reading(self, names: tuple[str, ...]) -> tuple[str, ReadingState] | None:
        if self.state is None:
            return None
        for name in names:
            if name in self.state.readings:
                return name, self.state.readings[name]
        return None

    def heat_pump(self) -> tuple[str, ActuatorStateMsg] | None:
        """The heat pump by its layout name; else the first actuator, so a small layout still shows one."""
        if self.state is None or not self.state.actuators:
            return None
        for name in HEAT_PUMP_ACTUATORS:
            if name in self.state.actuators:
                return name, self.state.actuators[name]
        name = next((n for n in self.state.actuators if "heat-pump" in n), next(iter(self.state.actuators)))
        return name, self.state.actuators[name]

    def override_for(self, target: str) -> OverrideState | None:
        if self.state is None:
            return None
        return next((o for o in self.state.overrides if o.target == target), None)

    def targets(self) -> list[str]:
        """What an override can name: every actuator, and the comfort setpoint."""
        actuators = list(self.state.actuators) if self.state is not None else []
        return [*actuators, COMFORT_SETPOINT]
