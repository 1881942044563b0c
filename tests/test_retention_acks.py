"""Retention never drops what the ATN has not acknowledged (finding 5 of issue 8): readings dated by a wall clock
that was wrong (1970 before NTP), or judged old by a clock stepped a year ahead, stay until the ATN has them; only
the size cap may drop unacknowledged readings, and then its event names them."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from controller.control.types import Event
from controller.readings import Quality, Reading, Snapshot
from controller.store import ChannelPolicy, Store

T0 = 1_767_225_600.0
DAY = 86_400.0
YEAR = 365 * DAY
NAMES = [f"ch-{i}" for i in range(4)]
POLICIES = {name: ChannelPolicy(deadband=0.0, keepalive_s=1.0) for name in NAMES}


def write(store: Store, count: int, start: float, step: float = 60.0) -> None:
    for i in range(count):
        ts = start + i * step
        readings = {n: Reading(n, float(i) + k / 10, "degC", Quality.OK, ts) for k, n in enumerate(NAMES)}
        store.record(Snapshot(ts, MappingProxyType(readings)), POLICIES)
        store.flush()


def seqs(store: Store) -> list[int]:
    return [row[0] for row in store.telemetry_after(0, 1_000_000)]


@pytest.mark.parametrize(
    ("dated", "pruned_at"),
    [
        (60.0, T0),  # stamped before NTP (1970), pruned after the step to today
        (T0, T0 + YEAR),  # a bad step a year ahead
        (T0 - 40 * DAY, T0),  # simply old, but the ATN has been away
    ],
)
def test_retention_keeps_unacknowledged_readings_whatever_the_clock(
    tmp_path: Path, dated: float, pruned_at: float
) -> None:
    with Store.open(tmp_path / "hearth.sqlite", retention_days=30) as store:
        write(store, 50, start=dated)
        assert store.prune(pruned_at) == 0
        assert len(seqs(store)) == 200
        store.ack_upto(100)  # the ATN has the first 100: those may go now
        store.prune(pruned_at)
        assert seqs(store) == list(range(101, 201))
        store.ack_upto(200)
        store.prune(pruned_at)
        assert seqs(store) == []


def test_without_an_atn_retention_goes_by_age(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.sqlite", retention_days=30, keep_unacknowledged=False) as store:
        write(store, 50, start=T0 - 40 * DAY)
        write(store, 5, start=T0)
        store.prune(T0 + 60)
        assert seqs(store) == list(range(201, 221))


def test_the_size_cap_may_drop_unacknowledged_readings_and_says_which(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.sqlite", retention_days=30, max_size_mb=0.1) as store:
        write(store, 2000, start=T0, step=1.0)
        store.ack_upto(1000)
        assert store.prune(T0 + 2000) > 0
        first = seqs(store)[0]
        assert first > 1001  # the cap needed more than the acknowledged rows
        (event,) = [e for _, e in store.events_after(0) if e.kind == "store"]
        assert event.data["unacknowledged_dropped"] == {"first_seq": 1001, "last_seq": first - 1}
        assert f"seq 1001..{first - 1}" in event.message and "not acknowledged" in event.message


def test_retention_keeps_unacknowledged_events_whatever_the_clock(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.sqlite", retention_days=30) as store:
        for i in range(10):
            store.add_event(Event(ts=60.0 + i, kind="override", message=f"audit {i} (dated 1970 before NTP)"))
        store.prune(T0)
        assert len(store.events_after(0)) >= 10  # none went: the ATN has none of them
        store.ack_events_upto(4)
        store.prune(T0)
        kept = [seq for seq, event in store.events_after(0) if event.kind == "override"]
        assert kept == list(range(5, 11))
