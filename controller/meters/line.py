"""A serial line as a device sees it: the port and its framing, and how long bytes take on the wire."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from controller.layout.buses import SerialBus

if TYPE_CHECKING:
    from controller.meters.modbus import ModbusPort
    from controller.meters.p1 import Obis, P1Port


@dataclass(frozen=True)
class SerialLine:
    """An opened-on-demand serial port: where it is and how characters are framed on it.

    `port` is a device path (/dev/ttyUSB0 on a Pi, a pty's path in simulation); `label` is how messages name it.
    """

    port: str
    baudrate: int
    bytesize: int
    parity: str
    stopbits: int
    timeout_s: float
    label: str

    @classmethod
    def of(cls, bus: SerialBus, port: str, label: str) -> SerialLine:
        return cls(port, bus.baudrate, bus.bytesize, bus.parity, bus.stopbits, bus.timeout_s, label)

    @property
    def bits_per_char(self) -> int:
        """Start bit, data bits, parity bit if any, stop bits."""
        return 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits

    def wire_time_s(self, n_bytes: int) -> float:
        """How long `n_bytes` take on the wire at this baud rate."""
        return n_bytes * self.bits_per_char / self.baudrate


class SerialPort:
    """What `Buses.bus()` hands a serial device: the line, and the one Modbus client per port that every meter
    on an RS-485 bus shares (one master per line: two clients on one port would interleave their frames)."""

    def __init__(self, line: SerialLine) -> None:
        self.line = line
        self._modbus: ModbusPort | None = None
        self._p1: P1Port | None = None

    def modbus(self) -> ModbusPort:
        from controller.meters.modbus import ModbusPort

        if self._modbus is None:
            self._modbus = ModbusPort(self.line)
        return self._modbus

    def p1(self, specification: Mapping[str, Any], objects: tuple[Obis, ...], interval_s: float) -> P1Port:
        """The port's P1 listener (one per port), started on first use."""
        from controller.meters.p1 import P1Port

        if self._p1 is None:
            self._p1 = P1Port(self.line, specification, objects, interval_s)
        return self._p1

    def close(self) -> None:
        if self._modbus is not None:
            self._modbus.close()
        if self._p1 is not None:
            self._p1.close()


def port_gone(line: SerialLine) -> str:
    """The one message for a port that cannot be opened or was lost: the same words each time, so it logs once."""
    return f"{line.label} is gone (USB adapter unplugged?); retrying every sample"
