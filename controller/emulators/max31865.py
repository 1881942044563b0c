"""Register-level emulator of the Maxim MAX31865 RTD-to-digital converter (SPI modes 1/3).

Timing runs on the injected `clock` and is evaluated lazily at the start of each SPI transaction: a one-shot
conversion ends ~52 ms (60 Hz filter) or ~62.5 ms (50 Hz) after it is started; auto-convert produces a new
result every 1/60 s or 1/50 s while bias is on. No threads.

Choices where the datasheet leaves room (all deliberate, see the tests):

* Conversions need VBIAS: with bias off, auto-convert converts nothing and a one-shot self-clears without
  updating the RTD register, which keeps its last value (the "config 0x50" trap after the driver's fallback).
* Threshold checks compare the 15-bit ratio against the 15-bit thresholds (bit 0 of every register pair is
  ignored), both inclusive as the datasheet states (high: ratio >= threshold; low: ratio <= threshold), so the
  reset high threshold 0xFFFF trips on a saturated (open) reading of 32767 and the reset low threshold 0x0000
  on a dead short that reads 0, while a short that reads a few ohms of lead raises nothing until the
  thresholds are programmed.
* Leads: `wires` is how the probe is physically connected and `lead_ohms` the resistance of each lead. A
  2-wire connection measures the element plus both leads; 3-wire (with the config's 3-wire bit) cancels matched
  leads; 4-wire forces current on one pair and senses on the other, so no lead is measured.
* Fault status bits latch until a fault-status clear (config bit 1 written as 1 with bits 5, 3 and 2 written
  as 0, as the datasheet requires); the RTD LSB fault flag reads 1 whenever any status bit is set.
* Only the automatic fault-detection cycle (write 100X010X) is implemented; it takes ~0.6 ms, reads back
  D3:D2 = 01 while running and 00 after. It reports an open RTD (R = inf) as bit 5, REFIN- > 0.85 x VBIAS (no
  current flows, so REFIN- rises to VBIAS), a shorted RTD (R = 0) as bit 3, RTDIN- < 0.85 x VBIAS, and an
  injected over-voltage as bit 2. The manual cycles (10/11) are ignored.
* `stuck` (a chip that stopped converting) drops VBIAS whenever a conversion falls due, leaving the same
  state as the 0x50 trap: a driver that checks the config register sees it, one that does not reads stale data.
* Register addresses wrap within 0x00..0x07 on auto-increment; SDO reads 0xFF during the address byte and
  during writes.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Literal

Source = float | Callable[[], float]
BusError = Literal[None, "miso-high", "miso-low"]

REG_CONFIG = 0x00
REG_RTD_MSB = 0x01
REG_RTD_LSB = 0x02
REG_HFT_MSB = 0x03
REG_HFT_LSB = 0x04
REG_LFT_MSB = 0x05
REG_LFT_LSB = 0x06
REG_FAULT_STATUS = 0x07
WRITE_FLAG = 0x80

CFG_BIAS = 0x80
CFG_AUTO = 0x40
CFG_ONE_SHOT = 0x20
CFG_3WIRE = 0x10
CFG_FAULT_CYCLE = 0x0C
CFG_FAULT_CYCLE_AUTO = 0x04
CFG_FAULT_CLEAR = 0x02
CFG_FILTER_50HZ = 0x01

FAULT_HIGH_THRESHOLD = 0x80
FAULT_LOW_THRESHOLD = 0x40
FAULT_REFIN_HIGH = 0x20  # REFIN- > 0.85 x VBIAS
FAULT_REFIN_LOW = 0x10  # REFIN- < 0.85 x VBIAS, FORCE- open
FAULT_RTDIN_LOW = 0x08  # RTDIN- < 0.85 x VBIAS, FORCE- open
FAULT_OVUV = 0x04

ONE_SHOT_TIME_60HZ = 0.0525
ONE_SHOT_TIME_50HZ = 0.0625
AUTO_PERIOD_60HZ = 1.0 / 60.0
AUTO_PERIOD_50HZ = 1.0 / 50.0
FAULT_CYCLE_TIME = 0.0006

CODE_MAX = 0x7FFF
NOISE_LSB_RMS = 0.1  # the part's noise is well under an LSB of the 15-bit ratio


class Max31865Emulator:
    """A MAX31865 behind a chip-select line; attach it with `EmulatedSPI.attach(cs_line, emulator)`.

    `noise_scale` multiplies the (small) inherent noise; 0 gives an ideal converter.
    """

    def __init__(
        self,
        *,
        rref: float = 4300.0,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 0,
        noise_scale: float = 1.0,
        wires: Literal[2, 3, 4] = 4,
        lead_ohms: float = 0.0,
    ) -> None:
        self.rref = rref
        self.wires = wires
        self.lead_ohms = lead_ohms
        self.noise_scale = noise_scale
        self.overvoltage = False
        # Injected fault: the chip has stopped converting. Each conversion that falls due is lost and takes VBIAS
        # down with it (config bit 7 clears; the other bits stay), so the RTD register keeps its last value and
        # writing bias back on holds only until the next conversion falls due.
        self.stuck = False
        self.bus_error: BusError = None
        self.conversions = 0
        self._clock = clock
        self._rng = random.Random(seed)
        self._source: Source = math.inf
        self.reset()

    # -- test and simulator side -------------------------------------------------------------------------

    def reset(self) -> None:
        """Power-on state: everything zero except the high fault threshold (0xFFFF)."""
        self._config = 0
        self._code = 0
        self._high = 0xFFFF
        self._low = 0x0000
        self._status = 0
        self._selected = False
        self._address: int | None = None
        self._writing = False
        self._now = 0.0  # clock reading taken at the address byte: one instant per transaction
        self._one_shot_deadline: float | None = None
        self._auto_epoch: float | None = None
        self._auto_done = 0
        self._fault_cycle_deadline: float | None = None

    def set_resistance(self, source: Source) -> None:
        """The RTD's resistance in ohms, or a callable evaluated at each conversion. inf = open, 0 = short."""
        self._source = source

    def peek(self, register: int) -> int:
        """A register's value as a read would return it, without an SPI transaction."""
        self._advance(self._clock())
        return self._register(register & 0x07)

    # -- SPITarget ---------------------------------------------------------------------------------------

    def select(self) -> None:
        """CS fell: the next byte is an address."""
        self._selected = True
        self._address = None

    def deselect(self) -> None:
        """CS rose: the transaction is over."""
        self._selected = False
        self._address = None

    def transfer(self, data: bytes) -> bytes:
        """Full duplex: the first byte after select is the address, then registers auto-increment."""
        if self.bus_error is not None:
            # Board disconnected: nothing reaches the chip and MISO floats to one rail.
            fill = 0xFF if self.bus_error == "miso-high" else 0x00
            return bytes([fill]) * len(data)
        if not self._selected:
            return b"\xff" * len(data)
        out = bytearray()
        for byte in data:
            if self._address is None:
                now = self._clock()
                self._advance(now)
                self._now = now
                self._address = byte & 0x07
                self._writing = bool(byte & WRITE_FLAG)
                out.append(0xFF)
                continue
            if self._writing:
                self._write_register(self._address, byte, self._now)
                out.append(0xFF)
            else:
                out.append(self._register(self._address))
            self._address = (self._address + 1) & 0x07
        return bytes(out)

    # -- registers ---------------------------------------------------------------------------------------

    def _register(self, address: int) -> int:
        rtd = (self._code << 1) | (1 if self._status else 0)
        if address == REG_CONFIG:
            value = self._config
            if self._one_shot_deadline is not None:
                value |= CFG_ONE_SHOT
            if self._fault_cycle_deadline is not None:
                value |= CFG_FAULT_CYCLE_AUTO
            return value
        if address == REG_RTD_MSB:
            return rtd >> 8
        if address == REG_RTD_LSB:
            return rtd & 0xFF
        if address == REG_HFT_MSB:
            return self._high >> 8
        if address == REG_HFT_LSB:
            return self._high & 0xFF
        if address == REG_LFT_MSB:
            return self._low >> 8
        if address == REG_LFT_LSB:
            return self._low & 0xFF
        return self._status

    def _write_register(self, address: int, value: int, now: float) -> None:
        if address == REG_CONFIG:
            self._write_config(value, now)
        elif address == REG_HFT_MSB:
            self._high = (value << 8) | (self._high & 0xFF)
        elif address == REG_HFT_LSB:
            self._high = (self._high & 0xFF00) | value
        elif address == REG_LFT_MSB:
            self._low = (value << 8) | (self._low & 0xFF)
        elif address == REG_LFT_LSB:
            self._low = (self._low & 0xFF00) | value
        # RTD data and fault status are read-only: writes to them are dropped.

    def _write_config(self, value: int, now: float) -> None:
        was_auto = self._auto_active
        # One-shot, the fault-cycle bits and fault clear are commands, not stored state.
        self._config = value & ~(CFG_ONE_SHOT | CFG_FAULT_CYCLE | CFG_FAULT_CLEAR)
        if self._auto_active and not was_auto:
            self._auto_epoch, self._auto_done = now, 0
        elif not self._auto_active:
            self._auto_epoch = None
        if value & CFG_ONE_SHOT and not value & CFG_AUTO and self._one_shot_deadline is None:
            self._one_shot_deadline = now + self._one_shot_time
        if value & CFG_FAULT_CLEAR and not value & (CFG_ONE_SHOT | CFG_FAULT_CYCLE):
            self._status = 0
        automatic_cycle = value & (CFG_BIAS | CFG_AUTO | CFG_ONE_SHOT | CFG_FAULT_CYCLE) == (
            CFG_BIAS | CFG_FAULT_CYCLE_AUTO
        )
        if automatic_cycle and self._fault_cycle_deadline is None:
            self._fault_cycle_deadline = now + FAULT_CYCLE_TIME

    @property
    def _auto_active(self) -> bool:
        return self._config & (CFG_BIAS | CFG_AUTO) == (CFG_BIAS | CFG_AUTO)

    @property
    def _one_shot_time(self) -> float:
        return ONE_SHOT_TIME_50HZ if self._config & CFG_FILTER_50HZ else ONE_SHOT_TIME_60HZ

    @property
    def _auto_period(self) -> float:
        return AUTO_PERIOD_50HZ if self._config & CFG_FILTER_50HZ else AUTO_PERIOD_60HZ

    # -- conversions -------------------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        """Finish whatever has finished by `now`."""
        if self._fault_cycle_deadline is not None and now >= self._fault_cycle_deadline:
            self._fault_cycle_deadline = None
            self._fault_cycle()
        if self._one_shot_deadline is not None and now >= self._one_shot_deadline:
            self._one_shot_deadline = None
            if self.stuck:
                self._lose_conversion()
            elif self._config & CFG_BIAS:
                self._convert()
        if self._auto_epoch is not None:
            done = math.floor((now - self._auto_epoch) / self._auto_period)
            if done > self._auto_done and self.stuck:
                self._lose_conversion()
            elif done > self._auto_done:
                # Only the newest result is visible; the ones in between are counted, not computed.
                self.conversions += done - self._auto_done - 1
                self._auto_done = done
                self._convert()

    def _lose_conversion(self) -> None:
        self._config &= ~CFG_BIAS
        self._auto_epoch = None

    def _resistance(self) -> float:
        r = self._source() if callable(self._source) else self._source
        if math.isnan(r):
            return math.inf  # an unreadable element behaves like a broken one
        return max(r, 0.0)

    def _measured(self, element: float) -> float:
        """What the converter sees of an element of `element` Ω through its leads."""
        if self.wires == 2 or (self.wires == 3 and not self._config & CFG_3WIRE):
            return element + 2.0 * self.lead_ohms
        return element

    def _convert(self) -> None:
        self.conversions += 1
        r = self._measured(self._resistance())
        ratio = r / self.rref * 32768.0
        if ratio >= CODE_MAX:
            code = CODE_MAX
        elif ratio <= 0.0:
            code = 0
        else:
            noisy = ratio + self._rng.gauss(0.0, NOISE_LSB_RMS * self.noise_scale)
            code = min(max(round(noisy), 0), CODE_MAX)
        self._code = code
        if code >= self._high >> 1:
            self._status |= FAULT_HIGH_THRESHOLD
        if code <= self._low >> 1:
            self._status |= FAULT_LOW_THRESHOLD
        if self.overvoltage:
            self._status |= FAULT_OVUV

    def _fault_cycle(self) -> None:
        r = self._resistance()
        if math.isinf(r):
            self._status |= FAULT_REFIN_HIGH
        elif r == 0.0:
            self._status |= FAULT_RTDIN_LOW
        if self.overvoltage:
            self._status |= FAULT_OVUV
