"""What the interlocks know of an actuator, whatever drives it: a GPIO relay, an SG-Ready pair, a Modbus relay.

Each actuator kind fills one in from its own settings (`ActuatorKind.model` in the registry); the pure control
core reads only this, never a driver's settings, so a new actuator kind never reaches into controller/control/.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ActuatorModel:
    """An actuator's safe state, anti-short-cycle limits and sequencing, as the interlocks apply them.

    `safe_on`: the load state every shutdown, fault and SAFE path drives it to. `requires`: actuators that must
    run `prerun_s` before this one starts and keep running `postrun_s` after it stops.
    """

    safe_on: bool
    min_on_s: float = 0.0
    min_off_s: float = 0.0
    max_starts_per_hour: int | None = None
    requires: tuple[str, ...] = ()
    prerun_s: float = 0.0
    postrun_s: float = 0.0
