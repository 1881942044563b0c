"""What an override's life is after a restart (docs/control.md, "After a restart"): the same boot keeps its
monotonic timer exactly; another boot never ends it earlier than it would have ended, whatever the wall clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.clock import ManualClock
from controller.control.types import Override
from controller.overrides import OverrideBook
from controller.store import Store
from controller.store.database import OverrideTimer
from tests.simhelpers import demo_layout

LAYOUT = demo_layout()
WALL0 = 1_767_225_600.0


def left_after_restart(path: Path, clock: ManualClock) -> float | None:
    with Store.open(path) as store:
        active = OverrideBook(store, LAYOUT, clock).active()
        return active[0].expires_at - clock.now() if active else None


def set_override(path: Path, clock: ManualClock, duration: float = 600.0) -> None:
    with Store.open(path) as store:
        OverrideBook(store, LAYOUT, clock).set("heat-pump", False, duration, who="tech", origin="test")


@pytest.mark.parametrize("step_s", [0.0, 365 * 86400.0, -3600.0, -WALL0])
def test_a_process_restart_on_the_same_boot_keeps_the_monotonic_timer(tmp_path: Path, step_s: float) -> None:
    clock = ManualClock(WALL0)
    set_override(tmp_path / "s.sqlite", clock)
    clock.advance(100)
    clock.step_wall(step_s)  # NTP stepped while the controller was restarting (even to 1970)
    left = left_after_restart(tmp_path / "s.sqlite", clock)
    assert left is not None and abs(left - 500) < 1e-6


@pytest.mark.parametrize(
    ("wall_at_boot", "left"),
    [
        (WALL0 - 3600, 600.0),  # fake-hwclock behind the write: the whole life left at the write
        (0.0, 600.0),  # 1970: the same
        (WALL0 + 100, 500.0),  # a clock at or past the write: its wall-clock expiry may shorten it
        (WALL0 + 600, None),  # past its expiry by a clock that has reached the write: it ended meanwhile
    ],
)
def test_after_a_reboot_an_override_never_ends_earlier_than_it_would_have(
    tmp_path: Path, wall_at_boot: float, left: float | None
) -> None:
    set_override(tmp_path / "s.sqlite", ManualClock(WALL0, boot_id="before"))
    rebooted = ManualClock(wall_at_boot, boot_id="after")
    found = left_after_restart(tmp_path / "s.sqlite", rebooted)
    assert found == pytest.approx(left) if left is not None else found is None
    if left is not None:  # and from then on it runs on this boot's monotonic clock, across any later step
        rebooted.advance(left - 1)
        rebooted.step_wall(365 * 86400.0)
        assert left_after_restart(tmp_path / "s.sqlite", rebooted) == pytest.approx(1.0)
        rebooted.advance(1)
        assert left_after_restart(tmp_path / "s.sqlite", rebooted) is None


def test_a_version_1_store_gains_the_override_timers_and_keeps_its_overrides(tmp_path: Path) -> None:
    import sqlite3

    from controller.store import schema

    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    schema.migrate(conn, target=1)
    conn.execute(
        "INSERT INTO overrides (id, target, value, created_at, expires_at, who) VALUES (?, ?, ?, ?, ?, ?)",
        ("ov-old", "heat-pump", "false", WALL0 - 60, WALL0 + 540, "tech"),
    )
    conn.close()
    with Store.open(path) as store:
        assert schema.user_version(store._conn) == schema.SCHEMA_VERSION
        ((override, timer),) = store.unreleased_overrides()
        assert override.id == "ov-old" and timer is None
    # Restored like one from another boot: its wall-clock expiry, as the clock has reached its last write.
    assert left_after_restart(path, ManualClock(WALL0)) == pytest.approx(540.0)


class CountingStore(Store):
    """A real store that counts how often the overrides are read back."""

    reads = 0

    def unreleased_overrides(self) -> list[tuple[Override, OverrideTimer | None]]:
        self.reads += 1
        return super().unreleased_overrides()


def test_the_book_reads_the_store_back_only_after_a_write(tmp_path: Path) -> None:
    """The tick and every state message ask for the active overrides; the store is asked only after a write."""
    clock = ManualClock(WALL0)
    store = CountingStore.open(tmp_path / "s.sqlite")
    assert isinstance(store, CountingStore)
    book = OverrideBook(store, LAYOUT, clock)
    for _ in range(5):
        assert book.active() == []
    assert store.reads == 1
    ov = book.set("heat-pump", False, 60.0, who="tech", origin="test")
    assert [o.id for o in book.active()] == [ov.id] and store.reads == 2  # the write is read back once
    for _ in range(5):
        book.active()
    assert store.reads == 2
    clock.advance(61)  # it expires: the book releases it, and reads the store again once
    assert book.active() == [] and book.active() == [] and book.active() == []
    assert store.reads == 3
    store.close()
