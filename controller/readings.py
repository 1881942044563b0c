"""Readings: what the sampler publishes and everything else only reads.

A `Snapshot` is frozen and timestamped. A value that has not been refreshed in time is `stale`, and a consumer
asking for a usable value (`Snapshot.value`) gets None for anything not `ok`: never a silently old number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class Quality(StrEnum):
    OK = "ok"
    STALE = "stale"
    FAULT = "fault"
    OUT_OF_RANGE = "out_of_range"


@dataclass(frozen=True, slots=True)
class Reading:
    """One channel's latest sample. `value` is None when the read produced none (a fault)."""

    channel: str
    value: float | None
    unit: str
    quality: Quality
    timestamp: float
    detail: str = ""

    def with_quality(self, quality: Quality, detail: str) -> Reading:
        return Reading(self.channel, self.value, self.unit, quality, self.timestamp, detail)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every channel's latest reading at `taken_at` (UTC epoch seconds)."""

    taken_at: float
    readings: Mapping[str, Reading] = field(default_factory=lambda: MappingProxyType({}))

    def value(self, channel: str) -> float | None:
        """The channel's value if it is trustworthy (`ok`), else None."""
        reading = self.readings.get(channel)
        return reading.value if reading is not None and reading.quality is Quality.OK else None

    def quality(self, channel: str) -> Quality | None:
        reading = self.readings.get(channel)
        return reading.quality if reading is not None else None
