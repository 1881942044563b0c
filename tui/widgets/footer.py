"""The key bar, without Textual's footer leak.

Textual 8's Footer rebuilds its key widgets on every binding refresh, and each old widget stays registered in
the footer's `compact` watcher list, so it is never freed (Textualize/textual#6666). Over a morning of overrides,
or a night of reconnect countdowns, that grew the TUI by hundreds of MB and made full garbage collections take
hundreds of milliseconds. After each rebuild, the watchers of detached widgets are dropped.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer


class HearthFooter(Footer):
    async def recompose(self) -> None:
        await super().recompose()
        watchers: dict[str, list[tuple[Any, Any]]] = getattr(self, "__watchers", {})
        compact = watchers.get("compact")
        if compact is not None:
            compact[:] = [(node, callback) for node, callback in compact if getattr(node, "is_attached", True)]
