"""Alarms: what a person must look at, derived from the controller's state each time it is shown.

- `relay`: a relay that did not follow its command (the control loop's `alarm`; it also forces SAFE mode).
- `channel:<name>`: a channel whose reading has been `fault` for more than `CHANNEL_FAULT_S` (a blip is not an
  alarm; a sensor that stays open or shorted is).
- `store`: the store cannot write (a full or failing SD card); control goes on, writes wait in memory.

Each alarm has a stable id and the time it began (`since`). A technician acknowledges an alarm to say someone is
on it; the acknowledgement is dropped when the alarm clears, so the same fault coming back is a new alarm.
Raising, clearing and acknowledging are `alarm` events in the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog

from controller import protocol
from controller.control.types import Event
from controller.readings import Quality, Snapshot

log = structlog.get_logger("hearth.alarms")
CHANNEL_FAULT_S = 10.0
RELAY = "relay"
STORE = "store"


class EventSink(Protocol):
    def add_event(self, event: Event) -> int: ...


class AlarmError(Exception):
    """An acknowledgement that cannot be recorded; the message says why."""


@dataclass
class _Tracked:
    since: float  # wall time, shown
    began: float  # the same moment on the monotonic clock, for the grace period
    message: str
    raised: bool = False
    acknowledged_by: str | None = None


class AlarmBoard:
    """The current alarms, with when each began and who acknowledged it."""

    def __init__(self, sink: EventSink | None = None, channel_fault_s: float = CHANNEL_FAULT_S) -> None:
        self.sink = sink
        self.channel_fault_s = channel_fault_s
        self._tracked: dict[str, _Tracked] = {}

    def current(
        self,
        now: float,
        snapshot: Snapshot,
        relay_alarm: str | None,
        monotonic: float | None = None,
        store_alarm: str | None = None,
    ) -> list[protocol.Alarm]:
        """The alarms standing at `now`, oldest first; also notes faults that began since the last call.

        The grace before a channel fault is an alarm runs on `monotonic` (default: `now`), so an NTP step neither
        raises every fault at once nor delays one."""
        mono = now if monotonic is None else monotonic
        seen: dict[str, str] = {}
        if relay_alarm:
            seen[RELAY] = f"relay alarm: {relay_alarm}"
        if store_alarm:
            seen[STORE] = store_alarm
        for name, reading in snapshot.readings.items():
            if reading.quality is Quality.FAULT:
                seen[f"channel:{name}"] = f"{name}: sensor fault: {reading.detail or 'no reading'}"
        for alarm_id in list(self._tracked):
            if alarm_id not in seen:
                self._clear(alarm_id, now)
        for alarm_id, message in seen.items():
            tracked = self._tracked.get(alarm_id)
            if tracked is None:
                tracked = self._tracked[alarm_id] = _Tracked(since=now, began=mono, message=message)
            tracked.message = message
            grace = 0.0 if alarm_id in (RELAY, STORE) else self.channel_fault_s
            if not tracked.raised and mono - tracked.began >= grace:
                tracked.raised = True
                self._event(now, f"alarm {alarm_id}: {message}", alarm_id, "raised", since=tracked.since)
                log.warning("alarm", id=alarm_id, message=message)
        return [
            protocol.Alarm(id=alarm_id, message=t.message, since=t.since, acknowledged_by=t.acknowledged_by)
            for alarm_id, t in sorted(self._tracked.items(), key=lambda item: (item[1].since, item[0]))
            if t.raised
        ]

    def acknowledge(self, alarm_id: str, who: str, now: float, origin: str = "") -> protocol.Alarm:
        """Record that `who` has seen alarm `alarm_id`. Raises `AlarmError` when no such alarm stands."""
        tracked = self._tracked.get(alarm_id)
        if tracked is None or not tracked.raised:
            standing = ", ".join(a for a, t in self._tracked.items() if t.raised) or "none"
            raise AlarmError(f"no current alarm {alarm_id!r} (it cleared, or never was); current alarms: {standing}")
        tracked.acknowledged_by = who
        self._event(
            now,
            f"alarm {alarm_id} acknowledged by {who}" + (f" from {origin}" if origin else "") + f": {tracked.message}",
            alarm_id,
            "acknowledged",
            who=who,
            origin=origin,
        )
        return protocol.Alarm(id=alarm_id, message=tracked.message, since=tracked.since, acknowledged_by=who)

    def _clear(self, alarm_id: str, now: float) -> None:
        tracked = self._tracked.pop(alarm_id)
        if tracked.raised:
            self._event(now, f"alarm {alarm_id} cleared (was: {tracked.message})", alarm_id, "cleared")
            log.info("alarm cleared", id=alarm_id)

    def _event(self, now: float, message: str, alarm_id: str, action: str, **data: object) -> None:
        if self.sink is not None:
            self.sink.add_event(
                Event(ts=now, kind="alarm", message=message, data={"id": alarm_id, "action": action, **data})
            )
