"""The second line: the screens by number, the current one lit; on the right the site and how fresh the data is."""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

NAV = (
    ("1", "overview", "Overview"),
    ("2", "channels", "Channels"),
    ("3", "actuators", "Actuators"),
    ("4", "events", "Events"),
    ("5", "history", "History"),
    ("6", "layout", "Layout"),
)
NAV_WIDTH = sum(len(label) + 4 for _key, _mode, label in NAV) + len(NAV) - 1


class NavBar(Static):
    """`1 Overview  2 Channels …`; a click on a name switches to it."""

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current
        self._shown: tuple[str, str, int] | None = None

    def show(self, site: str, freshness: str) -> None:
        key = (site, freshness, self.size.width)
        if key == self._shown:
            return
        self._shown = key
        parts = []
        for number, mode, label in NAV:
            if mode == self.current:
                parts.append(f"[reverse bold] {number} {label} [/]")
            else:
                parts.append(f"[@click=app.show('{mode}')][bold $accent] {number}[/] {label} [/]")
        line = " ".join(parts)
        right = f"[bold]{escape(site)}[/] {escape(freshness)}".rstrip()
        gap = self.size.width - NAV_WIDTH - len(site) - len(freshness) - 2
        if site and gap >= 1:
            line += " " * gap + right
        self.update(line)
