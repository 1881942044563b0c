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
    age = None if link.last_heartbeat is None else now - link.last_heartbeat
    late = link.silence_s if link.silence_s is not None else HEARTBEAT_LATE_S
    if not link.connected:
        text.append("○ down", "bold red")
    elif age is None or age >= late:  # the broker answers but the ATN does not: not "connected" in any useful sense
        text.append("◌ silent", "bold yellow")
        text.append(" (broker connected)", "dim")
    else:
        text.append("● connected", "bold green")
    if age is None:
        text.append(" · no heartbeat yet", "yellow")
    else:
        text.append(" · heartbeat ")
        text.append(f"{age_text(age)} ago", "yellow" if age >= late else "")
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
