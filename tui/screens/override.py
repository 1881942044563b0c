"""The override dialog: pick a relay or the comfort setpoint, a value, how long and why; confirm; see the verdict.

An override always expires (default 30 min, at most 24 h). The controller answers with the override and the
actuator as it stands one control tick later, so the dialog can say "accepted, but held by min-off until …":
interlocks outrank a technician.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioSet, Select, Static

from controller.protocol import Request, Response
from tui.format import SOURCE_STYLES, clock_text, duration_text, override_value_text, span_text
from tui.model import COMFORT_SETPOINT
from tui.transport import new_request_id
from tui.widgets.choice import Choice
from tui.widgets.footer import HearthFooter
from tui.widgets.heat_pump import hold_text

if TYPE_CHECKING:
    from tui.app import HearthApp

PRESETS: tuple[tuple[str, int], ...] = (
    ("10 min", 600),
    ("20 min", 1200),
    ("30 min", 1800),
    ("1 h", 3600),
    ("4 h", 14400),
)
DEFAULT_DURATION_S = 1800
MAX_DURATION_S = 24 * 3600
SETPOINT_RANGE = (10.0, 28.0)


def describe_result(request: Request, response: Response, now: float, tz: tzinfo | None) -> tuple[str, Text]:
    """The verdict as a CSS class (`-ok`, `-held`, `-refused`) and the sentence the technician reads."""
    target = request.target or "?"
    wanted = override_value_text(target, request.value if request.value is not None else False)
    if not response.ok:
        return "-refused", Text.assemble(("Refused: ", "bold"), response.error or "the controller gave no reason")
    expires = response.override.expires_at if response.override else now + (request.duration_s or 0)
    until = f"until {clock_text(expires, tz, now)} ({span_text(expires - now)})"
    actuator = response.actuator
    if actuator is not None and actuator.held_by:
        text = Text.assemble(("Accepted, but held: ", "bold"), f"{target} stays {'ON' if actuator.on else 'OFF'}, ")
        text.append_text(hold_text(actuator, now, tz))
        text.append(f" — {actuator.reason}." if actuator.reason else ".")
        text.append(f"\nIt follows the override ({wanted}) once the interlock lets go; the override runs {until}.")
        return "-held", text
    text = Text.assemble(("Accepted: ", "bold"), f"{target} {wanted} {until}.")
    if actuator is not None and isinstance(request.value, bool) and actuator.on != request.value:
        text.append(f"\nNote: it is still {'ON' if actuator.on else 'OFF'} ({actuator.source}: {actuator.reason}).")
    return "-ok", text


class OverrideScreen(ModalScreen[None]):
    """Modal; everything it sends goes through `HearthApp.send`."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, hearth: HearthApp, initial_target: str | None = None) -> None:
        super().__init__()
        self.hearth = hearth
        self.targets = hearth.model.targets()
        self.initial_target = initial_target if initial_target in self.targets else self.targets[0]
        self.sent = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = "Override — force for a limited time"
            with Horizontal(classes="row"):
                yield Label("Target", classes="label")
                yield Select(
                    [(t, t) for t in self.targets],
                    value=self.initial_target,
                    allow_blank=False,
                    id="target",
                    compact=True,
                )
            yield Static(id="current", classes="row")
            with Horizontal(classes="row", id="value-row"):
                yield Label("Value", classes="label")
                with RadioSet(id="value"):
                    yield Choice("On", id="value-on", value=True)
                    yield Choice("Off", id="value-off")
            with Horizontal(classes="row", id="setpoint-row"):
                yield Label("Setpoint", classes="label")
                yield Input(
                    placeholder=f"°C, {SETPOINT_RANGE[0]:g}–{SETPOINT_RANGE[1]:g}",
                    id="setpoint",
                    type="number",
                    compact=True,
                )
            with Horizontal(classes="row"):
                yield Label("For", classes="label")
                with RadioSet(id="duration"):
                    for label, seconds in PRESETS:
                        yield Choice(label, id=f"dur-{seconds}", value=seconds == DEFAULT_DURATION_S)
            with Horizontal(classes="row"):
                yield Label("", classes="label")
                yield Input(placeholder="or minutes (1–1440)", id="minutes", type="integer", compact=True)
            with Horizontal(classes="row"):
                yield Label("Reason", classes="label")
                yield Input(placeholder="why: kept in the audit log", id="reason", max_length=200, compact=True)
            yield Static(id="summary")
            yield Static(id="result")
            with Horizontal(id="buttons"):
                yield Button("Override", id="confirm", variant="warning", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield HearthFooter()

    def on_mount(self) -> None:
        self.query_one("#result").display = False
        self._update()

    # ---- the form ------------------------------------------------------------------------------------

    @property
    def target(self) -> str:
        value = self.query_one("#target", Select).value
        return value if isinstance(value, str) else self.initial_target

    def duration_s(self) -> float | None:
        """The custom minutes if given, else the preset; None when the minutes make no sense."""
        minutes = self.query_one("#minutes", Input).value.strip()
        if minutes:
            try:
                seconds = int(minutes) * 60
            except ValueError:
                return None
            return float(seconds) if 0 < seconds <= MAX_DURATION_S else None
        pressed = self.query_one("#duration", RadioSet).pressed_button
        if pressed is None or pressed.id is None:
            return float(DEFAULT_DURATION_S)
        return float(pressed.id.removeprefix("dur-"))

    def value(self) -> bool | float | None:
        if self.target.startswith("setpoint:"):
            try:
                celsius = float(self.query_one("#setpoint", Input).value)
            except ValueError:
                return None
            return celsius if SETPOINT_RANGE[0] <= celsius <= SETPOINT_RANGE[1] else None
        pressed = self.query_one("#value", RadioSet).pressed_button
        return pressed is None or pressed.id == "value-on"

    def build_request(self) -> Request | None:
        value, duration = self.value(), self.duration_s()
        if value is None or duration is None:
            return None
        reason = self.query_one("#reason", Input).value.strip()
        return Request(
            id=new_request_id(), op="override", target=self.target, value=value, duration_s=duration, reason=reason
        )

    @on(Select.Changed)
    @on(RadioSet.Changed)
    @on(Input.Changed)
    def _changed(self) -> None:
        self._update()

    def _update(self) -> None:
        if self.sent:
            return
        setpoint = self.target.startswith("setpoint:")
        self.query_one("#value-row").display = not setpoint
        self.query_one("#setpoint-row").display = setpoint
        self.query_one("#current", Static).update(self._current())
        summary = self.query_one("#summary", Static)
        value, duration = self.value(), self.duration_s()
        problem = ""
        if value is None:
            problem = f"Enter a setpoint between {SETPOINT_RANGE[0]:g} and {SETPOINT_RANGE[1]:g} °C."
        elif duration is None:
            problem = "Minutes: a whole number from 1 to 1440 (24 h at most)."
        self.query_one("#confirm", Button).disabled = bool(problem)
        if problem:
            summary.update(Text(problem, "bold red"))
            return
        assert value is not None and duration is not None
        now = self.hearth.controller_now()
        summary.update(
            Text.assemble(
                ("Will force ", ""),
                (f"{self.target} {override_value_text(self.target, value)}", "bold"),
                f" until {clock_text(now + duration, self.hearth.tz, now)} ({span_text(duration)}), then "
                "normal control resumes.",
            )
        )

    def _current(self) -> Text:
        model, now = self.hearth.model, self.hearth.controller_now()
        existing = model.override_for(self.target)
        text = Text("Now      ", "bold")
        if self.target == COMFORT_SETPOINT:
            text.append("the comfort setpoint follows the schedule or the ATN", "dim")
        elif model.state is not None and self.target in model.state.actuators:
            actuator = model.state.actuators[self.target]
            text.append("ON" if actuator.on else "OFF", "bold")
            text.append(" by ")
            text.append(actuator.source, SOURCE_STYLES.get(actuator.source, ""))
            text.append(f": {actuator.reason}")
            if actuator.held_by:
                text.append(" · ")
                text.append_text(hold_text(actuator, now, self.hearth.tz))
        if existing is not None:
            text.append(
                f"\n         already overridden by {existing.who}: "
                f"{override_value_text(existing.target, existing.value)}, "
                f"{duration_text(existing.expires_at - now)} left (this replaces it)",
                "magenta",
            )
        return text

    # ---- sending -------------------------------------------------------------------------------------

    @on(Input.Submitted)
    def _submitted(self) -> None:
        if not self.sent and not self.query_one("#confirm", Button).disabled:
            self._confirm()

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        request = self.build_request()
        if request is None or self.sent:
            return
        self.sent = True
        for widget in self.query("Select, RadioSet, Input"):
            widget.disabled = True
        self.query_one("#confirm").display = False
        self.query_one("#cancel", Button).label = "Close"
        result = self.query_one("#result", Static)
        result.display = True
        result.update(Text("Sending…", "italic"))
        self.query_one("#cancel", Button).focus()
        self._send(request)

    @work(exclusive=True, exit_on_error=False)
    async def _send(self, request: Request) -> None:
        response = await self.hearth.send(request)  # a transport failure comes back as a refused Response
        if response.ok and request.target is not None and request.duration_s is not None:
            self.hearth.override_durations[request.target] = request.duration_s
        css_class, text = describe_result(request, response, self.hearth.controller_now(), self.hearth.tz)
        result = self.query_one("#result", Static)
        result.set_classes(css_class)
        result.update(text)

    @on(Button.Pressed, "#cancel")
    def action_close(self) -> None:
        self.dismiss(None)
