"""The heat pump: on or off, who decided, why, which interlock holds it and until when; then the other relays."""

from __future__ import annotations

from datetime import tzinfo

from rich.text import Text
from textual.widgets import Static

from controller.protocol import ActuatorStateMsg
from tui.format import SOURCE_STYLES, clock_text, duration_text, override_value_text
from tui.model import HearthModel

NAME_WIDTH = 18


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


def heat_pump_text(model: HearthModel, now: float, tz: tzinfo | None) -> Text:
    found = model.heat_pump()
    if found is None:
        return Text("No actuators reported." if model.state is not None else "—", "dim")
    name, pump = found
    text = Text.assemble(on_off(pump.on), "  by ", (pump.source, SOURCE_STYLES.get(pump.source, "")))
    if name != "heat-pump":
        text.append(f"  ({name})", "dim")
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
