"""The readings outbox: rows queued in memory, committed once a second, forwarded in seq order, pruned oldest first.

Bytes per commit, not bytes per row, decide SD-card wear here: a commit appends every page it touched to the WAL
(512 bytes each plus a 24-byte header). So a flush touches as few pages as it can: the last leaf of `readings` (seq is
the rowid, so rows append), the `timeline` only when a 5-minute bucket starts, `meta` only now and then for the ack
cursor, and no per-row index. See bench/store_bytes_per_day.py for the figures.
"""

from __future__ import annotations

import math
import sqlite3
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controller.readings import Quality, Snapshot
from controller.store.recorder import ChannelPolicy, PendingRow, Recorder
from controller.store.schema import QUALITY_CODES, QUALITY_OF_CODE, TIMELINE_BUCKET_S, synced_commit, transaction

MAX_PENDING = 24 * 600  # ten minutes of 24 channels at 1 Hz if flushes keep failing (disk full); oldest dropped
DELETE_CHUNK = 20_000  # seqs per delete transaction: keeps each commit short on a Pi
ACK_SAVE_EVERY = 60  # flushes: the ack cursor is written about once a minute, not with every commit
ACKED_KEY = "acked_seq"
SEQ_FLOOR_KEY = "seq_floor"
SEQ_RESERVED_KEY = "seq_reserved"
# Sequence numbers are handed out from blocks reserved by a commit that is synced to the card (synchronous=FULL
# for that one commit). A power cut can roll back the per-second commits after it, but never the reservation, so
# the next start carries on above the block and no seq the ATN may already hold is issued again for other
# content. 4096 seqs last about an hour at a busy site's ~1 row/s: one fsync an hour, not one a second.
SEQ_BLOCK = 4096
_BUCKET_LIMIT = 2**53  # keeps an infinite query bound a finite bucket number

_SELECT = "SELECT seq, ts, channel, value, quality FROM readings"
_UPSERT_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


@dataclass(frozen=True, slots=True)
class StoredReading:
    """A committed reading row: `seq` orders the outbox and never repeats."""

    seq: int
    ts: float
    channel: str
    value: float | None
    quality: Quality


def bucket_of(ts: float) -> int:
    """The timeline bucket holding `ts` (infinite bounds are clamped, so queries may pass them)."""
    return math.floor(max(-_BUCKET_LIMIT, min(_BUCKET_LIMIT, ts / TIMELINE_BUCKET_S)))


def _merge(spans: Iterable[tuple[int, int | None]]) -> list[tuple[int, int | None]]:
    """Adjacent [first_seq, next_first_seq) spans joined into ranges, so a steady clock gives one range."""
    ranges: list[tuple[int, int | None]] = []
    for start, end in spans:
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((start, end))
    return ranges


