"""The reference ATN's telemetry ledger: every reading it received, per site, in SQLite.

Readings are keyed by (site, seq) and inserted with INSERT OR IGNORE, so a re-sent batch changes nothing. A seq
it already holds arriving with *different* content is a controller reusing a seq (a promise of the protocol
broken): the first content is kept, and the conflict is recorded in the `conflicts` table and returned, for the
caller to report loudly. What the ATN may acknowledge is the top of the contiguous run of sequence numbers that
starts at the first one it ever saw for the site: a gap holds the acknowledgement back, so the controller keeps
the missing readings and sends them again, unless a batch declared the range empty (its `first_seq..last_seq`
covers every seq after the previous batch: seqs skipped after a power cut or dropped by the size cap do not
exist). That value and the first sequence number live in the `meta` table, so a restarted ATN carries on.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from controller.protocol import EventMsg, TelemetryRow

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    site TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    channel TEXT NOT NULL,
    value REAL,
    quality TEXT NOT NULL,
    historical INTEGER NOT NULL,
    PRIMARY KEY (site, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conflicts (
    site TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kept TEXT NOT NULL,
    refused TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    site TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (site, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    site TEXT NOT NULL,
    key TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (site, key)
) WITHOUT ROWID;
"""
FIRST_SEQ, ACKED = "first_seq", "acked_seq"
EVENTS_FIRST_SEQ, EVENTS_ACKED = "events_first_seq", "events_acked_seq"

# The end of the run of consecutive sequence numbers that continues `upto` (walks the primary key, stops at the
# first seq whose successor is missing).
# Both take {table}: readings or events.
_RUN_END = """
SELECT r.seq FROM {table} AS r
WHERE r.site = :site AND r.seq > :upto
  AND NOT EXISTS (SELECT 1 FROM {table} AS n WHERE n.site = r.site AND n.seq = r.seq + 1)
ORDER BY r.seq LIMIT 1
"""
_GAPS = """
SELECT prev + 1, seq - 1 FROM (
    SELECT seq, LAG(seq) OVER (ORDER BY seq) AS prev FROM {table} WHERE site = ?
) WHERE seq - prev > 1 ORDER BY seq
"""


