"""The fleet view: one row per site, sorted and filtered; Enter opens that site's screens.

The table is redrawn at most once a second, and only the cells that changed, so hundreds of sites publishing
their state do not cost a repaint each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input, Static

from controller.protocol import State
from tui.fleet.model import COLUMNS, SORT_KEYS, FleetModel, Row
from tui.fleet.transport import FleetTransport
from tui.transport import ConnectionStatus

REFRESH_S = 1.0


@dataclass
class Choices:
    """What the person chose in the view (sort, filter, the row under the cursor): kept across a visit to a site,
    so q from the site's screens comes back to the same table, not to the default sort."""

    sort: str = "site"
    filter_text: str = ""
    site: str | None = None


class FleetApp(App[str | None]):
    """Exits with the site to open (Enter), or None (q)."""

    TITLE = "Hearth fleet"
    CSS = """
    #header { height: auto; max-height: 3; background: $boost; }
    #filter { display: none; }
    #filter.shown { display: block; }
    #help { height: 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit_fleet", "quit"),
        Binding("s", "next_sort", "sort"),
        Binding("slash", "filter", "filter"),
        Binding("escape", "clear_filter", "clear filter", show=False),
    ]

    def __init__(
        self, transport: FleetTransport, model: FleetModel | None = None, choices: Choices | None = None
    ) -> None:
        super().__init__()
        self.transport = transport
        self.model = model or FleetModel()
        self.choices = choices or Choices()
        self.connection = ConnectionStatus("connecting")
        self._shown: dict[str, tuple[str, ...]] = {}
        self._order: list[str] = []
        self._widths: dict[str, int] = {column: len(column) for column in COLUMNS}

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield Input(placeholder="filter: any text in a row (Enter to apply, Esc to clear)", id="filter")
        yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
        yield Static("Enter: open the site   s: sort   /: filter   q: quit", id="help")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.run_worker(self.transport.run(self._on_state, self._on_online, self._on_connection), exclusive=True)
        self.set_interval(REFRESH_S, self.refresh_table)
        self.query_one("#filter", Input).value = self.filter_text
        self.refresh_table()
        table.focus()

    # ---- data in ----------------------------------------------------------------------------------------------

    def _on_state(self, state: State) -> None:
        self.model.state(state)

    def _on_online(self, site: str, online: bool) -> None:
        self.model.status(site, online)

    def _on_connection(self, status: ConnectionStatus) -> None:
        self.connection = status
        self._header()

    # ---- drawing -----------------------------------------------------------------------------------------------

    def _header(self, rows: list[Row] | None = None) -> None:
        transport, status = self.transport, self.connection
        which = transport.watch.which
        link = status.phase + (f": {status.detail}" if status.detail else "")
        if status.retry_in_s is not None:
            link += f" (retry in {status.retry_in_s} s)"
        text = f"Hearth fleet — MQTT {transport.broker}{which} — {link}"
        if rows is not None:
            down = sum(1 for row in rows if not row.available)
            text += f" — {len(self.model.states)} sites, {down} unavailable — sort: {self.sort}"
            if self.filter_text:
                text += f" — filter: {self.filter_text!r} ({len(rows)} shown)"
        self.query_one("#header", Static).update(text)

    def refresh_table(self) -> None:
        """Add the rows of new sites, drop those filtered out, update only the cells that changed, and let the
        table sort itself when the order changed (rebuilding 500 rows costs seconds; this costs milliseconds)."""
        rows = self.model.rows(time.time(), self.sort, self.filter_text)
        self._header(rows)
        table = self.query_one(DataTable)
        wanted = {row.site: row for row in rows}
        for site in [site for site in self._shown if site not in wanted]:
            table.remove_row(site)
            del self._shown[site]
        for row in rows:
            before = self._shown.get(row.site)
            if before is None:
                table.add_row(*row.cells, key=row.site)
                for column, cell in zip(COLUMNS, row.cells, strict=True):
                    self._widths[column] = max(self._widths[column], cell_len(cell))
            elif before != row.cells:
                for column, old, new in zip(COLUMNS, before, row.cells, strict=True):
                    if old != new:
                        # A column is as wide as its first values ("up -" before the first heartbeat): a longer
                        # one ("up 12 s") was cut to fit. Widen it then, and only then: the table's own
                        # re-measure on every update scans the whole column when a cell gets shorter, which
                        # at hundreds of rows updated each second ("last seen") costs more than the rest.
                        wider = cell_len(new) > self._widths[column]
                        table.update_cell(row.site, column, new, update_width=wider)
                        if wider:
                            self._widths[column] = cell_len(new)
            self._shown[row.site] = row.cells
        order = [row.site for row in rows]
        if order != self._order:
            cursor = self._cursor_site()
            rank = {site: index for index, site in enumerate(order)}
            table.sort("site", key=lambda site: rank[str(site)])
            self._order = order
            if cursor in rank:
                table.move_cursor(row=rank[cursor])

    @property
    def sort(self) -> str:
        return self.choices.sort

    @property
    def filter_text(self) -> str:
        return self.choices.filter_text

    @filter_text.setter
    def filter_text(self, text: str) -> None:
        self.choices.filter_text = text

    def _cursor_site(self) -> str | None:
        table = self.query_one(DataTable)
        if not self._order and self.choices.site is not None:  # the first paint after a visit: that site's row
            return self.choices.site
        if not self._order or table.cursor_row < 0 or table.cursor_row >= len(self._order):
            return None
        return self._order[table.cursor_row]

    # ---- keys ---------------------------------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.choices.site = str(event.row_key.value)
        self.exit(self.choices.site)

    def action_quit_fleet(self) -> None:
        self.exit(None)

    def action_next_sort(self) -> None:
        self.choices.sort = SORT_KEYS[(SORT_KEYS.index(self.sort) + 1) % len(SORT_KEYS)]
        self.refresh_table()

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.add_class("shown")
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.value = ""
        field.remove_class("shown")
        self.filter_text = ""
        self.query_one(DataTable).focus()
        self.refresh_table()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.filter_text = event.value
        if not event.value:
            event.input.remove_class("shown")
        self.query_one(DataTable).focus()
        self.refresh_table()
