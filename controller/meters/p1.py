"""The DSMR P1 port: a smart meter pushes a telegram every second (DSMR 5) or ten (DSMR 4); we listen.

P1 is push, not request/response, so each P1 port gets one listening thread (`p1:<bus>`) that reads the port
continuously, frames telegrams with dsmr-parser's TelegramBuffer and checks each telegram's CRC16 and parses it
with dsmr-parser's TelegramParser. A telegram whose CRC fails is dropped whole and counted: never half-used.
Channel reads (on the bus worker) take the newest good telegram's values, or fail once it is older than 1.5
telegram intervals: a P1 cable pulled mid-telegram shows as a fault at the next sample or the one after.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from controller.drivers.base import ChannelReader, RawFields, SensorError
from controller.layout.channel import Channel
from controller.meters.line import SerialLine, port_gone

STALE_INTERVALS = 1.5
MAX_UNFRAMED_BYTES = 8192  # a DSMR 5 telegram is about 1 KB; this much without one means wrong framing
REOPEN_S = 1.0
# dsmr-parser logs each dropped telegram; the channel's quality says it once, with the reason.
logging.getLogger("dsmr_parser").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Obis:
    """One P1 value: the channel `input` that names it, dsmr-parser's name for it, its unit and OBIS code."""

    name: str
    value_name: str
    unit: str
    plausible: tuple[float, float]
    obis: str


def telegram_values(telegram: Any, objects: tuple[Obis, ...]) -> dict[str, float]:
    """The values of one parsed telegram by input name, in SI-ish units (W, kWh, V, A, m3)."""
    values: dict[str, float] = {}
    for item in objects:
        found = getattr(telegram, item.value_name, None)
        if found is None:
            continue
        raw = found.value
        if isinstance(raw, Decimal | int | float):
            number = float(raw)
        elif isinstance(raw, str) and raw.isdigit():
            number = float(int(raw))  # the active tariff, "0002"
        else:
            continue
        unit = getattr(found, "unit", None)
        values[item.name] = number * 1000.0 if unit == "kW" else number
    if "power-delivered" in values and "power-received" in values:
        values["power"] = values["power-delivered"] - values["power-received"]
    return values


