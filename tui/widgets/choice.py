"""A radio button whose state shows in its shape as well as its colour."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import RadioButton

CHOSEN, NOT_CHOSEN = "●", "○"


class Choice(RadioButton):
    """`●` when chosen, `○` when not: Textual's own button differs only by colour, which a monochrome terminal
    (or a colour-blind technician) cannot see."""

    def render(self) -> Content:
        self.BUTTON_INNER = CHOSEN if self.value else NOT_CHOSEN
        return super().render()
