"""The durable store: which readings earn a row, the outbox's sequence and cursor, events committed at once,
overrides that survive a restart, retention and the size cap, and a store that survives `kill -9`."""

from __future__ import annotations

import itertools
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.control.types import Event, Lease, Override, PriceForecast, PricePoint
from controller.readings import Quality, Reading, Snapshot
from controller.store import (
    DEFAULT_POLICY,
    SCHEMA_VERSION,
    ChannelPolicy,
    Recorder,
    Store,
    StoreError,
    policies_for,
)
from controller.store import database as store_database
from controller.store import outbox as store_outbox
from controller.store import schema as store_schema
from tests.simhelpers import demo_layout
from tests.soak import soak

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400.0
OK, STALE, FAULT, OOR = Quality.OK, Quality.STALE, Quality.FAULT, Quality.OUT_OF_RANGE


def reading(channel: str, value: float | None, ts: float, quality: Quality = OK) -> Reading:
    return Reading(channel, value, "degC", quality, ts)


def snapshot(ts: float, values: dict[str, float | None], quality: Quality = OK) -> Snapshot:
    return Snapshot(ts, MappingProxyType({name: reading(name, v, ts, quality) for name, v in values.items()}))


EVERY = ChannelPolicy(deadband=0.0, keepalive_s=1.0)  # deadband 0: any change is a row


def every(*channels: str) -> dict[str, ChannelPolicy]:
    return dict.fromkeys(channels, EVERY)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state" / "hearth.sqlite") as opened:
        yield opened


def write_rows(store: Store, count: int, *, start: float = T0, step: float = 1.0, channels: int = 4) -> float:
    """`count` snapshots of `channels` changing channels, flushed every snapshot; returns the next time."""
    names = [f"ch-{i}" for i in range(channels)]
    policies = every(*names)
    ts = start
    for i in range(count):
        store.record(snapshot(ts, {name: float(i) + k / 10 for k, name in enumerate(names)}), policies)
        store.flush()
        ts += step
    return ts


def all_rows(store: Store) -> list[store_outbox.StoredReading]:
    return store.readings_after(0, 10**9)


# --- the recorder -------------------------------------------------------------------------------------------
# (case, policy, [(ts, value, quality)] fed in order, which of them earn a row)
RECORDER_CASES = [
    ("first reading is always kept", ChannelPolicy(0.25, 300), [(0, 20.0, OK)], [True]),
    ("within the deadband", ChannelPolicy(0.25, 300), [(0, 20.0, OK), (1, 20.125, OK)], [True, False]),
    ("exactly the deadband is not past it", ChannelPolicy(0.25, 300), [(0, 20.0, OK), (1, 20.25, OK)], [True, False]),
    ("past the deadband", ChannelPolicy(0.25, 300), [(0, 20.0, OK), (1, 19.5, OK)], [True, True]),
    (
        "drift is measured from the last kept value, not the last seen",
        ChannelPolicy(0.25, 300),
        [(0, 20.0, OK), (1, 20.125, OK), (2, 20.25, OK), (3, 20.375, OK)],
        [True, False, False, True],
    ),
    (
        "deadband 0 keeps any change",
        ChannelPolicy(0.0, 300),
        [(0, 20.0, OK), (1, 20.0, OK), (2, 20.001, OK)],
        [True, False, True],
    ),
    (
        "quality change is kept both ways, same bad quality is not",
        ChannelPolicy(0.25, 300),
        [(0, 20.0, OK), (1, 20.0, FAULT), (2, 20.0, FAULT), (3, 20.0, OK), (4, 20.0, OOR)],
        [True, True, False, True, True],
    ),
    (
        "keep-alive after keepalive_s since the last kept row",
        ChannelPolicy(0.25, 300),
        [(0, 20.0, OK), (299, 20.1, OK), (300, 20.1, OK), (301, 20.0, OK), (599, 20.0, OK), (600, 20.0, OK)],
        [True, False, True, False, False, True],
    ),
    (
        "a kept deadband row restarts the keep-alive",
        ChannelPolicy(0.25, 300),
        [(0, 20.0, OK), (200, 21.0, OK), (300, 21.0, OK), (500, 21.0, OK)],
        [True, True, False, True],
    ),
    (
        "no value: kept once, then only on change",
        ChannelPolicy(0.25, 300),
        [(0, None, FAULT), (1, None, FAULT), (2, 35.0, FAULT), (3, None, FAULT), (4, math.nan, FAULT)],
        [True, False, True, True, False],
    ),
    ("a value appearing with the same quality", ChannelPolicy(0.25, 300), [(0, None, OK), (1, 20.0, OK)], [True, True]),
    ("no value keeps its keep-alive", ChannelPolicy(0.25, 300), [(0, None, FAULT), (300, None, FAULT)], [True, True]),
    ("the same sample seen twice", ChannelPolicy(0.0, 1), [(5, 20.0, OK), (5, 20.0, OK)], [True, False]),
    (
        "the clock stepping back",
        ChannelPolicy(0.25, 300),
        [(1000, 20.0, OK), (400, 20.0, OK), (401, 20.0, OK)],
        [True, True, False],
    ),
    ("a time that is not finite", ChannelPolicy(0.25, 300), [(0, 20.0, OK), (math.inf, 30.0, OK)], [True, False]),
]


