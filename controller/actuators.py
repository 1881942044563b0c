"""Applying decisions to the relays: on the GPIO thread, read back after every write, real start and stop times
tracked from the read-back, and a relay that does not follow raised as an alarm (never assumed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog

from controller.buses.worker import BusWorker
from controller.control.interlocks import ActuatorState
from controller.control.types import Command, Event
from controller.drivers.gpio_relay import RelayError, RelayOutput

log = structlog.get_logger("hearth.actuators")


@dataclass
class Applied:
    """What the hardware did with one set of commands."""

    states: dict[str, ActuatorState]
    events: list[Event] = field(default_factory=list)
    alarm: str | None = None


class ActuatorBank:
    """The relays of a layout, driven from their GPIO worker thread."""

    def __init__(self, relays: Mapping[str, RelayOutput], worker: BusWorker) -> None:
        self._relays = dict(relays)
        self._worker = worker

    def read_all(self) -> dict[str, bool]:
        """The state every relay's pin commands now (blocking; start-up path)."""
        return self._worker.run_blocking(lambda: {name: relay.read() for name, relay in self._relays.items()})

    async def apply(
        self, commands: Mapping[str, Command], states: Mapping[str, ActuatorState], now: float, monotonic: float
    ) -> Applied:
        """Drive every relay to its command; return the read-back states (timed at `monotonic`), switch events
        (dated `now`, wall time) and any alarm."""

        def drive() -> tuple[dict[str, bool], list[str]]:
            seen: dict[str, bool] = {}
            failures: list[str] = []
            for name, relay in self._relays.items():
                command = commands.get(name)
                try:
                    if command is not None and relay.read() != command.on:
                        relay.set(command.on)
                except RelayError as error:
                    failures.append(str(error))
                seen[name] = relay.read()
            return seen, failures

        seen, failures = await self._worker.run(drive)
        applied = Applied(states=dict(states))
        for name, on in seen.items():
            before = states[name]
            if on == before.on:
                continue
            applied.states[name] = before.after(on, monotonic)
            command = commands.get(name)
            who = f"{command.source.value}: {command.reason}" if command else "unknown"
            applied.events.append(
                Event(
                    ts=now,
                    kind="actuator",
                    message=f"{name} {'on' if on else 'off'} ({who})",
                    data={"actuator": name, "on": on, "source": command.source.value if command else None},
                )
            )
        if failures:
            applied.alarm = "; ".join(failures)
            log.error("relay alarm", detail=applied.alarm)
        return applied
