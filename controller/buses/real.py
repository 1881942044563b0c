"""The real Raspberry Pi buses, through Blinka's busio and digitalio.

Off a Pi, `busio.I2C(...)` raises ImportError; Hearth never falls back to emulation silently: a layout with
`backend = "real"` on a machine without the buses fails loudly with what was missing.
"""

from __future__ import annotations

from typing import Any

from controller.layout.buses import I2CBus, SerialBus, SPIBus
from controller.layout.model import Layout


class HardwareUnavailableError(Exception):
    """A real bus or pin could not be opened on this machine."""


class RealBuses:
    """Opens each bus of the layout on first use and hands the same object out afterwards."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self._open: dict[str, Any] = {}

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
                f"cannot open {self.bus_label(name)}: {error}. On a Pi, enable I2C/SPI with raspi-config and "
                'make sure the hearth user is in the i2c/spi/gpio groups; elsewhere use backend = "sim"'
            ) from error
        raise HardwareUnavailableError(f"{self.bus_label(name)} is not an I2C or SPI bus")

    def pin(self, number: int) -> Any:
        try:
            import board
            import digitalio

            return digitalio.DigitalInOut(getattr(board, f"D{number}"))
        except (ImportError, AttributeError, OSError, RuntimeError) as error:
            raise HardwareUnavailableError(
                f"cannot open GPIO{number}: {error}. Is this a Raspberry Pi with the hearth user in the gpio "
                'group? Elsewhere use a layout with backend = "sim"'
            ) from error

    def close(self) -> None:
        for bus in self._open.values():
            deinit = getattr(bus, "deinit", None)
            if deinit is not None:
                deinit()
        self._open.clear()
