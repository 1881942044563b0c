"""What every Hearth screen shares: the status line, the navigation line, the footer, and the update hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.screen import Screen

from controller.protocol import EventMsg
from tui.format import age_text
from tui.widgets.footer import HearthFooter
from tui.widgets.nav_bar import NavBar
from tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from tui.app import HearthApp
    from tui.model import HearthModel

MQTT_HINT = " (the controller's local socket has it: run `hearth tui` on the controller)"
STALE_AFTER_S = 65.0
"""A State older than this is not live (MQTT monitors get one at least every 30 s; the socket every second)."""


class HearthScreen(Screen[None]):
    """A view of the model. The app calls `show_state` (at most 4 Hz), `show_events`, `show_status` and `tick`
    (once a second) on the screens of the current stack only; a screen brought back catches up in
    `refresh_view`, so hidden screens cost nothing."""

    MODE: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self.ready = False
        """set once mounted: before that the app's updates would reach tables without their columns"""

    @property
    def hearth(self) -> HearthApp:
        return cast("HearthApp", self.app)

    @property
    def model(self) -> HearthModel:
        return self.hearth.model

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield NavBar(self.MODE)
        yield from self.compose_body()
        yield HearthFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        """Subclasses set up their widgets, then call this last."""
        self.ready = True
        self.refresh_view()

    def on_screen_resume(self) -> None:
        if self.ready:
            self.refresh_view()

    def refresh_view(self) -> None:
        """Everything from the model (on mount and when the screen comes back)."""
        self.show_status()
        self.show_state()

    # ---- hooks the app calls ---------------------------------------------------------------------------

    def show_state(self) -> None:
        """A new State is in the model."""
        self._show_freshness()

    def show_events(self, events: list[EventMsg]) -> None:
        """Events were appended to the model (a batch: bursts arrive together)."""

    def show_status(self) -> None:
        app = self.hearth
        self.query_one(StatusBar).show(app.transport.description, self.model.status, app.monitor)
        # Bindings depend only on these; a reconnect countdown changes the status every second and must not
        # rebuild the footer every second.
        status = self.model.status
        key = (status.phase, status.read_only, status.role, app.can_change, app.changes_hidden)
        if key != getattr(self, "_bindings_key", None):
            self._bindings_key = key
            self.refresh_bindings()

    def tick(self) -> None:
        """A second passed: move countdowns and ages."""
        self._show_freshness()

    def _show_freshness(self) -> None:
        # The app's once-a-second tick can reach a screen that is being torn down (the app quitting, a screen
        # switch) after its widgets have gone: then there is nothing to show.
        bar = next(iter(self.query(NavBar)), None)
        if bar is None:
            return
        state = self.model.state
        if state is None:
            bar.show("", "")
            return
        age = self.model.state_age(self.hearth.now()) or 0.0
        freshness = "live" if age < STALE_AFTER_S else f"last update {age_text(age)} ago"
        if self.model.status.phase != "connected":
            freshness = f"not live: {age_text(age)} old"
        elif self.model.status.controller_online is False:  # it said so, or it has gone quiet (MQTT)
            freshness = f"not live: controller offline, last update {age_text(age)} ago"
        bar.show(state.site, freshness)

    def is_stale(self) -> bool:
        state = self.model.state
        status = self.model.status
        if state is None or status.phase != "connected" or status.controller_online is False:
            return True
        return (self.model.state_age(self.hearth.now()) or 0.0) >= STALE_AFTER_S
