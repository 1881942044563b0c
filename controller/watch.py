"""`hearth run --watch`: a live table of every channel and relay on the terminal, redrawn in place.

Until the TUI exists, this is how the demo shows what the controller reads. It only reads the snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

from controller.readings import Quality, Snapshot

UNIT_LABELS = {"degC": "°C", "V": "V"}
CLEAR = "\x1b[H\x1b[2J"


def render(site: str, snapshot: Snapshot, relays: Mapping[str, bool], width: int = 100) -> str:
    """The table as text: one row per channel, then the relays."""
    when = datetime.fromtimestamp(snapshot.taken_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [f"Hearth — {site} — {when}", "", f"{'channel':16} {'value':>9}  {'quality':13} {'age':>6}  detail"]
    for name, reading in snapshot.readings.items():
        unit = UNIT_LABELS.get(reading.unit, reading.unit)
        value = f"{reading.value:7.2f} {unit}" if reading.value is not None else "      —"
        age = f"{snapshot.taken_at - reading.timestamp:5.1f}s"
        detail = reading.detail if reading.quality is not Quality.OK else ""
        row = f"{name:16} {value:>9}  {reading.quality.value:13} {age:>6}  {detail}"
        lines.append(row[:width])
    lines += ["", "relays: " + "  ".join(f"{name} {'ON' if on else 'off'}" for name, on in relays.items())]
    return "\n".join(lines)


def frame(site: str, snapshot: Snapshot, relays: Mapping[str, bool], log_file: str) -> str:
    """One redraw: clear the screen, draw the table, and say how to stop and where the logs are."""
    stamp = time.strftime("%H:%M:%S")
    return f"{CLEAR}{render(site, snapshot, relays)}\n\n[{stamp}] Ctrl-C to stop. Logs: {log_file}\n"
