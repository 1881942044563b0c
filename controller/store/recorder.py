"""Which readings are worth a row: the recorder. Pure (no I/O, no clock), so a table of cases can test it.

The sampler produces every channel every second; storing all of it would write ~54 MB a day to the SD card for
24 channels, nearly all of it noise around an unchanged temperature. A reading is kept when it tells something
new: the first of its channel, a change of quality, a move past the channel's deadband from the last *kept*
value (not the last seen one, so a slow drift is still caught), or when `keepalive_s` has passed since the last
kept row, so a quiet channel still proves it is alive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.readings import Quality, Reading, Snapshot

if TYPE_CHECKING:  # only for hints: a process that just writes the store need not load the layout models
    from controller.layout.channel import Channel


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    """How a channel is thinned: keep a value that moved more than `deadband` (in the channel's unit) from the
    last kept one, and keep one at least every `keepalive_s` seconds anyway."""

    deadband: float
    keepalive_s: float

    def __post_init__(self) -> None:
        if not self.deadband >= 0:  # also rejects NaN
            raise ValueError(f"deadband must be >= 0, got {self.deadband}")
        if not self.keepalive_s > 0:
            raise ValueError(f"keepalive_s must be > 0, got {self.keepalive_s}")

    @classmethod
    def of(cls, channel: Channel) -> ChannelPolicy:
        """The policy a layout channel declares."""
        return cls(deadband=channel.deadband, keepalive_s=channel.keepalive_s)


# The layout's own defaults, for a channel that reaches the store without a policy (it is still stored).
DEFAULT_POLICY = ChannelPolicy(deadband=0.1, keepalive_s=300.0)


def policies_for(channels: Mapping[str, Channel]) -> dict[str, ChannelPolicy]:
    """Every layout channel's policy, keyed by channel name: `policies_for(layout.channels)`."""
    return {name: ChannelPolicy.of(channel) for name, channel in channels.items()}


@dataclass(frozen=True, slots=True)
class PendingRow:
    """A reading the recorder kept, waiting for the next flush (it has no sequence number yet)."""

    ts: float
    channel: str
    value: float | None
    quality: Quality


class Recorder:
    """Remembers the last kept row of each channel and decides whether a new reading earns a row."""

    def __init__(self) -> None:
        self._kept: dict[str, PendingRow] = {}

    def admit(self, reading: Reading, policy: ChannelPolicy, observed_at: float) -> PendingRow | None:
        """The row to store for `reading` (seen in a snapshot taken at `observed_at`), or None to skip it.

        A stale reading carries the time of its last fresh sample, which is already stored; the row says when
        it was *seen* stale instead. NaN is kept as "no value" (SQLite would store it as NULL anyway); a reading
        with a non-finite time is skipped.
        """
        value = reading.value
        if value is not None and math.isnan(value):
            value = None
        ts = observed_at if reading.quality is Quality.STALE else reading.timestamp
        if not math.isfinite(ts):
            return None  # a row without a usable time could never be placed on the timeline nor pruned
        row = PendingRow(ts, reading.channel, value, reading.quality)
        kept = self._kept.get(reading.channel)
        if kept is not None and not _worth_a_row(kept, row, policy):
            return None
        self._kept[reading.channel] = row
        return row

    def select(self, snapshot: Snapshot, policies: Mapping[str, ChannelPolicy]) -> list[PendingRow]:
        """The rows to store from `snapshot`, in its channel order. Channels without a policy use
        `DEFAULT_POLICY`."""
        rows = []
        for name, reading in snapshot.readings.items():
            row = self.admit(reading, policies.get(name, DEFAULT_POLICY), snapshot.taken_at)
            if row is not None:
                rows.append(row)
        return rows

    def forget(self) -> None:
        """Start over: the next reading of every channel is stored."""
        self._kept.clear()


def _worth_a_row(kept: PendingRow, new: PendingRow, policy: ChannelPolicy) -> bool:
    if new.quality is not kept.quality:
        return True
    if (new.value is None) != (kept.value is None):
        return True
    if new.value is not None and kept.value is not None and abs(new.value - kept.value) > policy.deadband:
        return True
    if new.ts < kept.ts:
        # The clock stepped back (a Pi without an RTC syncing NTP late): without this the keep-alive would wait
        # until time caught up with the old row, which can be days.
        return True
    return new.ts - kept.ts >= policy.keepalive_s
