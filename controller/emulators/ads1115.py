"""Register-level emulator of the TI ADS1115 16-bit I2C ADC.

Conversions are evaluated lazily: a conversion started at t ends at t + 1/data_rate on the injected `clock`,
and its result is computed (from the inputs as they are then) the first time someone touches the chip after
that deadline. No threads, so a `ManualClock`-style clock gives fully deterministic results.

Inputs are clamped to the absolute-maximum range -0.3 V .. VDD + 0.3 V, as the chip's ESD diodes would (a
6.144 V range on a 3.3 V chip still cannot see more than 3.6 V).
"""

from __future__ import annotations

import errno
import math
import random
import time
from collections.abc import Callable

Source = float | Callable[[], float]

REG_CONVERSION = 0x00
REG_CONFIG = 0x01
REG_LO_THRESH = 0x02
REG_HI_THRESH = 0x03

CONFIG_RESET = 0x8583
LO_THRESH_RESET = 0x8000
HI_THRESH_RESET = 0x7FFF

OS_BIT = 0x8000
MODE_SINGLE = 0x0100

# MUX 14:12 -> (positive input, negative input); None is GND.
MUX_INPUTS: dict[int, tuple[int, int | None]] = {
    0: (0, 1),
    1: (0, 3),
    2: (1, 3),
    3: (2, 3),
    4: (0, None),
    5: (1, None),
    6: (2, None),
    7: (3, None),
}
# PGA 11:9 -> full-scale range in volts (110 and 111 are both 0.256 V).
PGA_FSR = (6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256)
# DR 7:5 -> samples per second.
DATA_RATES = (8, 16, 32, 64, 128, 250, 475, 860)

CODE_MAX = 32767
CODE_MIN = -32768
INPUT_MARGIN = 0.3  # absolute maximum beyond the rails

# Inherent noise, in LSB rms of the selected range: about 0.5 at 8 SPS rising to about 2 at 860 SPS
# (the datasheet's noise tables scale roughly with the range, so an LSB figure holds across gains).
NOISE_LSB_SLOW = 0.5
NOISE_LSB_FAST = 2.0


def noise_lsb_rms(data_rate: int) -> float:
    """The emulator's noise in LSB rms at `data_rate`, interpolated geometrically between 8 and 860 SPS."""
    span = math.log2(DATA_RATES[-1]) - math.log2(DATA_RATES[0])
    share = (math.log2(data_rate) - math.log2(DATA_RATES[0])) / span
    return NOISE_LSB_SLOW * math.pow(NOISE_LSB_FAST / NOISE_LSB_SLOW, share)


def _fields(config: int) -> tuple[int, float, int]:
    """(mux, full-scale volts, data rate) from a config word."""
    return (config >> 12) & 0x7, PGA_FSR[(config >> 9) & 0x7], DATA_RATES[(config >> 5) & 0x7]


