"""The durable store: one SQLite file holding the readings outbox, events, overrides, leases and forecasts.

Readings are thinned by the `Recorder`, queued in memory by `record()` and written by `flush()` in one
transaction, which the writer task calls about once a second; everything else is committed at once. The readings
table is an outbox: the ATN link sends `readings_after(acked_seq())` and, when the ATN says it has persisted up
to a seq, calls `ack_upto(seq)`. Retention and a size cap (`prune`) keep the SD card from filling, oldest first.

Nothing here reads the clock: every time comes from the caller. One connection, used from one thread (the
asyncio loop's); other processes (a second reader, a backup) may read the file meanwhile, which WAL allows.
Durability (WAL, synchronous=NORMAL): see `controller.store.schema`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import structlog
from pydantic import ValidationError

from controller.control.types import Event, Lease, Override, PriceForecast
from controller.decode import STORE_LIMITS, Rejected, decode_json, describe
from controller.readings import Snapshot
from controller.store.outbox import ACK_SAVE_EVERY, DELETE_CHUNK, Outbox, StoredReading
from controller.store.recorder import ChannelPolicy, Recorder
from controller.store.schema import StoreError, configure, synced_commit, transaction

log = structlog.get_logger("hearth.store")

MB = 1_000_000
DAY_S = 86_400.0
CAP_TARGET = 0.9  # prune to this share of the size cap, so the next prune is not one row later
LEASE_HISTORY = 200
FORECAST_HISTORY = 16
FORECAST_MAX_AGE_S = 48 * 3600.0
EVENTS_WAITING_MAX = 10_000  # events kept in memory while the store cannot write them; the oldest go first
EVENTS_ACKED_KEY = "events_acked_seq"
_UPSERT_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
_OVERRIDE_COLUMNS = ("id", "target", "value", "created_at", "expires_at", "who", "origin", "reason")
_OVERRIDE_SELECT = f"SELECT {', '.join(_OVERRIDE_COLUMNS)}, released_at, released_by FROM overrides"
_TIMER_COLUMNS = ("boot_id", "created_mono", "ends_mono", "saved_mono")


@dataclass(frozen=True, slots=True)
class OverrideTimer:
    """An override's life on the monotonic clock of boot `boot_id`: set at `created_mono`, ends at `ends_mono`,
    this row written at `saved_mono` (see `controller.overrides` for how another boot restores it)."""

    boot_id: str
    created_mono: float
    ends_mono: float
    saved_mono: float


class Store:
    """The store. Make one with `Store.open(path)`; `close()` (or leaving a `with` block) flushes first.

    Durability (WAL, `synchronous=NORMAL`): whatever a commit (a flush, an event, an override) wrote survives a
    crash or `kill -9` of the process. A power cut may also lose the last few seconds of commits, those the OS had
    not yet written out, but never corrupts the file: WAL frames are checksummed and a torn tail is ignored.
    Readings still queued in memory (at most a second's worth, between flushes) are lost either way.
    """

    integrity: str
    """What `PRAGMA quick_check` said when the file was opened: "ok", or the problems it found."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, integrity: str, retention_days: float, max_size_mb: float
    ) -> None:
        """Use `Store.open`."""
        self._conn = conn
        self.path = path
        self.integrity = integrity
        self.retention_days = retention_days
        self.max_size_mb = max_size_mb
        self._outbox = Outbox(conn)
        self._closed = False
        self.keep_unacknowledged = True
        """Retention deletes only readings the ATN acknowledged (False for a site without an ATN link)."""
        self.failing: str | None = None
        """Why the last write failed (disk full, I/O error), until a write succeeds again; None when healthy."""
        self._waiting_events: deque[Event] = deque()
        self.events_dropped = 0
        """Events dropped (oldest first) because more than `EVENTS_WAITING_MAX` were waiting for a failing store."""
        self._readings_dropped_reported = 0
        self._latest_ts = 0.0
        self._events_acked = self._events_acked_saved = self._meta_int(EVENTS_ACKED_KEY)
        self._flushes_since_events_saved = 0
        self._commit_listeners: list[Callable[[], None]] = []

    @classmethod
    def open_existing(cls, path: str | Path, **options: Any) -> Store:
        """`open` for a reader that must not create anything (a command pointed at a store file): a path with no
        file raises `StoreError` naming it, instead of leaving an empty store (and its directories) behind."""
        if not Path(path).is_file():
            raise StoreError(f"no store file at {path}")
        return cls.open(path, **options)

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        retention_days: float = 30.0,
        max_size_mb: float = 200.0,
        exclusive: bool = False,
        keep_unacknowledged: bool = True,
    ) -> Store:
        """Open (creating it and its parent directories if need be) the store at `path`.

        `exclusive=True` locks the file to this process for as long as it is open and spares the SD card the
        writes of SQLite's memory-mapped `-shm` index (see `controller.store.schema.configure`); leave it off when
        another process (a second reader, a backup) must read the file meanwhile. `keep_unacknowledged=False` lets
        retention delete readings the ATN never acknowledged: only for a site without an ATN link.

        Runs `PRAGMA quick_check` and keeps the answer in `integrity`; a damaged file is reported (and logged),
        not refused, so the controller keeps running on what can still be read. Raises `StoreError` if the file
        is not a database at all or was written by a newer schema.
        """
        if not retention_days > 0 or not max_size_mb > 0:
            raise ValueError(f"retention_days and max_size_mb must be positive, got {retention_days}, {max_size_mb}")
        db_path = Path(path)
        db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _private(db_path)
        # isolation_level=None: no implicit transactions; every write goes through `transaction()`.
        conn = sqlite3.connect(db_path, isolation_level=None)
        try:
            integrity = configure(conn, exclusive=exclusive)
            store = cls(conn, db_path, integrity, retention_days, max_size_mb)
            store.keep_unacknowledged = keep_unacknowledged
        except sqlite3.DatabaseError as error:
            conn.close()
            raise StoreError(f"{db_path} cannot be used as the store: {error}") from error
        except StoreError:
            conn.close()
            raise
        if integrity != "ok":
            log.error("store integrity check failed", path=str(db_path), result=integrity)
        return store

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Flush what is queued (and the ack cursor) and close. Safe to call twice."""
        if self._closed:
            return
        try:
            self._outbox.flush(save_ack=True)
            self._write_waiting_events()
            self._save_events_acked()
            self._outbox.release_reservation()
        except sqlite3.Error as error:  # closing must not fail on a full or failing disk: the shutdown goes on
            log.error(
                "store not flushed at close",
                error=str(error),
                readings_lost=self._outbox.pending,
                events_lost=len(self._waiting_events),
            )
        finally:
            self._closed = True
            self._conn.close()

    # --- readings ----------------------------------------------------------------------------------------
    @property
    def recorder(self) -> Recorder:
        """The recorder deciding which readings earn a row (its memory lasts as long as this `Store`)."""
        return self._outbox.recorder

    def record(self, snapshot: Snapshot, policies: Mapping[str, ChannelPolicy]) -> int:
        """Queue the readings of `snapshot` that the recorder keeps; returns how many were queued.

        A channel missing from `policies` is stored with `DEFAULT_POLICY`.
        """
        self._latest_ts = snapshot.taken_at
        return self._outbox.queue(snapshot, policies)

    @property
    def pending(self) -> int:
        """Readings queued for the next flush."""
        return self._outbox.pending

    @property
    def dropped(self) -> int:
        """Queued readings dropped (oldest first) because flushes kept failing; the queue holds ten minutes."""
        return self._outbox.dropped

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every commit that stored readings or events (the ATN link sends them then)."""
        self._commit_listeners.append(listener)

    def _committed(self) -> None:
        for listener in self._commit_listeners:
            listener()

    def flush(self) -> int:
        """Commit the queued readings in one transaction; returns rows written. Then writes any events that
        were waiting for the store to work again.

        Does nothing, not even a transaction, when nothing is queued. If the commit fails (disk full) the rows
        stay queued for the next try (up to ten minutes of them, then the oldest go, counted in `dropped`),
        `failing` says why, and the error propagates.
        """
        try:
            written = self._outbox.flush()
        except sqlite3.Error as error:
            self._failed("readings", error)
            raise
        if self._waiting_events:
            self._write_waiting_events()
        elif written:
            self._recovered()
        if written:
            self._committed()
        if self._events_acked > self._events_acked_saved:
            self._flushes_since_events_saved += 1
            if self._flushes_since_events_saved >= ACK_SAVE_EVERY:
                self._save_events_acked()
        return written

    def trouble(self) -> str | None:
        """A sentence for the alarm while the store cannot write; None when it can."""
        if self.failing is None:
            return None
        return (
            f"store failing ({self.failing}): control goes on; {self._outbox.pending} readings queued in memory, "
            f"{self._outbox.dropped} dropped, {len(self._waiting_events)} events waiting"
        )

    def _failed(self, what: str, error: sqlite3.Error) -> None:
        if self.failing is None:
            log.error("store failing: control goes on, writes kept in memory and retried", what=what, error=str(error))
        self.failing = f"{what}: {error}"

    def _recovered(self) -> None:
        if self.failing is None:
            return
        self.failing = None
        dropped = self._outbox.dropped - self._readings_dropped_reported
        self._readings_dropped_reported = self._outbox.dropped
        log.info("store writing again", readings_dropped=dropped, events_dropped=self.events_dropped)
        message = "store writing again"
        if dropped or self.events_dropped:
            message += f": {dropped} readings and {self.events_dropped} events were dropped while it failed"
        ts = self._latest_ts
        self.add_event(
            Event(
                ts=ts,
                kind="store",
                message=message,
                data={"readings_dropped": dropped, "events_dropped": self.events_dropped},
            )
        )

    def readings_after(self, seq: int, limit: int) -> list[StoredReading]:
        """Up to `limit` committed readings with a seq above `seq`, in seq order (the outbox, for forwarding)."""
        return self._outbox.readings_after(seq, limit)

    def telemetry_after(self, seq: int, limit: int) -> list[tuple[int, float, str, float | None, str]]:
        """`readings_after` as plain tuples, for the telemetry forwarder's replay."""
        return self._outbox.telemetry_after(seq, limit)

    def history(self, channel: str, since: float, until: float) -> list[StoredReading]:
        """The committed readings of `channel` with `since <= ts < until`, in time order."""
        return self._outbox.history(channel, since, until)

    def last_seq(self) -> int:
        """The highest seq ever committed (0 for none). It never goes down, not even when rows are pruned."""
        return self._outbox.last_seq()

    def ack_upto(self, seq: int) -> None:
        """The ATN has persisted every reading up to `seq`: advance the cursor (never backwards, never past
        `last_seq()`).

        The cursor is written to the file about once a minute (with a flush) and at `close()`, not in a commit of
        its own each time: acks come with every batch, and losing the last minute of them in a crash only means
        re-sending rows the ATN already has and recognises by seq.
        """
        self._outbox.ack_upto(seq)

    def acked_seq(self) -> int:
        """How far the ATN has acknowledged (0 for nothing yet)."""
        return self._outbox.acked_seq()

    def atn_holds_upto(self, seq: int) -> None:
        """The ATN acknowledged up to `seq`. Should that be beyond the highest seq this store has ever issued,
        the store lost commits the ATN had received (a power cut on a card that acknowledged a sync it had not
        done): new readings continue above `seq`, so none of the ATN's seqs is reused for other content."""
        if self._outbox.move_past(seq):
            log.error("the ATN holds readings this store lost: carrying on above them", atn_upto=seq)

    # --- events --------------------------------------------------------------------------------------------
    def add_event(self, event: Event) -> int:
        """Store `event` now, in its own transaction; returns its seq.

        Never raises for a full or failing disk: the event then waits in memory (up to `EVENTS_WAITING_MAX`, the
        oldest dropped and counted) and is written, in order, with the next write that succeeds; 0 is returned.
        """
        if len(self._waiting_events) >= EVENTS_WAITING_MAX:
            self._waiting_events.popleft()
            self.events_dropped += 1
        self._waiting_events.append(event)
        self._latest_ts = event.ts
        return self._write_waiting_events()

    def _write_waiting_events(self) -> int:
        """Write every waiting event in one transaction; the seq of the last, or 0 if the store failed."""
        if not self._waiting_events:
            return 0
        seq = 0
        try:
            with transaction(self._conn):
                for event in self._waiting_events:
                    data = _event_data_json(event.data)
                    cursor = self._conn.execute(
                        "INSERT INTO events (ts, kind, message, data) VALUES (?, ?, ?, ?)",
                        (event.ts, event.kind, event.message, data),
                    )
                    seq = cursor.lastrowid or 0
        except sqlite3.Error as error:
            self._failed("events", error)
            return 0
        self._waiting_events.clear()
        self._recovered()
        self._committed()
        return seq

    def last_event_seq(self) -> int:
        """The highest event seq stored (0 for none): one lookup at the end of the primary key."""
        row = self._conn.execute("SELECT max(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def ack_events_upto(self, seq: int) -> None:
        """The ATN has persisted every event up to `seq`: advance the events cursor (never backwards). Written to
        the file about once a minute (with a flush) and at `close()`, like the readings cursor: losing the last
        minute of it only means sending events again that the ATN recognises by seq."""
        self._events_acked = max(self._events_acked, min(seq, self.last_event_seq()))

    def events_acked(self) -> int:
        """How far the ATN has acknowledged events (0 for nothing yet); the link sends from here after a start or a
        reconnect, so events stored before the link started or while it was away are sent."""
        return self._events_acked

    def _save_events_acked(self) -> None:
        """Write the events cursor; a failing disk only means it is tried again with a later flush."""
        if self._events_acked <= self._events_acked_saved:
            return
        try:
            with transaction(self._conn):
                self._conn.execute(_UPSERT_META, (EVENTS_ACKED_KEY, self._events_acked))
        except sqlite3.Error as error:
            self._failed("events cursor", error)
            return
        self._events_acked_saved = self._events_acked
        self._flushes_since_events_saved = 0

    def _meta_int(self, key: str) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row is not None else 0

    def events_after(self, seq: int, limit: int = 1000) -> list[tuple[int, Event]]:
        """Up to `limit` events with a seq above `seq`, in seq order."""
        rows = self._conn.execute(
            "SELECT seq, ts, kind, message, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        )
        return [
            (event_seq, _event_from_row(event_seq, ts, kind, message, data))
            for event_seq, ts, kind, message, data in rows
        ]

    def events_of(self, kind: str, since: float, until: float) -> list[Event]:
        """The events of one kind stamped in [since, until), in time order (the model fit's aux element)."""
        rows = self._conn.execute(
            "SELECT seq, ts, kind, message, data FROM events WHERE kind = ? AND ts >= ? AND ts < ? ORDER BY ts, seq",
            (kind, since, until),
        )
        return [_event_from_row(seq, ts, k, message, data) for seq, ts, k, message, data in rows]

    # --- small records -----------------------------------------------------------------------------------
    def remember(self, key: str, value: object, synced: bool = False) -> bool:
        """Keep a small JSON value under `key` (the equipment starts, the heat register), committed at once;
        `synced`: in a commit synced to the card (a power cut cannot roll it back). Returns whether it was written.
        A store that cannot write skips it and says so in `failing`: it is bookkeeping, control goes on."""
        try:
            with synced_commit(self._conn, synced), transaction(self._conn):
                self._conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (f"record:{key}", json.dumps(value, separators=(",", ":"))),
                )
        except sqlite3.Error as error:
            self._failed(key, error)
            return False
        return True

    def recall(self, key: str) -> object:
        """The value kept under `key`, or None (none kept, or not readable)."""
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (f"record:{key}",)).fetchone()
            return json.loads(row[0]) if row is not None else None
        except (sqlite3.Error, ValueError, TypeError):
            return None

    # --- overrides ---------------------------------------------------------------------------------------
    def save_override(self, override: Override, timer: OverrideTimer | None = None) -> None:
        """Insert or replace (by id) an override and its monotonic timer, committed at once."""
        columns = (*_OVERRIDE_COLUMNS, "released_at", "released_by", *_TIMER_COLUMNS)
        updates = ", ".join(f"{column} = excluded.{column}" for column in columns[1:])
        values = [getattr(override, column) for column in columns[: -len(_TIMER_COLUMNS)]]
        values += [getattr(timer, column) if timer else None for column in _TIMER_COLUMNS]
        values[2] = json.dumps(override.value)  # JSON keeps a relay's True apart from a setpoint's 1.0
        with transaction(self._conn):
            self._conn.execute(
                f"INSERT INTO overrides ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                f" ON CONFLICT (id) DO UPDATE SET {updates}",
                values,
            )

    def release_override(self, override_id: str, *, at: float, by: str) -> Override | None:
        """Release an override at `at` by `by`; returns it as released, or None if there is no such override.

        Releasing one that is already released changes nothing: the first release stays on record.
        """
        row = self._conn.execute(f"{_OVERRIDE_SELECT} WHERE id = ?", (override_id,)).fetchone()
        if row is None:
            return None
        override = _to_override(row)
        if override.released_at is not None:
            return override
        with transaction(self._conn):
            self._conn.execute(
                "UPDATE overrides SET released_at = ?, released_by = ? WHERE id = ?", (at, by, override_id)
            )
        return override.model_copy(update={"released_at": at, "released_by": by})

    def unreleased_overrides(self) -> list[tuple[Override, OverrideTimer | None]]:
        """Every override not yet released or ended, with its timer, oldest first: whether it is still in force
        is for `controller.overrides.OverrideBook` to judge, on the monotonic clock."""
        rows = self._conn.execute(
            f"SELECT {', '.join(_OVERRIDE_COLUMNS)}, released_at, released_by, {', '.join(_TIMER_COLUMNS)}"
            " FROM overrides WHERE released_at IS NULL ORDER BY created_at, id"
        ).fetchall()
        found = []
        for row in rows:
            head, clock = row[: -len(_TIMER_COLUMNS)], row[-len(_TIMER_COLUMNS) :]
            timer = OverrideTimer(*clock) if None not in clock else None
            for override in _valid_rows([head], _to_override, "overrides"):  # one that no longer validates: skipped
                found.append((override, timer))
        return found

    def active_overrides(self, now: float) -> list[Override]:
        """Overrides in force at wall time `now` (not released, started, not expired), oldest first.

        By the wall clock, so for history only: the controller asks `OverrideBook.active()`, which judges on the
        monotonic clock and survives NTP steps."""
        rows = self._conn.execute(
            f"{_OVERRIDE_SELECT} WHERE released_at IS NULL AND created_at <= ? AND ? < expires_at"
            " ORDER BY created_at, id",
            (now, now),
        )
        return [override for override in _valid_rows(rows, _to_override, "overrides") if override.active(now)]

    # --- leases and forecasts ------------------------------------------------------------------------------
    def save_lease(self, lease: Lease) -> None:
        """Keep `lease` as the latest (the same id again replaces the old copy); the last `LEASE_HISTORY` are
        kept. A store that cannot write skips it (the control loop has the lease already) and says so in
        `failing`."""
        try:
            with transaction(self._conn):
                self._conn.execute("DELETE FROM leases WHERE id = ?", (lease.id,))
                cursor = self._conn.execute(
                    "INSERT INTO leases (id, received_at, valid_until, body) VALUES (?, ?, ?, ?)",
                    (lease.id, lease.received_at, lease.valid_until, lease.model_dump_json()),
                )
                assert cursor.lastrowid is not None
                self._conn.execute("DELETE FROM leases WHERE seq <= ?", (cursor.lastrowid - LEASE_HISTORY,))
        except sqlite3.Error as error:
            self._failed("lease", error)

    def latest_lease(self) -> Lease | None:
        """The lease saved last, live or not (the caller judges `live(now)`)."""
        rows = self._conn.execute("SELECT id, body FROM leases ORDER BY seq DESC")
        return next(iter(_valid_rows(rows, _to_lease, "leases")), None)

    def save_forecast(self, forecast: PriceForecast) -> None:
        """Keep `forecast` as the latest; the last `FORECAST_HISTORY` are kept. Skipped, like a lease, by a store
        that cannot write."""
        try:
            with transaction(self._conn):
                cursor = self._conn.execute(
                    "INSERT INTO forecasts (received_at, body) VALUES (?, ?)",
                    (forecast.received_at, forecast.model_dump_json()),
                )
                assert cursor.lastrowid is not None
                self._conn.execute("DELETE FROM forecasts WHERE seq <= ?", (cursor.lastrowid - FORECAST_HISTORY,))
        except sqlite3.Error as error:
            self._failed("forecast", error)

    def latest_forecast(self, now: float, max_age_s: float = FORECAST_MAX_AGE_S) -> PriceForecast | None:
        """The forecast saved last, or None if there is none or it was received more than `max_age_s` before
        `now`."""
        rows = self._conn.execute("SELECT seq, body, received_at FROM forecasts ORDER BY seq DESC")
        forecast = next(iter(_valid_rows(rows, _to_forecast, "forecasts")), None)
        if forecast is None or not now - forecast.received_at <= max_age_s:
            return None
        return forecast

    # --- ids of signed requests over MQTT (controller.remote.gate) -------------------------------------------
    def remember_request(self, request_id: str, expires_at: float, now: float) -> bool:
        """Record a signed request's id until it expires; False if it is recorded already (a replay). Kept on disk,
        so a replay is refused after a restart too; ids whose request has expired are forgotten (an expired request
        is refused for its expiry anyway), so the table holds a few minutes of requests at most."""
        with transaction(self._conn):
            self._conn.execute(_CREATE_REQUEST_IDS)
            self._conn.execute("DELETE FROM request_ids WHERE expires_at < ?", (now,))
            added = self._conn.execute(
                "INSERT OR IGNORE INTO request_ids (id, expires_at) VALUES (?, ?)", (request_id, expires_at)
            ).rowcount
        return added == 1

    # --- rows that no longer validate ------------------------------------------------------------------------
    def quarantine_invalid(self, now: float) -> list[str]:
        """Move every lease, forecast and override row that no longer validates (a NaN stored as NULL by an older
        Hearth, a hand edit, a damaged page) to the `quarantine` table, with a "store" event naming each; returns
        what was moved, one sentence each. Run before anything reads them, so a bad row is never a reason not to
        start. Events are not swept (there may be a million): `events_after` shows an unreadable event's data as
        `{"unreadable": reason}` instead."""
        found: list[tuple[str, str, str, tuple[Any, ...]]] = []
        sweeps: tuple[tuple[str, str, RowReader], ...] = (
            ("leases", "SELECT id, body FROM leases", _to_lease),
            ("forecasts", "SELECT seq, body, received_at FROM forecasts", _to_forecast),
            ("overrides", _OVERRIDE_SELECT, _to_override),
        )
        for table, select, reader in sweeps:
            for row in self._conn.execute(select).fetchall():
                problem = _row_problem(reader, row)
                if problem is not None:
                    found.append((table, str(row[0]), problem, row))
        if not found:
            return []
        key_column = {"leases": "id", "forecasts": "seq", "overrides": "id"}
        moved = []
        with transaction(self._conn):
            self._conn.execute(_CREATE_QUARANTINE)
            for table, key, problem, row in found:
                self._conn.execute(
                    "INSERT INTO quarantine (at, source, key, row, reason) VALUES (?, ?, ?, ?, ?)",
                    (
                        now,
                        table,
                        key,
                        json.dumps([str(v) if isinstance(v, bytes) else v for v in row], default=str),
                        problem,
                    ),
                )
                self._conn.execute(f"DELETE FROM {table} WHERE {key_column[table]} = ?", (row[0],))
                moved.append(f"{table} row {key}: {problem}")
        for table, key, problem, _ in found:
            message = f"quarantined {table} row {key}: it no longer validates ({problem})"
            log.error("store row quarantined", table=table, key=key, reason=problem)
            self.add_event(
                Event(ts=now, kind="store", message=message, data={"table": table, "key": key, "reason": problem})
            )
        return moved

    # --- daily energy totals (never pruned) -----------------------------------------------------------------
    def save_energy_day(self, day: str, body: str, *, final: bool, now: float) -> None:
        """Keep one local day's totals (JSON from `controller.energy`); a final day is never replaced by a
        provisional one."""
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO energy_days (day, body, final, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(day) DO UPDATE SET body = excluded.body, final = excluded.final, "
                "updated_at = excluded.updated_at WHERE energy_days.final = 0",
                (day, body, int(final), now),
            )

    def energy_days(self, first: str, last: str) -> list[tuple[str, str, bool]]:
        """(day, body, final) for the stored days from `first` to `last` (ISO dates, inclusive), in order."""
        rows = self._conn.execute(
            "SELECT day, body, final FROM energy_days WHERE day BETWEEN ? AND ? ORDER BY day", (first, last)
        ).fetchall()
        return [(str(day), str(body), bool(final)) for day, body, final in rows]

    # --- retention -----------------------------------------------------------------------------------------
    def prune(self, now: float) -> int:
        """Apply retention and the size cap; returns the rows deleted.

        Deletes readings older than `retention_days` (to the 5-minute bucket) that the ATN has acknowledged (all
        of them with `keep_unacknowledged=False`, for a site without an ATN): a reading dated by a wall clock that
        was wrong (1970 before NTP) or a clock stepped a year ahead never takes unsent readings with it. Deletes
        events older than `retention_days` on the same terms (up to the events cursor), and overrides
        released or ended before then (an override in force is never pruned, whatever the wall clock says). Then,
        if the file and its WAL exceed `max_size_mb`, deletes the oldest readings, acknowledged or not (the event
        then names the unacknowledged seqs that went; the ATN acknowledges through the gap, see docs/protocol.md)
        until the pages in use are under 90 % of the cap. The file does not shrink: SQLite reuses the freed pages
        for new rows, which keeps the file at the cap without the full rewrite (card wear) a VACUUM would cost.
        Records a "store pruned" event when anything went, and checkpoints the WAL (truncating it).
        """
        cutoff = now - self.retention_days * DAY_S
        acked_only = self._outbox.acked_seq() if self.keep_unacknowledged else None
        expired = self._outbox.delete_older_than(cutoff, acked_only)
        events = 0
        # Events too go only once the ATN has acknowledged them (an audit event dated 1970 is not old).
        events_upto = self._events_acked if self.keep_unacknowledged else self.last_event_seq()
        while True:
            with transaction(self._conn):
                deleted = self._conn.execute(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE ts < ? AND seq <= ? LIMIT ?)",
                    (cutoff, events_upto, DELETE_CHUNK),
                ).rowcount
            events += deleted
            if deleted < DELETE_CHUNK:
                break
        with transaction(self._conn):
            overrides = self._conn.execute("DELETE FROM overrides WHERE released_at < ?", (cutoff,)).rowcount
        oldest_before = self._outbox.oldest_seq()
        over_cap = self._enforce_cap()
        total = expired + events + overrides + over_cap
        if total:
            counts = {
                "readings_expired": expired,
                "readings_over_cap": over_cap,
                "events_expired": events,
                "overrides_expired": overrides,
            }
            details: dict[str, Any] = {
                **counts,
                "oldest_seq": self._outbox.oldest_seq(),
                "used_bytes": self._used_bytes(),
            }
            message = "store pruned"
            lost = self._unacknowledged_lost(oldest_before)
            if lost is not None:
                first, last = lost
                details["unacknowledged_dropped"] = {"first_seq": first, "last_seq": last}
                message = (
                    f"store pruned to stay under its size cap ({self.max_size_mb:g} MB): readings seq {first}..{last},"
                    " which the ATN had not acknowledged, were dropped"
                )
                log.warning("unacknowledged readings dropped under the size cap", first_seq=first, last_seq=last)
            self.add_event(Event(ts=now, kind="store", message=message, data=details))
            self.checkpoint()
            log.info("store pruned", **counts)
        return total

    def _unacknowledged_lost(self, oldest_before: int | None) -> tuple[int, int] | None:
        """The seqs above the acknowledged point that the size cap deleted (first, last), if any."""
        if oldest_before is None:
            return None
        oldest_now = self._outbox.oldest_seq()
        gone_upto = (oldest_now if oldest_now is not None else self.last_seq() + 1) - 1
        first = max(oldest_before, self.acked_seq() + 1)
        return (first, gone_upto) if gone_upto >= first else None

    def _used_bytes(self) -> int:
        def pragma(name: str) -> int:
            value: int = self._conn.execute(f"PRAGMA {name}").fetchone()[0]
            return value

        return (pragma("page_count") - pragma("freelist_count")) * pragma("page_size")

    def _enforce_cap(self) -> int:
        cap = self.max_size_mb * MB
        if self.size_bytes() <= cap:
            return 0
        target = CAP_TARGET * cap
        deleted = 0
        while (used := self._used_bytes()) > target:
            oldest = self._outbox.oldest_seq()
            if oldest is None:
                break  # nothing left to give: the rest of the file is not readings
            # Rows to drop, from the share of the pages to free; other tables are small, so this errs towards
            # too few and the loop goes round again rather than deleting more than needed.
            share = (used - target) / used
            deleted += self._outbox.delete_oldest(math.ceil(share * (self.last_seq() - oldest + 1)))
        return deleted

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate it (skipped quietly while a reader is in it)."""
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    def size_bytes(self) -> int:
        """The database file plus its WAL, in bytes."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):  # no WAL yet, or just truncated away
                total += os.stat(f"{self.path}{suffix}").st_size
        return total


