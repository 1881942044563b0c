"""The real Raspberry Pi buses, through Blinka's busio and digitalio.

Off a Pi, `busio.I2C(...)` raises ImportError; Hearth never falls back to emulation silently: a layout with
`backend = "real"` on a machine without the buses fails loudly with what was missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.buses.nodes import needed_nodes, node_problems
from controller.layout.buses import I2CBus, SerialBus, SPIBus
from controller.layout.model import Layout
from controller.meters.line import SerialLine, SerialPort


class HardwareUnavailableError(Exception):
    """A real bus or pin could not be opened on this machine."""


class RealBuses:
    """Opens each bus of the layout on first use and hands the same object out afterwards."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self._open: dict[str, Any] = {}

    def preflight(self, dev: Path = Path("/dev")) -> None:
        """Load Blinka's Pi backend and check every device node the layout needs, before anything opens.

        Raises HardwareUnavailableError with one line: what is missing and the step that provides it.
        """
        try:
            import board  # noqa: F401  (the import chain is what is checked)
            import busio  # noqa: F401
            import digitalio  # noqa: F401
        except (ImportError, RuntimeError) as error:
            raise HardwareUnavailableError(
                f"Blinka cannot load its GPIO backend ({error}); install Hearth with its Pi extra: "
                "pip install '/opt/hearth[pi]' (scripts/install-pi does it)"
            ) from error
        problems = node_problems(needed_nodes(self._layout), dev)
        if problems:
            raise HardwareUnavailableError("; ".join(problems))

    def bus_label(self, name: str) -> str:
        config = self._layout.buses[name]
        if isinstance(config, SerialBus):
            return f"serial port {config.port} ({name})"
        return f"{config.kind.upper()} bus {config.bus} ({name})"

    def bus(self, name: str) -> Any:
        if name not in self._open:
            self._open[name] = self._make(name, self._layout.buses[name])
        return self._open[name]

    def _make(self, name: str, config: I2CBus | SPIBus | SerialBus) -> Any:
        if isinstance(config, SerialBus):
            # Opened by its device on first read: pymodbus or pyserial say then if the port is missing, and the
            # device keeps trying, so an adapter plugged in after start-up is found.
            return SerialPort(SerialLine.of(config, config.port, self.bus_label(name)))
        try:
            import board
            import busio

            if isinstance(config, I2CBus):
                if config.bus == 1:
                    return busio.I2C(board.SCL, board.SDA, frequency=config.frequency)
                from adafruit_extended_bus import ExtendedI2C

                return ExtendedI2C(config.bus)
            if isinstance(config, SPIBus):
                if config.bus == 0:
                    return busio.SPI(board.SCLK, board.MOSI, board.MISO)
                return busio.SPI(board.SCLK_1, board.MOSI_1, board.MISO_1)
        except (ImportError, AttributeError, OSError, RuntimeError, ValueError) as error:
            raise HardwareUnavailableError(
                f"cannot open {self.bus_label(name)}: {error}; `hearth probe` checks the buses one by one"
            ) from error
        raise HardwareUnavailableError(f"{self.bus_label(name)} is not an I2C or SPI bus")

    def pin(self, number: int) -> Any:
        try:
            import board
            import digitalio

            return digitalio.DigitalInOut(getattr(board, f"D{number}"))
        except (ImportError, AttributeError, OSError, RuntimeError) as error:
            raise HardwareUnavailableError(
                f"cannot open GPIO{number}: {error}; `hearth probe` checks the pins one by one"
            ) from error

    def close(self) -> None:
        for bus in self._open.values():
            if isinstance(bus, SerialPort):
                bus.close()
                continue
            deinit = getattr(bus, "deinit", None)
            if deinit is not None:
                deinit()
        self._open.clear()
