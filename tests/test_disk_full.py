"""A full or failing disk degrades, never stops control (finding 7 of issue 8): the store is capped with SQLite's
`max_page_count`, which fails writes with "database or disk is full" exactly as a full SD card does."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from types import MappingProxyType

from controller import logs
from controller.control.types import Event
from controller.readings import Quality, Reading, Snapshot
from controller.store import ChannelPolicy, Store

T0 = 1_767_225_600.0
EVERY_ROW = {"tank-top": ChannelPolicy(deadband=0.0, keepalive_s=1.0)}


def fill(store: Store) -> None:
    """No page more: the next write that needs one fails with SQLITE_FULL."""
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")


def free(store: Store) -> None:
    store._conn.execute("PRAGMA max_page_count = 1073741823")


def reading(ts: float, value: float) -> Snapshot:
    return Snapshot(ts, MappingProxyType({"tank-top": Reading("tank-top", value, "degC", Quality.OK, ts)}))


def test_a_full_store_keeps_writes_in_memory_and_writes_them_when_space_returns(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "hearth.sqlite")
    store.add_event(Event(ts=T0, kind="start", message="controller started"))
    fill(store)
    failed = 0
    for i in range(600):  # enough rows and events to need new pages
        store.record(reading(T0 + i, 20.0 + i), EVERY_ROW)
        try:
            store.flush()
        except sqlite3.OperationalError as error:  # the writer task's business: it catches and goes on
            assert "full" in str(error)
            failed += 1
        store.add_event(Event(ts=T0 + i, kind="test", message=f"event {i} " + "x" * 200))  # never raises
    assert failed > 500 and store.failing is not None and "full" in store.failing
    trouble = store.trouble()
    assert trouble is not None and "readings queued in memory" in trouble and "events waiting" in trouble
    free(store)
    assert store.flush() == failed  # space is back: the queue goes in, and the waiting events after it
    assert [row[3] for row in store.telemetry_after(0, 1000)] == [20.0 + i for i in range(600)]
    assert store.failing is None and store.trouble() is None
    kinds = [event.kind for _, event in store.events_after(0, limit=10_000)]
    assert kinds[0] == "start" and kinds.count("test") == 600 and kinds[-1] == "store"  # in order, then "again"
    messages = [event.message for _, event in store.events_after(0, limit=10_000) if event.kind == "test"]
    assert messages == [f"event {i} " + "x" * 200 for i in range(600)]
    store.close()


def test_closing_a_full_store_does_not_fail(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "hearth.sqlite")
    fill(store)
    for i in range(300):
        store.record(reading(T0 + i, float(i)), EVERY_ROW)
    store.add_event(Event(ts=T0, kind="stop", message="controller stopped, relays safe" + "x" * 3000))
    store.close()  # flushing fails inside; the shutdown path goes on
    with Store.open(tmp_path / "hearth.sqlite") as reopened:
        assert reopened.integrity == "ok"


def test_the_controller_keeps_control_through_a_full_disk_and_recovers(tmp_path: Path) -> None:
    from controller.clock import SimClock
    from controller.layout.load import load_layout
    from controller.runtime import Controller, RunOptions
    from controller.sim.world import SimBuses
    from tests.test_run_control import DEMO

    layout = load_layout(DEMO)
    clock = SimClock(speed=30)
    buses = SimBuses(layout, clock)
    seen: dict[str, object] = {}

    async def disk() -> None:
        while runner.loop is None or runner.loop.ticks < 2:
            await asyncio.sleep(0.05)
        assert runner.store is not None and runner.loop is not None
        fill(runner.store)
        ticks = runner.loop.ticks
        await asyncio.sleep(2.5)  # 75 simulated seconds on a full disk
        seen["ticks while full"] = runner.loop.ticks - ticks
        seen["alarms while full"] = [a.id for a in runner.state_message().alarms]
        seen["failing"] = runner.store.failing
        free(runner.store)
        await asyncio.sleep(1.5)
        seen["alarms after"] = [a.id for a in runner.state_message().alarms]
        seen["failing after"] = runner.store.failing
        fill(runner.store)  # and full again for the shutdown: its "stop" event cannot be written
        runner.stop_requested.set()

    runner = Controller(layout, buses, clock, RunOptions(state_dir=tmp_path), {"plant": buses.run, "disk": disk})
    logs.configure("warning", json=True)
    asyncio.run(runner.run())  # returns: nothing escaped the task group, not even at the stop
    assert isinstance(seen["ticks while full"], int) and seen["ticks while full"] >= 50  # control kept ticking
    assert "store" in seen["alarms while full"]  # type: ignore[operator]
    assert seen["failing"] is not None and "full" in str(seen["failing"])
    assert seen["failing after"] is None and "store" not in seen["alarms after"]  # type: ignore[operator]
    assert all(not on for name, on in buses.relay_states().items() if name != "distribution-pump")
    with Store.open(tmp_path / "demo.sqlite") as store:
        events = [event for _, event in store.events_after(0, limit=100_000)]
        kinds = [event.kind for event in events]
        assert kinds[0] == "start" and "store" in kinds  # written once space returned
        assert any(e.kind == "alarm" and e.data.get("id") == "store" for e in events)
