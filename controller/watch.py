"""`hearth run --watch`: the controller's state as a table on the terminal, redrawn in place every second.

It draws the protocol `State` message, the same one MQTT monitors receive, so what the technician sees here is
what a remote monitor sees.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from controller import protocol

UNIT_LABELS = {"degC": "°C", "V": "V"}
CLEAR = "\x1b[H\x1b[2J"


def _link_line(link: protocol.LinkState | None, now: float) -> str:
    if link is None:
        return "ATN link: none configured"
    age = None if link.last_heartbeat is None else now - link.last_heartbeat
    silent = age is None or (link.silence_s is not None and age >= link.silence_s)
    parts = ["ATN link: " + ("DOWN" if not link.connected else "SILENT (broker connected)" if silent else "connected")]
    if link.last_heartbeat is not None:
        parts.append(f"last heartbeat {now - link.last_heartbeat:.0f} s ago")
    if link.lease_id and link.lease_valid_until is not None:
        left = link.lease_valid_until - now
        parts.append(f"lease {link.lease_id} " + (f"{left:.0f} s left" if left > 0 else "expired"))
    parts.append(f"backlog {link.backlog}")
    return ", ".join(parts)


def render(state: protocol.State, width: int = 110) -> str:
    when = datetime.fromtimestamp(state.ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        f"Hearth — {state.site} — {when}",
        f"mode {state.mode}: {state.reason}"[:width],
        _link_line(state.link, state.ts)[:width],
        "",
        f"{'channel':16} {'value':>9}  {'quality':13} {'age':>6}  detail",
    ]
    for name, reading in state.readings.items():
        unit = UNIT_LABELS.get(reading.unit, reading.unit)
        value = f"{reading.value:7.2f} {unit}" if reading.value is not None else "      —"
        detail = reading.detail if reading.quality != "ok" else ""
        lines.append(f"{name:16} {value:>9}  {reading.quality:13} {state.ts - reading.ts:5.1f}s  {detail}"[:width])
    lines += ["", f"{'actuator':18} {'state':5}  {'by':9} why"]
    for name, actuator in state.actuators.items():
        held = f" [held: {actuator.held_by}]" if actuator.held_by else ""
        lines.append(
            f"{name:18} {'ON' if actuator.on else 'off':5}  {actuator.source:9} {actuator.reason}{held}"[:width]
        )
    for override in state.overrides:
        left = override.expires_at - state.ts
        lines.append(f"override {override.target} = {override.value} by {override.who}, {left:.0f} s left")
    return "\n".join(lines)


def frame(state: protocol.State, log_file: str) -> str:
    """One redraw: clear the screen, draw the table, and say how to stop and where the logs are."""
    stamp = time.strftime("%H:%M:%S")
    return f"{CLEAR}{render(state)}\n\n[{stamp}] Ctrl-C to stop. Logs: {log_file}\n"
