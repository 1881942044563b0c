"""The heat pump: on or off, who decided, why, which interlock holds it and until when; then the other relays."""

from __future__ import annotations

from datetime import tzinfo

from rich.text import Text
from textual.widgets import Static

from controller.protocol import ActuatorStateMsg
from tui.format import QUALITY_STYLES, SOURCE_STYLES, clock_text, duration_text, override_value_text, power_text
from tui.model import (
    GRID_POWER_CHANNELS,
    HEAT_PUMP_COP_CHANNELS,
    HEAT_PUMP_FLOW_CHANNELS,
    HEAT_PUMP_HEAT_CHANNELS,
    HEAT_PUMP_POWER_CHANNELS,
    HearthModel,
)

NAME_WIDTH = 18
HEAT_RESOLUTION_W = 50.0
"""The derived heat is the loop's flow times the difference of two pipe probes. With the compressor off and the
store pump circulating (pre-run, post-run), a hundredth of a kelvin between the probes is ±12 W at 18 l/min: the
overview said `heat -11 W` for a heat pump that was off. Less than this is shown as 0 W (the store keeps hp-heat
with the same 50 W deadband); the value itself, and the energy counted from it, are unchanged."""


def on_off(on: bool) -> Text:
    return Text(" ON ", "bold black on green") if on else Text(" OFF ", "bold white on grey30")


def hold_text(actuator: ActuatorStateMsg, now: float, tz: tzinfo | None) -> Text:
    """`held by min-off until 10:31:05 (2 min 10 s left)`, or nothing when no interlock holds it."""
    if not actuator.held_by:
        return Text()
    text = Text.assemble("held by ", (actuator.held_by, "bold yellow"))
    if actuator.held_until is None:
        text.append(" while it lasts")
    else:
        left = actuator.held_until - now
        text.append(f" until {clock_text(actuator.held_until, tz, now)}")
        text.append(f" ({duration_text(left)} left)" if left > 0 else " (ending)", "yellow")
    return text


def _measured(model: HearthModel, names: tuple[str, ...], label: str, shown: str) -> Text:
    """`label value` in the reading's quality colour; `label —` (red) when the meter has no usable value."""
    found = model.reading(names)
    if found is None:
        return Text()
    reading = found[1]
    usable = reading.quality == "ok" and reading.value is not None
    return Text.assemble(f"{label} ", (shown if usable else "—", QUALITY_STYLES.get(reading.quality, "")))


def meters_text(model: HearthModel) -> Text:
    """What the meters say: the heat pump's electrical power, its heat output and COP now (derived by the
    controller; COP shows — while the compressor is off), its loop's flow, and the grid connection."""
    parts: list[Text] = []
    power = model.reading(HEAT_PUMP_POWER_CHANNELS)
    if power is not None:
        parts.append(_measured(model, HEAT_PUMP_POWER_CHANNELS, "electric", power_text(power[1].value)))
    heat = model.reading(HEAT_PUMP_HEAT_CHANNELS)
    if heat is not None:
        watts = heat[1].value
        shown = power_text(0.0 if watts is not None and abs(watts) < HEAT_RESOLUTION_W else watts)
        parts.append(_measured(model, HEAT_PUMP_HEAT_CHANNELS, "heat", shown))
    cop = model.reading(HEAT_PUMP_COP_CHANNELS)
    if cop is not None:
        parts.append(_measured(model, HEAT_PUMP_COP_CHANNELS, "COP", f"{cop[1].value or 0:.2f}"))
    flow = model.reading(HEAT_PUMP_FLOW_CHANNELS)
    if flow is not None:
        value = flow[1].value
        parts.append(_measured(model, HEAT_PUMP_FLOW_CHANNELS, "flow", f"{value or 0:.1f} l/min"))
    grid = model.reading(GRID_POWER_CHANNELS)
    if grid is not None:
        watts = grid[1].value or 0.0
        shown = f"{'import' if watts >= 0 else 'export'} {power_text(abs(watts))}"
        parts.append(_measured(model, GRID_POWER_CHANNELS, "grid", shown))
    return Text("  ").join(parts)


def heat_pump_text(model: HearthModel, now: float, tz: tzinfo | None) -> Text:
    found = model.heat_pump()
    if found is None:
        return Text("No actuators reported." if model.state is not None else "—", "dim")
    name, pump = found
    text = Text.assemble(on_off(pump.on), "  by ", (pump.source, SOURCE_STYLES.get(pump.source, "")))
    if name != "heat-pump":
        text.append(f"  ({name})", "dim")
    meters = meters_text(model)
    if meters.plain:
        text.append("\n")
        text.append_text(meters)
    text.append("\n")
    text.append(pump.reason or "no reason given", "italic")
    hold = hold_text(pump, now, tz)
    if hold.plain:
        text.append("\n")
        text.append_text(hold)
    override = model.override_for(name)
    if override is not None:
        text.append("\noverride ", "bold magenta")
        text.append(f"{override_value_text(override.target, override.value)} by {override.who}, ")
        text.append(f"{duration_text(override.expires_at - now)} left", "magenta")
    others = [(n, a) for n, a in (model.state.actuators.items() if model.state else ()) if n != name]
    for other, actuator in others:
        text.append(f"\n{other:<{NAME_WIDTH}} ")
        text.append("ON " if actuator.on else "off", "bold green" if actuator.on else "dim")
        text.append(f" {actuator.source}", SOURCE_STYLES.get(actuator.source, ""))
        if actuator.held_by:
            text.append(f" ({actuator.held_by})", "yellow")
    return text


class HeatPumpPanel(Static):
    def show(self, model: HearthModel, now: float, tz: tzinfo | None) -> None:
        text = heat_pump_text(model, now, tz)
        if self.content != text:
            self.update(text)
