"""Technicians' overrides: set, keep alive, release, with an audit trail.

An override forces one actuator on or off, or the comfort setpoint to a temperature, until it expires. It is
bounded (more than 0 s, at most 24 h) and persisted in the store, so it comes back after a restart. The interlocks
still apply to it: that is the control tick's business, not this module's.

Its life runs on the monotonic clock, never the wall clock: an NTP step after boot must not end a "heat pump off
for maintenance" override while someone works on the unit, nor revive an ended one. The store keeps, beside the
override, its timer on the monotonic clock of the boot that wrote it (`OverrideTimer`). After a restart:
- on the same boot (the process restarted, the Pi did not), the timer holds as it is: CLOCK_MONOTONIC went on;
- on another boot (a reboot, a power cut) how long the Pi was off is unknown, so Hearth assumes the worst for the
  person working on the unit: the override never ends earlier than it would have. It keeps the life it had left
  when its row was last written, cut to what its wall-clock expiry leaves only when the wall clock has at least
  reached the time of that write (a clock behind, as before NTP, cannot shorten it). It may thus last longer than
  set, by at most the time the controller was down, and never more than 24 h from that write.
The `created_at` and `expires_at` shown (the state message, the TUI) are re-expressed on the current wall clock
from the monotonic timer, so they always say how long is left.

Every change is an `override` event in the store saying who did what, until when and from where, so the events
table is the audit trail. A new override on a target that already has one replaces it.
"""

from __future__ import annotations

import functools
import math
import secrets
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

import structlog

from controller.clock import Clock
from controller.control.tick import COMFORT_SETPOINT
from controller.control.types import OVERRIDE_DEFAULT_S, OVERRIDE_MAX_S, Event, Override
from controller.layout.model import Layout
from controller.store.database import OverrideTimer

log = structlog.get_logger("hearth.overrides")
EXPIRED_BY = "expiry"  # `released_by` of an override that ran its course

SETPOINT_LIMITS_C = {COMFORT_SETPOINT: (10.0, 28.0)}