@pytest.mark.parametrize(("case", "policy", "steps", "kept"), RECORDER_CASES, ids=[c[0] for c in RECORDER_CASES])
def test_recorder(
    case: str, policy: ChannelPolicy, steps: list[tuple[float, float | None, Quality]], kept: list[bool]
) -> None:
    recorder = Recorder()
    got = [recorder.admit(reading("t", value, ts, quality), policy, ts) is not None for ts, value, quality in steps]
    assert got == kept


def test_recorder_row_of_a_stale_reading_is_when_it_was_seen_stale() -> None:
    recorder = Recorder()
    policy = ChannelPolicy(0.1, 300)
    assert recorder.admit(reading("t", 20.0, 100.0), policy, 100.2) is not None
    row = recorder.admit(reading("t", 20.0, 100.0, STALE), policy, 103.0)  # the sampler keeps the old timestamp
    assert row is not None and row.ts == 103.0 and row.quality is STALE


def test_recorder_select_uses_each_channels_policy_and_a_default() -> None:
    recorder = Recorder()
    policies = {"coarse": ChannelPolicy(5.0, 3600)}
    assert len(recorder.select(snapshot(0, {"coarse": 20.0, "unlisted": 20.0}), policies)) == 2
    rows = recorder.select(snapshot(1, {"coarse": 21.0, "unlisted": 20.0 + 2 * DEFAULT_POLICY.deadband}), policies)
    assert [row.channel for row in rows] == ["unlisted"]


def test_policies_come_from_the_layout() -> None:
    layout = demo_layout()
    policies = policies_for(layout.channels)
    assert set(policies) == set(layout.channels)
    name, channel = next(iter(layout.channels.items()))
    assert policies[name] == ChannelPolicy(channel.deadband, channel.keepalive_s)


@pytest.mark.parametrize(("deadband", "keepalive"), [(-0.1, 10.0), (math.nan, 10.0), (0.1, 0.0)])
def test_policy_rejects_nonsense(deadband: float, keepalive: float) -> None:
    with pytest.raises(ValueError):
        ChannelPolicy(deadband, keepalive)


# --- opening ---------------------------------------------------------------------------------------------------
def test_open_creates_the_file_with_wal_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "hearth.sqlite"
    with Store.open(path) as store:
        assert store.integrity == "ok"
        conn = store._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA page_size").fetchone()[0] == store_schema.PAGE_SIZE
    assert path.exists()


def test_an_exclusive_store_has_no_shm_file_and_keeps_other_processes_out(tmp_path: Path) -> None:
    path = tmp_path / "hearth.sqlite"
    with Store.open(path, exclusive=True) as store:
        write_rows(store, 3)
        assert not Path(f"{path}-shm").exists()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            sqlite3.connect(path, timeout=0).execute("SELECT count(*) FROM readings").fetchone()
    with Store.open(path) as store:
        assert store.last_seq() == 12


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hearth.sqlite"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StoreError, match="cannot be used"):
        Store.open(path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hearth.sqlite"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer"):
        Store.open(path)


