"""A deadline on every driver call, enforced at the bus.

adafruit_ads1x15 busy-polls the OS bit of a single-shot conversion with no timeout: a chip that never finishes
its conversion (hung, brown-out, a stuck OS bit) would hold the bus thread for ever. `DeadlineBus` wraps a busio
object; a reader arms a deadline before calling the driver, and any transaction after the deadline raises
`DeadlinePassed` (a TimeoutError, so an OSError), which the driver lets through. The bus thread is free again.

The deadline runs from the driver call's first transaction (the one that starts the chip's work), not from
`arm`, and passing it proves only that time passed, not that the chip is stuck: the calling thread may simply
have lost the CPU (a loaded Pi, the GIL) while the chip finished. So the caller catches `DeadlinePassed` and asks
the chip itself, disarmed, whether its work is done before it reports a fault.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from typing import Any


class DeadlinePassed(TimeoutError):
    """The armed deadline passed during a driver call (raised before the next transaction, which is not sent).

    Distinct from a bus's own ETIMEDOUT, which Python also turns into TimeoutError."""


class DeadlineBus:
    """Forwards every attribute to the wrapped bus; transactions check the armed deadline first."""

    _TRANSACTIONS = frozenset(
        {"writeto", "readfrom_into", "writeto_then_readfrom", "write", "readinto", "write_readinto"}
    )

    def __init__(self, bus: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self._bus = bus
        self._clock = clock
        self._allowance: float | None = None  # armed: seconds allowed from the first transaction on
        self._deadline: float | None = None
        self._what = ""
        # Bind the guarded transactions once, so a read pays no attribute lookup through __getattr__.
        for name in self._TRANSACTIONS:
            if hasattr(bus, name):
                setattr(self, name, self._guard(getattr(bus, name)))

    def arm(self, seconds: float, what: str) -> None:
        """Allow the next driver call `seconds` of bus time from its first transaction; `what` names it."""
        self._allowance = seconds
        self._deadline = None
        self._what = what

    def disarm(self) -> None:
        self._allowance = None
        self._deadline = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)  # everything that is not a transaction: try_lock, unlock, ...

    def _guard(self, transaction: Any) -> Any:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self._allowance is not None:
                now = self._clock()
                if self._deadline is None:
                    self._deadline = now + self._allowance
                elif now > self._deadline:
                    self.disarm()
                    raise DeadlinePassed(errno.ETIMEDOUT, f"{self._what} did not finish in time (chip stuck?)")
            return transaction(*args, **kwargs)

        return guarded
