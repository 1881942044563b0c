"""Energy (`e`): today so far and the last 30 local days as bars of heat and electricity, with COP, starts and
running hours per day, then month and heating-season totals. From the controller's store (`op=energy`); the
controller computes every figure (`controller.energy`), the TUI only draws the records it answers with.

`d` turns to the day plot (`op=energy_day`): one local day's electricity, heat, flow and temperatures; `[` and `]`
(or ← →) step to the day before and after, up to today. `d` again goes back to the days."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static
from textual_plotext import PlotextPlot

from controller.protocol import Request
from tui.format import clock_text
from tui.screens.base import MQTT_HINT, HearthScreen
from tui.transport import new_request_id
from tui.widgets.day_plot import draw_day

DAYS = 30
BAR_WIDTH = 24
FIXED_COLUMNS = 56  # a day line without its two bars: date, two figures, COP, starts, run h, cover
HEAT_STYLE, ELEC_STYLE = "bold red", "bold cyan"
Record = Mapping[str, Any]


def bar(value: float, scale: float, width: int = BAR_WIDTH) -> str:
    """A bar of `value` against `scale` in eighths of a cell, padded to `width`."""
    eighths = round(max(0.0, value) / scale * width * 8) if scale > 0 else 0
    full, part = divmod(min(eighths, width * 8), 8)
    return ("█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")).ljust(width)


def kwh(value: float, digits: int = 1) -> str:
    """`value` with `digits` decimals, never `-0.0` (a day of a little defrost heat and nothing else)."""
    return f"{value + 0.0:.{digits}f}" if round(value, digits) != 0 else f"{0.0:.{digits}f}"


def _cop(value: float | None) -> str:
    return f"{value:4.2f}" if value is not None else "  — "


def bar_width(columns: int) -> int:
    """The width of each bar that fits a day's line in `columns` (6 to BAR_WIDTH)."""
    return max(6, min(BAR_WIDTH, (columns - FIXED_COLUMNS) // 2))


def meter_text(day: Record) -> str:
    """The heat-pump meter's own counter over the day next to the integrated figure, or '' without a meter."""
    meter, difference = day.get("meter_kwh"), day.get("meter_difference_pct")
    if meter is None:
        return ""
    return f" (meter {meter:.2f} kWh" + (f", {difference:+.2f} %)" if difference is not None else ")")


def today_text(day: Record | None) -> Text:
    if day is None:
        return Text("  No energy figures yet.", "italic")
    return Text.assemble(
        "  Today so far: ",
        ("heat ", HEAT_STYLE),
        f"{kwh(day['heat_kwh'])} kWh  ",
        ("electricity ", ELEC_STYLE),
        f"{day['elec_kwh']:.2f} kWh{meter_text(day)}  ",
        ("COP ", "bold"),
        _cop(day.get("cop")).strip(),
        f"  {day['starts']} starts  {day['running_h']:.1f} h running  coverage {day['coverage_pct']:.0f} %",
    )


def day_totals_text(day: Record | None) -> Text:
    """The plotted day's totals, the meter's counter beside the electricity integrated from its power."""
    if day is None:
        return Text("  no daily totals for this day (older than the last 30, or not recorded)", "dim")
    return Text.assemble(
        "  ",
        ("heat ", HEAT_STYLE),
        f"{kwh(day['heat_kwh'], 2)} kWh  ",
        ("electricity ", ELEC_STYLE),
        f"{day['elec_kwh']:.2f} kWh{meter_text(day)}  ",
        ("COP ", "bold"),
        _cop(day.get("cop")).strip(),
    )


def days_text(days: Sequence[Record], width: int = BAR_WIDTH) -> Text:
    """One line per day, newest first: heat and electricity bars (`width` cells) on one scale, then the figures."""
    scale = max((max(d["heat_kwh"], d["elec_kwh"]) for d in days), default=0.0)
    text = Text.assemble(
        ("  day         ", "dim"),
        ("heat".ljust(width + 7), HEAT_STYLE),
        ("electricity".ljust(width + 7), ELEC_STYLE),
        (" COP  starts  run h  cover", "dim"),
    )
    for day in reversed(days):
        short = day["hours"] != 24
        text.append(f"\n  {day['day']}{'*' if short else ' '} ")
        if not day["coverage_pct"] and day.get("meter_kwh") is None:
            text.append("nothing recorded", "dim")
            continue
        text.append(bar(day["heat_kwh"], scale, width), HEAT_STYLE)
        text.append(f"{kwh(day['heat_kwh']):>6} ")
        text.append(bar(day["elec_kwh"], scale, width), ELEC_STYLE)
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
                f"{kwh(r['heat_kwh'], 0)} kWh, ",
                ("electricity ", ELEC_STYLE),
                f"{r['elec_kwh']:.0f} kWh, COP {_cop(r.get('cop')).strip()}, {r['starts']} starts, "
                f"{r['running_h']:.0f} h running{cost}",
            )
        )
    return text


REFRESH_S = 60.0
"""While shown, the screen asks for the totals again this often (the controller closes nothing more often than
its samples; over MQTT the summary comes every 15 minutes and on a state request)."""