class Ads1115Emulator:
    """An ADS1115 behind an I2C address; attach it with `EmulatedI2C.attach(0x48, emulator)`.

    `noise_scale` multiplies the inherent noise (0 gives an ideal converter, for exact tests).
    """

    def __init__(
        self,
        *,
        vdd: float = 3.3,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 0,
        noise_scale: float = 1.0,
    ) -> None:
        self.vdd = vdd
        self.noise_scale = noise_scale
        self.bus_error = False
        self._stuck = False
        self.conversions = 0
        self._clock = clock
        self._rng = random.Random(seed)
        self._inputs: list[Source] = [0.0, 0.0, 0.0, 0.0]
        self.reset()

    # -- test and simulator side -------------------------------------------------------------------------

    def reset(self) -> None:
        """Power-on state: registers at their reset values, powered down in single-shot mode."""
        self._pointer = REG_CONVERSION
        self._config = CONFIG_RESET & ~OS_BIT
        self._conversion = 0
        self._lo_thresh = LO_THRESH_RESET
        self._hi_thresh = HI_THRESH_RESET
        self._shot_deadline: float | None = None
        self._shot_config = self._config
        self._cont_epoch: float | None = None
        self._cont_done = 0

    def set_input(self, ain: int, source: Source) -> None:
        """Feed AIN`ain` (0..3) with a voltage or a callable evaluated at each conversion."""
        if not 0 <= ain <= 3:
            raise ValueError(f"ADS1115 has AIN0..AIN3, got {ain}")
        self._inputs[ain] = source

    @property
    def stuck(self) -> bool:
        """Injected fault: a hung converter whose conversions never finish.

        A single-shot start leaves OS reading 0 for ever (the driver's poll has no timeout) and continuous mode
        stops updating the conversion register. Clearing the fault brings the chip back idle: the hung
        conversion is abandoned, not completed.
        """
        return self._stuck

    @stuck.setter
    def stuck(self, stuck: bool) -> None:
        if self._stuck and not stuck:
            self._shot_deadline = None
            if self._cont_epoch is not None:
                self._cont_epoch, self._cont_done = self._clock(), 0
        self._stuck = stuck

    def peek(self, register: int) -> int:
        """A register's current value as a read would return it, without moving the pointer."""
        self._advance(self._clock())
        return self._register(register & 0x3)

    # -- I2CTarget ---------------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """A 1-byte write sets the pointer; a 3-byte write sets pointer and register (big-endian)."""
        self._check_bus()
        if not data:
            return  # address-only probe: acknowledged, nothing to do
        now = self._clock()
        self._advance(now)
        self._pointer = data[0] & 0x3
        if len(data) < 3:
            return  # a register needs both bytes before the chip latches it
        value = (data[1] << 8) | data[2]
        if self._pointer == REG_CONFIG:
            self._write_config(value, now)
        elif self._pointer == REG_LO_THRESH:
            self._lo_thresh = value
        elif self._pointer == REG_HI_THRESH:
            self._hi_thresh = value
        # The conversion register is read-only: writes to it are acknowledged and dropped.

    def read(self, n: int) -> bytes:
        """The register at the pointer, MSB first, repeated if more bytes are clocked out."""
        self._check_bus()
        self._advance(self._clock())
        value = self._register(self._pointer)
        pair = bytes([(value >> 8) & 0xFF, value & 0xFF])
        return (pair * (n // 2 + 1))[:n]

    # -- internals ---------------------------------------------------------------------------------------

    def _check_bus(self) -> None:
        if self.bus_error:
            raise OSError(errno.EIO, "Input/output error")

    def _register(self, pointer: int) -> int:
        if pointer == REG_CONVERSION:
            return self._conversion & 0xFFFF
        if pointer == REG_CONFIG:
            return self._config | (OS_BIT if self._os_bit(self._clock()) else 0)
        if pointer == REG_LO_THRESH:
            return self._lo_thresh
        return self._hi_thresh

    def _os_bit(self, now: float) -> bool:
        if not self._config & MODE_SINGLE:
            return False  # continuous mode is always converting
        if self._shot_deadline is None:
            return True
        return not self._stuck and now >= self._shot_deadline

    def _write_config(self, value: int, now: float) -> None:
        start_shot = bool(value & OS_BIT)
        self._config = value & ~OS_BIT
        if self._config & MODE_SINGLE:
            self._cont_epoch = None
            # OS=1 while a conversion is running has no effect; otherwise it starts one with these settings.
            if start_shot and self._shot_deadline is None:
                _, _, rate = _fields(self._config)
                self._shot_config = self._config
                self._shot_deadline = now + 1.0 / rate
        else:
            # Entering continuous mode, or rewriting its config, restarts the conversion cycle.
            self._shot_deadline = None
            self._cont_epoch = now
            self._cont_done = 0

    def _advance(self, now: float) -> None:
        """Complete whatever conversions have finished by `now`."""
        if self._stuck:
            return
        if self._shot_deadline is not None and now >= self._shot_deadline:
            self._shot_deadline = None
            self._conversion = self._convert(self._shot_config)
            self.conversions += 1
        if self._cont_epoch is not None:
            _, _, rate = _fields(self._config)
            done = math.floor((now - self._cont_epoch) * rate)
            if done > self._cont_done:
                # Only the newest result is visible; the ones in between are counted, not computed.
                self.conversions += done - self._cont_done
                self._cont_done = done
                self._conversion = self._convert(self._config)

    def _volts(self, ain: int | None) -> float:
        if ain is None:
            return 0.0
        source = self._inputs[ain]
        volts = source() if callable(source) else source
        return min(max(volts, -INPUT_MARGIN), self.vdd + INPUT_MARGIN)

    def _convert(self, config: int) -> int:
        mux, fsr, rate = _fields(config)
        positive, negative = MUX_INPUTS[mux]
        volts = self._volts(positive) - self._volts(negative)
        # Out of range saturates (clipped/open), never wraps, and noise cannot pull it back in range.
        if volts >= fsr:
            return CODE_MAX
        if volts <= -fsr:
            return CODE_MIN
        lsb = fsr / 32768.0
        volts += self._rng.gauss(0.0, noise_lsb_rms(rate) * lsb * self.noise_scale)
        return min(max(round(volts / lsb), CODE_MIN), CODE_MAX)
