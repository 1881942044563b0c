"""What the ATN link hands the control loop: heartbeats, leases, price and weather forecasts, taken once per tick.

It is the internal interface the MQTT link feeds; tests and the reference ATN can feed it directly. Arrival
times are on the monotonic clock (see `controller.control.authority`).
"""

from __future__ import annotations

from controller.control.authority import HeldLease
from controller.control.types import PriceForecast, WeatherForecast


class AtnInbox:
    def __init__(self) -> None:
        self._heartbeats: list[float] = []
        self._lease: HeldLease | None = None
        self.forecast: PriceForecast | None = None
        self.weather: WeatherForecast | None = None

    def heartbeat(self, at: float) -> None:
        """A heartbeat arrived at `at` (monotonic)."""
        self._heartbeats.append(at)

    def dispatch(self, lease: HeldLease) -> None:
        """A lease arrived (see `controller.control.authority.hold_lease`)."""
        self._lease = lease

    def take(self) -> tuple[list[float], HeldLease | None]:
        """Everything that arrived since the last call."""
        beats, lease = self._heartbeats, self._lease
        self._heartbeats, self._lease = [], None
        return beats, lease
