"""The Hearth TUI application: one transport, one model, a screen per view."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.message import Message
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from controller.protocol import Alarm, EventMsg, OverrideState, Request, Response, State
from tui.format import clock_text
from tui.model import HearthModel
from tui.permissions import change_allowed
from tui.transport import ConnectionStatus, Transport, TransportError, new_request_id

if TYPE_CHECKING:
    from textual.screen import Screen

    from tui.screens.base import HearthScreen

MIN_REPAINT_S = 0.25
"""At most four State repaints a second, however fast the controller pushes."""
EVENT_BATCH_S = 0.05
"""Events arriving within this long are drawn together."""
DEFAULT_OVERRIDE_S = 1800.0
SCREENS_ORDER = ("overview", "channels", "actuators", "events", "history", "layout", "plan", "energy")


def _overview() -> Screen[None]:
    from tui.screens.overview import OverviewScreen

    return OverviewScreen()


def _channels() -> Screen[None]:
    from tui.screens.channels import ChannelsScreen

    return ChannelsScreen()


def _actuators() -> Screen[None]:
    from tui.screens.actuators import ActuatorsScreen

    return ActuatorsScreen()


def _events() -> Screen[None]:
    from tui.screens.events import EventsScreen

    return EventsScreen()


def _history() -> Screen[None]:
    from tui.screens.history import HistoryScreen

    return HistoryScreen()


def _energy() -> Screen[None]:
    from tui.screens.energy import EnergyScreen

    return EnergyScreen()


def _plan() -> Screen[None]:
    from tui.screens.plan import PlanScreen

    return PlanScreen()


def _layout() -> Screen[None]:
    from tui.screens.layout import LayoutScreen

    return LayoutScreen()


class HearthApp(App[None]):
    """Shows one controller through `transport`; `now` and `tz` are injectable so snapshots are deterministic."""

    CSS_PATH = Path(__file__).with_name("hearth.tcss")  # absolute: subclasses elsewhere find it too
    TITLE = "Hearth"
    ENABLE_COMMAND_PALETTE = False
    MODES: ClassVar[dict[str, str | Callable[[], Screen[None]]]] = {
        "overview": _overview,
        "channels": _channels,
        "actuators": _actuators,
        "events": _events,
        "history": _history,
        "layout": _layout,
        "plan": _plan,
        "energy": _energy,
    }
    DEFAULT_MODE = "overview"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "show('overview')", "Screens", key_display="1-6"),
        Binding("2", "show('channels')", "Channels", show=False),
        Binding("3", "show('actuators')", "Actuators", show=False),
        Binding("4", "show('events')", "Events", show=False),
        Binding("5", "show('history')", "History", show=False),
        Binding("6", "show('layout')", "Layout", show=False),
        Binding("p", "show('plan')", "Plan", show=False),
        Binding("e", "show('energy')", "Energy", show=False),
        Binding("o", "override", "Override"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        # Textual's own Ctrl-C only says "press ctrl+q to quit"; in a terminal program it means stop.
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    @dataclass
    class StateReceived(Message):
        """A State from the transport; a burst merges into the newest one before it is drawn."""

        state: State

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, HearthApp.StateReceived)

    @dataclass
    class EventReceived(Message):
        event: EventMsg

    @dataclass
    class StatusChanged(Message):
        status: ConnectionStatus

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, HearthApp.StatusChanged)

    def __init__(
        self,
        transport: Transport,
        *,
        now: Callable[[], float] = time.time,
        tz: tzinfo | None = None,
        tick_s: float = 1.0,
        min_repaint_s: float = MIN_REPAINT_S,
    ) -> None:
        super().__init__()
        self.transport = transport
        self.now = now
        self.tz = tz
        self.model = HearthModel()
        self.history_channel: str | None = None
        """the channel the History screen plots (the Channels screen sets it)"""
        self.override_durations: dict[str, float] = {}
        """the duration last chosen per target, which keep-alive extends by"""
        self._tick_s = tick_s
        self._min_repaint_s = min_repaint_s
        self._event_batch: list[EventMsg] = []
        self.states_drawn = 0
        """how many States reached the screens (bursts merge: fewer than arrived)"""
        self._pending: State | None = None
        self._repaint_timer: Timer | None = None
        self._last_repaint = float("-inf")
        self._first_paint_scheduled = False
        self.first_state_drawn: float | None = None
        """time.perf_counter() when the first State reached the screen (the first-paint benchmark)"""

    # ---- lifecycle -------------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self._run_transport()
        self.set_interval(self._tick_s, self.tick)

    @work(name="transport", exit_on_error=False)
    async def _run_transport(self) -> None:
        await self.transport.run(self._state_arrived, self._event_arrived, self._status_arrived)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A transport never raises by contract; if one does (a bug), the header says so instead of dying."""
        if event.worker.name == "transport" and event.state == WorkerState.ERROR:
            error = event.worker.error
            detail = f"{type(error).__name__}: {error}" if error is not None else "the transport failed"
            self.post_message(self.StatusChanged(ConnectionStatus("stopped", detail=detail)))

    def _state_arrived(self, state: State) -> None:
        self.post_message(self.StateReceived(state))

    def _event_arrived(self, event: EventMsg) -> None:
        self.post_message(self.EventReceived(event))

    def _status_arrived(self, status: ConnectionStatus) -> None:
        self.post_message(self.StatusChanged(status))

    def controller_now(self) -> float:
        """Now on the controller's clock: what countdowns to its expiries and holds are measured against."""
        return self.model.controller_now(self.now())

    @property
    def read_only(self) -> bool:
        """Nothing may be changed: a monitor, MQTT without a key, or a role the controller has not told us yet."""
        return self.transport.read_only or self.model.status.read_only

    @property
    def changes_hidden(self) -> bool:
        """Override controls are absent, not merely disabled: over MQTT without a key, or for the monitor role."""
        return self.transport.read_only or self.monitor

    @property
    def monitor(self) -> bool:
        """Read-only by role (as opposed to not connected yet): what the "read-only (monitor)" label says."""
        return self.read_only and self.model.role is not None

    @property
    def can_change(self) -> bool:
        return not self.read_only and self.model.status.phase == "connected"

    # ---- what the transport reports --------------------------------------------------------------------

    def on_hearth_app_state_received(self, message: StateReceived) -> None:
        self._pending = message.state
        if self._repaint_timer is not None:
            return
        wait = self._last_repaint + self._min_repaint_s - time.monotonic()
        if wait <= 0:
            self._apply_pending()
        else:
            self._repaint_timer = self.set_timer(wait, self._apply_pending)

    def _apply_pending(self) -> None:
        self._repaint_timer = None
        state, self._pending = self._pending, None
        if state is None:
            return
        self._last_repaint = time.monotonic()
        self.states_drawn += 1
        ended = self.model.apply_state(state, self.now())
        for view in self._views():
            view.show_state()
        for gone in ended:
            target, what = gone.override.target, "expired" if gone.how == "expired" else "was released"
            self.notify(f"The override on {target} {what} at {clock_text(gone.at, self.tz)}.", title="Override ended")
        if not self._first_paint_scheduled:
            self._first_paint_scheduled = True
            self.call_after_refresh(self._first_paint)

    def _first_paint(self) -> None:
        self.first_state_drawn = time.perf_counter()
        # Everything built so far (Textual, the screens, the model) lives as long as the app: keep it out of the
        # garbage collector's full passes, which otherwise stall a keypress for tens of milliseconds.
        gc.freeze()

    def on_hearth_app_event_received(self, message: EventReceived) -> None:
        self.model.add_event(message.event)
        self._event_batch.append(message.event)
        if len(self._event_batch) == 1:  # a burst (a backlog after subscribing) is drawn once
            self.set_timer(EVENT_BATCH_S, self._flush_events)

    def _flush_events(self) -> None:
        batch, self._event_batch = self._event_batch, []
        for view in self._views():
            view.show_events(batch)

    def on_hearth_app_status_changed(self, message: StatusChanged) -> None:
        self.model.status = message.status
        if message.status.phase == "connected":
            self.model.role = message.status.role or ("monitor" if message.status.read_only else "technician")
        for view in self._views():
            view.show_status()  # which also refreshes the footer: what may be done depends on the link

    def tick(self) -> None:
        """Once a second: countdowns and ages move even when no State arrives (MQTT sends one every 30 s)."""
        for view in self._views():
            try:
                view.tick()
            except NoMatches:
                # A screen being torn down (the app quitting, a screen switch) loses its widgets one by one: the
                # tick finds some gone. It has nothing left to show; the next screen draws itself on mount.
                continue

    def _views(self) -> list[HearthScreen]:
        """The Hearth screens of the current stack (a modal on top still shows them): hidden ones wait."""
        from tui.screens.base import HearthScreen

        return [s for s in self.screen_stack if isinstance(s, HearthScreen) and s.ready]

    # ---- actions -------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "override":
            return change_allowed(self)
        return True

    def action_show(self, mode: str) -> None:
        if mode in SCREENS_ORDER and mode != self.current_mode:
            self.switch_mode(mode)

    def show_history(self, channel: str) -> None:
        """The History screen, plotting `channel`."""
        self.history_channel = channel
        if self.current_mode == "history":
            for view in self._views():
                view.refresh_view()
        else:
            self.switch_mode("history")

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(read_only=self.monitor))

    def action_override(self, target: str | None = None) -> None:
        self.open_override(target)

    def open_override(self, target: str | None = None) -> None:
        if self.monitor:
            self.notify("Overrides are disabled: read-only (monitor).", severity="warning")
            return
        if not self.can_change:
            self.notify("Not connected to the controller: overrides need a live link.", severity="warning")
            return
        from tui.screens.override import OverrideScreen

        if target is None:
            heat_pump = self.model.heat_pump()
            target = heat_pump[0] if heat_pump else None
        self.push_screen(OverrideScreen(self, initial_target=target))

    async def send(self, request: Request) -> Response:
        """Send through the transport; a TransportError becomes a refused Response with its reason."""
        try:
            return await self.transport.request(request)
        except TransportError as error:
            return Response(id=request.id, ok=False, error=f"not sent: {error}")

    @work(group="requests", exit_on_error=False)
    async def keep_alive(self, override: OverrideState) -> None:
        duration = self.override_durations.get(override.target, DEFAULT_OVERRIDE_S)
        request = Request(id=new_request_id(), op="keepalive", override_id=override.id, duration_s=duration)
        answer = await self.send(request)
        if answer.ok:
            until = answer.override.expires_at if answer.override else self.controller_now() + duration
            self.notify(f"Override on {override.target} extended until {clock_text(until, self.tz)}.")
        else:
            self.notify(f"Keep-alive refused: {answer.error}", severity="error")

    @work(group="requests", exit_on_error=False)
    async def release(self, override: OverrideState) -> None:
        answer = await self.send(Request(id=new_request_id(), op="release", override_id=override.id))
        if answer.ok:
            self.notify(f"Override on {override.target} released: normal control resumes.")
        else:
            self.notify(f"Release refused: {answer.error}", severity="error")

    @work(group="requests", exit_on_error=False)
    async def acknowledge(self, alarm: Alarm) -> None:
        answer = await self.send(Request(id=new_request_id(), op="ack_alarm", alarm=alarm.id))
        if answer.ok:
            self.notify(f"Alarm acknowledged: {alarm.message}")
        else:
            self.notify(f"Acknowledge refused: {answer.error}", severity="error")
