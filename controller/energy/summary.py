"""The energy summary a controller publishes for monitors over MQTT (`protocol.EnergySummary` on `energy`): the
same daily totals and month/season rows the local socket's `energy` answers with, and when to publish it again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from controller import protocol
from controller.energy.book import recent_days
from controller.energy.days import local_day
from controller.energy.rollup import totals_rows
from controller.layout.model import Layout
from controller.store.database import Store

SUMMARY_DAYS = 30
SUMMARY_EVERY_S = 900.0  # today's figures move on; a quarter of an hour keeps them fresh at a few kB a time


def energy_summary(
    store: Store, layout: Layout, now: float, days: int = SUMMARY_DAYS, every_s: float = SUMMARY_EVERY_S
) -> protocol.EnergySummary:
    """The last `days` local days up to today so far (a running controller writes `store`), with their rollups."""
    recent = recent_days(store, layout, now, days, live=True)
    return protocol.EnergySummary(
        site=layout.site.id, ts=now, every_s=every_s, days=[d.row() for d in recent], totals=totals_rows(recent)
    )


@dataclass
class SummarySchedule:
    """When the summary is due: never sent on this connection, the local day changed since the last one, `every_s`
    passed (monotonic), or someone asked (a state request)."""

    zone: ZoneInfo
    every_s: float = SUMMARY_EVERY_S
    sent_mono: float | None = None
    sent_day: date | None = None
    asked: bool = False

    def due(self, wall: float, mono: float) -> bool:
        if self.sent_mono is None or self.asked:
            return True
        return local_day(wall, self.zone) != self.sent_day or mono - self.sent_mono >= self.every_s

    def sent(self, wall: float, mono: float) -> None:
        self.sent_mono, self.sent_day, self.asked = mono, local_day(wall, self.zone), False

    def connected(self) -> None:
        """A new connection: send at once (a retained message may be gone, e.g. on another RabbitMQ node)."""
        self.sent_mono = None