class EnergyScreen(HearthScreen):
    MODE = "energy"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reload", "Reload"),
        Binding("d", "toggle_plot", "Day plot"),
        Binding("left_square_bracket", "step_day(-1)", "Day before", key_display="["),
        Binding("right_square_bracket", "step_day(1)", "Day after", key_display="]"),
        Binding("left", "step_day(-1)", "Day before", show=False),
        Binding("right", "step_day(1)", "Day after", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.today: date | None = None
        """the controller's local today (the last day of its answer)"""
        self.plot_day: date | None = None
        """the day the plot shows; None while the days are shown"""
        self.days: Sequence[Record] = []
        """the daily totals of the last answer, oldest first"""
        self.asked_at: float | None = None
        """when the shown totals were asked for (the app's clock); None while an answer is awaited"""

    def compose_body(self) -> ComposeResult:
        yield Static(id="energy-today")
        with VerticalScroll(id="energy-box"):
            yield Static(id="energy-days")
            yield Static(id="energy-totals")
        yield Static(id="energy-plot-status")
        yield Static(id="energy-plot-totals")
        yield PlotextPlot(id="energy-plot")

    def on_mount(self) -> None:
        self._show_plot(False)
        self._fetch()

    def action_reload(self) -> None:
        self._fetch()
        if self.plot_day is not None:
            self._fetch_day(self.plot_day)

    def tick(self) -> None:
        super().tick()
        due = self.asked_at is not None and self.hearth.now() - self.asked_at >= REFRESH_S
        if due and self.is_current:
            self._fetch(quiet=True)
            if self.plot_day is not None and self.plot_day == self.today:
                self._fetch_day(self.plot_day)

    def action_toggle_plot(self) -> None:
        if self.plot_day is not None:
            self.plot_day = None
            self._show_plot(False)
            return
        self.plot_day = self.today or date.fromtimestamp(self.hearth.controller_now())
        self._show_plot(True)
        self._fetch_day(self.plot_day)

    def action_step_day(self, step: int) -> None:
        if self.plot_day is None:
            return
        wanted = self.plot_day + timedelta(days=step)
        if self.today is not None and wanted > self.today:
            self.notify("That is today: there is no day after it yet.", severity="warning", timeout=3)
            return
        self.plot_day = wanted
        self._fetch_day(wanted)

    def _show_plot(self, on: bool) -> None:
        self.query_one("#energy-today").display = not on
        self.query_one("#energy-box").display = not on
        self.query_one("#energy-plot-status").display = on
        self.query_one("#energy-plot-totals").display = on
        self.query_one("#energy-plot").display = on

    @work(exclusive=True, exit_on_error=False)
    async def _fetch(self, quiet: bool = False) -> None:
        """Ask for the daily totals; `quiet` (the minute's refresh) keeps the figures shown until the answer."""
        today = self.query_one("#energy-today", Static)
        if not quiet:
            today.update(Text("  asking the controller for the daily totals…", "italic"))
        self.asked_at = None
        asked = self.hearth.now()
        try:
            answer = await self.hearth.send(Request(id=new_request_id(), op="energy", days=DAYS))
        finally:
            self.asked_at = asked
        if not answer.ok or answer.energy is None:
            error = answer.error or "no data"
            today.update(
                Text.assemble(
                    "  ", (f"Energy unavailable: {error}", "bold yellow"), (MQTT_HINT if "MQTT" in error else "", "dim")
                )
            )
            return
        days = self.days = answer.energy
        if days:
            self.today = date.fromisoformat(str(days[-1]["day"]))
        today.update(
            today_text(days[-1] if days else None).append(f"  (as of {clock_text(asked, self.hearth.tz)})", "dim")
        )
        self._show_days()
        self.query_one("#energy-totals", Static).update(totals_text(answer.energy_totals or []))

    def _show_days(self) -> None:
        self.query_one("#energy-days", Static).update(days_text(self.days, bar_width(self.size.width)))

    def on_resize(self) -> None:
        if self.days:
            self._show_days()

    def totals_of(self, day: date) -> Record | None:
        return next((d for d in self.days if d["day"] == day.isoformat()), None)

    @work(group="day", exclusive=True, exit_on_error=False)
    async def _fetch_day(self, day: date) -> None:
        status = self.query_one("#energy-plot-status", Static)
        status.update(Text(f"  asking the controller for {day.isoformat()}…", "italic"))
        self.query_one("#energy-plot-totals", Static).update(day_totals_text(self.totals_of(day)))
        answer = await self.hearth.send(Request(id=new_request_id(), op="energy_day", day=day.isoformat()))
        if not answer.ok or answer.energy_day is None:
            error = answer.error or "no data"
            status.update(
                Text.assemble(
                    "  ",
                    (f"Day plot unavailable: {error}", "bold yellow"),
                    (MQTT_HINT if "MQTT" in error else "", "dim"),
                )
            )
            self.query_one("#energy-plot", PlotextPlot).plt.clear_figure()
            return
        record = answer.energy_day
        status.update(day_status(record))
        draw_day(self.query_one("#energy-plot", PlotextPlot), record)


def day_status(record: Record) -> Text:
    """The line above the plot: which day, how long it was, how much of it has data, and the keys."""
    day = date.fromisoformat(str(record["day"]))
    hours = (float(record["end"]) - float(record["start"])) / 3600.0
    series = record.get("series", {})
    elec = series.get("elec", {}).get("values", [])
    covered = sum(1 for v in elec if v is not None)
    coverage = f"{100 * covered / len(elec):.0f} % recorded" if elec else "no electricity meter"
    length = "" if hours == 24 else f" ({hours:g} hours: daylight saving)"
    return Text.assemble(
        ("  ", ""),
        (day.strftime("%A %Y-%m-%d"), "bold"),
        (f"{length}, {coverage}, 5-min means", ""),
        ("   [ ] other days  d back", "dim"),
    )
