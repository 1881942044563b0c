"""A register-exact Modbus RTU slave on an emulated serial port: one or more meters sharing an RS-485 line.

Frames are decoded and built with pymodbus's own RTU framer (so the CRC and the frame layout are the library's,
not ours), and each reply leaves after the time it would take on the wire: the request's characters, the 3.5
character silence that ends an RTU frame, the meter's own turnaround, and the reply's characters. Values are
IEEE-754 float32 in two big-endian registers, as Eastron meters keep them.

Faults, per device id, as seen on real lines: `timeout` (no answer), `crc` (the reply's CRC is wrong),
`wrong-id` (a reply from another id), `exception` (exception 4, server device failure).
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Literal

from pymodbus.exceptions import ModbusException
from pymodbus.framer.rtu import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.pdu.register_message import ReadInputRegistersRequest, ReadInputRegistersResponse

from controller.emulators.serial_port import EmulatedSerialPort

ModbusFault = Literal["timeout", "crc", "wrong-id", "exception", "late"]
MODBUS_FAULTS: tuple[str, ...] = ("timeout", "crc", "wrong-id", "exception")
MAX_REGISTERS = 60  # Eastron: at most 30 parameters per request, else an exception
REGISTER_SPACE = 0x0200  # input registers a meter answers for; above, exception 2 (illegal data address)
ILLEGAL_DATA_ADDRESS = 2
ILLEGAL_DATA_VALUE = 3
SERVER_DEVICE_FAILURE = 4


class RegisterBank:
    """A meter's input registers. Values are written whole (both words at once) under a lock."""

    def __init__(self) -> None:
        self._registers: dict[int, int] = {}
        self._lock = threading.Lock()

    def set_floats(self, values: Mapping[int, float]) -> None:
        words: dict[int, int] = {}
        for address, value in values.items():
            high, low = struct.unpack(">HH", struct.pack(">f", value))
            words[address], words[address + 1] = high, low
        with self._lock:
            self._registers.update(words)

    def read(self, address: int, count: int) -> list[int]:
        with self._lock:
            return [self._registers.get(a, 0) for a in range(address, address + count)]


class ModbusSlaveEmulator:
    """Answers read-input-registers requests for every meter on one line, on its own thread."""

    def __init__(
        self,
        port: EmulatedSerialPort,
        *,
        baudrate: int,
        bits_per_char: int = 10,
        turnaround_s: float = 0.005,
        timing: bool = True,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.bits_per_char = bits_per_char
        self.turnaround_s = turnaround_s
        self.timing = timing
        self.meters: dict[int, RegisterBank] = {}
        self.faults: dict[int, ModbusFault | None] = {}
        self.late_s = 0.5
        """how late a `late` meter answers"""
        self.requests = 0
        self._framer = FramerRTU(DecodePDU(True))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"modbus-slave:{port.path.name}", daemon=True)

    def add_meter(self, device_id: int) -> RegisterBank:
        return self.meters.setdefault(device_id, RegisterBank())

    def start(self) -> ModbusSlaveEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def wire_s(self, n_bytes: float) -> float:
        return n_bytes * self.bits_per_char / self.baudrate

    def _serve(self) -> None:
        pending = b""
        while not self._stop.is_set():
            data = self.port.read(0.05)
            if not data:
                pending = b""  # a silence ends any frame
                continue
            pending += data
            used, pdu = self._decode(pending)
            if used:
                pending = pending[used:]
            if pdu is not None:
                self._answer(pdu)

    def _decode(self, data: bytes) -> tuple[int, ReadInputRegistersRequest | None]:
        try:
            used, pdu = self._framer.handleFrame(data, 0, 0)
        except (ModbusException, ValueError, IndexError, struct.error):  # garbage is dropped, as a meter does
            return len(data), None
        return used, pdu if isinstance(pdu, ReadInputRegistersRequest) else None

    def _answer(self, request: ReadInputRegistersRequest) -> None:
        bank = self.meters.get(request.dev_id)
        if bank is None:
            return  # not ours: another meter's id, or nobody's
        self.requests += 1
        fault = self.faults.get(request.dev_id)
        if fault == "timeout":
            return
        reply_id = request.dev_id if fault != "wrong-id" else (request.dev_id % 247) + 1
        address, count = request.address, request.count
        response: ExceptionResponse | ReadInputRegistersResponse
        if fault == "exception":
            response = ExceptionResponse(request.function_code, SERVER_DEVICE_FAILURE, device_id=reply_id)
        elif count > MAX_REGISTERS:
            response = ExceptionResponse(request.function_code, ILLEGAL_DATA_VALUE, device_id=reply_id)
        elif address + count > REGISTER_SPACE:
            response = ExceptionResponse(request.function_code, ILLEGAL_DATA_ADDRESS, device_id=reply_id)
        else:
            response = ReadInputRegistersResponse(registers=bank.read(address, count), dev_id=reply_id)
        frame = self._framer.buildFrame(response)
        if fault == "crc":
            frame = frame[:-2] + bytes([frame[-2] ^ 0x5A, frame[-1]])
        if self.timing:
            # The request's own characters, the 3.5-character end of frame, the meter's turnaround, the reply.
            time.sleep(self.wire_s(8) + self.wire_s(3.5) + self.turnaround_s + self.wire_s(len(frame)))
        if fault == "late":  # a meter (or a loaded emulator) that answers after the client gave up
            time.sleep(self.late_s)
        self.port.write(frame)


def meter_values(
    quantities: Iterable[tuple[str, int]], power_w: float, import_kwh: float, export_kwh: float, phases: int
) -> dict[int, float]:
    """Register values of an electricity meter carrying `power_w` (split evenly over `phases`) now.

    `quantities` are (name, first register) pairs of the meter's map. A running compressor draws at a power
    factor of about 0.95; an idle one nothing.
    """
    volts, frequency = 230.0, 50.0
    factor = 0.95 if power_w else 1.0
    per_phase = power_w / phases
    current = abs(per_phase) / (volts * factor)
    apparent = abs(per_phase) / factor
    reactive = (apparent**2 - per_phase**2) ** 0.5
    by_name = {
        "voltage": volts,
        "current": current,
        "power": power_w,
        "apparent-power": apparent * phases,
        "reactive-power": reactive * phases,
        "power-factor": factor,
        "phase-angle": 18.2 if power_w else 0.0,
        "frequency": frequency,
        "import-energy": import_kwh,
        "export-energy": export_kwh,
        "total-energy": import_kwh + export_kwh,
    }
    values: dict[int, float] = {}
    for name, address in quantities:
        base = name.rsplit("-l", 1)[0] if name[-3:] in ("-l1", "-l2", "-l3") else name
        if name != base:
            values[address] = {"voltage": volts, "current": current, "power": per_phase}.get(base, 0.0)
        else:
            values[address] = by_name.get(name, 0.0)
    return values
