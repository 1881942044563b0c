"""The store's SQLite file: connection settings, schema, migrations and the one way to run a transaction.

Durability: WAL journal with `synchronous=NORMAL`. A commit is in the WAL file (the OS page cache) when COMMIT
returns, so a crash or `kill -9` of the process loses nothing committed. On *power loss* the last few seconds of
commits (those since the OS last wrote the WAL out, or since the last checkpoint's fsync) may be rolled back, but
the database stays consistent: WAL frames carry checksums and a torn tail is ignored at the next open. That is the
trade we want on an SD card: `synchronous=FULL` would fsync on every per-second commit.

What a power cut must not roll back is a sequence number the ATN may already hold: the outbox hands seqs out of
blocks reserved by a commit made with `synchronous=FULL` (`controller.store.outbox.SEQ_BLOCK`), and starts above
the reserved block after an unclean stop (see `Outbox`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import MappingProxyType

from controller.readings import Quality

SCHEMA_VERSION = 3

# The smallest pages SQLite has. A per-second commit appends every page it touched to the WAL, so the page size,
# not the row size, sets the bytes written per commit: 512 B pages write ~40 % less per day than 1 KiB and ~80 %
# less than the default 4 KiB (bench/store_bytes_per_day.py --sweep). A ~30-byte reading row still fits ~15 to a
# page. Only takes effect when the file is created.
PAGE_SIZE = 512
TIMELINE_BUCKET_S = 300
WAL_AUTOCHECKPOINT_PAGES = 1000
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024  # a WAL grown by a big prune is cut back to this at its next reset
BUSY_TIMEOUT_S = 5.0

# Stored as a small integer; 0 and 1 cost no bytes at all in an SQLite record. Never renumber: rows outlive code.
QUALITY_CODES: MappingProxyType[Quality, int] = MappingProxyType(
    {Quality.OK: 0, Quality.STALE: 1, Quality.FAULT: 2, Quality.OUT_OF_RANGE: 3}
)
QUALITY_OF_CODE: MappingProxyType[int, Quality] = MappingProxyType({v: k for k, v in QUALITY_CODES.items()})


class StoreError(Exception):
    """The store cannot be used: not a database, written by a newer Hearth, or no WAL on this filesystem."""


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back if the body or the COMMIT fails (the error propagates).

    IMMEDIATE takes the write lock up front, so a reader in another process cannot make a half-done write
    transaction fail with SQLITE_BUSY at its first write.
    """
    conn.execute("BEGIN IMMEDIATE")
    committed = False
    try:
        yield
        conn.execute("COMMIT")
        committed = True
    finally:
        if not committed and conn.in_transaction:
            conn.execute("ROLLBACK")


@contextmanager
def synced_commit(conn: sqlite3.Connection, synced: bool) -> Iterator[None]:
    """Make the commit inside synced to the card (synchronous=FULL fsyncs the WAL at COMMIT), if `synced`."""
    if not synced:
        yield
        return
    conn.execute("PRAGMA synchronous = FULL")
    try:
        yield
    finally:
        conn.execute("PRAGMA synchronous = NORMAL")