def test_migrations_run_one_step_per_version(tmp_path: Path) -> None:
    path = tmp_path / "hearth.sqlite"
    Store.open(path).close()
    conn = sqlite3.connect(path, isolation_level=None)

    def add_column(c: sqlite3.Connection) -> None:
        c.execute("ALTER TABLE events ADD COLUMN source TEXT NOT NULL DEFAULT ''")

    steps = {**store_schema.MIGRATIONS, SCHEMA_VERSION: add_column}
    assert store_schema.migrate(conn, steps, target=SCHEMA_VERSION + 1) == SCHEMA_VERSION
    assert store_schema.user_version(conn) == SCHEMA_VERSION + 1
    assert "source" in [row[1] for row in conn.execute("PRAGMA table_info(events)")]
    with pytest.raises(StoreError, match="no migration"):
        store_schema.migrate(conn, steps, target=SCHEMA_VERSION + 3)
    conn.close()


def test_damage_is_reported_by_quick_check(tmp_path: Path) -> None:
    path = tmp_path / "hearth.sqlite"
    with Store.open(path) as store:
        write_rows(store, 600)
    page_size = store_schema.PAGE_SIZE
    data = bytearray(path.read_bytes())
    pages = len(data) // page_size
    for page in range(pages // 2, pages // 2 + 4):  # a few pages in the middle of the readings table
        data[page * page_size + 8 : (page + 1) * page_size] = bytes([0xA5]) * (page_size - 8)
    path.write_bytes(bytes(data))
    with Store.open(path) as store:
        assert store.integrity != "ok"


# --- the outbox ---------------------------------------------------------------------------------------------
def test_readings_are_queued_and_written_by_flush(store: Store) -> None:
    policies = dict.fromkeys(("a", "b"), ChannelPolicy(0.0, 300))
    assert store.record(snapshot(T0, {"a": 1.0, "b": 2.0}), policies) == 2
    assert store.record(snapshot(T0 + 1, {"a": 1.0, "b": 3.0}), policies) == 1
    assert store.pending == 3 and store.readings_after(0, 10) == [] and store.last_seq() == 0
    assert store.flush() == 3
    rows = all_rows(store)
    assert [(r.seq, r.ts, r.channel, r.value, r.quality) for r in rows] == [
        (1, T0, "a", 1.0, OK),
        (2, T0, "b", 2.0, OK),
        (3, T0 + 1, "b", 3.0, OK),
    ]
    assert store.last_seq() == 3 and store.flush() == 0


def test_flush_is_one_transaction_and_nothing_when_idle(store: Store) -> None:
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    names = [f"ch-{i}" for i in range(24)]
    for second in range(3):
        store.record(snapshot(T0 + second, {n: float(second) for n in names}), every(*names))
    assert statements == []  # record() does no I/O
    assert store.flush() == 72
    assert sum(s.startswith("BEGIN") for s in statements) == 1
    assert sum(s == "COMMIT" for s in statements) == 1
    statements.clear()
    assert store.flush() == 0
    assert statements == []


def test_a_failed_flush_keeps_its_rows_for_the_next(store: Store) -> None:
    store._conn.execute("PRAGMA busy_timeout = 0")
    store.record(snapshot(T0, {"a": 1.0, "new-channel": 2.0}), every("a", "new-channel"))
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock, as a full disk would fail the commit
    with pytest.raises(sqlite3.OperationalError):
        store.flush()
    blocker.execute("ROLLBACK")
    blocker.close()
    assert store.pending == 2
    assert store.flush() == 2
    assert [(r.seq, r.channel) for r in all_rows(store)] == [(1, "a"), (2, "new-channel")]


def test_seq_continues_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "hearth.sqlite"
    with Store.open(path) as store:
        write_rows(store, 10)
        store.record(snapshot(T0 + 100, {"late": 1.0}), every("late"))  # queued only: close() flushes it
    with Store.open(path) as store:
        assert store.last_seq() == 41
        write_rows(store, 5, start=T0 + 200)
        assert [r.seq for r in all_rows(store)] == list(range(1, 62))


def test_seq_is_never_reused_even_when_pruning_took_every_row(tmp_path: Path) -> None:
    path = tmp_path / "hearth.sqlite"
    with Store.open(path, retention_days=1) as store:
        write_rows(store, 10)
        store.ack_upto(store.last_seq())
        assert store.prune(T0 + 10 * DAY) == 40  # every reading (no events yet)
        assert all_rows(store) == [] and store.last_seq() == 40
    with Store.open(path, retention_days=1) as store:
        assert store.last_seq() == 40
        write_rows(store, 1, start=T0 + 10 * DAY)
        assert [r.seq for r in all_rows(store)] == [41, 42, 43, 44]


def test_readings_after_pages_through_the_outbox(store: Store) -> None:
    write_rows(store, 25)
    seen: list[int] = []
    cursor = 0
    while batch := store.readings_after(cursor, 7):
        seen += [r.seq for r in batch]
        cursor = batch[-1].seq
    assert seen == list(range(1, 101))


def test_ack_cursor_moves_forward_only_and_not_past_the_outbox(tmp_path: Path) -> None:
    path = tmp_path / "hearth.sqlite"
    with Store.open(path) as store:
        write_rows(store, 5)  # seqs 1..20
        for ack, expected in [(5, 5), (3, 5), (12, 12), (12, 12), (99, 20), (-1, 20)]:
            store.ack_upto(ack)
            assert store.acked_seq() == expected
    with Store.open(path) as store:
        assert store.acked_seq() == 20  # close() wrote it


def test_ack_cursor_is_written_with_a_flush_about_once_a_minute(store: Store) -> None:
    def saved() -> int | None:
        with sqlite3.connect(store.path) as other:
            row = other.execute("SELECT value FROM meta WHERE key = 'acked_seq'").fetchone()
            return None if row is None else int(row[0])

    write_rows(store, 3)
    store.ack_upto(10)
    for _ in range(store_outbox.ACK_SAVE_EVERY - 1):
        store.flush()
    assert saved() is None  # a crash now re-sends at most a minute of rows: the ATN recognises them by seq
    store.flush()
    assert saved() == 10


def test_history_by_channel_and_half_open_time_range(store: Store) -> None:
    write_rows(store, 20, step=60.0, channels=2)  # rows every minute for 20 minutes
    rows = store.history("ch-1", T0 + 5 * 60, T0 + 10 * 60)
    assert [r.ts for r in rows] == [T0 + m * 60 for m in range(5, 10)]
    assert {r.channel for r in rows} == {"ch-1"}
    assert store.history("ch-1", T0 + 600, T0 + 600) == []
    assert store.history("nope", T0, T0 + DAY) == []
    assert len(store.history("ch-0", -math.inf, math.inf)) == 20


def test_history_when_the_clock_steps_back(store: Store) -> None:
    write_rows(store, 10, start=T0 + DAY, step=60.0, channels=1)  # a day ahead (no RTC, bad first guess)
    write_rows(store, 10, start=T0, step=60.0, channels=1)  # then NTP pulls the clock back a day
    write_rows(store, 10, start=T0 + 600, step=60.0, channels=1)  # and time runs on over old ground
    rows = store.history("ch-0", T0, T0 + 1200)
    assert [r.ts for r in rows] == sorted([T0 + m * 60 for m in range(10)] + [T0 + 600 + m * 60 for m in range(10)])
    assert len(store.history("ch-0", T0 + DAY, T0 + 2 * DAY)) == 10


# --- events ----------------------------------------------------------------------------------------------------
def test_events_are_committed_at_once(store: Store) -> None:
    store.record(snapshot(T0, {"a": 1.0}), every("a"))  # queued readings do not hold an event back
    seq = store.add_event(Event(ts=T0, kind="mode", message="ATN silent: LOCAL", data={"silent_s": 31.5}))
    with sqlite3.connect(store.path) as other:
        assert other.execute("SELECT seq, kind FROM events").fetchall() == [(seq, "mode")]
        assert other.execute("SELECT count(*) FROM readings").fetchone()[0] == 0
    assert store.events_after(0) == [
        (seq, Event(ts=T0, kind="mode", message="ATN silent: LOCAL", data={"silent_s": 31.5}))
    ]


def test_events_after_in_order_with_a_limit_and_odd_data(store: Store) -> None:
    seqs = [store.add_event(Event(ts=T0 + i, kind="k", message=f"m{i}", data={"path": Path("/x")})) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    got = store.events_after(2, limit=2)
    assert [(s, e.message, e.data) for s, e in got] == [(3, "m2", {"path": "/x"}), (4, "m3", {"path": "/x"})]


# --- overrides ---------------------------------------------------------------------------------------------------
def override(ident: str, target: str, value: bool | float, start: float, minutes: float = 30) -> Override:
    return Override(
        id=ident,
        target=target,
        value=value,
        created_at=start,
        expires_at=start + minutes * 60,
        who="ana",
        origin="uid 1000",
    )


def test_overrides_active_set_respects_start_expiry_and_release(tmp_path: Path) -> None:
    path = tmp_path / "hearth.sqlite"
    with Store.open(path) as store:
        store.save_override(override("o1", "heat-pump", True, T0))
        store.save_override(override("o2", "setpoint:house", 21.5, T0 + 60, minutes=10))
        assert [o.id for o in store.active_overrides(T0 - 1)] == []
        assert [o.id for o in store.active_overrides(T0 + 120)] == ["o1", "o2"]
        assert [o.id for o in store.active_overrides(T0 + 60 + 600)] == ["o1"]  # o2 expired, exactly at its end
        released = store.release_override("o1", at=T0 + 700, by="bo")
        assert released is not None and released.released_at == T0 + 700 and released.released_by == "bo"
        assert store.active_overrides(T0 + 701) == []
        again = store.release_override("o1", at=T0 + 900, by="cy")
        assert again is not None and (again.released_at, again.released_by) == (T0 + 700, "bo")  # first one stays
        assert store.release_override("missing", at=T0, by="bo") is None
        store.save_override(override("o3", "aux-element", False, T0 + 1000))
    with Store.open(path) as store:
        (o3,) = store.active_overrides(T0 + 1001)
        assert o3 == override("o3", "aux-element", False, T0 + 1000)
        assert o3.value is False  # a relay's False stays a bool after the round trip
        store.save_override(override("o2", "setpoint:house", 22.0, T0 + 1000, minutes=60))  # same id: replaced
        assert {o.id: o.value for o in store.active_overrides(T0 + 1001)} == {"o2": 22.0, "o3": False}


# --- leases and forecasts -----------------------------------------------------------------------------------------
def lease(ident: str, at: float) -> Lease:
    return Lease(id=ident, issued_at=at, valid_until=at + 900, received_at=at + 1, actuators={"heat-pump": True})


def test_latest_lease_and_bounded_history(tmp_path: Path) -> None:
    path = tmp_path / "hearth.sqlite"
    with Store.open(path) as store:
        assert store.latest_lease() is None
        for i in range(store_database.LEASE_HISTORY + 20):
            store.save_lease(lease(f"l{i}", T0 + i))
        store.save_lease(lease("l3", T0 + 3))  # re-sent: it is the latest again
    with Store.open(path) as store:
        assert store.latest_lease() == lease("l3", T0 + 3)
        count = store._conn.execute("SELECT count(*) FROM leases").fetchone()[0]
        assert count <= store_database.LEASE_HISTORY


def test_latest_forecast_within_its_age(store: Store) -> None:
    assert store.latest_forecast(T0) is None
    points = (PricePoint(start=T0, end=T0 + 3600, price=0.31),)
    store.save_forecast(PriceForecast(received_at=T0 - 100, points=points))
    newer = PriceForecast(received_at=T0, points=points)
    store.save_forecast(newer)
    assert store.latest_forecast(T0 + 3600) == newer
    assert store.latest_forecast(T0 + 48 * 3600) == newer
    assert store.latest_forecast(T0 + 48 * 3600 + 1) is None
    assert store.latest_forecast(T0 + 7200, max_age_s=3600) is None
    for i in range(store_database.FORECAST_HISTORY + 5):
        store.save_forecast(PriceForecast(received_at=T0 + i, points=points))
    assert store._conn.execute("SELECT count(*) FROM forecasts").fetchone()[0] == store_database.FORECAST_HISTORY


# --- retention and the size cap -----------------------------------------------------------------------------------
def pruned_events(store: Store) -> list[Event]:
    return [event for _, event in store.events_after(0) if event.message.startswith("store pruned")]


def test_retention_prunes_old_readings_events_and_overrides_with_an_event(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.sqlite", retention_days=2) as store:
        write_rows(store, 30, start=T0, step=60)  # day 0
        write_rows(store, 30, start=T0 + 2 * DAY, step=60)  # day 2
        store.add_event(Event(ts=T0, kind="old", message="old"))
        store.add_event(Event(ts=T0 + 2 * DAY, kind="new", message="new"))
        store.save_override(override("old", "heat-pump", True, T0))
        store.release_override("old", at=T0 + 1800, by="expiry")  # ended long ago: goes
        store.save_override(override("held", "aux-element", False, T0))  # never ended: its book judges it, stays
        store.save_override(override("new", "heat-pump", True, T0 + 2 * DAY))
        store.ack_upto(store.last_seq())  # the ATN has them all: retention may go by age
        store.ack_events_upto(store.last_event_seq())
        assert store.prune(T0 + 3 * DAY) == 120 + 1 + 1
        rows = all_rows(store)
        assert len(rows) == 120 and min(r.ts for r in rows) == T0 + 2 * DAY
        assert [r.seq for r in rows] == list(range(121, 241))
        assert [e.kind for _, e in store.events_after(0)] == ["new", "store"]
        (event,) = pruned_events(store)
        assert event.data["readings_expired"] == 120 and event.data["events_expired"] == 1
        assert event.data["overrides_expired"] == 1 and event.data["readings_over_cap"] == 0
        assert store._conn.execute("SELECT id FROM overrides ORDER BY id").fetchall() == [("held",), ("new",)]
        assert len(store.history("ch-0", T0 + 2 * DAY, T0 + 3 * DAY)) == 30
        assert store.prune(T0 + 3 * DAY) == 0  # nothing more: no second event
        assert len(pruned_events(store)) == 1
        assert not Path(f"{store.path}-wal").exists() or Path(f"{store.path}-wal").stat().st_size == 0  # checkpointed


def test_size_cap_prunes_oldest_first_and_the_file_stops_growing(tmp_path: Path) -> None:
    cap_mb = 0.25
    with Store.open(tmp_path / "hearth.sqlite", max_size_mb=cap_mb) as store:
        ts = T0
        sizes = []
        for snapshots in (3000, 700, 700, 700):  # 12000 rows (~0.35 MB) at first, then ~0.08 MB between prunes
            ts = write_rows(store, snapshots, start=ts, channels=4)
            assert store.prune(ts) > 0
            sizes.append(store.size_bytes())
            seqs = [r.seq for r in all_rows(store)]
            assert seqs == list(range(seqs[0], store.last_seq() + 1))  # the oldest went, the newest stayed
            slack = 4 * store_schema.PAGE_SIZE  # the "store pruned" event is written after the cut
            assert store._used_bytes() <= store_database.CAP_TARGET * cap_mb * store_database.MB + slack
        assert max(sizes) == sizes[0]  # freed pages are reused: past the first overshoot the file does not grow
        events = pruned_events(store)
        assert len(events) == 4 and all(e.data["readings_over_cap"] > 0 for e in events)
        assert all(e.data["readings_expired"] == 0 for e in events)
        assert len(store.history("ch-0", ts - 100, ts)) == 100  # the newest history is intact


# --- properties ---------------------------------------------------------------------------------------------------
OPS = st.one_of(
    st.tuples(st.just("record"), st.integers(1, 5), st.floats(0.0, 400.0)),
    st.tuples(st.just("flush"), st.just(0), st.just(0.0)),
    st.tuples(st.just("ack"), st.integers(-5, 400), st.just(0.0)),
    st.tuples(st.just("prune"), st.just(0), st.floats(0.0, 2 * DAY)),
    st.tuples(st.just("reopen"), st.just(0), st.just(0.0)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OPS, max_size=25), seed=st.integers(0, 2**16))
def test_any_interleaving_keeps_the_outbox_ordered(ops: Sequence[tuple[str, int, float]], seed: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hearth.sqlite"
        store = Store.open(path, retention_days=0.5, max_size_mb=0.05)
        now, last, acked = T0, 0, 0
        policies = {"a": ChannelPolicy(0.5, 60), "b": ChannelPolicy(0.0, 1)}
        try:
            for op, count, dt in ops:
                if op == "record":
                    for _ in range(count):
                        now += dt / count
                        store.record(
                            snapshot(now, {"a": rng.uniform(0, 3), "b": rng.choice([None, 1.0, 2.0])}), policies
                        )
                elif op == "flush":
                    store.flush()
                elif op == "ack":
                    store.ack_upto(count)
                elif op == "prune":
                    now += dt
                    store.prune(now)
                else:
                    store.close()
                    store = Store.open(path, retention_days=0.5, max_size_mb=0.05)
                seqs = [r.seq for r in all_rows(store)]
                assert all(a < b for a, b in itertools.pairwise(seqs))
                assert all(s <= store.last_seq() for s in seqs)
                assert store.last_seq() >= last and store.acked_seq() >= acked
                assert store.acked_seq() <= store.last_seq()
                last, acked = store.last_seq(), store.acked_seq()
        finally:
            store.close()


# --- kill -9 ---------------------------------------------------------------------------------------------------------
CHILD = """
import sys, time
from types import MappingProxyType
from controller.control.types import Event, Override
from controller.readings import Quality, Reading, Snapshot
from controller.store import ChannelPolicy, Store

path, run, base = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
store = Store.open(path)
if not store.active_overrides(base + 1):
    store.save_override(Override(id="kill-test", target="heat-pump", value=True, created_at=base,
                                 expires_at=base + 86_000, who="test"))
names = [f"r{run}-{k}" for k in range(6)]
policies = {name: ChannelPolicy(0.0, 1.0) for name in names}
print("ready", store.last_seq(), flush=True)
ts, i = base + run * 1000.0, 0
while True:
    i += 1
    store.record(Snapshot(ts, MappingProxyType(
        {n: Reading(n, float(i) + k, "degC", Quality.OK, ts) for k, n in enumerate(names)})), policies)
    if i % 5 == 1:
        store.flush()
    if i % 20 == 0:
        store.add_event(Event(ts=ts, kind="test", message=f"run {run} step {i}"))
    ts += 0.01
    time.sleep(0.01)
"""


@pytest.mark.slow
def test_store_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "hearth.sqlite"
    rng = random.Random(20260101)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    last = 0
    for run in range(soak(8, 20)):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(run), str(T0)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert child.stdout is not None
        ready = child.stdout.readline().split()
        assert ready == ["ready", str(last)], ready  # the child starts where the last one was killed
        try:
            child.wait(timeout=rng.uniform(0.05, 0.4))
        except subprocess.TimeoutExpired:
            os.kill(child.pid, signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
        child.stdout.close()
        with Store.open(path) as store:
            assert store.integrity == "ok"
            rows = all_rows(store)
            seqs = [r.seq for r in rows]
            assert seqs == sorted(set(seqs)) and seqs[-1] <= store.last_seq()  # in order, no repeats
            this_run = [r for r in rows if r.channel.startswith(f"r{run}-")]
            # Above everything before. Not at last + 1: a kill cannot be told from a power cut at the next open,
            # so the store carries on above the block it had reserved (tests/test_power_cut.py says why).
            assert this_run and min(r.seq for r in this_run) > last
            event_seqs = [seq for seq, _ in store.events_after(0, limit=10**6)]
            assert event_seqs == list(range(1, len(event_seqs) + 1))
            assert [o.id for o in store.active_overrides(T0 + 10)] == ["kill-test"]
            last = store.last_seq()


def test_commit_listeners_hear_of_readings_and_events_and_not_of_empty_flushes(store: Store) -> None:
    """The ATN link sends on this news instead of polling: a commit that stored something says so, once."""
    heard: list[str] = []
    store.on_commit(lambda: heard.append("commit"))
    assert store.flush() == 0 and heard == []  # nothing queued: no transaction, no news
    store.record(snapshot(T0, {"tank-top": 45.0}), every("tank-top"))
    assert store.flush() == 1 and heard == ["commit"]
    store.add_event(Event(ts=T0, kind="test", message="an event"))
    assert heard == ["commit", "commit"]
