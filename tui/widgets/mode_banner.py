"""The mode, colour-coded, with the controller's reason: the first thing anyone reads."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from controller.protocol import State
from tui.format import MODE_STYLES


class ModeBanner(Static):
    """` LOCAL  ATN silent for 30 s: local policy takes over` on the mode's colour."""

    def show(self, state: State | None, stale_note: str) -> None:
        for mode, css_class in MODE_STYLES.items():
            self.set_class(state is not None and state.mode == mode, css_class)
        self.set_class(bool(stale_note), "-stale")
        if state is None:  # say why, in full: the header line may be cut short on a narrow terminal
            self.update(
                Text.assemble((" NO DATA ", "bold reverse"), "  ", (stale_note or "waiting for the controller…"))
            )
            return
        text = Text.assemble((f" {state.mode} ", "bold reverse"), "  ", (state.reason, "bold"))
        if stale_note:
            text.append(f"  ({stale_note})", "italic")
        self.update(text)
