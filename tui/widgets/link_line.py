"""The ATN link in one line: connected, heartbeat age, lease time left, telemetry backlog."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from controller.protocol import LinkState
from tui.format import age_text, duration_text

HEARTBEAT_LATE_S = 30.0


def link_text(link: LinkState | None, now: float, waiting: bool = False) -> Text:
    if waiting:
        return Text.assemble(("ATN ", "bold"), ("—", "dim"))
    if link is None:
        return Text.assemble(("ATN ", "bold"), ("no link configured: local policy only", "dim"))
    text = Text("ATN ", "bold")
    text.append("● connected" if link.connected else "○ down", "bold green" if link.connected else "bold red")
    if link.last_heartbeat is None:
        text.append(" · no heartbeat yet", "yellow")
    else:
        age = now - link.last_heartbeat
        text.append(" · heartbeat ")
        text.append(f"{age_text(age)} ago", "yellow" if age > HEARTBEAT_LATE_S else "")
    if link.lease_id is None or link.lease_valid_until is None:
        text.append(" · no lease", "dim")
    else:
        left = link.lease_valid_until - now
        text.append(f" · lease {link.lease_id} ")
        if left > 0:
            text.append(f"{duration_text(left)} left", "green")
        else:
            text.append(f"expired {age_text(-left)} ago", "yellow")
    text.append(" · backlog ")
    text.append(f"{link.backlog}", "yellow" if link.backlog else "")
    return text


class LinkLine(Static):
    def show(self, link: LinkState | None, now: float, waiting: bool = False) -> None:
        text = link_text(link, now, waiting)
        if self.content != text:
            self.update(text)
