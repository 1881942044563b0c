"""How a number is written for people: fixed decimals, and never '-0' (a heat of -0.0003 kW is none)."""

from __future__ import annotations


def fixed(value: float, digits: int) -> str:
    """`value` with `digits` decimals; a value that rounds to zero is written without a minus sign."""
    return f"{round(value, digits) + 0.0:.{digits}f}"
