"""Emulated I2C and SPI buses with the `busio` surface the Adafruit drivers call.

Targets (emulated chips) attach to a bus; the bus moves bytes to and from them. With `timing` on, each
transaction takes its time on the wire (via `sleep`, `time.sleep` by default), so a driver that busy-polls a
chip costs what it costs on a Pi instead of burning a core in a tight loop.
"""

from __future__ import annotations

import contextlib
import errno
import threading
import time
from collections.abc import Callable
from typing import Protocol

from controller.emulators.gpio import EmulatedLine

ReadableBuffer = bytes | bytearray | memoryview
WriteableBuffer = bytearray | memoryview

Sleep = Callable[[float], None]

I2C_BITS_PER_BYTE = 9  # eight data bits and the ACK/NACK bit
SPI_BITS_PER_BYTE = 8
MISO_IDLE = 0xFF  # nothing driving MISO: the pull-up wins
SDA_IDLE = 0xFF  # a target that sends fewer bytes than asked leaves SDA released (high)


class I2CTarget(Protocol):
    """An emulated I2C chip. Either method may raise OSError to inject a bus fault."""

    def write(self, data: bytes) -> None: ...

    def read(self, n: int) -> bytes: ...


class SPITarget(Protocol):
    """An emulated SPI chip: framed by select/deselect, full duplex in between."""

    def select(self) -> None: ...

    def transfer(self, data: bytes) -> bytes: ...

    def deselect(self) -> None: ...


def _remote_io_error() -> OSError:
    return OSError(errno.EREMOTEIO, "Remote I/O error")


def _bounds(buffer: ReadableBuffer, start: int, end: int | None) -> tuple[int, int]:
    stop = len(buffer) if end is None else end
    if not 0 <= start <= stop <= len(buffer):
        raise ValueError(f"bad buffer bounds start={start} end={end} for length {len(buffer)}")
    return start, stop


def _store(buffer: WriteableBuffer, start: int, stop: int, data: bytes) -> None:
    """Copy `data` into buffer[start:stop] without allocating a slice of the caller's buffer."""
    memoryview(buffer)[start:stop] = data


class _Lockable:
    """try_lock/unlock on one real lock, so two threads cannot both believe they own the bus."""

    def __init__(self, timing: bool, sleep: Sleep) -> None:
        self._bus_lock = threading.Lock()
        # Serialises transactions even for callers that skip try_lock: the wire carries one at a time.
        self._wire = threading.Lock()
        self.timing = timing
        self._sleep = sleep
        self.transactions = 0
        self.bytes_moved = 0
        self._deinited = False

    def try_lock(self) -> bool:
        """Take the bus if it is free; never blocks."""
        return self._bus_lock.acquire(blocking=False)

    def unlock(self) -> None:
        """Release the bus (a no-op if it is not locked)."""
        # Unlocking a free bus is tolerated, as busio does.
        with contextlib.suppress(RuntimeError):
            self._bus_lock.release()

    @property
    def locked(self) -> bool:
        """Whether someone holds the bus lock."""
        return self._bus_lock.locked()

    def deinit(self) -> None:
        """Release the bus; further transactions raise ValueError."""
        self._deinited = True

    def _check_alive(self) -> None:
        if self._deinited:
            raise ValueError("Object has been deinitialized and can no longer be used.")

    def _account(self, payload: int) -> None:
        self.transactions += 1
        self.bytes_moved += payload

    def _wait_wire(self, started: float, seconds: float) -> None:
        """Let the transaction last at least `seconds` on the wire."""
        if not self.timing or seconds <= 0.0:
            return
        if self._sleep is time.sleep:
            # Real time: the emulation work already took some of it.
            seconds -= time.perf_counter() - started
            if seconds > 0.0:
                time.sleep(seconds)
        else:
            # An injected (virtual) clock only moves when told: give it the whole wire time.
            self._sleep(seconds)


