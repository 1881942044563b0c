"""Where a fleet-sim worker's plans and model fits run: one process of their own, niced, started again if it dies.

A plan is ~0.5-2 s of numpy and pure Python that holds the GIL. In a thread of the worker that runs hundreds of
sites' event loop, every socket call of that loop then waits for the GIL (5 ms switch interval, a convoy), the loop
lags by seconds, readings go stale and houses fall to SAFE. In a process of their own the plans share no GIL with
the loop, and niced they give way to the control loops when the machine is short of CPU. What crosses is a
PlanRequest and ControlParams (~6 kB) one way and a Solved (~2.7 MB, the plan's value table) back, ~2 ms of
pickling each way, done in the executor's own thread.

`hearth run` (one house per process) keeps its thread: one plan does not starve a single house's loop.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

import structlog

log = structlog.get_logger("fleet.planning")

PLANNING_NICE = 10  # below the control loops: a plan may wait, a tick may not
PARENT_WATCH_S = 1.0  # how often the planning process checks that its worker is still there
EXIT_ORPHANED = 3
P = ParamSpec("P")
T = TypeVar("T")


def _start_planner(nice: int) -> None:
    """In the planning process, before its first job: lower its priority, leave Ctrl-C to the worker (which stops
    this process itself) so a terminal's SIGINT to the whole group does not break a plan mid-way, and end when the
    worker is gone: a worker killed with SIGKILL cannot stop it, and it would wait for jobs for ever (it holds its
    job queue's write end too, so it never reads an end of file)."""
    os.nice(nice)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with, args=(os.getppid(),), name="planner:parent-watch", daemon=True).start()


def _end_with(parent: int, every_s: float = PARENT_WATCH_S) -> None:
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(EXIT_ORPHANED)


class PlanningProcess(Executor):
    """An executor of one spawned, niced process; a job it could not finish because the process died fails with
    BrokenProcessPool, and the next job starts a fresh process (logged)."""

    def __init__(self, nice: int = PLANNING_NICE) -> None:
        self.nice = nice
        self._lock = threading.Lock()
        self._pool = self._new_pool()
        self.restarts = 0

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the worker has threads (the executor's, SQLite's) and an event loop a fork must not copy
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(1, mp_context=context, initializer=_start_planner, initargs=(self.nice,))

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        with self._lock:
            try:
                return self._pool.submit(fn, *args, **kwargs)
            except BrokenProcessPool:
                self.restarts += 1
                log.warning("planning process died: starting another", restarts=self.restarts)
                self._pool = self._new_pool()
                return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
