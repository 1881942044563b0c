"""Actuators: each relay's state, who commanded it and why, which interlock holds it and for how long."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from controller.protocol import ActuatorStateMsg, OverrideState
from tui.format import SOURCE_STYLES, clock_text, duration_text, override_value_text
from tui.permissions import change_allowed
from tui.screens.base import HearthScreen
from tui.widgets.heat_pump import hold_text, on_off

Cell = str | Text
COLUMNS = (
    ("name", "Actuator"),
    ("on", "State"),
    ("source", "By"),
    ("held", "Held by"),
    ("left", "For"),
    ("override", "Override"),
    ("reason", "Why"),
)


class ActuatorsScreen(HearthScreen):
    MODE = "actuators"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "override_selected", "Override this"),
        Binding("k", "keep_alive", "Keep alive"),
        Binding("x", "release", "Release"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[str] = []
        self._cells: dict[tuple[str, str], Cell] = {}
        self._version = -1
        self._actions: tuple[bool, bool] | None = None

    def compose_body(self) -> ComposeResult:
        yield DataTable[Cell](id="actuators", cursor_type="row")
        yield Static(id="actuator-detail", classes="panel")

    def on_mount(self) -> None:
        table = self.query_one("#actuators", DataTable)
        table.border_title = "Actuators"
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        super().on_mount()

    def show_state(self) -> None:
        super().show_state()
        self._draw()

    def show_status(self) -> None:
        super().show_status()
        self._draw()

    def tick(self) -> None:
        super().tick()
        self._draw()

    def _cells_for(self, name: str, actuator: ActuatorStateMsg, now: float) -> dict[str, Cell]:
        override = self.model.override_for(name)
        left: Cell = ""
        if actuator.held_by and actuator.held_until is not None:
            remaining = actuator.held_until - now
            left = Text(duration_text(remaining) if remaining > 0 else "ending", "yellow")
        elif actuator.held_by:
            left = Text("while it lasts", "yellow")
        return {
            "name": Text(name, "bold"),
            "on": on_off(actuator.on),
            "source": Text(actuator.source, SOURCE_STYLES.get(actuator.source, "")),
            "held": Text(actuator.held_by or "", "bold yellow"),
            "left": left,
            "override": _override_cell(override, now),
            "reason": actuator.reason,
        }

    def _draw(self) -> None:
        state = self.model.state
        table = self.query_one("#actuators", DataTable)
        if state is None:
            return
        now = self.hearth.controller_now()
        if self.model.channels_version != self._version:
            self._version = self.model.channels_version
            table.clear()
            self._cells.clear()
            self._rows = list(state.actuators)
            for name in self._rows:
                cells = self._cells_for(name, state.actuators[name], now)
                table.add_row(*(cells[key] for key, _label in COLUMNS), key=name)
                self._cells.update({(name, k): v for k, v in cells.items()})
        else:
            for name in self._rows:
                if name not in state.actuators:
                    continue
                for key, value in self._cells_for(name, state.actuators[name], now).items():
                    if self._cells.get((name, key)) != value:
                        self._cells[(name, key)] = value
                        table.update_cell(name, key, value, update_width=True)
        self._show_detail()

    @on(DataTable.RowHighlighted, "#actuators")
    def _show_detail(self) -> None:
        name, state = self.selected(), self.model.state
        detail = self.query_one("#actuator-detail", Static)
        if name is None or state is None or name not in state.actuators:
            detail.update("")
            return
        actuator, now = state.actuators[name], self.hearth.controller_now()
        detail.border_title = name
        text = Text.assemble(on_off(actuator.on), "  by ", (actuator.source, SOURCE_STYLES.get(actuator.source, "")))
        text.append(f"\n{actuator.reason or 'no reason given'}", "italic")
        hold = hold_text(actuator, now, self.hearth.tz)
        text.append("\n")
        text.append_text(hold if hold.plain else Text("No interlock holds it.", "dim"))
        override = self.model.override_for(name)
        text.append("\n")
        if override is not None:
            text.append(
                f"Override by {override.who}: {override_value_text(name, override.value)} until "
                f"{clock_text(override.expires_at, self.hearth.tz, now)} "
                f"({duration_text(override.expires_at - now)} left). ",
                "magenta",
            )
            if self.hearth.monitor:
                text.append("read-only (monitor)", "bold yellow")
            else:
                text.append("k", "bold")
                text.append(" keeps it alive, ")
                text.append("x", "bold")
                text.append(" releases it.")
        elif self.hearth.monitor:
            text.append("read-only (monitor)", "bold yellow")
            text.append(": overrides are disabled here.")
        elif not self.hearth.can_change:
            text.append("Not connected: overrides need a live link to the controller.", "yellow")
        else:
            text.append("o", "bold")
            text.append(" forces it on or off for a limited time.", "dim")
        if detail.content != text:
            detail.update(text)
        actions = (self.hearth.can_change, override is not None)
        if actions != self._actions:  # keep alive and release only for an overridden relay
            self._actions = actions
            self.refresh_bindings()

    def selected(self) -> str | None:
        row = self.query_one("#actuators", DataTable).cursor_row
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def _selected_override(self) -> OverrideState | None:
        name = self.selected()
        return self.model.override_for(name) if name else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "override_selected":
            return change_allowed(self.hearth)
        if action in ("keep_alive", "release"):
            return change_allowed(self.hearth, needs=self._selected_override() is not None)
        return True

    def action_override_selected(self) -> None:
        self.hearth.open_override(self.selected())

    def action_keep_alive(self) -> None:
        override = self._selected_override()
        if override is not None:
            self.hearth.keep_alive(override)

    def action_release(self) -> None:
        override = self._selected_override()
        if override is not None:
            self.hearth.release(override)


def _override_cell(override: OverrideState | None, now: float) -> Cell:
    if override is None:
        return ""
    left = override.expires_at - now
    value = override_value_text(override.target, override.value)
    return Text(f"{value} {duration_text(left)}" if left > 0 else f"{value} ending", "magenta")
