"""Energy (`e`): today so far and the last 30 local days as bars of heat and electricity, with COP, starts and
running hours per day, then month and heating-season totals. From the controller's store (`op=energy`); the
controller computes every figure (`controller.energy`), the TUI only draws the records it answers with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from controller.protocol import Request
from tui.screens.base import MQTT_HINT, HearthScreen
from tui.transport import new_request_id

DAYS = 30
BAR_WIDTH = 24
HEAT_STYLE, ELEC_STYLE = "bold red", "bold cyan"
Record = Mapping[str, Any]


def bar(value: float, scale: float, width: int = BAR_WIDTH) -> str:
    """A bar of `value` against `scale` in eighths of a cell, padded to `width`."""
    eighths = round(max(0.0, value) / scale * width * 8) if scale > 0 else 0
    full, part = divmod(min(eighths, width * 8), 8)
    return ("█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")).ljust(width)


def _cop(value: float | None) -> str:
    return f"{value:4.2f}" if value is not None else "  — "


def today_text(day: Record | None) -> Text:
    if day is None:
        return Text("  No energy figures yet.", "italic")
    return Text.assemble(
        "  Today so far: ",
        ("heat ", HEAT_STYLE),
        f"{day['heat_kwh']:.1f} kWh  ",
        ("electricity ", ELEC_STYLE),
        f"{day['elec_kwh']:.1f} kWh  ",
        ("COP ", "bold"),
        _cop(day.get("cop")).strip(),
        f"  {day['starts']} starts  {day['running_h']:.1f} h running  coverage {day['coverage_pct']:.0f} %",
    )


def days_text(days: Sequence[Record]) -> Text:
    """One line per day, newest first: heat and electricity bars on one scale, then the figures."""
    scale = max((max(d["heat_kwh"], d["elec_kwh"]) for d in days), default=0.0)
    text = Text.assemble(
        ("  day         ", "dim"),
        ("heat".ljust(BAR_WIDTH + 7), HEAT_STYLE),
        ("electricity".ljust(BAR_WIDTH + 7), ELEC_STYLE),
        (" COP  starts  run h  cover", "dim"),
    )
    for day in reversed(days):
        short = day["hours"] != 24
        text.append(f"\n  {day['day']}{'*' if short else ' '} ")
        text.append(bar(day["heat_kwh"], scale), HEAT_STYLE)
        text.append(f"{day['heat_kwh']:6.1f} ")
        text.append(bar(day["elec_kwh"], scale), ELEC_STYLE)
        text.append(f"{day['elec_kwh']:6.1f} ")
        text.append(f"{_cop(day.get('cop'))}  {day['starts']:6d}  {day['running_h']:5.1f}  {day['coverage_pct']:4.0f}%")
    if any(d["hours"] != 24 for d in days):
        text.append("\n  * a daylight-saving day (23 or 25 hours)", "dim")
    return text


def totals_text(totals: Sequence[Record]) -> Text:
    text = Text()
    for r in totals:
        cost = f", cost {r['cost']:.2f}" if r.get("cost") is not None else ""
        text.append_text(
            Text.assemble(
                f"\n  {str(r['kind']).capitalize()} {r['name']} ({r['days']} days): ",
                ("heat ", HEAT_STYLE),
                f"{r['heat_kwh']:.0f} kWh, ",
                ("electricity ", ELEC_STYLE),
                f"{r['elec_kwh']:.0f} kWh, COP {_cop(r.get('cop')).strip()}, {r['starts']} starts, "
                f"{r['running_h']:.0f} h running{cost}",
            )
        )
    return text


class EnergyScreen(HearthScreen):
    MODE = "energy"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "reload", "Reload")]

    def compose_body(self) -> ComposeResult:
        yield Static(id="energy-today")
        with VerticalScroll(id="energy-box"):
            yield Static(id="energy-days")
            yield Static(id="energy-totals")

    def on_mount(self) -> None:
        self._fetch()

    def action_reload(self) -> None:
        self._fetch()

    @work(exclusive=True, exit_on_error=False)
    async def _fetch(self) -> None:
        today = self.query_one("#energy-today", Static)
        today.update(Text("  asking the controller for the daily totals…", "italic"))
        answer = await self.hearth.send(Request(id=new_request_id(), op="energy", days=DAYS))
        if not answer.ok or answer.energy is None:
            error = answer.error or "no data"
            today.update(
                Text.assemble(
                    "  ", (f"Energy unavailable: {error}", "bold yellow"), (MQTT_HINT if "MQTT" in error else "", "dim")
                )
            )
            return
        days = answer.energy
        today.update(today_text(days[-1] if days else None))
        self.query_one("#energy-days", Static).update(days_text(days))
        self.query_one("#energy-totals", Static).update(totals_text(answer.energy_totals or []))
