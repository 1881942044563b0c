"""A transport without a controller: it replays States and events and records requests (tests, `--demo`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from controller.protocol import EventMsg, Request, Response, State
from tui.transport import READ_ONLY_OPS, ConnectionStatus, EventCallback, StateCallback, StatusCallback, TransportError

Responder = Callable[[Request], Response | Awaitable[Response]]


def accept(request: Request) -> Response:
    """The default answer: every request succeeds, with nothing in it."""
    return Response(id=request.id, ok=True)


class FakeTransport:
    """Feeds the app what a test (or the demo) gives it; answers requests with `responder`."""

    def __init__(
        self,
        states: Iterable[State] = (),
        events: Iterable[EventMsg] = (),
        *,
        read_only: bool = False,
        user: str = "alice",
        description: str = "fake transport",
        responder: Responder = accept,
    ) -> None:
        self.description = description
        self.read_only = read_only
        self.user = user
        self.responder = responder
        self.requests: list[Request] = []
        self._initial_states = list(states)
        self._initial_events = list(events)
        self._on_state: StateCallback | None = None
        self._on_event: EventCallback | None = None
        self._on_status: StatusCallback | None = None
        self.connected = asyncio.Event()

    def status(self) -> ConnectionStatus:
        role = "monitor" if self.read_only else "technician"
        return ConnectionStatus("connected", user=self.user, role=role, read_only=self.read_only)

    async def run(self, on_state: StateCallback, on_event: EventCallback, on_status: StatusCallback) -> None:
        self._on_state, self._on_event, self._on_status = on_state, on_event, on_status
        on_status(self.status())
        for event in self._initial_events:
            on_event(event)
        for state in self._initial_states:
            on_state(state)
        self.connected.set()
        await asyncio.Event().wait()  # forever, until the app cancels it

    async def request(self, request: Request, timeout_s: float = 5.0) -> Response:
        if self._on_status is None:
            raise TransportError("not connected to the controller")
        self.requests.append(request)
        if self.read_only and request.op in READ_ONLY_OPS:
            return Response(id=request.id, ok=False, error="read-only: the monitor role cannot change anything")
        answer = self.responder(request)
        return answer if isinstance(answer, Response) else await answer

    def push_state(self, state: State) -> None:
        if self._on_state is not None:
            self._on_state(state)

    def push_event(self, event: EventMsg) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def push_status(self, status: ConnectionStatus) -> None:
        if self._on_status is not None:
            self._on_status(status)