class P1Port:
    """Listens to one P1 port on its own thread; hands the newest good telegram's values to channel readers."""

    def __init__(
        self, line: SerialLine, specification: Mapping[str, Any], objects: tuple[Obis, ...], interval_s: float
    ) -> None:
        self.line = line
        self.interval_s = interval_s
        self._objects = objects
        self._specification = specification
        self._parser: Any = None  # made on the listening thread: importing dsmr-parser takes ~0.4 s
        self._new_buffer: Any = None
        self._buffer: Any = None
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}
        self._received_at = -1e9
        self._problem = ""
        self._problem_at = 0.0
        self._opened_at = 0.0
        self.telegrams = 0
        self.crc_errors = 0
        self.parse_errors = 0
        self._first = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name=f"p1:{line.label}", daemon=True)
        self._thread.start()

    def latest(self) -> dict[str, float]:
        """The newest good telegram's values, or SensorError saying why there is none that is fresh."""
        window = STALE_INTERVALS * self.interval_s
        with self._lock:
            now = time.monotonic()
            if now - self._received_at <= window:
                return self._values
            # A port that came back keeps its old complaint until a telegram arrives or one is overdue, so a
            # recovery does not log a second, different fault on the way.
            reopened = self._opened_at > self._problem_at and now - self._opened_at > window
            problem = "" if reopened else self._problem
        if problem:
            raise SensorError(problem)
        if self.telegrams == 0:
            raise SensorError(
                f"no P1 telegram yet on {self.line.label} (the meter sends one every {self.interval_s:g} s)"
            )
        raise SensorError(
            f"no valid P1 telegram on {self.line.label} for more than {STALE_INTERVALS * self.interval_s:g} s "
            "(P1 cable unplugged, or the meter's P1 port not enabled?)"
        )

    def wait_first(self) -> None:
        """Wait (at most 1.5 telegram intervals) until a first good telegram is in: for one-off reads."""
        self._first.wait(STALE_INTERVALS * self.interval_s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _note(self, problem: str) -> None:
        with self._lock:
            self._problem = problem
            self._problem_at = time.monotonic()

    def _listen(self) -> None:
        import serial
        from dsmr_parser.clients.telegram_buffer import TelegramBuffer
        from dsmr_parser.parsers import TelegramParser

        self._parser = TelegramParser(self._specification)
        self._new_buffer = TelegramBuffer
        self._buffer = TelegramBuffer()
        while not self._stop.is_set():
            try:
                port = serial.Serial(
                    self.line.port,
                    baudrate=self.line.baudrate,
                    bytesize=self.line.bytesize,
                    parity=self.line.parity,
                    stopbits=self.line.stopbits,
                    timeout=0.2,
                )
            except (serial.SerialException, OSError):
                self._note(port_gone(self.line))
                self._stop.wait(REOPEN_S)
                continue
            with self._lock:
                self._opened_at = time.monotonic()
            with contextlib.closing(port):
                self._read_from(port)

    def _read_from(self, port: Any) -> None:
        import serial

        unframed = 0
        while not self._stop.is_set():
            try:
                data = port.read(max(1, min(4096, port.in_waiting)))
            except (serial.SerialException, OSError):
                self._note(port_gone(self.line))
                return
            if not data:
                continue
            unframed += len(data)
            self._buffer.append(data.decode("ascii", errors="replace"))
            for telegram in self._buffer.get_all():
                unframed = 0
                self._take(telegram)
            if unframed > MAX_UNFRAMED_BYTES:
                unframed = 0
                self._buffer = self._new_buffer()
                self._note(
                    f"{MAX_UNFRAMED_BYTES} bytes on {self.line.label} without a whole telegram "
                    "(baud rate or parity wrong for this DSMR version?)"
                )

    def _take(self, text: str) -> None:
        from dsmr_parser.exceptions import InvalidChecksumError, ParseError

        try:
            telegram = self._parser.parse(text)
        except InvalidChecksumError:
            self.crc_errors += 1
            self._note(f"P1 telegrams on {self.line.label} fail their CRC check and are dropped (noise, bad cable?)")
            return
        except ParseError:
            self.parse_errors += 1
            self._note(f"P1 telegram on {self.line.label} could not be parsed (wrong DSMR version?)")
            return
        values = telegram_values(telegram, self._objects)
        with self._lock:
            self._values = values
            self._received_at = time.monotonic()
            self._problem = ""
            self.telegrams += 1
        self._first.set()


class P1Meter:
    """An opened P1 reader (a SensorDevice): every channel reads from the newest good telegram."""

    def __init__(self, name: str, port: P1Port) -> None:
        self._name = name
        self._port = port

    def reader(self, channel_name: str, channel: Channel) -> ChannelReader:
        wanted = channel.input

        def read() -> float:
            values = self._port.latest()
            if wanted not in values:
                raise SensorError(f"the meter's P1 telegrams carry no {wanted} (not every meter sends every line)")
            return values[wanted]

        return read

    def raw(self, channel: Channel) -> RawFields:
        """What the P1 port has seen (for `hearth probe`): telegrams taken and dropped, and this value. A probe
        reads once, so this waits for the meter's first telegram (a sampler just reads again next period)."""
        self._port.wait_first()
        fields: RawFields = {
            "telegrams": self._port.telegrams,
            "crc_errors": self._port.crc_errors,
            "parse_errors": self._port.parse_errors,
        }
        try:
            value = self._port.latest().get(channel.input)
        except SensorError as error:
            fields["error"] = str(error)
            return fields
        if value is not None:
            fields["value"] = value
        return fields

    def close(self) -> None:
        self._port.close()
