"""Who may hold a connection to the local socket, so that no local user can lock a technician out.

The role is known at accept time (SO_PEERCRED), so capacity is split by it:

- monitors (everyone who is not root or in the technician group) share `monitors_total` connections, and one uid
  holds at most `monitors_per_uid` of them: one user's flood leaves room for other monitors;
- technicians have their own `technicians_total`, which no monitor can take;
- a connection that sends nothing and has not subscribed is dropped after `idle_s`, and a request line that has
  started must end within `line_deadline_s` (slowloris): neither slow nor silent clients keep a slot for long.

Pure bookkeeping: the server asks `admit` when a peer connects and calls `leave` when it goes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from controller.protocol import Role


@dataclass(frozen=True, slots=True)
class SocketLimits:
    monitors_total: int = 48
    monitors_per_uid: int = 8
    technicians_total: int = 16
    idle_s: float = 60.0
    line_deadline_s: float = 5.0


class Admission:
    """Connections held, by role and by uid."""

    def __init__(self, limits: SocketLimits | None = None) -> None:
        self.limits = limits or SocketLimits()
        self._by_role: Counter[Role] = Counter()
        self._monitors_by_uid: Counter[int] = Counter()
        self.refused = 0

    def admit(self, role: Role, uid: int) -> str | None:
        """Take a slot for a new connection, or say (in a sentence for the client) why there is none."""
        limits = self.limits
        if role == "technician":
            if self._by_role["technician"] >= limits.technicians_total:
                return self._refuse(f"too many technician connections (at most {limits.technicians_total})")
        elif self._monitors_by_uid[uid] >= limits.monitors_per_uid:
            return self._refuse(f"too many connections from uid {uid} (at most {limits.monitors_per_uid} per user)")
        elif self._by_role["monitor"] >= limits.monitors_total:
            return self._refuse(f"too many monitor connections (at most {limits.monitors_total})")
        self._by_role[role] += 1
        if role == "monitor":
            self._monitors_by_uid[uid] += 1
        return None

    def leave(self, role: Role, uid: int) -> None:
        self._by_role[role] -= 1
        if role == "monitor":
            self._monitors_by_uid[uid] -= 1
            if self._monitors_by_uid[uid] <= 0:
                del self._monitors_by_uid[uid]

    def held(self, role: Role) -> int:
        return self._by_role[role]

    def _refuse(self, reason: str) -> str:
        self.refused += 1
        return reason