class EmulatedI2C(_Lockable):
    """An I2C bus with the `busio.I2C` surface.

    Wire time per transaction is (address byte + data bytes) x 9 bits / frequency; a write-then-read adds the
    second address byte sent after the repeated start. `bytes_moved` counts data bytes only.
    """

    def __init__(
        self, bus_number: int, *, frequency: int = 100_000, timing: bool = True, sleep: Sleep = time.sleep
    ) -> None:
        super().__init__(timing, sleep)
        if frequency <= 0:
            raise ValueError(f"frequency must be positive, got {frequency}")
        self.bus_number = bus_number
        self.frequency = frequency
        self._targets: dict[int, I2CTarget] = {}

    def attach(self, address: int, target: I2CTarget) -> None:
        """Put `target` on the bus at the 7-bit `address`."""
        self._check_address(address)
        if address in self._targets:
            raise ValueError(f"I2C address 0x{address:02x} is already taken on bus {self.bus_number}")
        self._targets[address] = target

    def detach(self, address: int) -> None:
        """Take the target at `address` off the bus."""
        if self._targets.pop(address, None) is None:
            raise ValueError(f"nothing attached at I2C address 0x{address:02x}")

    def wire_time(self, nbytes: int) -> float:
        """Seconds that `nbytes` (address bytes included) take on the wire."""
        return nbytes * I2C_BITS_PER_BYTE / self.frequency

    def scan(self) -> list[int]:
        """Addresses that acknowledge an empty write, like `i2cdetect`."""
        self._check_alive()
        found: list[int] = []
        with self._wire:
            started = time.perf_counter()
            for address in sorted(self._targets):
                try:
                    self._targets[address].write(b"")
                except OSError:
                    continue
                found.append(address)
            # i2cdetect probes every non-reserved address: 0x08..0x77.
            self._wait_wire(started, self.wire_time(0x78 - 0x08))
        return found

    def writeto(self, address: int, buffer: ReadableBuffer, *, start: int = 0, end: int | None = None) -> None:
        """Write buffer[start:end] to the device at `address`; an empty write is the drivers' probe."""
        lo, hi = _bounds(buffer, start, end)
        data = bytes(buffer[lo:hi])
        with self._wire:
            started = time.perf_counter()
            moved = 0  # a NACKed address byte ends the transaction: nothing else crosses the wire
            try:
                target = self._target(address)
                moved = len(data)
                target.write(data)
            finally:
                self._account(moved)
                self._wait_wire(started, self.wire_time(1 + moved))

    def readfrom_into(self, address: int, buffer: WriteableBuffer, *, start: int = 0, end: int | None = None) -> None:
        """Read len(buffer[start:end]) bytes from the device at `address`."""
        lo, hi = _bounds(buffer, start, end)
        with self._wire:
            started = time.perf_counter()
            moved = 0
            try:
                target = self._target(address)
                moved = hi - lo
                data = self._read(target, moved)
            finally:
                self._account(moved)
                self._wait_wire(started, self.wire_time(1 + moved))
        _store(buffer, lo, hi, data)

    def writeto_then_readfrom(
        self,
        address: int,
        buffer_out: ReadableBuffer,
        buffer_in: WriteableBuffer,
        *,
        out_start: int = 0,
        out_end: int | None = None,
        in_start: int = 0,
        in_end: int | None = None,
    ) -> None:
        """Write, then read after a repeated start, without releasing the bus in between."""
        olo, ohi = _bounds(buffer_out, out_start, out_end)
        ilo, ihi = _bounds(buffer_in, in_start, in_end)
        out = bytes(buffer_out[olo:ohi])
        with self._wire:
            started = time.perf_counter()
            moved, addressing = 0, 1
            try:
                target = self._target(address)
                moved, addressing = len(out) + ihi - ilo, 2
                target.write(out)
                data = self._read(target, ihi - ilo)
            finally:
                self._account(moved)
                self._wait_wire(started, self.wire_time(addressing + moved))
        _store(buffer_in, ilo, ihi, data)

    def __enter__(self) -> EmulatedI2C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.deinit()

    def _target(self, address: int) -> I2CTarget:
        self._check_alive()
        self._check_address(address)
        target = self._targets.get(address)
        if target is None:
            # What the Linux i2c-dev driver reports when the address byte is not acknowledged.
            raise _remote_io_error()
        return target

    @staticmethod
    def _read(target: I2CTarget, n: int) -> bytes:
        data = bytes(target.read(n))[:n]
        return data + bytes([SDA_IDLE]) * (n - len(data))

    @staticmethod
    def _check_address(address: int) -> None:
        if not 0 <= address <= 0x7F:
            raise ValueError(f"I2C address must be 7-bit, got {address!r}")


