"""House and tank at a glance: house air and outdoor, and the tank as a bar coloured by its stratification (and
shaded by it too: denser glyphs are warmer, for a terminal without colour)."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from controller.protocol import ReadingState
from tui.format import temperature_hex, value_text
from tui.model import HOUSE_CHANNELS, OUTDOOR_CHANNELS, TANK_CHANNELS, HearthModel

BAR_WIDTH = 6
SHADES = ((30.0, "░"), (40.0, "▒"), (50.0, "▓"))
"""Below each temperature, its glyph; hotter is `█`. The bar reads without colour: denser is warmer."""
UNKNOWN = "·"


def shade(celsius: float) -> str:
    return next((glyph for below, glyph in SHADES if celsius < below), "█")


def _reading_text(reading: ReadingState | None) -> Text:
    if reading is None:
        return Text("—", "dim")
    if reading.value is None or reading.quality == "fault":
        return Text(reading.quality, "bold red")
    text = Text(value_text(reading.value, reading.unit), "bold")
    if reading.quality != "ok":
        text.append(f" {reading.quality}", "yellow")
    return text


def tank_picture(model: HearthModel) -> Text:
    """Two lines of house temperatures, then five bar rows: top, between, middle, between, bottom."""
    house = model.reading(HOUSE_CHANNELS)
    outdoor = model.reading(OUTDOOR_CHANNELS)
    lines = Text()
    lines.append("House   ")
    lines.append_text(_reading_text(house[1] if house else None))
    lines.append("\nOutdoor ")
    lines.append_text(_reading_text(outdoor[1] if outdoor else None))
    probes: list[tuple[str, ReadingState | None]] = []
    for label, name in TANK_CHANNELS:
        found = model.reading((name,))
        probes.append((label, found[1] if found else None))
    temps = [r.value if r is not None and r.quality in ("ok", "stale") else None for _label, r in probes]
    rows: list[tuple[float | None, str | None, ReadingState | None]] = []
    for index, (label, reading) in enumerate(probes):
        rows.append((temps[index], label, reading))
        if index < len(probes) - 1:
            upper, lower = temps[index], temps[index + 1]
            between = (upper + lower) / 2 if upper is not None and lower is not None else None
            rows.append((between, None, None))
    lines.append("\n")
    for number, (temp, row_label, row_reading) in enumerate(rows):
        lines.append("\n" if number else "")
        lines.append("▕")
        if temp is None:
            lines.append(UNKNOWN * BAR_WIDTH, "dim")
        else:
            lines.append(shade(temp) * BAR_WIDTH, Style(color=temperature_hex(temp)))
        lines.append("▏")
        if row_label is not None:
            lines.append(f" {row_label:<7}")
            lines.append_text(_reading_text(row_reading))
    return lines


class TankPanel(Static):
    """The house-and-tank picture; redrawn only when what it shows changes."""

    def show(self, model: HearthModel) -> None:
        picture = tank_picture(model)
        if self.content != picture:
            self.update(picture)
