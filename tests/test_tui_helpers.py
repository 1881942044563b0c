"""Helpers for the TUI tests (no tests here): a fixed clock, a realistic State, an app on a FakeTransport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC
from typing import Any

from rich.text import Text
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from controller.protocol import EventMsg, OverrideState, State
from tui.app import HearthApp
from tui.demo import sample_state
from tui.transport.fake import FakeTransport, Responder, accept

T0 = 1767225600.0  # 2026-01-01 00:00:00 UTC
SOCKET_DESCRIPTION = "local socket /run/hearth/hearth.sock"


class FixedClock:
    """The app's `now()`: stands still until a test moves it."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def state(ts: float = T0, **kwargs: Any) -> State:
    return sample_state(ts, **kwargs)


def override(target: str = "heat-pump", value: bool | float = True, expires_at: float = T0 + 600) -> OverrideState:
    return OverrideState(id="O-1", target=target, value=value, expires_at=expires_at, who="alice")


def event(seq: int, kind: str, message: str, ts: float = T0) -> EventMsg:
    return EventMsg(site="demo-house", seq=seq, ts=ts, kind=kind, message=message)


def make_app(
    states: list[State] | None = None,
    *,
    events: list[EventMsg] | None = None,
    read_only: bool = False,
    responder: Responder = accept,
    clock: FixedClock | None = None,
    description: str = SOCKET_DESCRIPTION,
) -> tuple[HearthApp, FakeTransport, FixedClock]:
    clock = clock or FixedClock()
    transport = FakeTransport(
        [state()] if states is None else states,
        events or [],
        read_only=read_only,
        responder=responder,
        description=description,
    )
    app = HearthApp(transport, now=clock, tz=UTC, min_repaint_s=0.0)
    return app, transport, clock


def text_of(widget: Widget) -> str:
    """The plain text a Static shows."""
    assert isinstance(widget, Static)
    content = widget.content
    return content.plain if isinstance(content, Text) else str(content)


async def settle(pilot: Pilot[Any], until: Callable[[], bool] | None = None, timeout_s: float = 3.0) -> None:
    """Let messages and workers run; with `until`, until it holds (AssertionError after `timeout_s`)."""
    await pilot.pause()
    if until is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not until():
        if loop.time() > deadline:
            raise AssertionError("the app did not get there in time")
        await pilot.pause(0.01)
