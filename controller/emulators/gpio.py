"""Emulated GPIO lines with the `digitalio.DigitalInOut` surface the drivers use.

Direction, pull and drive mode are kept as lower-case strings ("input"/"output", "up"/"down"/None,
"push_pull"/"open_drain"). The setters also accept Blinka's `digitalio.Direction.OUTPUT`-style constants
(recognised by their name), so code written for `digitalio` can hand them in unchanged; this module itself
never imports Blinka.

The physical level of a line is decided, strongest first, by: an injected `stuck_at` fault, the line's own
output driver, an external driver (`drive()`, e.g. a simulated switch), the software pull, a board resistor
(`board_pull`), and finally a floating input reads low.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Literal

Direction = Literal["input", "output"]
Pull = Literal["up", "down"] | None
DriveMode = Literal["push_pull", "open_drain"]

Listener = Callable[[bool], None]


def _symbol(value: object) -> str | None:
    """Normalise a string or a Blinka enum constant (`digitalio.Pull.UP`) to a lower-case name."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.lower()
    # Blinka's enum instances repr as "digitalio.Direction.OUTPUT": the last component is the name.
    return repr(value).rsplit(".", 1)[-1].lower()


def _direction(value: object) -> Direction:
    name = _symbol(value)
    if name == "input":
        return "input"
    if name == "output":
        return "output"
    raise ValueError(f"not a direction: {value!r}")


def _pull(value: object) -> Pull:
    name = _symbol(value)
    if name is None or name == "none":
        return None
    if name == "up":
        return "up"
    if name == "down":
        return "down"
    raise ValueError(f"not a pull: {value!r}")


def _drive_mode(value: object) -> DriveMode:
    name = _symbol(value)
    if name is None or name == "push_pull":
        return "push_pull"
    if name == "open_drain":
        return "open_drain"
    raise ValueError(f"not a drive mode: {value!r}")


class EmulatedLine:
    """One GPIO line, compatible with `digitalio.DigitalInOut` as the drivers use it.

    A new line is an input with no pull, reading low. Listeners registered with `add_listener` are called
    with the new physical level after every change of it (not on writes that leave the level unchanged).
    """

    def __init__(self, number: int) -> None:
        self.number = number
        self._lock = threading.RLock()
        self._direction: Direction = "input"
        self._pull: Pull = None
        self._drive_mode: DriveMode = "push_pull"
        self._output = False
        self._external: bool | None = None
        self._board_pull: bool | None = None
        self._stuck_at: bool | None = None
        self._deinited = False
        self._listeners: list[Listener] = []
        self._level = self._resolve()

    # -- digitalio surface -------------------------------------------------------------------------------

    def switch_to_output(self, value: bool = False, drive_mode: object = None) -> None:
        """Make the line an output driving `value`."""
        with self._lock:
            self._check_alive()
            self._direction = "output"
            self._drive_mode = _drive_mode(drive_mode)
            self._output = bool(value)
        self._update()

    def switch_to_input(self, pull: object = None) -> None:
        """Make the line an input with an optional pull ("up", "down" or None)."""
        with self._lock:
            self._check_alive()
            self._direction = "input"
            self._pull = _pull(pull)
        self._update()

    @property
    def direction(self) -> Direction:
        """Either "input" or "output"."""
        return self._direction

    @direction.setter
    def direction(self, value: object) -> None:
        if _direction(value) == "output":
            # digitalio starts a freshly switched output low.
            self.switch_to_output(False)
        else:
            self.switch_to_input(None)

    @property
    def pull(self) -> Pull:
        """The software pull of an input ("up", "down" or None)."""
        return self._pull

    @pull.setter
    def pull(self, value: object) -> None:
        if self._direction != "input":
            raise AttributeError("Not an input")
        self.switch_to_input(value)

    @property
    def drive_mode(self) -> DriveMode:
        """Either "push_pull" or "open_drain"."""
        return self._drive_mode

    @drive_mode.setter
    def drive_mode(self, value: object) -> None:
        if self._direction != "output":
            raise AttributeError("Not an output")
        self.switch_to_output(self._output, value)

    @property
    def value(self) -> bool:
        """The level as the program reads it (the physical level, like a real pin's input buffer)."""
        self._check_alive()
        return self.level

    @value.setter
    def value(self, value: bool) -> None:
        with self._lock:
            self._check_alive()
            if self._direction != "output":
                raise AttributeError("Not an output")
            self._output = bool(value)
        self._update()

    def deinit(self) -> None:
        """Release the line: it floats back to an input without pull, and further use raises."""
        with self._lock:
            self._direction = "input"
            self._pull = None
            self._deinited = True
        self._update()

    def __enter__(self) -> EmulatedLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.deinit()

    # -- emulator side -----------------------------------------------------------------------------------

    @property
    def level(self) -> bool:
        """The physical level of the line."""
        return self._level

    @property
    def stuck_at(self) -> bool | None:
        """Injected fault: when set, the line reads this level and writes have no effect."""
        return self._stuck_at

    @stuck_at.setter
    def stuck_at(self, level: bool | None) -> None:
        with self._lock:
            self._stuck_at = level
        self._update()

    @property
    def board_pull(self) -> bool | None:
        """A resistor on the board pulling an undriven line high (True) or low (False); None for none."""
        return self._board_pull

    @board_pull.setter
    def board_pull(self, level: bool | None) -> None:
        with self._lock:
            self._board_pull = level
        self._update()

    def drive(self, level: bool | None) -> None:
        """Drive the line from outside (a simulated switch or sensor output); None releases it."""
        with self._lock:
            self._external = level
        self._update()

    def add_listener(self, callback: Listener) -> None:
        """Call `callback(level)` after every change of the physical level."""
        with self._lock:
            self._listeners.append(callback)

    def remove_listener(self, callback: Listener) -> None:
        """Stop calling `callback`."""
        with self._lock:
            self._listeners.remove(callback)

    # -- internals ---------------------------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self._deinited:
            raise ValueError(f"GPIO line {self.number} has been deinitialized")

    def _resolve(self) -> bool:
        if self._stuck_at is not None:
            return self._stuck_at
        driven = self._direction == "output" and not (self._drive_mode == "open_drain" and self._output)
        if driven:
            return self._output
        if self._external is not None:
            return self._external
        if self._direction == "input" and self._pull is not None:
            return self._pull == "up"
        if self._board_pull is not None:
            return self._board_pull
        return False

    def _update(self) -> None:
        with self._lock:
            new = self._resolve()
            changed = new != self._level
            self._level = new
            listeners = list(self._listeners) if changed else []
        # Listeners run outside the lock so one may touch other lines without lock-order trouble.
        for callback in listeners:
            callback(new)

    def __repr__(self) -> str:
        return f"EmulatedLine({self.number}, {self._direction}, level={int(self._level)})"


class EmulatedGPIO:
    """A GPIO chip: hands out one `EmulatedLine` per line number, the same object every time."""

    def __init__(self, chip: str = "gpiochip0") -> None:
        self.chip = chip
        self._lines: dict[int, EmulatedLine] = {}
        self._lock = threading.Lock()

    def line(self, number: int) -> EmulatedLine:
        """The line `number`, created on first use."""
        if number < 0:
            raise ValueError(f"line number must be >= 0, got {number}")
        with self._lock:
            found = self._lines.get(number)
            if found is None:
                found = self._lines[number] = EmulatedLine(number)
            return found

    @property
    def lines(self) -> Mapping[int, EmulatedLine]:
        """The lines created so far, read-only."""
        return MappingProxyType(self._lines)
