"""One dedicated worker thread per physical bus.

Every driver call runs on its bus's thread, never on the event loop. The CircuitPython drivers block (the
ADS1115 busy-polls a conversion, the MAX31865 one-shot sleeps ~75 ms), so a slow or failing device delays only
the other devices on its own bus, and control keeps ticking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class BusWorker:
    """Runs callables one at a time on a single named thread and awaits their results from the event loop."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"bus-{name}")

    async def run(self, function: Callable[[], T]) -> T:
        """Run `function` on this bus's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    def run_blocking(self, function: Callable[[], T]) -> T:
        """Run `function` on this bus's thread and wait for it (start-up and shutdown paths, off the loop)."""
        return self._executor.submit(function).result()

    def close(self) -> None:
        """Stop taking work. A call stuck on a hung bus is abandoned rather than waited for."""
        self._executor.shutdown(wait=False, cancel_futures=True)
