"""An emulated USB serial adapter: a pty pair, with the client's path a symlink that can vanish and return.

The emulator holds the pty's master side; clients (pymodbus, pyserial) open `path`, a symlink named like the
real port that points at the pty's slave, exactly as a udev by-id link points at /dev/ttyUSB0. `unplug()`
closes the pty, so an open client sees a hang-up and the path disappears; `plug()` makes a new pty and link,
as a re-inserted adapter does. The slave side is put in raw mode at once (tty.setraw) so nothing the emulator
writes is echoed or cooked before a client has opened and configured the port.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from pathlib import Path


class EmulatedSerialPort:
    """A pty pair behind a stable path. Thread-safe: the emulator thread reads and writes, tests plug/unplug."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None
        self.plug()

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def plug(self) -> None:
        with self._lock:
            if self._master is not None:
                return
            master, slave = os.openpty()
            tty.setraw(slave)
            os.set_blocking(master, False)
            self._master, self._slave = master, slave
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.path.symlink_to(os.ttyname(slave))

    def unplug(self) -> None:
        with self._lock:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            for fd in (self._master, self._slave):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = None

    def read(self, timeout_s: float) -> bytes:
        """What the client wrote, waiting up to `timeout_s`; b"" when nothing came or the port is unplugged."""
        master = self._master
        if master is None:
            threading.Event().wait(timeout_s)
            return b""
        try:
            ready, _, _ = select.select([master], [], [], timeout_s)
            return os.read(master, 4096) if ready else b""
        except OSError:  # closed by unplug() meanwhile
            return b""

    def write(self, data: bytes) -> bool:
        """Send `data` to the client; False when the port is unplugged (the bytes are lost, as on a real line)."""
        with self._lock:
            if self._master is None:
                return False
            # A line never waits for its receiver: what the client's buffer cannot take is lost, as on a UART.
            with contextlib.suppress(BlockingIOError):
                os.write(self._master, data)
            return True

    def close(self) -> None:
        self.unplug()
