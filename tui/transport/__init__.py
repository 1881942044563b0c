"""How the TUI reaches a controller: one interface, three implementations.

- `LocalSocketTransport` (tui.transport.local): the controller's unix socket, JSON lines; technicians may override.
- `MqttTransport` (tui.transport.mqtt): the site's MQTT state topics, read-only, from anywhere.
- `FakeTransport` (tui.transport.fake): replays States and records requests, for tests and `--demo`.

A transport's `run()` connects, subscribes and reconnects forever with backoff. It never raises because the
controller went away or sent something it cannot read; it reports what happens through `on_status`.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from controller.protocol import EventMsg, Request, Response, State

Phase = Literal["connecting", "connected", "reconnecting", "stopped"]

READ_ONLY_OPS = frozenset({"override", "keepalive", "release", "ack_alarm"})
"""Requests that change something on the controller: refused by a read-only transport."""


class TransportError(Exception):
    """A request that got no answer: not connected, timed out, connection lost. The message is for people."""


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """What the header says about the link to the controller."""

    phase: Phase
    detail: str = ""
    """why the last connection ended, or what is happening (`connection refused`, `controller offline`)"""
    retry_in_s: int | None = None
    user: str | None = None
    role: str | None = None
    read_only: bool = True
    controller_online: bool | None = None
    """from the retained MQTT `status` topic; None when the transport cannot tell"""


StateCallback = Callable[[State], None]
EventCallback = Callable[[EventMsg], None]
StatusCallback = Callable[[ConnectionStatus], None]


class Transport(Protocol):
    """A connection to one controller."""

    read_only: bool

    @property
    def description(self) -> str:
        """for the header: `local socket /run/hearth/hearth.sock`, `MQTT mqtts://broker:8883 site demo-house`"""
        ...

    async def run(self, on_state: StateCallback, on_event: EventCallback, on_status: StatusCallback) -> None:
        """Connect, subscribe and reconnect forever with backoff; never raise on a disconnect or a bad message."""
        ...

    async def request(self, request: Request, timeout_s: float = 5.0) -> Response:
        """Send one request and wait for its response; TransportError("not connected"/"timed out")."""
        ...


_request_numbers = itertools.count(1)


def new_request_id() -> str:
    """Unique within this process, and readable in the controller's audit log: `tui-4711-3`."""
    return f"tui-{os.getpid()}-{next(_request_numbers)}"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: doubling from `initial_s` up to `max_s`, with jitter so clients do not stampede."""

    initial_s: float = 1.0
    max_s: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        base = min(self.max_s, self.initial_s * 2.0 ** min(attempt, 16))
        return base * (1.0 - self.jitter * random.random())


async def countdown(delay_s: float) -> AsyncIterator[int]:
    """Yield the whole seconds left (3, 2, 1) while sleeping `delay_s` in total."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + delay_s
    while (left := deadline - loop.time()) > 0:
        yield max(1, math.ceil(left))
        await asyncio.sleep(min(1.0, left))
