"""The reference ATN leases what the controller's own planner decides, once a site's telemetry gives it the
readings it needs; before that (or with stale readings) it leases by price band."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller import protocol
from controller.atnsim.planning import READING_MAX_AGE_S
from controller.atnsim.prices import Band, lease_actuators
from controller.atnsim.sim import AtnConfig, AtnSim
from controller.clock import ManualClock

SITE = "demo-house"
TOPICS = protocol.Topics(SITE)
JAN1 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def readings(ts: float, tank: float, house: float, outdoor: float = -3.0) -> bytes:
    values = {"tank-top": tank, "tank-mid": tank, "tank-bottom": tank, "house-air": house, "outdoor": outdoor}
    rows: list[protocol.TelemetryRow] = [
        (seq, ts, channel, value, "ok") for seq, (channel, value) in enumerate(values.items(), start=1)
    ]
    return protocol.Telemetry(site=SITE, first_seq=1, last_seq=len(rows), historical=False, readings=rows).to_json()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(JAN1)


@pytest.fixture
def sim(tmp_path: Path, clock: ManualClock) -> Iterator[AtnSim]:
    sim = AtnSim(AtnConfig(sites=(SITE,), db=tmp_path / "atn.sqlite"), clock)
    yield sim
    sim.close()


PLANNED = [
    # (what, UTC hour of the day (UTC site), tank, house, heat pump leased on)
    ("cheap night, tank cold: charge", 3, 25.0, 20.0, True),
    ("expensive evening, tank and house warm: hold off", 18, 48.0, 21.5, False),
]


@pytest.mark.parametrize(("what", "hour", "tank", "house", "on"), PLANNED, ids=[p[0] for p in PLANNED])
def test_the_lease_is_the_plan(
    sim: AtnSim, clock: ManualClock, what: str, hour: int, tank: float, house: float, on: bool
) -> None:
    clock.advance(hour * 3600)
    sim.handle_telemetry(TOPICS.telemetry, readings(clock.now() - 5, tank, house))
    dispatch = sim.make_dispatch(SITE)
    assert dispatch.actuators == {"heat-pump": on, "store-pump": on}
    assert sim.planners[SITE].reason.startswith(("plan: ", "comfort: "))


def test_without_readings_or_with_stale_ones_it_leases_by_band(sim: AtnSim, clock: ManualClock) -> None:
    clock.advance(3 * 3600)
    assert sim.make_dispatch(SITE).actuators == lease_actuators(Band.CHEAP)
    sim.handle_telemetry(TOPICS.telemetry, readings(clock.now() - READING_MAX_AGE_S - 1, 25.0, 20.0))
    assert sim.make_dispatch(SITE).actuators == lease_actuators(Band.CHEAP)


def test_bands_only_when_asked(tmp_path: Path, clock: ManualClock) -> None:
    clock.advance(18 * 3600)
    sim = AtnSim(AtnConfig(sites=(SITE,), db=tmp_path / "atn.sqlite", plan=False), clock)
    sim.handle_telemetry(TOPICS.telemetry, readings(clock.now(), 25.0, 19.0))
    assert sim.make_dispatch(SITE).actuators == lease_actuators(Band.EXPENSIVE)
    sim.close()


def test_with_a_plan_worker_the_event_loop_never_solves_and_the_plans_lease_follows(
    tmp_path: Path, clock: ManualClock
) -> None:
    """A re-plan is solved in a worker process (a second of CPU that held up every acknowledgement when solved in
    the event loop): meanwhile the planner's present rules decide; once solved, the plan is in force and the
    site is due for a fresh lease at once."""
    clock.advance(3 * 3600)
    sim = AtnSim(AtnConfig(sites=(SITE,), db=tmp_path / "atn.sqlite", plan_workers=1), clock)

    async def scenario() -> None:
        sim.handle_telemetry(TOPICS.telemetry, readings(clock.now() - 5, 25.0, 20.0))
        sim.make_dispatch(SITE)
        planner = sim.planners[SITE]
        assert planner.wanted is not None and planner.state.plan is None  # asked of the worker, not solved here
        await sim.wait_planned(60)
        assert planner.wanted is None and planner.state.plan is not None
        assert sim._due[SITE] <= clock.monotonic()  # the plan's lease goes out at once
        dispatch = sim.make_dispatch(SITE)
        assert dispatch.actuators == {"heat-pump": True, "store-pump": True}  # cheap night, cold tank: charge
        assert planner.reason.startswith(("plan: ", "comfort: "))

    try:
        asyncio.run(scenario())
    finally:
        sim.close()
