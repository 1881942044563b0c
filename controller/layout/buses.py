"""Bus settings: the I2C, SPI and serial buses a layout declares, chosen by their `kind` key.

They live apart from `controller.layout.model` so device-kind modules can use them without importing the
registry's union of every kind (which the model needs): the layout sits above the drivers, never beside them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from controller.layout.base import Strict


class I2CBus(Strict):
    kind: Literal["i2c"]
    bus: int = Field(ge=0, le=31, description="Linux I2C bus number: /dev/i2c-N")
    frequency: int = Field(default=100_000, ge=10_000, le=1_000_000, description="bus clock in Hz")


class SPIBus(Strict):
    kind: Literal["spi"]
    bus: int = Field(ge=0, le=6, description="SPI controller number: /dev/spidevN.x")


class SerialBus(Strict):
    kind: Literal["serial"]
    port: str = Field(min_length=1, description="device path, e.g. /dev/ttyUSB0")
    baudrate: int = Field(default=9600, ge=300, le=4_000_000)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    timeout_s: float = Field(
        default=1.0, gt=0, le=30, description="how long a request/response device (Modbus) may take to answer"
    )


Bus = Annotated[I2CBus | SPIBus | SerialBus, Field(discriminator="kind")]
