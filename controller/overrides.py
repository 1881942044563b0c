"""Technicians' overrides: set, keep alive, release, with an audit trail.

An override forces one actuator on or off, or the comfort setpoint to a temperature, until it expires. It is
bounded (more than 0 s, at most 24 h) and persisted in the store, so it comes back after a restart and never
outlives its expiry (`active()` filters by time). The interlocks still apply to it: that is the control tick's
business, not this module's.

Every change is an `override` event in the store saying who did what, until when and from where, so the events
table is the audit trail. A new override on a target that already has one replaces it.
"""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime
from typing import Protocol

from controller.clock import Clock
from controller.control.tick import COMFORT_SETPOINT
from controller.control.types import OVERRIDE_DEFAULT_S, OVERRIDE_MAX_S, Event, Override
from controller.layout.model import Layout

SETPOINT_LIMITS_C = {COMFORT_SETPOINT: (10.0, 28.0)}


class OverrideStore(Protocol):
    """The part of `controller.store.Store` the book uses."""

    def save_override(self, override: Override) -> None: ...

    def release_override(self, override_id: str, *, at: float, by: str) -> Override | None: ...

    def active_overrides(self, now: float) -> list[Override]: ...

    def add_event(self, event: Event) -> int: ...


class OverrideError(Exception):
    """An override request that cannot be carried out; the message says what and why, in a sentence."""


def utc(ts: float) -> str:
    """A timestamp as a short UTC time for messages: 2026-01-01T12:30:00Z."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(target: str, value: bool | float) -> str:
    """'heat-pump on', 'setpoint:comfort 21.5 °C'."""
    if isinstance(value, bool):
        return f"{target} {'on' if value else 'off'}"
    return f"{target} {value:g} °C"


class OverrideBook:
    """The overrides of one controller, kept in its store."""

    def __init__(self, store: OverrideStore, layout: Layout, clock: Clock) -> None:
        self.store = store
        self.layout = layout
        self.clock = clock

    def active(self, now: float | None = None) -> list[Override]:
        """The overrides in force at `now` (default: the clock's now), oldest first."""
        return self.store.active_overrides(self.clock.now() if now is None else now)

    def set(
        self,
        target: str,
        value: bool | float | None,
        duration_s: float | None,
        who: str,
        origin: str,
        reason: str = "",
    ) -> Override:
        """Force `target` to `value` for `duration_s` (default 30 min, at most 24 h), replacing any override
        the target already has. Raises `OverrideError` when the target, value or duration is not acceptable."""
        checked = self._check_value(target, value)
        duration = self._check_duration(duration_s)
        now = self.clock.now()
        override = Override(
            id=f"ov-{secrets.token_hex(4)}",
            target=target,
            value=checked,
            created_at=now,
            expires_at=now + duration,
            who=who,
            origin=origin,
            reason=reason,
        )
        for old in self.active(now):
            if old.target == target:
                self.store.release_override(old.id, at=now, by=who)
                self._audit(
                    now,
                    f"override {old.id} ({describe(old.target, old.value)} by {old.who}) replaced by {override.id}",
                    "replaced",
                    old,
                    who,
                    origin,
                    replaced_by=override.id,
                )
        self.store.save_override(override)
        because = f": {reason}" if reason else ""
        self._audit(
            now,
            f"override {override.id}: {who} set {describe(target, checked)} until {utc(override.expires_at)} "
            f"from {origin}{because}",
            "set",
            override,
            who,
            origin,
        )
        return override

    def keepalive(self, override_id: str, duration_s: float | None, who: str, origin: str = "") -> Override:
        """Set an active override's expiry to now + `duration_s` (default 30 min).

        An override lives at most 24 h from when it was set (the model's bound, and the design's "max 24 h"):
        a keep-alive past that is cut to it, and the event says so. Set a new override to go on longer.
        """
        duration = self._check_duration(duration_s)
        now = self.clock.now()
        current = self._find_active(override_id, now)
        limit = current.created_at + OVERRIDE_MAX_S
        expires = min(now + duration, limit)
        if expires <= now:
            raise OverrideError(
                f"override {override_id} has reached the 24 h limit from when it was set; set a new one to go on"
            )
        renewed = current.model_copy(update={"expires_at": expires})
        renewed = Override.model_validate(renewed.model_dump())  # re-check the bounds
        self.store.save_override(renewed)
        capped = " (capped: an override lasts at most 24 h from when it was set)" if expires < now + duration else ""
        self._audit(
            now,
            f"override {override_id}: {who} kept {describe(current.target, current.value)} alive until "
            f"{utc(expires)} from {origin or 'unknown'}{capped}",
            "keepalive",
            renewed,
            who,
            origin,
        )
        return renewed

    def release(self, override_id: str, who: str, origin: str = "") -> Override:
        """End an active override now."""
        now = self.clock.now()
        current = self._find_active(override_id, now)
        released = self.store.release_override(override_id, at=now, by=who) or current
        self._audit(
            now,
            f"override {override_id}: {who} released {describe(current.target, current.value)} "
            f"from {origin or 'unknown'}",
            "release",
            released,
            who,
            origin,
        )
        return released

    # ---- checks ---------------------------------------------------------------------------------------------

    def _check_value(self, target: str, value: bool | float | None) -> bool | float:
        if target in self.layout.actuators:
            if not isinstance(value, bool):
                raise OverrideError(f"actuator {target} takes true (on) or false (off) as its value, not {value!r}")
            return value
        if target in SETPOINT_LIMITS_C:
            low, high = SETPOINT_LIMITS_C[target]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise OverrideError(
                    f"{target} takes a temperature in °C ({low:g}..{high:g}) as its value, not {value!r}"
                )
            if not (math.isfinite(value) and low <= value <= high):
                raise OverrideError(f"{target} = {value:g} °C is outside {low:g}..{high:g} °C")
            return float(value)
        known = ", ".join([*self.layout.actuators, *SETPOINT_LIMITS_C])
        raise OverrideError(f"unknown override target {target!r}: this site can override {known}")

    @staticmethod
    def _check_duration(duration_s: float | None) -> float:
        duration = float(OVERRIDE_DEFAULT_S) if duration_s is None else float(duration_s)
        if not math.isfinite(duration) or duration <= 0:
            raise OverrideError(f"an override needs a duration of more than 0 s; got {duration_s!r}")
        if duration > OVERRIDE_MAX_S:
            raise OverrideError(f"an override lasts at most 24 h ({OVERRIDE_MAX_S} s); {duration:g} s was asked for")
        return duration

    def _find_active(self, override_id: str, now: float) -> Override:
        for override in self.active(now):
            if override.id == override_id:
                return override
        raise OverrideError(f"no active override {override_id!r}: it expired, was released, or never existed")

    def _audit(
        self, now: float, message: str, action: str, override: Override, who: str, origin: str, **extra: str
    ) -> None:
        self.store.add_event(
            Event(
                ts=now,
                kind="override",
                message=message,
                data={
                    "action": action,
                    "id": override.id,
                    "target": override.target,
                    "value": override.value,
                    "expires_at": override.expires_at,
                    "who": who,
                    "origin": origin,
                    "reason": override.reason,
                    **extra,
                },
            )
        )
