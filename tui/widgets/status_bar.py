"""The top line: which controller, through what, and whether the link is alive."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.transport import ConnectionStatus


def status_text(description: str, status: ConnectionStatus, read_only: bool) -> Text:
    """`local socket /run/hearth/hearth.sock — connected as alice (technician)`, and the other cases."""
    text = Text.assemble(("Hearth ", "bold"), (description, ""), " — ")
    if status.phase == "connected":
        if status.controller_online is False:
            text.append("controller offline", "bold red")
            text.append(f" ({status.detail})" if status.detail else "")
            if read_only:
                text.append(", read-only", "bold yellow")
        else:
            text.append("connected", "bold green")
            if read_only:  # who a monitor is matters less than what it cannot do: keep the line short
                text.append(", ")
                text.append("read-only (monitor)", "bold yellow")
            elif status.user:
                text.append(f" as {status.user}" + (f" ({status.role})" if status.role else ""))
    elif status.phase == "reconnecting":
        retry = f"reconnecting in {status.retry_in_s} s…" if status.retry_in_s else "reconnecting…"
        text.append(retry, "bold yellow")
        if status.detail:
            text.append(f" ({status.detail})", "dim")
    elif status.phase == "connecting":
        text.append("connecting…", "yellow")
        if status.detail:  # why the last try failed: it stays in sight while the next one goes on
            text.append(f" ({status.detail})", "dim")
    else:
        text.append("stopped", "bold red")
        if status.detail:
            text.append(f": {status.detail}")
    return text


class StatusBar(Static):
    """Transport and connection state, docked at the top of every screen."""

    def show(self, description: str, status: ConnectionStatus, read_only: bool) -> None:
        self.set_class(status.phase != "connected" or status.controller_online is False, "-down")
        self.update(status_text(description, status, read_only))
