"""Overrides and alarms as small tables that update their cells in place."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from rich.text import Text
from textual.widgets import DataTable

from controller.protocol import Alarm, OverrideState
from tui.format import age_text, clock_text, duration_text, override_value_text

Cell = str | Text


class KeyedTable(DataTable[Cell]):
    """A DataTable whose rows are keyed by id; `sync` adds and removes rows and updates changed cells only."""

    def __init__(self, columns: Sequence[tuple[str, str, int | None]], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._columns = columns
        self._cells: dict[tuple[str, str], Cell] = {}
        self._order: list[str] = []

    def on_mount(self) -> None:
        for label, key, width in self._columns:
            self.add_column(label, key=key, width=width)

    def sync(self, rows: Sequence[tuple[str, dict[str, Cell]]]) -> None:
        order = [key for key, _cells in rows]
        if order != self._order:
            selected = self.selected_key()
            self.clear()
            self._cells.clear()
            for key, cells in rows:
                self.add_row(*(cells[c] for _l, c, _w in self._columns), key=key)
                self._cells.update({(key, c): v for c, v in cells.items()})
            self._order = order
            if selected in order:
                self.move_cursor(row=order.index(selected))
            return
        for key, cells in rows:
            for column, value in cells.items():
                if self._cells.get((key, column)) != value:
                    self._cells[(key, column)] = value
                    self.update_cell(key, column, value)

    def selected_key(self) -> str | None:
        if not self._order or not 0 <= self.cursor_row < len(self._order):
            return None
        return self._order[self.cursor_row]


OVERRIDE_COLUMNS = (
    ("target", "target", 18),
    ("value", "value", 8),
    ("by", "who", 10),
    ("left", "left", 14),
    ("until", "until", 9),
)
ALARM_COLUMNS = (("since", "since", 9), ("alarm", "message", None), ("status", "status", 16))


def override_rows(
    overrides: Sequence[OverrideState], now: float, tz: tzinfo | None
) -> list[tuple[str, dict[str, Cell]]]:
    rows: list[tuple[str, dict[str, Cell]]] = []
    for o in overrides:
        left = o.expires_at - now
        rows.append(
            (
                o.id,
                {
                    "target": Text(o.target, "bold"),
                    "value": Text(override_value_text(o.target, o.value), "bold magenta"),
                    "who": o.who,
                    "left": Text(f"{duration_text(left)} left" if left > 0 else "ending…", "magenta"),
                    "until": clock_text(o.expires_at, tz, now),
                },
            )
        )
    return rows


def alarm_rows(alarms: Sequence[Alarm], now: float, tz: tzinfo | None) -> list[tuple[str, dict[str, Cell]]]:
    rows: list[tuple[str, dict[str, Cell]]] = []
    for alarm in alarms:
        status = (
            Text(f"ack by {alarm.acknowledged_by}", "dim")
            if alarm.acknowledged_by
            else Text(f"OPEN {age_text(now - alarm.since)}", "bold red")
        )
        rows.append((alarm.id, {"since": clock_text(alarm.since, tz, now), "message": alarm.message, "status": status}))
    return rows
