"""Layout: the controller's hardware layout (buses, devices, channels, actuators, control) as a tree."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from controller.protocol import Request
from tui.screens.base import MQTT_HINT, HearthScreen
from tui.transport import new_request_id

EXPANDED = ("site", "buses", "devices", "channels", "actuators")


def add_branch(node: TreeNode[None], value: Any) -> None:
    """Dicts and lists become branches; scalars become `key: value` leaves."""
    items: list[tuple[str, Any]]
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
    else:
        items = [(f"[{i}]", v) for i, v in enumerate(value)]
    for key, child in items:
        if isinstance(child, dict | list) and child:
            add_branch(node.add(Text(key, "bold")), child)
        else:
            node.add_leaf(Text.assemble((key, "bold"), ": ", (_scalar(child), "cyan")))


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "—"
    if value == [] or value == {}:
        return "none"
    return str(value)


class LayoutScreen(HearthScreen):
    MODE = "layout"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "reload", "Reload")]

    def __init__(self) -> None:
        super().__init__()
        self._loaded = False

    def compose_body(self) -> ComposeResult:
        yield Static(id="layout-status")
        yield Tree[None]("layout", id="layout-tree")

    def refresh_view(self) -> None:
        super().refresh_view()
        if not self._loaded:
            self._loaded = True
            self._fetch()

    def action_reload(self) -> None:
        self._fetch()

    @work(exclusive=True, exit_on_error=False)
    async def _fetch(self) -> None:
        status = self.query_one("#layout-status", Static)
        status.update(Text(" asking the controller for its layout…", "italic"))
        answer = await self.hearth.send(Request(id=new_request_id(), op="layout"))
        tree = self.query_one(Tree)
        tree.clear()
        if not answer.ok or answer.layout is None:
            self._loaded = False  # try again next time the screen shows
            hint = MQTT_HINT if "MQTT" in (answer.error or "") else ""
            status.update(
                Text.assemble(
                    " ", (f"Layout unavailable: {answer.error or 'empty answer'}", "bold yellow"), (hint, "dim")
                )
            )
            return
        layout = answer.layout
        site = layout.get("site", {})
        title = site.get("name") or site.get("id") or "layout" if isinstance(site, dict) else "layout"
        tree.root.set_label(Text(str(title), "bold"))
        add_branch(tree.root, layout)
        tree.root.expand()
        for child in tree.root.children:
            if str(child.label) in EXPANDED:
                child.expand()
        status.update(Text(" r reloads it; enter or space folds a branch.", "dim"))
        tree.focus()
