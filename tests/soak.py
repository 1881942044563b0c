"""How long the soak tests (marked `slow`) run. The default run, which CI makes, is their short form: it still
crosses every boundary the test is about (days, failures, restarts, a node lost). `HEARTH_SLOW=1` runs the full
length, e.g. `HEARTH_SLOW=1 scripts/test -m slow`. The benches in `bench/` are the long runs with figures."""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

LONG = os.environ.get("HEARTH_SLOW", "") not in ("", "0")


def soak(short: T, long: T) -> T:
    """`short` in the default run, `long` under HEARTH_SLOW=1."""
    return long if LONG else short
