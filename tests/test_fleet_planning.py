"""fleet-sim's plans run in a niced planning process of their own per worker (controller.fleet.planning), so a
plan never holds the GIL the worker's event loop needs; a planning process that dies costs one attempt, not the
site. The whole fleet-sim case (plans made in a grandchild, no process left after a stop) is in
tests/test_fleet_sim.py."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from controller.clock import ManualClock
from controller.control.inbox import AtnInbox
from controller.fleet.planning import PLANNING_NICE, PlanningProcess
from controller.loop import ControlLoop
from tests.simhelpers import emulated_house, sample_all


@pytest.fixture
def planning() -> Iterator[PlanningProcess]:
    executor = PlanningProcess()
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


def test_jobs_run_niced_in_another_process_which_is_started_again_after_it_died(planning: PlanningProcess) -> None:
    first = planning.submit(os.getpid).result(timeout=30)
    assert first != os.getpid()
    assert planning.submit(os.nice, 0).result(timeout=10) == min(19, os.nice(0) + PLANNING_NICE)  # 19: the floor
    held = planning.submit(time.sleep, 30)
    os.kill(first, signal.SIGKILL)
    with pytest.raises(BrokenProcessPool):
        held.result(timeout=10)
    second = planning.submit(os.getpid).result(timeout=30)
    assert second not in (first, os.getpid()) and planning.restarts == 1


def test_a_plan_whose_process_dies_is_logged_and_asked_again_then_adopted(
    tmp_path: Path, planning: PlanningProcess
) -> None:
    clock = ManualClock(start=1_767_258_600.0)
    layout, world, hardware, sampler, store, bank = emulated_house(tmp_path, clock)
    loop = ControlLoop(layout, sampler, bank, clock, AtnInbox(), store, planning=planning)
    doomed = planning.submit(os.getpid).result(timeout=30)

    async def scenario() -> None:
        await sample_all(sampler)
        await loop.tick()
        assert loop.state.planner.wanted is not None, "the demo layout plans at its start"
        await asyncio.sleep(0.3)  # the plan is submitted and being solved (a first plan takes over a second)
        os.kill(doomed, signal.SIGKILL)
        async with asyncio.timeout(60):
            while loop.state.planner.replans == 0:
                await asyncio.sleep(0.1)
                clock.advance(1)
                await sample_all(sampler)
                await loop.tick()

    try:
        with capture_logs() as logs:
            asyncio.run(scenario())
    finally:
        store.close()
        hardware.close()
        world.close()
    failed = [e for e in logs if e["event"].startswith("plan failed")]
    plans = [e for e in logs if e["event"] == "plan"]
    assert len(failed) == 1 and failed[0]["log_level"] == "error"
    assert planning.restarts == 1 and loop.state.planner.plan is not None
    assert len(plans) == 1 and plans[0]["pid"] not in (doomed, os.getpid())


def test_the_planning_process_ends_when_its_worker_is_killed() -> None:
    """SIGKILL gives the worker no chance to stop its planning process: that process sees it is gone and ends."""
    code = (
        "import os, time\n"
        "from controller.fleet.planning import PlanningProcess\n"
        "print(PlanningProcess().submit(os.getpid).result(), flush=True)\n"
        "time.sleep(60)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        planner = int(worker.stdout.readline())
        assert alive(planner)
    finally:
        worker.kill()
        worker.wait()
    deadline = time.monotonic() + 10
    while alive(planner) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(planner), "the planning process outlived its worker"


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
