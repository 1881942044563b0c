"""Plan (`p`): the next 24 h of planned heat-pump use against price, and the tank's planned temperature."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from tui.format import clock_text
from tui.screens.base import HearthScreen
from tui.widgets.plan_chart import PlanChart, plan_table


class PlanScreen(HearthScreen):
    MODE = "plan"

    def __init__(self) -> None:
        super().__init__()
        self._drawn: tuple[float, float, int] | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(id="plan-note")
        with Horizontal(id="plan-body"):
            yield PlanChart(id="plan-chart")
            with VerticalScroll(id="plan-table-box"):
                yield Static(id="plan-table")

    def show_state(self) -> None:
        super().show_state()
        state = self.model.state
        plan = state.plan if state is not None else None
        note = self.query_one("#plan-note", Static)
        if plan is None:
            if self._drawn != (0.0, 0.0, 0):
                self._drawn = (0.0, 0.0, 0)
                reason = state.reason if state is not None else "no state yet"
                note.update(Text(f"  No plan: the present rules decide ({reason}).", "italic"))
                self.query_one("#plan-table", Static).update("")
                self.query_one(PlanChart).draw_empty()
            return
        first = plan.hours[0].start if plan.hours else 0.0
        key = (plan.made_at, first, len(plan.hours))
        if key == self._drawn:
            return
        self._drawn = key
        tz = self.hearth.tz
        made = clock_text(plan.made_at, tz, self.hearth.now())
        note.update(Text.assemble("  Plan made ", (made, "bold"), f": {plan.note}" if plan.note else ""))
        self.query_one("#plan-table", Static).update(plan_table(plan, tz))
        self.query_one(PlanChart).draw(plan, tz)
