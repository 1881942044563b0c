"""The ATN link in one line: connected, heartbeat age, lease time left, telemetry backlog."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from controller.protocol import LinkState
from tui.format import age_text, duration_text

HEARTBEAT_LATE_S = 30.0


def link_text(link: LinkState | None, now: float, waiting: bool = False, as_of: float | None = None) -> Text:
    """`as_of`: when the state carrying `link` was made. The heartbeat's age is the site's own, as of then: over
    MQTT a state comes every 30 s, and counting on from it here read "silent" for a healthy link every time (as
    it did in the fleet view); how old the state is, the stale/quiet note says. The lease counts down to now."""
    if waiting:
        return Text.assemble(("ATN ", "bold"), ("—", "dim"))
    if link is None:
        return Text.assemble(("ATN ", "bold"), ("no link configured: local policy only", "dim"))
    text = Text("ATN ", "bold")
    heard_by = now if as_of is None else min(now, as_of)
    age = None if link.last_heartbeat is None else max(0.0, heard_by - link.last_heartbeat)
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
    def show(self, link: LinkState | None, now: float, waiting: bool = False, as_of: float | None = None) -> None:
        text = link_text(link, now, waiting, as_of)
        if self.content != text:
            self.update(text)
