"""What the equipment timers keep across a restart: the compressor's real starts, for `max_starts_per_hour`.

A controller that crashes in a loop under systemd must not start the compressor more often than the policy
allows. The minimum off-time needs nothing stored: at start every actuator counts as having just switched
(`controller.control.tick.initial_state`), the worst case. The starts of the last hour are stored (on the
monotonic clock, with the boot id) at each start, and restored:
- on the same boot (the process restarted, the Pi did not) exactly as they were: CLOCK_MONOTONIC went on;
- after a reboot, how long the Pi was off is unknown, so the worst is assumed: the starts of the last hour before
  the last save count as having happened at boot, and hold further starts for up to an hour if they reached
  the limit.
Pure: the store keeps the JSON (`SavedStarts.to_json`), the control loop decides with `restored_starts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controller.control.interlocks import HOUR_S

STORE_KEY = "equipment_starts"


@dataclass(frozen=True, slots=True)
class SavedStarts:
    """Each actuator's real starts (monotonic, boot `boot_id`), as saved at `saved_at` (monotonic)."""

    boot_id: str
    saved_at: float
    starts: Mapping[str, tuple[float, ...]]

    def to_json(self) -> dict[str, Any]:
        return {
            "boot_id": self.boot_id,
            "saved_at": self.saved_at,
            "starts": {k: list(v) for k, v in self.starts.items()},
        }

    @classmethod
    def from_json(cls, data: object) -> SavedStarts | None:
        """The saved starts, or None for anything that is not what `to_json` wrote (nothing is then assumed)."""
        if not isinstance(data, dict):
            return None
        try:
            starts = {str(k): tuple(float(t) for t in v) for k, v in data["starts"].items()}
            return cls(str(data["boot_id"]), float(data["saved_at"]), starts)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def restored_starts(saved: SavedStarts | None, boot_id: str, monotonic: float) -> dict[str, tuple[float, ...]]:
    """The starts to count at `monotonic` on boot `boot_id`, per actuator (see the module doc)."""
    if saved is None:
        return {}
    if saved.boot_id == boot_id:
        return {name: tuple(t for t in starts if t > monotonic - HOUR_S) for name, starts in saved.starts.items()}
    return {
        name: tuple(monotonic for t in starts if t > saved.saved_at - HOUR_S) for name, starts in saved.starts.items()
    }