class EmulatedSPI(_Lockable):
    """An SPI bus with the `busio.SPI` surface; chip-select lines route transfers to targets.

    A transfer goes to every target whose chip-select line reads low (two at once is a wiring fault: MOSI
    reaches both and their MISO outputs are wire-ANDed). With none selected MISO reads 0xFF. The bus calls
    `select()`/`deselect()` on the CS line's falling/rising edges. Wire time is bytes x 8 / baudrate.
    """

    def __init__(self, bus_number: int, *, timing: bool = True, sleep: Sleep = time.sleep) -> None:
        super().__init__(timing, sleep)
        self.bus_number = bus_number
        self.baudrate = 100_000
        self.polarity = 0
        self.phase = 0
        self.bits = 8
        self._targets: list[tuple[EmulatedLine, SPITarget, Callable[[bool], None]]] = []

    @property
    def frequency(self) -> int:
        """The configured clock rate."""
        return self.baudrate

    def configure(self, *, baudrate: int = 100_000, polarity: int = 0, phase: int = 0, bits: int = 8) -> None:
        """Set the clock; like busio, only the lock holder may."""
        self._check_alive()
        if not self.locked:
            raise RuntimeError("First call try_lock()")
        if baudrate <= 0 or polarity not in (0, 1) or phase not in (0, 1) or bits != 8:
            raise ValueError(
                f"unsupported SPI setting baudrate={baudrate} polarity={polarity} phase={phase} bits={bits}"
            )
        self.baudrate, self.polarity, self.phase, self.bits = baudrate, polarity, phase, bits

    def attach(self, chip_select: EmulatedLine, target: SPITarget) -> None:
        """Wire `target` to the bus behind `chip_select` (active low).

        An undriven CS line gets a board pull-up (as breakouts have), so the chip stays deselected until the
        driver makes the line an output.
        """
        if any(line is chip_select for line, _, _ in self._targets):
            raise ValueError(f"chip-select line {chip_select.number} already has a target")
        if chip_select.board_pull is None:
            chip_select.board_pull = True

        def on_edge(level: bool) -> None:
            if level:
                target.deselect()
            else:
                target.select()

        chip_select.add_listener(on_edge)
        self._targets.append((chip_select, target, on_edge))
        if not chip_select.level:
            target.select()

    def detach(self, chip_select: EmulatedLine) -> None:
        """Unwire the target behind `chip_select`."""
        for entry in self._targets:
            if entry[0] is chip_select:
                chip_select.remove_listener(entry[2])
                self._targets.remove(entry)
                return
        raise ValueError(f"nothing attached behind chip-select line {chip_select.number}")

    def wire_time(self, nbytes: int) -> float:
        """Seconds that `nbytes` take on the wire at the configured baudrate."""
        return nbytes * SPI_BITS_PER_BYTE / self.baudrate

    def write(self, buffer: ReadableBuffer, *, start: int = 0, end: int | None = None) -> None:
        """Clock out buffer[start:end], ignoring MISO."""
        lo, hi = _bounds(buffer, start, end)
        self._transfer(bytes(buffer[lo:hi]))

    def readinto(
        self, buffer: WriteableBuffer, *, start: int = 0, end: int | None = None, write_value: int = 0
    ) -> None:
        """Clock in len(buffer[start:end]) bytes while sending `write_value`."""
        lo, hi = _bounds(buffer, start, end)
        _store(buffer, lo, hi, self._transfer(bytes([write_value & 0xFF]) * (hi - lo)))

    def write_readinto(
        self,
        buffer_out: ReadableBuffer,
        buffer_in: WriteableBuffer,
        *,
        out_start: int = 0,
        out_end: int | None = None,
        in_start: int = 0,
        in_end: int | None = None,
    ) -> None:
        """Full duplex: send buffer_out[out_start:out_end] while filling buffer_in[in_start:in_end]."""
        olo, ohi = _bounds(buffer_out, out_start, out_end)
        ilo, ihi = _bounds(buffer_in, in_start, in_end)
        if ohi - olo != ihi - ilo:
            raise ValueError("buffer slices must be of equal length")
        _store(buffer_in, ilo, ihi, self._transfer(bytes(buffer_out[olo:ohi])))

    def __enter__(self) -> EmulatedSPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.deinit()

    def _transfer(self, out: bytes) -> bytes:
        self._check_alive()
        with self._wire:
            started = time.perf_counter()
            try:
                miso = bytearray([MISO_IDLE]) * len(out)
                for line, target, _ in self._targets:
                    if line.level:
                        continue
                    answer = bytes(target.transfer(out))
                    answer = answer[: len(out)] + bytes([MISO_IDLE]) * (len(out) - len(answer))
                    for i, byte in enumerate(answer):
                        miso[i] &= byte
            finally:
                self._account(len(out))
                self._wait_wire(started, self.wire_time(len(out)))
        return bytes(miso)