class Outbox:
    """The readings table and everything about it. Owned by `Store`, which shares its connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.recorder = Recorder()
        self._pending: deque[PendingRow] = deque()
        self.dropped = 0
        """Readings dropped from the queue because flushes kept failing (see `MAX_PENDING`)."""
        self._channel_ids: dict[str, int] = {}
        self._channel_names: dict[int, str] = {}
        for channel_id, name in conn.execute("SELECT id, name FROM channels"):
            self._remember_channel(name, channel_id)
        newest = conn.execute("SELECT max(seq) FROM readings").fetchone()[0] or 0
        self._reserved = self._meta_int(SEQ_RESERVED_KEY)
        # Above the reserved block: after a power cut, seqs up to it may have been sent (and acknowledged) in
        # commits the cut rolled back. After a clean close the reservation is the last seq, so nothing is skipped.
        self._last_seq = max(int(newest), self._meta_int(SEQ_FLOOR_KEY), self._reserved)
        self._bucket = self._newest_bucket()
        self._acked = self._acked_saved = min(self._meta_int(ACKED_KEY), self._last_seq)
        self._flushes_since_ack_saved = 0

    def _meta_int(self, key: str) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row is not None else 0

    def _newest_bucket(self) -> int | None:
        row = self._conn.execute("SELECT bucket FROM timeline ORDER BY first_seq DESC LIMIT 1").fetchone()
        return int(row[0]) if row is not None else None

    def _remember_channel(self, name: str, channel_id: int) -> None:
        self._channel_ids[name] = channel_id
        self._channel_names[channel_id] = name

    # --- writing -------------------------------------------------------------------------------------------
    def queue(self, snapshot: Snapshot, policies: Mapping[str, ChannelPolicy]) -> int:
        """Queue the rows the recorder keeps from `snapshot`; returns how many."""
        rows = self.recorder.select(snapshot, policies)
        for row in rows:
            if len(self._pending) >= MAX_PENDING:
                self._pending.popleft()
                self.dropped += 1
            self._pending.append(row)
        return len(rows)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self, *, save_ack: bool = False) -> int:
        """Commit the queued rows in one transaction; returns how many. See `Store.flush`."""
        if self._acked > self._acked_saved:
            self._flushes_since_ack_saved += 1
            save_ack = save_ack or self._flushes_since_ack_saved >= ACK_SAVE_EVERY
        else:
            save_ack = False
        if not self._pending and not save_ack:
            return 0
        rows = list(self._pending)
        seq, bucket = self._last_seq, self._bucket
        new_channels: dict[str, int] = {}
        readings, marks = [], []
        reserve = seq + len(rows) + SEQ_BLOCK if seq + len(rows) > self._reserved else None
        with synced_commit(self._conn, reserve is not None), transaction(self._conn):
            for row in rows:
                seq += 1
                row_bucket = bucket_of(row.ts)
                if row_bucket != bucket:
                    marks.append((seq, row_bucket))
                    bucket = row_bucket
                channel_id = self._channel_id(row.channel, new_channels)
                readings.append((seq, row.ts, channel_id, row.value, QUALITY_CODES[row.quality]))
            self._conn.executemany(
                "INSERT INTO readings (seq, ts, channel, value, quality) VALUES (?, ?, ?, ?, ?)", readings
            )
            if marks:
                self._conn.executemany("INSERT INTO timeline (first_seq, bucket) VALUES (?, ?)", marks)
            if save_ack:
                self._conn.execute(_UPSERT_META, (ACKED_KEY, self._acked))
            if reserve is not None:
                # In the same commit as the rows, synced: no seq of this block is on the card without it.
                self._conn.execute(_UPSERT_META, (SEQ_RESERVED_KEY, reserve))
        # Only after the commit: a rolled-back flush must leave no trace in what we believe the file holds.
        for name, channel_id in new_channels.items():
            self._remember_channel(name, channel_id)
        self._last_seq, self._bucket = seq, bucket
        if reserve is not None:
            self._reserved = reserve
        for _ in rows:
            self._pending.popleft()
        if save_ack:
            self._acked_saved = self._acked
            self._flushes_since_ack_saved = 0
        return len(rows)

    def _reserve_block(self, upto: int) -> None:
        """Set the reservation to `upto` in a commit synced to the card."""
        with synced_commit(self._conn, True), transaction(self._conn):
            self._conn.execute(_UPSERT_META, (SEQ_RESERVED_KEY, upto))
        self._reserved = upto

    def release_reservation(self) -> None:
        """At a clean close: give back the unused part of the block (synced), so the next start skips nothing."""
        if self._reserved > self._last_seq:
            self._reserve_block(self._last_seq)

    def move_past(self, seq: int) -> bool:
        """The ATN holds seqs up to `seq`, beyond anything this store has (a card that lied about a sync): carry
        on above it, so no seq it holds is issued again. Returns whether the store had to move."""
        if seq <= self._last_seq:
            return False
        self._last_seq = seq
        return True

    def _channel_id(self, name: str, new: dict[str, int]) -> int:
        known = self._channel_ids.get(name, new.get(name))
        if known is not None:
            return known
        self._conn.execute("INSERT INTO channels (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (name,))
        channel_id: int = self._conn.execute("SELECT id FROM channels WHERE name = ?", (name,)).fetchone()[0]
        new[name] = channel_id
        return channel_id

    # --- forwarding ----------------------------------------------------------------------------------------
    def last_seq(self) -> int:
        return self._last_seq

    def ack_upto(self, seq: int) -> None:
        target = min(seq, self._last_seq)
        if target > self._acked:
            self._acked = target

    def acked_seq(self) -> int:
        return self._acked

    def readings_after(self, seq: int, limit: int) -> list[StoredReading]:
        return self._stored(self._conn.execute(f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)))

    def telemetry_after(self, seq: int, limit: int) -> list[tuple[int, float, str, float | None, str]]:
        """Like `readings_after`, as plain (seq, ts, channel, value, quality) tuples: the replay path, where a
        dataclass per row cost more than reading it (JSON encodes the tuples as arrays directly)."""
        names, qualities = self._channel_names, QUALITY_OF_CODE
        cursor = self._conn.execute(f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
        return [(s, t, names[c], v, qualities[q]) for s, t, c, v, q in cursor]

    def _stored(self, rows: Iterable[tuple[int, float, int, float | None, int]]) -> list[StoredReading]:
        return [
            StoredReading(seq, ts, self._channel_names[channel], value, QUALITY_OF_CODE[quality])
            for seq, ts, channel, value, quality in rows
        ]

    def _spans(self, condition: str, bound: tuple[int, ...]) -> list[tuple[int, int | None]]:
        """Timeline spans matching `condition` as [first_seq, next first_seq or None for the newest)."""
        return self._conn.execute(
            "SELECT first_seq, (SELECT min(later.first_seq) FROM timeline AS later WHERE later.first_seq > t.first_seq)"
            f" FROM timeline AS t WHERE {condition} ORDER BY first_seq",
            bound,
        ).fetchall()

    def history(self, channel: str, since: float, until: float) -> list[StoredReading]:
        channel_id = self._channel_ids.get(channel)
        if channel_id is None or not since < until:
            return []
        rows = []
        for start, end in _merge(self._spans("bucket BETWEEN ? AND ?", (bucket_of(since), bucket_of(until)))):
            rows += self._conn.execute(
                f"{_SELECT} WHERE seq >= ? AND seq < ? AND channel = ? AND ts >= ? AND ts < ?",
                (start, self._last_seq + 1 if end is None else end, channel_id, since, until),
            ).fetchall()
        rows.sort(key=lambda row: (row[1], row[0]))
        return self._stored(rows)

    # --- pruning -------------------------------------------------------------------------------------------
    def delete_older_than(self, cutoff: float, upto_seq: int | None = None) -> int:
        """Delete the readings of every timeline bucket that ended at or before `cutoff`, but none above
        `upto_seq` (the acknowledged ones only; None: no such limit); returns how many.

        Retention works to the bucket (5 min): a row up to one bucket older than the cutoff may stay a little.
        """
        spans = self._spans("bucket < ?", (bucket_of(cutoff),))
        limit = self._last_seq + 1 if upto_seq is None else min(upto_seq, self._last_seq) + 1
        deleted = 0
        for start, end in _merge(spans):
            deleted += self._delete_range(start, min(limit, self._last_seq + 1 if end is None else end))
        # A span's timeline row goes once all of it went; one cut by the limit keeps it (its first rows are gone).
        emptied = [(s,) for s, end in spans if (self._last_seq + 1 if end is None else end) <= limit]
        if emptied:
            with transaction(self._conn):
                self._conn.executemany("DELETE FROM timeline WHERE first_seq = ?", emptied)
            self._bucket = self._newest_bucket()
        return deleted

    def delete_oldest(self, count: int) -> int:
        """Delete the `count` oldest seqs' readings (fewer rows if some are gone already); returns how many."""
        oldest = self._conn.execute("SELECT min(seq) FROM readings").fetchone()[0]
        if oldest is None:
            return 0
        end = int(oldest) + max(1, count)
        deleted = self._delete_range(int(oldest), end)
        with transaction(self._conn):
            # Spans wholly below `end` go; the one running across it stays (its first rows are simply gone).
            self._conn.execute(
                "DELETE FROM timeline WHERE first_seq < (SELECT max(first_seq) FROM timeline WHERE first_seq <= ?)",
                (end,),
            )
        return deleted

    def oldest_seq(self) -> int | None:
        row = self._conn.execute("SELECT min(seq) FROM readings").fetchone()
        return int(row[0]) if row[0] is not None else None

    def _delete_range(self, start: int, end: int) -> int:
        deleted = 0
        while start < end:
            stop = min(end, start + DELETE_CHUNK)
            with transaction(self._conn):
                # The floor first, in the same transaction: once the newest rows are gone, it alone keeps their
                # seqs from being handed out again.
                self._conn.execute(_UPSERT_META, (SEQ_FLOOR_KEY, self._last_seq))
                deleted += self._conn.execute("DELETE FROM readings WHERE seq >= ? AND seq < ?", (start, stop)).rowcount
            start = stop
        return deleted
