"""A relay driven by one GPIO line (digitalio), with its wiring: coil polarity and which contacts carry the load.

The object speaks in load states (on/off); the pin level follows from `active_low` and `contacts`. The pin is
read back after every write, so a relay that does not follow its command is reported, never assumed.
"""

from __future__ import annotations

from typing import Any

from controller.layout.model import GpioRelay


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