class OverrideStore(Protocol):
    """The part of `controller.store.Store` the book uses."""

    def save_override(self, override: Override, timer: OverrideTimer | None = None) -> None: ...

    def release_override(self, override_id: str, *, at: float, by: str) -> Override | None: ...

    def unreleased_overrides(self) -> list[tuple[Override, OverrideTimer | None]]: ...

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
        self._stored: list[tuple[Override, OverrideTimer | None]] = []
        # Every write to the store's overrides goes through this book, so it reads them back only after one (or
        # after a read failed): the tick and every state message ask for the active overrides, several times a
        # second, and a query each time was the largest cost of an idle controller in a 500-site fleet.
        self._read_needed = True

    def active(self) -> list[Override]:
        """The overrides in force now, oldest first, their times shown on the current wall clock."""
        return [override for override, _ in self._in_force()]

    def _in_force(self) -> list[tuple[Override, OverrideTimer]]:
        wall, mono = self.clock.now(), self.clock.monotonic()
        try:
            if self._read_needed:
                self._stored = self.store.unreleased_overrides()
                self._read_needed = False
        except sqlite3.Error as error:  # a failing card: judge the overrides last read, control goes on
            log.warning("overrides not read from the store; using the last read", error=str(error))
        found = []
        for stored, timer in self._stored:
            if timer is None or timer.boot_id != self.clock.boot_id:
                timer = self._restore(stored, timer, wall, mono)
            if mono >= timer.ends_mono:
                ended_at = wall - (mono - timer.ends_mono)
                self._write(functools.partial(self._release, stored.id, at=ended_at, by=EXPIRED_BY))
                continue
            found.append((_on_wall_clock(stored, timer, wall, mono), timer))
        return found

    def _restore(self, stored: Override, timer: OverrideTimer | None, wall: float, mono: float) -> OverrideTimer:
        """The timer of an override written on another boot (or before timers existed): see the module doc."""
        if timer is not None:
            left, age = timer.ends_mono - timer.saved_mono, timer.saved_mono - timer.created_mono
        else:
            left, age = stored.expires_at - stored.created_at, 0.0
        written_at = stored.expires_at - left  # the wall time of the last write, on that write's wall clock
        if wall >= written_at:
            left = min(left, stored.expires_at - wall)
        restored = OverrideTimer(self.clock.boot_id, mono - age, mono + max(0.0, left), mono)
        log.info("override restored", id=stored.id, left_s=round(left, 1), from_boot=timer.boot_id if timer else None)
        if left > 0:  # one that ended meanwhile is released by the caller instead
            framed = _on_wall_clock(stored, restored, wall, mono)
            self._write(functools.partial(self._save, framed, restored))
        return restored

    def _save(self, override: Override, timer: OverrideTimer | None = None) -> None:
        self._read_needed = True
        self.store.save_override(override, timer)

    def _release(self, override_id: str, *, at: float, by: str) -> Override | None:
        self._read_needed = True
        return self.store.release_override(override_id, at=at, by=by)

    def _write(self, write: Callable[[], object]) -> None:
        """A bookkeeping write from the control tick: a failing store must not stop control (it retries next
        time, and the override is judged the same way meanwhile)."""
        try:
            write()
        except sqlite3.Error as error:
            log.warning("override bookkeeping not stored", error=str(error))

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
        now, mono = self.clock.now(), self.clock.monotonic()
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
        for old in self.active():
            if old.target == target:
                self._release(old.id, at=now, by=who)
                self._audit(
                    now,
                    f"override {old.id} ({describe(old.target, old.value)} by {old.who}) replaced by {override.id}",
                    "replaced",
                    old,
                    who,
                    origin,
                    replaced_by=override.id,
                )
        self._save(override, OverrideTimer(self.clock.boot_id, mono, mono + duration, mono))
        because = f": {reason}" if reason else ""
        self._audit(
            now,
            f"override {override.id}: {who} set {describe(target, checked)} until {utc(override.expires_at)} "
            f"{_where(origin)}{because}",
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
        now, mono = self.clock.now(), self.clock.monotonic()
        current, timer = self._find_active(override_id)
        ends = min(mono + duration, timer.created_mono + OVERRIDE_MAX_S)
        if ends <= mono:
            raise OverrideError(
                f"override {override_id} has reached the 24 h limit from when it was set; set a new one to go on"
            )
        renewed_timer = OverrideTimer(timer.boot_id, timer.created_mono, ends, mono)
        renewed = _on_wall_clock(current, renewed_timer, now, mono)
        renewed = Override.model_validate(renewed.model_dump())  # re-check the bounds
        self._save(renewed, renewed_timer)
        expires = renewed.expires_at
        capped = " (capped: an override lasts at most 24 h from when it was set)" if ends < mono + duration else ""
        self._audit(
            now,
            f"override {override_id}: {who} kept {describe(current.target, current.value)} alive until "
            f"{utc(expires)} {_where(origin)}{capped}",
            "keepalive",
            renewed,
            who,
            origin,
        )
        return renewed

    def release(self, override_id: str, who: str, origin: str = "") -> Override:
        """End an active override now."""
        now = self.clock.now()
        current, _ = self._find_active(override_id)
        released = self._release(override_id, at=now, by=who) or current
        self._audit(
            now,
            f"override {override_id}: {who} released {describe(current.target, current.value)} {_where(origin)}",
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

    def _find_active(self, override_id: str) -> tuple[Override, OverrideTimer]:
        for override, timer in self._in_force():
            if override.id == override_id:
                return override, timer
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


def _where(origin: str) -> str:
    """'from local socket uid 0 pid 42', 'via MQTT, signed with key ...', 'from unknown'."""
    return origin if origin.startswith("via ") else f"from {origin or 'unknown'}"


def _on_wall_clock(override: Override, timer: OverrideTimer, wall: float, mono: float) -> Override:
    """`override` with its start and expiry re-expressed on the wall clock of now, from its monotonic timer."""
    return override.model_copy(
        update={"created_at": wall - (mono - timer.created_mono), "expires_at": wall + (timer.ends_mono - mono)}
    )