def _create_v1(conn: sqlite3.Connection) -> None:
    statements = (
        # Channel names are stored once; a reading refers to its channel by a one-byte id.
        "CREATE TABLE IF NOT EXISTS channels (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
        # The outbox. seq is assigned by the store (never by SQLite): one past the highest seq ever committed,
        # which survives pruning as meta.seq_floor, so a seq is never reused and the ATN can trust that a seq it
        # acknowledged means the same row forever. Not AUTOINCREMENT and no index on ts: each would add a page to
        # every per-second commit (sqlite_sequence, the index leaf), doubling the bytes written per day.
        """CREATE TABLE IF NOT EXISTS readings (
            seq INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            channel INTEGER NOT NULL REFERENCES channels(id),
            value REAL,
            quality INTEGER NOT NULL
        )""",
        # A sparse time index: the readings from first_seq up to the next row's first_seq all have ts in
        # [bucket * TIMELINE_BUCKET_S, (bucket + 1) * TIMELINE_BUCKET_S). One row per bucket (a few hundred a day),
        # so time queries and retention find their seq ranges without a per-reading index. It holds when the
        # clock steps back too: a change of bucket in either direction starts a new row.
        "CREATE TABLE IF NOT EXISTS timeline (first_seq INTEGER PRIMARY KEY, bucket INTEGER NOT NULL)",
        """CREATE TABLE IF NOT EXISTS events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            data TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX IF NOT EXISTS events_ts ON events(ts)",
        # value is JSON (true/false or a number) so a relay override stays a bool, not 1.0.
        """CREATE TABLE IF NOT EXISTS overrides (
            id TEXT PRIMARY KEY,
            target TEXT NOT NULL,
            value TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            who TEXT NOT NULL,
            origin TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            released_at REAL,
            released_by TEXT
        )""",
        # Leases and forecasts are kept whole as JSON (the pydantic model's own form); the columns beside it are
        # for queries. Newest = highest seq (the order they were received in).
        """CREATE TABLE IF NOT EXISTS leases (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            received_at REAL NOT NULL,
            valid_until REAL NOT NULL,
            body TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS forecasts (
            seq INTEGER PRIMARY KEY,
            received_at REAL NOT NULL,
            body TEXT NOT NULL
        )""",
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    )
    for statement in statements:
        conn.execute(statement)


def _override_clocks_v2(conn: sqlite3.Connection) -> None:
    """An override's life on the monotonic clock, so an NTP step can neither end it early nor revive it: the boot
    whose CLOCK_MONOTONIC the times are on, when it was set, when it ends, and when this row was last written (the
    remaining life at that moment is what a different boot restores from; see `controller.overrides`). NULL on
    rows from before: they are restored like rows from another boot."""
    for column in ("boot_id TEXT", "created_mono REAL", "ends_mono REAL", "saved_mono REAL"):
        conn.execute(f"ALTER TABLE overrides ADD COLUMN {column}")


def _energy_days_v3(conn: sqlite3.Connection) -> None:
    """Daily energy totals by local day (`controller.energy`), kept whole as JSON. Retention never prunes them:
    they outlive the readings they were computed from. `final` marks a day closed (complete, not recomputed)."""
    conn.execute(
        """CREATE TABLE IF NOT EXISTS energy_days (
            day TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            final INTEGER NOT NULL,
            updated_at REAL NOT NULL
        ) WITHOUT ROWID"""
    )


Migration = Callable[[sqlite3.Connection], None]

# MIGRATIONS[n] takes a version-n file to version n + 1 inside one transaction. Version 0 is an empty (new) file.
# To change the schema: bump SCHEMA_VERSION, add MIGRATIONS[old] doing the ALTERs, and a test that opens an old file.
# Steps are independent: two branches adding one each renumber the second to merge (version n + 1 -> n + 2).
MIGRATIONS: dict[int, Migration] = {0: _create_v1, 1: _override_clocks_v2, 2: _energy_days_v3}


def user_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(conn: sqlite3.Connection, migrations: dict[int, Migration] | None = None, target: int | None = None) -> int:
    """Bring the file to `target` (default SCHEMA_VERSION), one step per transaction; returns the old version."""
    steps = MIGRATIONS if migrations is None else migrations
    goal = SCHEMA_VERSION if target is None else target
    found = version = user_version(conn)
    if version > goal:
        raise StoreError(f"the store is schema version {version}, newer than this Hearth's {goal}; upgrade Hearth")
    while version < goal:
        step = steps.get(version)
        if step is None:
            raise StoreError(f"no migration from store schema version {version}")
        with transaction(conn):
            step(conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        version += 1
    return found


def configure(conn: sqlite3.Connection, *, exclusive: bool = False) -> str:
    """Set the connection up (WAL, synchronous, foreign keys), check the file and create or migrate the schema.

    `exclusive` keeps the file locked to this connection and the WAL index in process memory instead of the
    memory-mapped `-shm` file, whose pages the kernel writes back to the card every ~30 s (about as many bytes a
    day as the WAL itself; see the bench). The price: no other process can read the file while it is open.

    Returns the result of `PRAGMA quick_check`: "ok", or the problems it found joined by "; ".
    """
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    if exclusive:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")  # before the first WAL access, or the -shm is made anyway
    if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
        # Only possible before the first write, and before WAL mode, which fixes the page size for good.
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"could not switch the store to WAL mode (got {mode!r}); is the filesystem read-only?")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
    integrity = "; ".join(str(row[0]) for row in conn.execute("PRAGMA quick_check"))
    migrate(conn)
    return integrity
