"""A relay driven by one GPIO line (digitalio), with its wiring: coil polarity and which contacts carry the load.

The object speaks in load states (on/off); the pin level follows from `active_low` and `contacts`. The pin is
read back after every write, so a relay that does not follow its command is reported, never assumed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from controller.control.actuator_model import ActuatorModel
from controller.drivers.base import ActuatorKind
from controller.layout.base import Name, Strict


class GpioRelay(Strict):
    """A relay driven by one GPIO line.

    `active_low`: the relay board energises its coil when the pin is low (most opto-isolated boards do).
    `contacts`: which contacts the load is wired through. With `normally-open`, a de-energised coil (a dead Pi)
    leaves the load off; with `normally-closed` it leaves it on.
    `safe_state`: the load state every shutdown, fault and start-up path drives the actuator to.
    """

    kind: Literal["gpio_relay"]
    pin: int = Field(ge=0, le=27, description="BCM GPIO number")
    active_low: bool = False
    contacts: Literal["normally-open", "normally-closed"] = "normally-open"
    safe_state: Literal["off", "on"] = "off"
    min_on_s: float = Field(default=0.0, ge=0, le=3600)
    min_off_s: float = Field(default=0.0, ge=0, le=3600)
    max_starts_per_hour: int | None = Field(default=None, ge=1, le=60)
    requires: tuple[Name, ...] = Field(
        default=(), description="actuators that must run before this one starts (sequencing)"
    )
    prerun_s: float = Field(default=0.0, ge=0, le=600, description="how long `requires` must have run first")
    postrun_s: float = Field(default=0.0, ge=0, le=1800, description="how long `requires` keep running after")
    label: str = Field(
        default="", max_length=60, description="the name people see (Home Assistant); default: from the actuator name"
    )
    description: str = ""

    @property
    def off_when_deenergised(self) -> bool:
        return self.contacts == "normally-open"

    def interlock_model(self) -> ActuatorModel:
        return ActuatorModel(
            safe_on=self.safe_state == "on",
            min_on_s=self.min_on_s,
            min_off_s=self.min_off_s,
            max_starts_per_hour=self.max_starts_per_hour,
            requires=self.requires,
            prerun_s=self.prerun_s,
            postrun_s=self.postrun_s,
        )


def pin_level(config: GpioRelay, load_on: bool) -> bool:
    """The pin level that puts the load in `load_on`, given the coil polarity and the contacts used."""
    energised = load_on if config.contacts == "normally-open" else not load_on
    return energised != config.active_low


def load_state(config: GpioRelay, level: bool) -> bool:
    """The load state a pin level commands (the inverse of `pin_level`)."""
    energised = level != config.active_low
    return energised if config.contacts == "normally-open" else not energised


class RelayError(Exception):
    """The relay's pin did not take the level it was driven to."""


class RelayOutput:
    """One relay. Construct and use only on the GPIO worker thread."""

    def __init__(self, name: str, config: GpioRelay, line: Any) -> None:
        self.name = name
        self.config = config
        self._line = line
        # Drive the safe state from the first instant the pin becomes an output.
        line.switch_to_output(value=pin_level(self.config, config.safe_state == "on"))

    def set(self, load_on: bool) -> bool:
        """Drive the load on or off and return the state read back from the pin. Raises RelayError on mismatch."""
        self._line.value = pin_level(self.config, load_on)
        actual = self.read()
        if actual != load_on:
            raise RelayError(
                f"relay {self.name} on GPIO{self.config.pin} did not switch {'on' if load_on else 'off'}: "
                f"pin reads {'high' if self._line.value else 'low'}"
            )
        return actual

    def read(self) -> bool:
        """The load state the pin currently commands."""
        return load_state(self.config, bool(self._line.value))

    def to_safe_state(self) -> bool:
        return self.set(self.config.safe_state == "on")


KIND = ActuatorKind(kind="gpio_relay", config=GpioRelay, model=GpioRelay.interlock_model)
