"""The Energy screen's day plot: one local day's electricity, heat and flow (top) and temperatures (bottom), drawn
from the controller's `energy_day` record (5-minute means; a bucket without data is a break in the line).

Hours are counted from the local midnight that starts the day, so a DST day runs to 23 or 25. It reads in an 80×24
terminal (two panes of about seven rows) and uses whatever more there is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from textual_plotext import PlotextPlot

from tui.screens.history import segments

POWER_ROLES = {"elec": "cyan", "heat": "red"}
FLOW_ROLE = ("flow_rate", "green")
TEMPERATURE_ROLES = {
    "flow_c": "red",
    "return_c": "orange",
    "outdoor_c": "blue",
    "house_c": "magenta",
    "tank_top_c": "yellow",
}
Record = Mapping[str, Any]


def points(record: Record, role: str, scale: float = 1.0) -> list[list[tuple[float, float]]]:
    """The role's runs of (hours since the day's start, value × scale); [] when the record does not have it."""
    series = record.get("series", {}).get(role)
    if not series:
        return []
    bucket_h = float(record["bucket_s"]) / 3600.0
    values: Sequence[float | None] = series["values"]
    timed = [(bucket_h * (i + 0.5), v * scale if v is not None else None) for i, v in enumerate(values)]
    return segments(timed)


def draw_day(widget: PlotextPlot, record: Record) -> None:
    """Draw `record` into `widget` (two panes stacked; clears what was there)."""
    plt = widget.plt
    plt.clear_figure()
    hours = (float(record["end"]) - float(record["start"])) / 3600.0
    plt.subplots(2, 1)
    top = plt.subplot(1, 1)
    top.title(f"{record['day']}: electricity and heat (kW), flow (l/min, right)")
    for role, color in POWER_ROLES.items():
        label = record["series"][role]["what"] if role in record.get("series", {}) else role
        for index, run in enumerate(points(record, role, scale=1e-3)):
            top.plot([t for t, _ in run], [v for _, v in run], marker="braille", color=color,
                     label=label if index == 0 else None)  # fmt: skip
    role, color = FLOW_ROLE
    for index, run in enumerate(points(record, role)):
        top.plot([t for t, _ in run], [v for _, v in run], marker="braille", color=color, yside="right",
                 label="flow" if index == 0 else None)  # fmt: skip
    top.xlim(0, hours)
    top.xticks(_ticks(hours))
    bottom = plt.subplot(2, 1)
    bottom.title("temperatures (°C)")
    for role, color in TEMPERATURE_ROLES.items():
        for index, run in enumerate(points(record, role)):
            what = record["series"][role]["what"]
            bottom.plot([t for t, _ in run], [v for _, v in run], marker="braille", color=color,
                        label=what if index == 0 else None)  # fmt: skip
    bottom.xlim(0, hours)
    bottom.xticks(_ticks(hours))
    bottom.xlabel("hour of the local day")
    widget.refresh()


def _ticks(hours: float) -> list[float]:
    return [float(h) for h in range(0, int(hours) + 1, 3)]
