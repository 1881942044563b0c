"""Values the control core decides with and records: overrides, leases, price forecasts, commands, events.

They are pydantic models because they cross boundaries (the store's JSON columns now, MQTT and the local
socket later) and must validate the same way everywhere. All times are UTC epoch seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

OVERRIDE_DEFAULT_S = 30 * 60
OVERRIDE_MAX_S = 24 * 3600


def clock_text(ts: float) -> str:
    """A time for a reason a person reads: 14:05:09Z (UTC, so it means the same on every screen)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%SZ")


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # finite numbers only


class Source(StrEnum):
    """Who decided an actuator's state, highest authority first."""

    INTERLOCK = "interlock"
    OVERRIDE = "override"
    ATN = "atn"
    LOCAL = "local"
    SAFE = "safe"


class Mode(StrEnum):
    ATN = "ATN"
    LOCAL = "LOCAL"
    OVERRIDE = "OVERRIDE"
    SAFE = "SAFE"


class Override(Frozen):
    """A technician's override of one actuator (on/off) or one setpoint (a number), until `expires_at`."""

    id: str = Field(min_length=1, max_length=64)
    target: str = Field(description="an actuator name, or setpoint:<name>")
    value: bool | float
    created_at: float
    expires_at: float
    who: str = Field(min_length=1, description="user name (from the peer's credentials)")
    origin: str = Field(default="", description="where it came from: local socket uid/pid, MQTT client id")
    reason: str = ""
    released_at: float | None = None
    released_by: str | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Override:
        duration = self.expires_at - self.created_at
        if not 0 < duration <= OVERRIDE_MAX_S:
            raise ValueError(f"an override lasts more than 0 s and at most 24 h; this one lasts {duration:.0f} s")
        return self

    def active(self, now: float) -> bool:
        return self.released_at is None and self.created_at <= now < self.expires_at


class Lease(Frozen):
    """An ATN dispatch: what the ATN wants the actuators and setpoints to be, valid until `valid_until`."""

    id: str = Field(min_length=1, max_length=64)
    issued_at: float
    valid_until: float
    received_at: float
    actuators: dict[str, bool] = Field(default_factory=dict)
    setpoints: dict[str, float] = Field(default_factory=dict)

    def live(self, now: float) -> bool:
        return self.issued_at <= now < self.valid_until


class PricePoint(Frozen):
    start: float
    end: float
    price: float = Field(description="currency per kWh")


class PriceForecast(Frozen):
    """Prices the ATN sent, cached so the local policy can use them (up to 48 h old)."""

    received_at: float
    points: tuple[PricePoint, ...]


class WeatherPoint(Frozen):
    start: float
    end: float
    outdoor_c: float = Field(description="outdoor air temperature over [start, end), °C")


class WeatherForecast(Frozen):
    """A weather forecast the ATN sent (`atn/weather`); the planner uses it while it is fresh."""

    received_at: float
    issued_at: float
    points: tuple[WeatherPoint, ...]


class Command(Frozen):
    """One actuator's wanted state, who wants it and why."""

    actuator: str
    on: bool
    source: Source
    reason: str


class Event(Frozen):
    """Something that happened, for the store, the logs and (later) the links and the TUI."""

    ts: float
    kind: str
    message: str
    data: dict[str, Any] = Field(default_factory=dict)
