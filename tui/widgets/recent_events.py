"""The last few events, as many as fit: on a big terminal the overview also says what just happened."""

from __future__ import annotations

from datetime import tzinfo

from rich.text import Text
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import Static

from controller.protocol import EventMsg
from tui.format import clock_text

KIND_STYLES = {
    "mode": "bold cyan",
    "override": "bold magenta",
    "alarm": "bold red",
    "switch": "green",
    "interlock": "yellow",
    "fault": "red",
    "clock": "bold yellow",
}


def event_line(event: EventMsg, tz: tzinfo | None) -> Text:
    return Text.assemble(
        (clock_text(event.ts, tz), "dim"),
        "  ",
        (f"{event.kind:<10}", KIND_STYLES.get(event.kind, "bold")),
        " ",
        event.message,
    )


class RecentEvents(Static):
    """Newest at the bottom, one line each; redrawn when an event arrives or the terminal is resized."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._events: list[EventMsg] = []
        self._tz: tzinfo | None = None

    def show(self, events: list[EventMsg], tz: tzinfo | None) -> None:
        self._events, self._tz = events, tz
        self._draw()

    def on_resize(self, _event: Resize) -> None:
        panel = self.parent
        if isinstance(panel, Widget):  # too short for a border: show the lines without one
            panel.set_class(panel.outer_size.height < 3, "-tight")
        self._draw()

    def _draw(self) -> None:
        rows = max(1, self.size.height)
        lines = [event_line(e, self._tz) for e in self._events[-rows:]]
        text = Text("\n").join(lines) if lines else Text("No events yet.", "dim")
        if self.content != text:
            self.update(text)