_CREATE_REQUEST_IDS = "CREATE TABLE IF NOT EXISTS request_ids (id TEXT PRIMARY KEY, expires_at REAL NOT NULL)"

_CREATE_QUARANTINE = """CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    row TEXT NOT NULL,
    reason TEXT NOT NULL
)"""
T = TypeVar("T")
RowReader = Callable[[tuple[Any, ...]], Any]


def _private(path: Path) -> None:
    """Create the store file readable by its owner only (SQLite gives its WAL the same mode), or make an existing
    one so: readings, overrides and the audit trail are nobody else's business."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # someone else's file, or a read-only one: SQLite says what is wrong when it opens it
        return
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    except PermissionError:  # someone else's file: leave it as it is
        pass
    finally:
        os.close(fd)


def _to_override(row: tuple[Any, ...]) -> Override:
    fields = dict(zip((*_OVERRIDE_COLUMNS, "released_at", "released_by"), row, strict=True))
    fields["value"] = decode_json(str(fields["value"]), STORE_LIMITS)  # JSON keeps a relay's true apart from 1.0
    return Override.model_validate(fields)


def _to_lease(row: tuple[Any, ...]) -> Lease:
    return Lease.model_validate(decode_json(str(row[1]), STORE_LIMITS))


def _to_forecast(row: tuple[Any, ...]) -> PriceForecast:
    return PriceForecast.model_validate(decode_json(str(row[1]), STORE_LIMITS))


def _row_problem(reader: RowReader, row: tuple[Any, ...]) -> str | None:
    """Why a stored row cannot be used, or None when it can. Read back through the one parse path."""
    try:
        reader(row)
    except Rejected as rejected:
        return rejected.reason
    except ValidationError as invalid:
        return describe(invalid)
    return None


def _valid_rows(rows: Iterable[tuple[Any, ...]], reader: Callable[[tuple[Any, ...]], T], table: str) -> Iterator[T]:
    """The rows that validate, read; one that does not is logged and skipped (`quarantine_invalid` moves it)."""
    for row in rows:
        try:
            yield reader(row)
        except (Rejected, ValidationError) as error:
            reason = error.reason if isinstance(error, Rejected) else describe(error)
            log.error("stored row skipped: it no longer validates", table=table, key=str(row[0]), reason=reason)


def _event_from_row(seq: int, ts: float, kind: str, message: str, data: str) -> Event:
    """An event read back; data that no longer decodes is shown as such rather than failing the reader."""
    try:
        decoded = decode_json(str(data), STORE_LIMITS)
        if not isinstance(decoded, dict):
            raise Rejected(f"expected an object, got {type(decoded).__name__}")
    except Rejected as rejected:
        log.error("stored event data unreadable", seq=seq, reason=rejected.reason)
        decoded = {"unreadable": rejected.reason}
    return Event(ts=ts, kind=kind, message=message, data=decoded)


def _finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by its name as a string, for JSON that stays finite."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _event_data_json(data: Mapping[str, Any]) -> str:
    """Event data as JSON. default=str: an event is worth keeping even if someone put a non-JSON value (a Path, a
    set) in it; a NaN is kept as the string "nan", never as a JSON NaN that the parse path would refuse."""
    try:
        return json.dumps(data, default=str, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(data), default=str, separators=(",", ":"))
