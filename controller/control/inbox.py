"""What the ATN link hands the control loop: heartbeats, leases and price forecasts, taken once per tick.

It is the internal interface the MQTT link feeds; tests and the reference ATN can feed it directly.
"""

from __future__ import annotations

from controller.control.types import Lease, PriceForecast


class AtnInbox:
    def __init__(self) -> None:
        self._heartbeats: list[float] = []
        self._lease: Lease | None = None
        self.forecast: PriceForecast | None = None

    def heartbeat(self, at: float) -> None:
        self._heartbeats.append(at)

    def dispatch(self, lease: Lease) -> None:
        self._lease = lease

    def take(self) -> tuple[list[float], Lease | None]:
        """Everything that arrived since the last call."""
        beats, lease = self._heartbeats, self._lease
        self._heartbeats, self._lease = [], None
        return beats, lease
