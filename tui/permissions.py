"""Whether a control that changes something is offered, greyed out, or absent."""

from __future__ import annotations

from typing import Protocol


class Viewer(Protocol):
    @property
    def changes_hidden(self) -> bool: ...

    @property
    def can_change(self) -> bool: ...


def change_allowed(viewer: Viewer, *, needs: bool = True) -> bool | None:
    """What `check_action` answers for an action that changes something: False hides it (a read-only viewer
    has no such controls at all), None shows it greyed out (a technician who is not connected, or has nothing
    selected), True allows it. `needs` is whatever else the action requires (a selected override...)."""
    if viewer.changes_hidden:
        return False
    return True if viewer.can_change and needs else None
