"""The control loop: every `tick_s`, take the readings snapshot and what the ATN sent, decide (pure), apply to
the relays, record events, and tell systemd the tick was healthy.

A decision is logged whenever an actuator's state or the source deciding it changes, with the reason; holds
are logged when an interlock starts holding. Ticks are scheduled on a fixed grid so that one slow tick does not
shift every later one, and the lateness of each tick is kept for the jitter figures.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor
from dataclasses import replace
from typing import Protocol

import structlog

from controller.actuators import ActuatorBank
from controller.clock import Clock, sleep_or_wake
from controller.control import restart
from controller.control.inbox import AtnInbox
from controller.control.params import ControlParams
from controller.control.restart import SavedStarts
from controller.control.tick import ControlState, TickInputs, TickResult, control_tick, initial_state
from controller.control.types import Event, Mode, Override, PriceForecast
from controller.layout.model import Layout
from controller.planner import local
from controller.readings import Snapshot

log = structlog.get_logger("hearth.control")
JITTER_SAMPLES = 10_000
DEADLINE_MARGIN_S = 0.01


class SnapshotSource(Protocol):
    def snapshot(self) -> Snapshot: ...


class EventSink(Protocol):
    def add_event(self, event: Event) -> int: ...

    def latest_forecast(self, now: float, max_age_s: float = ...) -> PriceForecast | None: ...

    def remember(self, key: str, value: object) -> object: ...

    def recall(self, key: str) -> object: ...


class OverrideSource(Protocol):
    def active(self) -> list[Override]:
        """The overrides in force now, judged on the monotonic clock (`controller.overrides.OverrideBook`)."""
        ...


class HealthGate(Protocol):
    def tick_ok(self, now: float) -> None: ...

    def pat(self, now: float) -> bool: ...


class ControlLoop:
    """Owns the control state between ticks; everything it decides comes from `control_tick`."""

    def __init__(
        self,
        layout: Layout,
        readings: SnapshotSource,
        bank: ActuatorBank,
        clock: Clock,
        inbox: AtnInbox,
        sink: EventSink | None = None,
        health: HealthGate | None = None,
        overrides: OverrideSource | None = None,
        planning: Executor | None = None,
        lateness_samples: int = JITTER_SAMPLES,
    ) -> None:
        self.layout = layout
        self.planning = planning  # where re-plans run; None: a thread of the event loop's default executor
        self.after_tick: list[Callable[[], None]] = []
        """Called after every tick (the links publish the state when what it says changed, without polling it)."""
        self.readings = readings
        self.bank = bank
        self.clock = clock
        self.inbox = inbox
        self.sink = sink
        self.health = health
        self.overrides = overrides
        saved = SavedStarts.from_json(sink.recall(restart.STORE_KEY)) if sink else None
        starts = restart.restored_starts(saved, clock.boot_id, clock.monotonic())
        self.state: ControlState = initial_state(layout, clock.monotonic(), bank.read_all(), starts)
        self.last: TickResult | None = None
        self.alarm: str | None = None
        self.ticks = 0
        self.lateness_s: deque[float] = deque(maxlen=lateness_samples)  # the last ticks' lateness (the jitter bench)
        self._previous_overrides: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._planning: asyncio.Task[None] | None = None
        self.plan_control: ControlParams | None = None  # the layout's control with a fitted model, if any

    def wake(self) -> None:
        """Decide now rather than at the next tick (a dispatch arrived)."""
        if self._wake is not None:
            self._wake.set()

    def _deadline(self) -> float | None:
        """When, on the monotonic clock, the authority's ATN mode runs out (silence or lease expiry), if ATN."""
        authority = self.state.authority
        if authority.base is not Mode.ATN or authority.last_contact is None:
            return None
        ends = authority.last_contact + self.layout.control.authority.silence_s
        if authority.lease is not None:
            ends = min(ends, authority.lease.ends)
        return ends + DEADLINE_MARGIN_S

    async def run(self) -> None:
        """Tick forever on a fixed grid of `tick_s` (simulated time under a SimClock); tick at once when woken,
        and exactly when ATN silence or the lease runs out, so failover does not wait for the grid."""
        self._wake = asyncio.Event()
        period = self.layout.control.tick_s
        next_at = self.clock.monotonic()
        while True:
            self.lateness_s.append(max(0.0, (self.clock.monotonic() - next_at) / _speed(self.clock)))
            await self.tick()
            next_at += period
            behind = self.clock.monotonic() - next_at
            if behind > period:  # a long stall: start a fresh grid rather than rushing through missed ticks
                next_at = self.clock.monotonic()
            while True:
                deadline = self._deadline()
                await self._sleep_until(next_at if deadline is None else min(next_at, deadline))
                if self.clock.monotonic() >= next_at:
                    break  # the grid tick is due
                await self.tick()  # woken by a dispatch, or the ATN's time ran out between two grid ticks

    async def _sleep_until(self, until: float) -> None:
        """Sleep until `until` (monotonic clock) or a wake-up, whichever comes first."""
        assert self._wake is not None
        await sleep_or_wake(self.clock, until - self.clock.monotonic(), self._wake)
        self._wake.clear()

    async def tick(self) -> TickResult:
        """One decision, applied."""
        now, monotonic = self.clock.now(), self.clock.monotonic()
        heartbeats, lease = self.inbox.take()
        overrides = self.overrides.active() if self.overrides else []
        forecast = self.inbox.forecast
        if forecast is None and self.sink is not None:
            try:
                forecast = self.sink.latest_forecast(now)
            except sqlite3.Error as error:  # a failing card: decide on the tariff windows, never stop
                log.warning("price forecast not read from the store", error=str(error))
        result = control_tick(
            self.state,
            TickInputs(
                now=now,
                monotonic=monotonic,
                snapshot=self.readings.snapshot(),
                heartbeats=heartbeats,
                lease=lease,
                overrides=overrides,
                forecast=forecast,
                weather=self.inbox.weather,
                critical_fault=self.alarm,
                plan_inline=False,  # a re-plan (~0.2 s here, ~1 s on a Pi) runs in a thread, not in the tick
            ),
            self.layout,
        )
        applied = await self.bank.apply(result.commands, result.state.actuators, now, monotonic)
        self.alarm = applied.alarm
        started = any(applied.states[n].starts != s.starts for n, s in result.state.actuators.items())
        self.state = replace(result.state, actuators=applied.states)
        if started and self.sink is not None:  # a real start: kept, so a restart cannot forget it
            starts = {name: state.starts for name, state in applied.states.items() if state.starts}
            self.sink.remember(restart.STORE_KEY, SavedStarts(self.clock.boot_id, monotonic, starts).to_json())
        events = result.events + applied.events + self._override_expiries(overrides, now)
        if self.ticks == 0:
            authority = result.state.authority
            boot = Event(
                ts=now,
                kind="mode",
                message=f"{authority.mode.value}: {authority.reason}",
                data={"to": authority.mode.value, "reason": authority.reason},
            )
            events = [boot, *events]
        self._log_decisions(result)
        for event in events:
            log.info(event.kind, message=event.message, **{k: v for k, v in event.data.items() if k != "message"})
            if self.sink is not None:
                self.sink.add_event(event)
        self.last = result
        self.ticks += 1
        for listener in self.after_tick:
            listener()
        wanted = self.state.planner.wanted
        if wanted is not None and self._planning is None:
            self._planning = asyncio.create_task(self._plan(wanted), name="control:plan")
        if self.health is not None and applied.alarm is None:
            monotonic = time.monotonic()  # systemd's watchdog runs on real time, whatever the simulation does
            self.health.tick_ok(monotonic)
            self.health.pat(monotonic)
        return result

    async def _plan(self, request: local.PlanRequest) -> None:
        """Solve a re-plan on `planning` (a thread, or fleet-sim's planning process) and put it in force between two
        ticks. A solve that fails (a planning process that died) is logged; the request stays wanted, so the next
        tick asks again."""
        control = self.plan_control or self.layout.control
        try:
            solve = functools.partial(local.solve_request, request, control, self.layout.site.timezone)
            solved = await asyncio.get_running_loop().run_in_executor(self.planning, solve)
            self.state = replace(self.state, planner=local.adopt(self.state.planner, solved))
            log.info("plan", made_in_s=round(self.clock.now() - request.now, 2), note=solved.note, pid=solved.pid)
        except BrokenExecutor as error:
            log.error("plan failed: its worker died; asking again at the next tick", error=str(error) or repr(error))
        finally:
            self._planning = None

    def _override_expiries(self, overrides: list[Override], now: float) -> list[Event]:
        current = {o.id for o in overrides}
        gone = self._previous_overrides - current
        self._previous_overrides = current
        return [Event(ts=now, kind="override", message=f"override {g} ended", data={"id": g}) for g in sorted(gone)]

    def _log_decisions(self, result: TickResult) -> None:
        before = self.last
        for name, command in result.commands.items():
            previous = before.commands.get(name) if before else None
            if previous is None or previous.on != command.on or previous.source != command.source:
                hold = result.holds.get(name)
                log.info(
                    "decision",
                    actuator=name,
                    on=command.on,
                    source=command.source.value,
                    reason=command.reason,
                    held_by=hold.interlock if hold else None,
                    held_until=round(result.wall_time(hold.until), 1) if hold and hold.until else None,
                )


def _speed(clock: Clock) -> float:
    """Simulated seconds per real second, to report lateness in real time."""
    return float(getattr(clock, "speed", 1.0))
