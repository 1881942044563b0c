"""History: one channel over the last hours, from the controller's store (`op=history`), as a plot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Label, Select, Static
from textual_plotext import PlotextPlot

from controller.protocol import HistoryPoint, Request
from tui.format import clock_text, unit_label
from tui.screens.base import MQTT_HINT, HearthScreen
from tui.transport import new_request_id

HOURS: tuple[tuple[str, float], ...] = (("1 h", 1.0), ("6 h", 6.0), ("24 h", 24.0), ("3 days", 72.0), ("7 days", 168.0))
DEFAULT_HOURS = 6.0
PREFERRED_CHANNELS = ("tank-top", "house-air")


def downsample(points: Sequence[HistoryPoint], buckets: int) -> list[tuple[float, float | None]]:
    """At most `buckets` (ts, mean) pairs; a bucket without a value stays a gap (None)."""
    if not points:
        return []
    if len(points) <= buckets:
        return [(p.ts, p.value) for p in points]
    start, end = points[0].ts, points[-1].ts
    width = (end - start) / buckets or 1.0
    sums: list[list[float]] = [[0.0, 0.0, 0.0] for _ in range(buckets)]  # ts sum, value sum, count
    seen = [0] * buckets
    for point in points:
        index = min(buckets - 1, int((point.ts - start) / width))
        seen[index] += 1
        sums[index][0] += point.ts
        if point.value is not None:
            sums[index][1] += point.value
            sums[index][2] += 1
    result: list[tuple[float, float | None]] = []
    for (ts_sum, value_sum, count), n in zip(sums, seen, strict=True):
        if n:
            result.append((ts_sum / n, value_sum / count if count else None))
    return result


def segments(series: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive values: a fault is a gap in the line, not a drop to zero."""
    runs: list[list[tuple[float, float]]] = [[]]
    for ts, value in series:
        if value is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((ts, value))
    return [run for run in runs if run]


class HistoryScreen(HearthScreen):
    MODE = "history"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "reload", "Reload")]

    def __init__(self) -> None:
        super().__init__()
        self._plotted: tuple[str, float] | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="history-controls"):
            yield Label("Channel ", classes="label")
            yield Select[str]([], prompt="channel", id="history-channel", compact=True)
            yield Label("  Last ", classes="label")
            yield Select[float](
                [(label, hours) for label, hours in HOURS],
                value=DEFAULT_HOURS,
                allow_blank=False,
                id="history-hours",
                compact=True,
            )
            yield Static(id="history-status")
        yield PlotextPlot(id="history-plot")

    def refresh_view(self) -> None:
        super().refresh_view()
        channels = list(self.model.state.readings) if self.model.state else []
        select = self.query_one("#history-channel", Select)
        if channels and [str(o) for o in channels] != getattr(self, "_options", None):
            self._options = channels
            select.set_options([(name, name) for name in channels])
        wanted = self.hearth.history_channel
        if wanted is None or wanted not in channels:
            wanted = next((c for c in PREFERRED_CHANNELS if c in channels), channels[0] if channels else None)
        if wanted is not None and select.value != wanted:
            select.value = wanted
        self._plot_if_needed()

    @on(Select.Changed)
    def _selection_changed(self) -> None:
        value = self.query_one("#history-channel", Select).value
        if isinstance(value, str):
            self.hearth.history_channel = value
        self._plot_if_needed()

    def _choice(self) -> tuple[str, float] | None:
        channel = self.query_one("#history-channel", Select).value
        hours = self.query_one("#history-hours", Select).value
        if isinstance(channel, str) and isinstance(hours, float):
            return channel, hours
        return None

    def _plot_if_needed(self, force: bool = False) -> None:
        choice = self._choice()
        if choice is not None and (force or choice != self._plotted):
            self._plotted = choice
            self._fetch(*choice)

    def action_reload(self) -> None:
        self._plot_if_needed(force=True)

    @work(exclusive=True, exit_on_error=False)
    async def _fetch(self, channel: str, hours: float) -> None:
        status = self.query_one("#history-status", Static)
        status.update(Text(f"  asking the controller for {channel}…", "italic"))
        answer = await self.hearth.send(Request(id=new_request_id(), op="history", channel=channel, hours=hours))
        if not answer.ok or answer.history is None:
            status.update(
                Text.assemble(
                    "  ",
                    (f"History unavailable: {answer.error or 'no data'}", "bold yellow"),
                    (MQTT_HINT if "MQTT" in (answer.error or "") else "", "dim"),
                )
            )
            self._draw(channel, hours, [])
            return
        points = answer.history
        faults = sum(1 for p in points if p.value is None)
        note = f"  {len(points)} samples" + (f", {faults} without a value" if faults else "")
        scope = getattr(self.hearth.transport, "history_scope", "")
        note += f" ({scope})" if scope else ""
        status.update(Text(note, "dim"))
        self._draw(channel, hours, points)

    def _draw(self, channel: str, hours: float, points: Sequence[HistoryPoint]) -> None:
        widget = self.query_one(PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        now = self.hearth.controller_now()
        reading = self.model.state.readings.get(channel) if self.model.state else None
        unit = unit_label(reading.unit) if reading else ""
        plt.title(f"{channel} — last {hours:g} h ({unit})" if unit else f"{channel} — last {hours:g} h")
        plt.xlabel(f"hours before {clock_text(now, self.hearth.tz)}")
        plt.xlim(-hours, 0)
        for run in segments(downsample(points, max(50, widget.size.width * 2))):
            plt.plot([(ts - now) / 3600 for ts, _v in run], [v for _ts, v in run], marker="braille", color="cyan")
        widget.refresh()
