"""Events: the controller's log of what it decided and what happened, newest at the bottom, filtered as you type.

A DataTable rather than a RichLog: it draws only the rows in view, so 2000 events (the bound) go in at once
even on a Pi, and the highlighted event shows its full message and data underneath.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from controller.protocol import EventMsg
from tui.format import clock_text
from tui.model import EVENT_LINES
from tui.screens.base import HearthScreen
from tui.widgets.recent_events import KIND_STYLES

FILTER_DELAY_S = 0.15


def event_matches(event: EventMsg, words: list[str]) -> bool:
    """Every word of the filter appears in the kind or the message (`override`, `heat-pump off`)."""
    haystack = f"{event.kind} {event.message}".lower()
    return all(word in haystack for word in words)


class EventsScreen(HearthScreen):
    MODE = "events"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_filter", "Filter", key_display="/"),
        Binding("escape", "leave_filter", "Log", show=False),
        Binding("end", "follow", "Newest"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._written_total = 0
        self._words: list[str] = []
        self._rows: list[EventMsg] = []
        self._filter_timer: Timer | None = None

    def compose_body(self) -> ComposeResult:
        yield Input(
            placeholder="filter: kind or words (e.g. override, mode, heat-pump) — / to focus", id="filter", compact=True
        )
        yield DataTable[str | Text](id="events", cursor_type="row")
        yield Static(id="event-detail")

    def on_mount(self) -> None:
        table = self.query_one("#events", DataTable)
        table.add_column("time", key="time", width=8)
        table.add_column("kind", key="kind", width=10)
        table.add_column("message", key="message")
        table.focus()
        super().on_mount()

    def refresh_view(self) -> None:
        super().refresh_view()
        missed = self.model.events_total - self._written_total
        if missed > len(self.model.events) or not self._written_total:
            self._rewrite()
        elif missed > 0:
            self._append(list(self.model.events)[-missed:])

    def show_events(self, events: list[EventMsg]) -> None:
        self._append(events)

    def _append(self, events: Iterable[EventMsg]) -> None:
        self._written_total = self.model.events_total
        matching = [e for e in events if event_matches(e, self._words)]
        if not matching:
            return
        if len(self._rows) + len(matching) > EVENT_LINES + EVENT_LINES // 10:
            self._rewrite()  # past the bound: start again from the model's last 2000
            return
        table = self.query_one("#events", DataTable)
        following = not self._rows or table.cursor_row >= len(self._rows) - 1
        self._add_rows(matching)
        if following:
            self.action_follow()

    def _add_rows(self, events: list[EventMsg]) -> None:
        table = self.query_one("#events", DataTable)
        tz = self.hearth.tz
        table.add_rows((clock_text(e.ts, tz), Text(e.kind, KIND_STYLES.get(e.kind, "bold")), e.message) for e in events)
        self._rows.extend(events)

    def _rewrite(self) -> None:
        table = self.query_one("#events", DataTable)
        table.clear()
        self._rows = []
        self._written_total = self.model.events_total
        self._add_rows([e for e in self.model.events if event_matches(e, self._words)][-EVENT_LINES:])
        table.border_title = (
            f"Events matching '{' '.join(self._words)}': {len(self._rows)}"
            if self._words
            else f"Events: the last {len(self._rows)}, newest at the bottom"
        )
        self.action_follow()

    @on(DataTable.RowHighlighted, "#events")
    def _show_detail(self) -> None:
        row = self.query_one("#events", DataTable).cursor_row
        detail = self.query_one("#event-detail", Static)
        if not 0 <= row < len(self._rows):
            detail.update("")
            return
        event = self._rows[row]
        text = Text.assemble((f"#{event.seq} {event.kind}: ", "bold"), event.message)
        if event.data:
            text.append("\n" + json.dumps(event.data, ensure_ascii=False, separators=(", ", ": ")), "dim")
        detail.update(text)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, changed: Input.Changed) -> None:
        self._words = changed.value.lower().split()
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(FILTER_DELAY_S, self._rewrite)  # typing is not redrawn per key

    @on(Input.Submitted, "#filter")
    def action_leave_filter(self) -> None:
        self.query_one("#events", DataTable).focus()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_follow(self) -> None:
        table = self.query_one("#events", DataTable)
        if self._rows:
            table.move_cursor(row=len(self._rows) - 1, animate=False)
