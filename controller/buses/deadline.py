"""A deadline on every driver call, enforced at the bus.

adafruit_ads1x15 busy-polls the OS bit of a single-shot conversion with no timeout: a chip that never finishes
its conversion (hung, brown-out, a stuck OS bit) would hold the bus thread for ever. `DeadlineBus` wraps a busio
object; a reader arms a deadline before calling the driver, and any transaction after the deadline raises
TimeoutError (an OSError), which the driver lets through. The bus thread is free again and the channel reports
a fault that says what happened.
"""

from __future__ import annotations

import errno
import time
from typing import Any


class DeadlineBus:
    """Forwards every attribute to the wrapped bus; transactions check the armed deadline first."""

    _TRANSACTIONS = frozenset(
        {"writeto", "readfrom_into", "writeto_then_readfrom", "write", "readinto", "write_readinto"}
    )

    def __init__(self, bus: Any) -> None:
        self._bus = bus
        self._deadline: float | None = None
        self._what = ""
        # Bind the guarded transactions once, so a read pays no attribute lookup through __getattr__.
        for name in self._TRANSACTIONS:
            if hasattr(bus, name):
                setattr(self, name, self._guard(getattr(bus, name)))

    def arm(self, seconds: float, what: str) -> None:
        """Allow the next driver call `seconds` of bus time; `what` names it in the error."""
        self._deadline = time.monotonic() + seconds
        self._what = what

    def disarm(self) -> None:
        self._deadline = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)  # everything that is not a transaction: try_lock, unlock, ...

    def _guard(self, transaction: Any) -> Any:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self._deadline is not None and time.monotonic() > self._deadline:
                self._deadline = None
                raise TimeoutError(errno.ETIMEDOUT, f"{self._what} did not finish in time (chip stuck?)")
            return transaction(*args, **kwargs)

        return guarded
