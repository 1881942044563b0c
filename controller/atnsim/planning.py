"""The reference ATN plans each site's heat-pump use with the controller's own planner.

It keeps the latest trustworthy reading of every channel from the site's telemetry, and at every lease asks the
planner (`controller.planner.local.decide`, the very function the controller's LOCAL mode runs) what the heat
pump and its store pump should do, against the ATN's own price series and the site's control parameters. So
ATN mode and LOCAL mode make the same decisions from the same readings; the ATN just knows its prices first.

Until the readings the planner needs have arrived (or when they are older than `READING_MAX_AGE_S`), it says
nothing and the ATN falls back to its price-band leases.

A re-plan (a full backward pass: about 0.2 s on a quiet machine, a second or more on a loaded one) is solved
in the call (`inline=True`), or left in `wanted` for the caller to solve elsewhere and `adopt` (the ATN does it
in worker processes, so its event loop keeps acknowledging telemetry meanwhile); until then the planner's
present rules decide, as in the controller.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.atnsim.prices import PriceSeries
from controller.control import policy
from controller.control.params import ControlParams
from controller.control.tariff import Price, local_time
from controller.control.types import PriceForecast, PricePoint
from controller.planner import local
from controller.planner.local import PlanRequest, Solved
from controller.protocol import TelemetryRow

READING_MAX_AGE_S = 600.0
PLAN_PRICES_S = 48 * 3600.0


class SitePlanner:
    """One site's readings and planner state, as the ATN sees them."""

    def __init__(self, params: ControlParams, timezone: str) -> None:
        self.params = params
        self.timezone = timezone
        self.latest: dict[str, tuple[float, float]] = {}  # channel -> (ts, value)
        self.state = local.PlannerState()
        self.rules = policy.PolicyState()
        self.reason = ""

    def observe(self, rows: Iterable[TelemetryRow]) -> None:
        """Keep the newest `ok` value of every channel (historical replays never replace a newer one)."""
        for _, ts, channel, value, quality in rows:
            if quality != "ok" or value is None:
                continue
            seen = self.latest.get(channel)
            if seen is None or ts >= seen[0]:
                self.latest[channel] = (ts, float(value))

    def _value(self, channel: str, now: float) -> float | None:
        seen = self.latest.get(channel)
        if seen is None or now - seen[0] > READING_MAX_AGE_S:
            return None
        return seen[1]

    @property
    def wanted(self) -> PlanRequest | None:
        """A re-plan asked of the caller (with `inline=False`), until adopted."""
        return self.state.wanted

    def adopt(self, solved: Solved) -> None:
        """Put a plan solved elsewhere (`local.solve_request(self.wanted, ...)`) in force."""
        self.state = local.adopt(self.state, solved)

    def actuators(self, now: float, prices: PriceSeries, *, inline: bool = True) -> dict[str, bool] | None:
        """What the plan wants of the heat pump and store pump now, or None when it cannot plan."""
        params = self.params
        sensors = params.sensors
        inputs = policy.PolicyInputs(
            house_c=self._value(sensors.house, now),
            outdoor_c=self._value(sensors.outdoor, now),
            tank_top_c=self._value(sensors.tank_top, now),
            tank_mid_c=self._value(sensors.tank_mid, now),
            tank_bottom_c=self._value(sensors.tank_bottom, now),
            price=Price.NORMAL,
            price_reason="ATN prices",
            occupied=policy.occupied_now(params, local_time(now, self.timezone).time()),
        )
        if local.degraded(inputs, params) is not None:
            return None
        slots = prices.slots(now - 3600.0, now + PLAN_PRICES_S)
        forecast = PriceForecast(
            received_at=now, points=tuple(PricePoint(start=s.start, end=s.end, price=s.price) for s in slots)
        )
        self.state, decision = local.decide(
            self.state, self.rules, inputs, params, now, self.timezone, forecast, inline=inline
        )
        self.rules = decision.state
        roles = params.actuators
        self.reason = decision.commands[roles.heat_pump].reason
        return {
            roles.heat_pump: decision.commands[roles.heat_pump].on,
            roles.store_pump: decision.commands[roles.store_pump].on,
        }
