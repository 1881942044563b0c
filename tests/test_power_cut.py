"""Power cuts against the ATN's view (finding 6 of issue 8): while the ATN acknowledges, the store is rolled back
to an earlier durable state (a copy of its files taken after the last synced commit: what a power cut leaves when
the later commits were not yet on the card), the controller starts from it, and the reference ATN's ledger is
checked: no seq reused with different content, nothing it acknowledged lost, and nothing stuck behind the seqs
the controller skipped."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest

from controller.atnsim.ledger import Ledger
from controller.protocol import TelemetryRow
from controller.readings import Quality, Reading, Snapshot
from controller.store import ChannelPolicy, Store

SITE = "demo-house"
T0 = 1_767_225_600.0
EVERY_ROW = {"tank-top": ChannelPolicy(deadband=0.0, keepalive_s=1.0)}


class Atn:
    """The reference ATN's ledger, fed batches the way the link sends them, acknowledging back to the store."""

    def __init__(self, path: Path) -> None:
        self.ledger = Ledger.open(path)
        self.sent = 0

    def exchange(self, store: Store) -> None:
        self.sent = store.acked_seq()  # a (re)connection sends again from the acknowledged point
        while rows := store.telemetry_after(self.sent, 50):
            covers = (self.sent + 1, rows[-1][0])
            self.ledger.store(SITE, rows, historical=False, covers=covers)
            self.sent = rows[-1][0]
            store.atn_holds_upto(self.ledger.contiguous_upto(SITE))
            store.ack_upto(min(self.ledger.contiguous_upto(SITE), self.sent))

    def held(self) -> dict[int, TelemetryRow]:
        return {row[0]: row for row, _ in self.ledger.rows(SITE, limit=100_000)}


def write(store: Store, start: float, count: int, base: float) -> None:
    """`count` readings a second apart, each committed (a flush a second, as the writer task does)."""
    for i in range(count):
        ts = start + i
        reading = Reading("tank-top", base + i, "degC", Quality.OK, ts)
        store.record(Snapshot(ts, MappingProxyType({"tank-top": reading})), EVERY_ROW)
        store.flush()


def copy_files(source: Path, target: Path) -> None:
    """What the card holds: the database file and its WAL, byte for byte."""
    for suffix in ("", "-wal"):
        src = Path(f"{source}{suffix}")
        dst = Path(f"{target}{suffix}")
        dst.unlink(missing_ok=True)
        if src.exists():
            shutil.copyfile(src, dst)


def power_cut(store: Store, durable: Path) -> None:
    """The power goes: nothing is closed cleanly, and the card holds the `durable` copy."""
    conn = store._conn
    store._closed = True
    conn.close()
    for suffix in ("-shm",):
        Path(f"{store.path}{suffix}").unlink(missing_ok=True)
    copy_files(durable, store.path)


@pytest.fixture
def atn(tmp_path: Path) -> Iterator[Atn]:
    atn = Atn(tmp_path / "atn.sqlite")
    yield atn
    atn.ledger.close()


@pytest.mark.parametrize("rolled_back_rows", [1, 5, 40])
def test_a_power_cut_never_reuses_a_seq_the_atn_holds(tmp_path: Path, atn: Atn, rolled_back_rows: int) -> None:
    path = tmp_path / "hearth.sqlite"
    store = Store.open(path)
    write(store, T0, 10, base=20.0)
    atn.exchange(store)
    copy_files(path, tmp_path / "durable.sqlite")  # the last synced state: the card holds at least this
    write(store, T0 + 10, rolled_back_rows, base=30.0)  # committed, sent and acknowledged, but never synced
    atn.exchange(store)
    acked_before = atn.ledger.contiguous_upto(SITE)
    assert acked_before == 10 + rolled_back_rows
    held_before = atn.held()

    power_cut(store, tmp_path / "durable.sqlite")
    with Store.open(path) as store:
        assert store.last_seq() > acked_before  # it carries on above every seq it may have handed out
        write(store, T0 + 100, 10, base=40.0)  # new readings after the restart
        atn.exchange(store)
        assert atn.ledger.conflicts(SITE) == []  # no seq came again with other content
        held = atn.held()
        assert all(held[seq] == row for seq, row in held_before.items())  # nothing the ATN acknowledged changed
        new = store.telemetry_after(acked_before, 100)
        assert len(new) == 10 and all(held.get(row[0]) == row for row in new)  # the new readings all arrived
        assert atn.ledger.contiguous_upto(SITE) == store.last_seq()  # acknowledged past the skipped seqs


def test_a_clean_restart_skips_no_seq(tmp_path: Path) -> None:
    path = tmp_path / "hearth.sqlite"
    with Store.open(path) as store:
        write(store, T0, 3, base=20.0)
    with Store.open(path) as store:
        write(store, T0 + 3, 2, base=20.0)
        assert [row[0] for row in store.telemetry_after(0, 10)] == [1, 2, 3, 4, 5]
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL again after reserving


def test_a_card_that_lost_a_synced_commit_moves_past_what_the_atn_holds(tmp_path: Path, atn: Atn) -> None:
    """Belt and braces: a rollback past the reservation (a card that lied about an fsync) is caught by the ATN,
    which refuses the reused seqs loudly and keeps what it had; its acknowledgement then moves the controller past
    everything it holds, so only that first batch is refused."""
    path = tmp_path / "hearth.sqlite"
    store = Store.open(path)
    copy_files(path, tmp_path / "empty.sqlite")  # before any reservation
    write(store, T0, 20, base=20.0)
    atn.exchange(store)
    held_before = atn.held()
    power_cut(store, tmp_path / "empty.sqlite")
    with Store.open(path) as store:
        assert store.last_seq() == 0  # the card lost everything, reservation included
        write(store, T0 + 100, 3, base=50.0)
        atn.exchange(store)
        assert [seq for seq, _, _ in atn.ledger.conflicts(SITE)] == [1, 2, 3]  # caught, loudly
        assert all(atn.held()[seq] == row for seq, row in held_before.items())  # and the ATN kept its own
        write(store, T0 + 200, 5, base=60.0)
        atn.exchange(store)
        assert len(atn.ledger.conflicts(SITE)) == 3  # nothing more: the store carries on above seq 20
        assert [row[0] for row in store.telemetry_after(20, 10)] == [21, 22, 23, 24, 25]


def test_the_atn_refuses_a_known_seq_with_other_content_loudly(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "atn.sqlite")
    try:
        first: list[TelemetryRow] = [(1, T0, "tank-top", 20.0, "ok"), (2, T0 + 1, "tank-top", 21.0, "ok")]
        assert ledger.store(SITE, first, False, covers=(1, 2)) == 2
        again: list[TelemetryRow] = [(2, T0 + 1, "tank-top", 21.0, "ok"), (3, T0 + 2, "tank-top", 22.0, "ok")]
        reused: list[TelemetryRow] = [(2, T0 + 50, "outdoor", -3.0, "ok")]
        assert ledger.store(SITE, again, False, covers=(2, 3)) == 1  # a plain duplicate: no conflict
        assert ledger.last_conflicts == []
        assert ledger.store(SITE, reused, False, covers=(2, 2)) == 0
        ((seq, kept, refused),) = ledger.last_conflicts
        assert seq == 2 and kept == first[1] and refused == reused[0]
        assert ledger.conflicts(SITE) == [(2, first[1], reused[0])]  # recorded for good
        assert dict((r[0], r) for r, _ in ledger.rows(SITE))[2] == first[1]  # the first content is kept
    finally:
        ledger.close()
