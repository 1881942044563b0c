"""Overview: what the house is doing and why, at a glance, in 80x24."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from controller.protocol import EventMsg, OverrideState
from tui.format import age_text, clock_text, override_value_text
from tui.permissions import change_allowed
from tui.screens.base import HearthScreen
from tui.widgets.heat_pump import HeatPumpPanel
from tui.widgets.link_line import LinkLine
from tui.widgets.mode_banner import ModeBanner
from tui.widgets.recent_events import RecentEvents
from tui.widgets.tables import ALARM_COLUMNS, OVERRIDE_COLUMNS, KeyedTable, alarm_rows, override_rows
from tui.widgets.tank import TankPanel


class OverviewScreen(HearthScreen):
    MODE = "overview"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("k", "keep_alive", "Keep alive"),
        Binding("x", "release", "Release"),
        Binding("a", "acknowledge", "Ack alarm"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._actions: tuple[bool, bool, bool] | None = None

    def compose_body(self) -> ComposeResult:
        yield ModeBanner(id="mode-banner")
        yield LinkLine(id="link-line")
        with Horizontal(id="plant"):
            with Vertical(id="house-panel", classes="panel") as house:
                house.border_title = "House & tank"
                yield TankPanel(id="tank")
            with Vertical(id="hp-panel", classes="panel") as heat_pump:
                heat_pump.border_title = "Heat pump"
                yield HeatPumpPanel(id="heat-pump")
        with Vertical(id="overrides-panel", classes="panel") as overrides:
            overrides.border_title = "Overrides"
            yield KeyedTable(OVERRIDE_COLUMNS, id="overrides")
            yield Static(id="overrides-note", classes="note")
        with Vertical(id="alarms-panel", classes="panel") as alarms:
            alarms.border_title = "Alarms"
            yield KeyedTable(ALARM_COLUMNS, id="alarms")
            yield Static(id="alarms-note", classes="note")
        with Vertical(id="events-panel", classes="panel") as events:
            events.border_title = "Recent events"
            yield RecentEvents(id="recent-events")

    def show_state(self) -> None:
        super().show_state()
        self._draw()

    def show_status(self) -> None:
        super().show_status()
        self._draw()

    def refresh_view(self) -> None:
        super().refresh_view()
        self._show_events()

    def show_events(self, events: list[EventMsg]) -> None:
        self._show_events()

    def _show_events(self) -> None:
        events = self.model.events
        recent = [events[i] for i in range(max(0, len(events) - 40), len(events))]
        self.query_one(RecentEvents).show(recent, self.hearth.tz)

    def tick(self) -> None:
        super().tick()
        self._draw()

    def _draw(self) -> None:
        app, model = self.hearth, self.model
        now, state = app.controller_now(), model.state
        self.query_one(ModeBanner).show(state, self._stale_note())
        link = state.link if state else None
        self.query_one(LinkLine).show(link, now, waiting=state is None, as_of=state.ts if state else None)
        self.query_one(TankPanel).show(model)
        self.query_one(HeatPumpPanel).show(model, now, app.tz)
        overrides = state.overrides if state else []
        self.query_one("#overrides", KeyedTable).sync(override_rows(overrides, now, app.tz))
        self.query_one("#overrides", KeyedTable).display = bool(overrides)
        self.query_one("#overrides-panel").border_title = f"Overrides ({len(overrides)})" if overrides else "Overrides"
        self._overrides_note(bool(overrides))
        alarms = state.alarms if state else []
        self.query_one("#alarms", KeyedTable).sync(alarm_rows(alarms, now, app.tz))
        self.query_one("#alarms", KeyedTable).display = bool(alarms)
        open_alarms = sum(1 for a in alarms if not a.acknowledged_by)
        panel = self.query_one("#alarms-panel")
        panel.set_class(open_alarms > 0, "-alert")
        if open_alarms:
            panel.border_title = f"Alarms ({len(alarms)}, {open_alarms} unacknowledged)"
        else:
            panel.border_title = f"Alarms ({len(alarms)}, all acknowledged)" if alarms else "Alarms"
        note = self.query_one("#alarms-note", Static)
        note.display = not alarms
        note.update(Text("No alarms." if state is not None else "—", "dim"))
        actions = (app.can_change, bool(overrides), open_alarms > 0)
        if actions != self._actions:  # the footer greys out what cannot be done now
            self._actions = actions
            self.refresh_bindings()

    def _stale_note(self) -> str:
        """Empty while live; otherwise how old the picture is and why the link is down."""
        state, status = self.model.state, self.model.status
        down = ""
        if status.phase == "reconnecting":
            down = status.detail + (f" — retrying in {status.retry_in_s} s" if status.retry_in_s else "")
        elif status.phase == "connecting":
            down = "connecting…"
        elif status.phase == "stopped":
            down = f"stopped: {status.detail}"
        if state is None:
            return down
        if not self.is_stale():
            return ""
        age = f"last update {age_text(self.model.state_age(self.hearth.now()))} ago"
        return f"{age}; {down}" if down else age

    def _overrides_note(self, any_active: bool) -> None:
        app = self.hearth
        text = Text()
        if app.monitor:
            text.append("read-only (monitor)", "bold yellow")
            text.append(": overrides are disabled here. ")
        elif not app.can_change:
            text.append("Not connected: overrides need a live link to the controller. ", "yellow")
        elif not any_active:
            text.append("No active override. ", "dim")
            text.append("o", "bold")
            text.append(" forces a relay or the setpoint for a limited time.", "dim")
        if self.model.ended:
            last = self.model.ended[-1]
            what = override_value_text(last.override.target, last.override.value)
            verb = "expired" if last.how == "expired" else "was released"
            text.append("\n" if text.plain else "")
            text.append(f"Override {last.override.target} = {what} ({last.override.who}) {verb} ", "italic")
            text.append(f"at {clock_text(last.at, app.tz)}.", "italic")
        note = self.query_one("#overrides-note", Static)
        note.display = bool(text.plain)
        if note.content != text:
            note.update(text)

    # ---- actions on the selected override or alarm -----------------------------------------------------

    def _selected_override(self) -> OverrideState | None:
        state = self.model.state
        key = self.query_one("#overrides", KeyedTable).selected_key()
        if state is None or key is None:
            return None
        return next((o for o in state.overrides if o.id == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("keep_alive", "release"):
            return change_allowed(self.hearth, needs=self._selected_override() is not None)
        if action == "acknowledge":
            state = self.model.state
            has_open = state is not None and any(not a.acknowledged_by for a in state.alarms)
            return change_allowed(self.hearth, needs=has_open)
        return True

    def action_keep_alive(self) -> None:
        override = self._selected_override()
        if override is not None:
            self.hearth.keep_alive(override)

    def action_release(self) -> None:
        override = self._selected_override()
        if override is not None:
            self.hearth.release(override)

    def action_acknowledge(self) -> None:
        state = self.model.state
        if state is None:
            return
        key = self.query_one("#alarms", KeyedTable).selected_key()
        alarm = next((a for a in state.alarms if a.id == key and not a.acknowledged_by), None)
        alarm = alarm or next((a for a in state.alarms if not a.acknowledged_by), None)
        if alarm is not None:
            self.hearth.acknowledge(alarm)