class Ledger:
    """One SQLite file (WAL). Not thread-safe: use it from one thread (the event loop)."""

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self._db = connection
        self.path = path
        self.last_conflicts: list[tuple[int, TelemetryRow, TelemetryRow]] = []
        """The conflicts the last `store` call found: (seq, the row kept, the row refused)."""

    @classmethod
    def open(cls, path: str | Path) -> Ledger:
        """Open (creating if needed) a ledger; ":memory:" for a throwaway one."""
        where = str(path)
        if where != ":memory:":
            Path(where).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(where, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        return cls(db, where)

    @classmethod
    def open_to_read(cls, path: str | Path) -> Ledger:
        """Open an existing ledger read-only (for `atn-sim check`): nothing is created or changed, and a file that
        is not a ledger (a controller's store, say) raises `sqlite3.DatabaseError` naming what it lacks."""
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        try:
            for table in ("readings", "events", "meta"):
                columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if "site" not in columns:
                    raise sqlite3.DatabaseError(f"no {table} table with a site column")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return cls(db, str(path))

    def close(self) -> None:
        self._db.close()

    # ---- meta ------------------------------------------------------------------------------------------------

    def _meta(self, site: str, key: str) -> int | None:
        row = self._db.execute("SELECT value FROM meta WHERE site = ? AND key = ?", (site, key)).fetchone()
        return None if row is None else int(row[0])

    def _set_meta(self, site: str, key: str, value: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (site, key, value) VALUES (?, ?, ?)", (site, key, value))

    # ---- writing ---------------------------------------------------------------------------------------------

    def store(
        self, site: str, rows: Sequence[TelemetryRow], historical: bool, covers: tuple[int, int] | None = None
    ) -> int:
        """Persist readings (duplicates by seq are dropped); returns how many were new. One transaction (or part
        of the group's, `transaction`); duplicates are not even offered to the insert.

        `covers` is the batch's (first_seq, last_seq): no seq in it exists but those in `rows`. A row whose seq is
        stored with other content is refused and recorded (`conflicts`, `last_conflicts`).
        """
        self.last_conflicts = []
        if not rows and covers is None:
            return 0
        db = self._db
        with self.transaction():
            rows = self._refuse_conflicts(site, rows)
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO readings (site, seq, ts, channel, value, quality, historical) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (site, seq, ts, channel, value, quality, int(historical))
                    for seq, ts, channel, value, quality in rows
                ],
            )
            inserted = db.total_changes - before
            first = self._meta(site, FIRST_SEQ)
            if first is None:
                # A controller's sequence numbers start at 1. Acknowledging from the first one this ledger
                # happens to see would tell the controller that readings it never received are safe.
                first = 1
                self._set_meta(site, FIRST_SEQ, first)
            upto = self._meta(site, ACKED)
            upto = first - 1 if upto is None else upto
            if covers is not None and covers[0] <= upto + 1 < covers[1] + 1:
                upto = covers[1]  # everything up to the batch's end is here or does not exist
                self._set_meta(site, ACKED, upto)
            self._extend_run(site, "readings", ACKED, upto)
        return inserted

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction (one commit) around several writes; `store` and `store_event` inside it are part of
        it. The ATN stores the messages waiting for it together. Anything raised inside rolls every write of the
        group back."""
        if self._db.in_transaction:  # inside a group already (autocommit otherwise: isolation_level=None)
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _refuse_conflicts(self, site: str, rows: Sequence[TelemetryRow]) -> list[TelemetryRow]:
        """`rows` that may be new: without those stored already with the same content (duplicates: a resent
        window) and without those whose seq is stored with different content (recorded as conflicts).

        Compared as whole tuples in sets (hashing at C speed; an int and the float it equals compare equal, as
        they did field by field): a resent window of 2,000 rows costs one range read, not a Python comparison
        of every field of every row. A batch beyond every stored seq (the usual one) reads nothing back."""
        if not rows:
            return []
        seqs = [row[0] for row in rows]
        held = self._db.execute(
            "SELECT seq, ts, channel, value, quality FROM readings WHERE site = ? AND seq BETWEEN ? AND ?",
            (site, min(seqs), max(seqs)),
        ).fetchall()
        if not held:
            return list(rows)
        unchanged = set(held)
        maybe_new = [row for row in rows if row not in unchanged]
        if not maybe_new:
            return []
        kept = {row[0]: row for row in held}
        accepted = []
        for row in maybe_new:
            stored = kept.get(row[0])
            if stored is None:
                accepted.append(row)
                continue
            received = (row[0], float(row[1]), row[2], row[3], row[4])
            self.last_conflicts.append((row[0], stored, received))
            self._db.execute(
                "INSERT INTO conflicts (site, seq, kept, refused) VALUES (?, ?, ?, ?)",
                (site, row[0], json.dumps(stored), json.dumps(received)),
            )
        return accepted

    def conflicts(self, site: str) -> list[tuple[int, TelemetryRow, TelemetryRow]]:
        """Every seq that arrived again with different content: (seq, the row kept, the row refused)."""
        cursor = self._db.execute("SELECT seq, kept, refused FROM conflicts WHERE site = ? ORDER BY rowid", (site,))
        return [(int(seq), tuple(json.loads(kept)), tuple(json.loads(refused))) for seq, kept, refused in cursor]

    def _extend_run(self, site: str, table: str, acked_key: str, upto: int) -> None:
        """Move `acked_key` to the end of the run of consecutive seqs in `table` that continues `upto`, if any."""
        if self._db.execute(f"SELECT 1 FROM {table} WHERE site = ? AND seq = ?", (site, upto + 1)).fetchone():
            end = self._db.execute(_RUN_END.format(table=table), {"site": site, "upto": upto}).fetchone()
            self._set_meta(site, acked_key, int(end[0]))

    def store_event(self, site: str, event: EventMsg) -> bool:
        """Persist one event (a duplicate by seq is dropped); returns whether it was new. The acknowledgement is
        the top of the contiguous run from seq 1, as for readings: acknowledging from the first event this ledger
        happens to see would tell the controller that events sent before the ATN subscribed are safe. A gap holds
        the acknowledgement back until the controller sends the missing events again."""
        db = self._db
        with self.transaction():
            before = db.total_changes
            db.execute(
                "INSERT OR IGNORE INTO events (site, seq, ts, kind, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                (site, event.seq, event.ts, event.kind, event.message, json.dumps(event.data)),
            )
            new = db.total_changes > before
            first = self._meta(site, EVENTS_FIRST_SEQ)
            if first is None:
                first = 1  # a controller's event seqs start at 1
                self._set_meta(site, EVENTS_FIRST_SEQ, first)
            upto = self._meta(site, EVENTS_ACKED)
            upto = first - 1 if upto is None else upto
            self._extend_run(site, "events", EVENTS_ACKED, upto)
        return new

    def events_upto(self, site: str) -> int:
        """The highest event seq N such that every event from 1 up to N is stored (0 if none)."""
        return max(0, self._meta(site, EVENTS_ACKED) or 0)

    def event_gaps(self, site: str) -> list[tuple[int, int]]:
        """Missing event ranges (inclusive) between the lowest and the highest event seq stored."""
        return [(int(a), int(b)) for a, b in self._db.execute(_GAPS.format(table="events"), (site,))]

    def event_range(self, site: str) -> tuple[int, int, int] | None:
        """(count, lowest, highest) event seq stored, or None when there is none for the site."""
        count, low, high = self._db.execute(
            "SELECT COUNT(*), MIN(seq), MAX(seq) FROM events WHERE site = ?", (site,)
        ).fetchone()
        return None if low is None else (int(count), int(low), int(high))

    # ---- reading ---------------------------------------------------------------------------------------------

    def contiguous_upto(self, site: str) -> int:
        """The highest seq N such that every seq from 1 up to N is stored (0 if none)."""
        return max(0, self._meta(site, ACKED) or 0)

    def first_seen(self, site: str) -> int | None:
        return self._meta(site, FIRST_SEQ)

    def gaps(self, site: str) -> list[tuple[int, int]]:
        """Missing ranges (inclusive) between the lowest and the highest seq stored."""
        return [(int(a), int(b)) for a, b in self._db.execute(_GAPS.format(table="readings"), (site,))]

    def count(self, site: str) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM readings WHERE site = ?", (site,)).fetchone()[0])

    def seq_range(self, site: str) -> tuple[int, int] | None:
        """(lowest, highest) seq stored, or None when there is nothing for the site."""
        low, high = self._db.execute("SELECT MIN(seq), MAX(seq) FROM readings WHERE site = ?", (site,)).fetchone()
        return None if low is None else (int(low), int(high))

    def sites(self) -> list[str]:
        rows = self._db.execute(
            "SELECT DISTINCT site FROM meta UNION SELECT DISTINCT site FROM readings "
            "UNION SELECT DISTINCT site FROM events ORDER BY 1"
        )
        return [str(site) for (site,) in rows]

    def rows(self, site: str, after: int = -1, limit: int = 1000) -> list[tuple[TelemetryRow, bool]]:
        """Stored readings with seq > `after`, in order, with their historical flag (for tests and tools)."""
        cursor = self._db.execute(
            "SELECT seq, ts, channel, value, quality, historical FROM readings WHERE site = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (site, after, limit),
        )
        return [((int(s), float(t), str(c), v, str(q)), bool(h)) for s, t, c, v, q, h in cursor]
