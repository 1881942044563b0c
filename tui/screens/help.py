"""`?`: every key, what the colours mean, and who may change what."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.format import SOURCE_STYLES
from tui.widgets.footer import HearthFooter

KEYS: tuple[tuple[str, str, str], ...] = (
    ("everywhere", "1 … 6", "Overview, Channels, Actuators, Events, History, Layout"),
    ("", "p", "the plan: the next 24 h of heat-pump use against price, the tank's planned temperature"),
    ("", "e", "energy: heat, electricity, COP, starts and running hours per day; month and season totals"),
    ("", "o", "override a relay or the comfort setpoint for a limited time (technicians)"),
    ("", "?", "this help"),
    ("", "q, ctrl+c", "quit (the controller carries on; overrides still expire on time)"),
    ("", "tab / shift+tab", "move between parts of a screen"),
    ("Overview", "k", "keep the selected override alive (extends it by its duration)"),
    ("", "x", "release the selected override now: normal control resumes"),
    ("", "a", "acknowledge the selected alarm"),
    ("Channels", "/", "filter by name, unit or quality (escape returns to the table)"),
    ("", "enter", "plot the selected channel's history"),
    ("Actuators", "o / k / x", "override, keep alive or release the selected relay"),
    ("Events", "/", "filter; the newest event is at the bottom"),
    ("Energy", "d", "plot one day: electricity, heat, flow and temperatures (d again: the days)"),
    ("", "[ / ]", "the day before / after in the plot (← → too)"),
    ("History, Layout, Energy", "r", "ask the controller again"),
    ("Override dialog", "enter", "confirm (from a text field); escape closes"),
)
MODES = (
    ("ATN", "the cloud optimizer holds a live lease and decides", "mode-atn"),
    ("LOCAL", "Hearth's own policy decides (no live ATN lease)", "mode-local"),
    ("OVERRIDE", "a technician forced something; it expires on its own", "mode-override"),
    ("SAFE", "a critical fault: relays in their declared safe states", "mode-safe"),
)
MODE_COLOURS = {"mode-atn": "#1f5f8b", "mode-local": "#8a6d1a", "mode-override": "#7a2a8a", "mode-safe": "#a11d1d"}
SOURCES = (
    ("interlock", "a safety rule holds it: min on/off time, sequencing, over-temperature, frost"),
    ("override", "a technician's override"),
    ("atn", "the ATN's lease"),
    ("local", "the local policy"),
    ("safe", "the declared safe state"),
)


def help_text(read_only: bool) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", width=16)
    grid.add_column(style="bold", width=16)
    grid.add_column()
    for where, key, what in KEYS:
        grid.add_row(where, key, what)
    grid.add_row("", "", "")
    for mode, meaning, css in MODES:
        grid.add_row("mode" if mode == "ATN" else "", Text(f" {mode} ", f"bold white on {MODE_COLOURS[css]}"), meaning)
    grid.add_row("", "", "")
    for source, meaning in SOURCES:
        grid.add_row("by (source)" if source == "interlock" else "", Text(source, SOURCE_STYLES[source]), meaning)
    grid.add_row("", "", "")
    role = (
        Text("read-only (monitor): you can watch everything but change nothing.", "bold yellow")
        if read_only
        else Text("technician: you may override; every override expires (at most 24 h) and is audited.", "green")
    )
    grid.add_row("you", "", role)
    return grid


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(self, read_only: bool) -> None:
        super().__init__()
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help") as scroll:
            scroll.border_title = "Hearth — keys and colours"
            yield Static(help_text(self.read_only))
        yield HearthFooter()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
