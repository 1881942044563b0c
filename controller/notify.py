"""The systemd notify protocol, spoken directly on `$NOTIFY_SOCKET` (no python-systemd dependency).

systemd passes a service of `Type=notify` the address of a datagram socket in `$NOTIFY_SOCKET`. The service
sends newline-separated `KEY=value` assignments to it: `READY=1` once it is up, `STATUS=...` for
`systemctl status`, `STOPPING=1` when it shuts down and `WATCHDOG=1` to pat the watchdog that `WatchdogSec=`
arms. A path starting with "@" names a socket in the abstract namespace (a leading NUL byte on the wire).

Outside systemd (no `$NOTIFY_SOCKET`) every call is a silent no-op, so the same code runs in tests, in the
demo and under the service manager. Sending never raises: a controller must not stop because its supervisor
cannot be told something. A failure is logged once, when sending goes from working to failing.

`WatchdogGate` decides when a `WATCHDOG=1` may be sent: only after a healthy control tick, so that a hung or
failing control loop stops the pats and systemd restarts the service.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from types import TracebackType

import structlog

log = structlog.get_logger("hearth.notify")

_DIGITS = re.compile(r"[0-9]+")


def watchdog_interval_from_env(environ: Mapping[str, str], pid: int) -> float | None:
    """The watchdog interval in seconds that systemd asked this process for, or None if it did not.

    `$WATCHDOG_USEC` must be a positive decimal number of microseconds. When `$WATCHDOG_PID` is set, it must
    equal `pid`: otherwise the variables were meant for another process (a parent that exec'd us, say) and
    this one has no watchdog. Malformed values mean no watchdog rather than an error.
    """
    usec = environ.get("WATCHDOG_USEC", "")
    if not _DIGITS.fullmatch(usec) or int(usec) == 0:
        return None
    owner = environ.get("WATCHDOG_PID")
    if owner is not None and (not _DIGITS.fullmatch(owner) or int(owner) != pid):
        return None
    return int(usec) / 1_000_000


def _address(path: str) -> str | bytes:
    """The `sendto` address for a `$NOTIFY_SOCKET` value: "@name" is the abstract socket "\\0name"."""
    if path.startswith("@"):
        return b"\0" + os.fsencode(path[1:])
    return path


class Notifier:
    """Sends notify messages to systemd; a no-op when the process was not started with a notify socket.

    `enabled` is False without a socket (or with an address that is neither absolute nor abstract).
    `watchdog_interval_s` is the interval systemd's watchdog was armed with, from `$WATCHDOG_USEC` and
    `$WATCHDOG_PID`, or None when the watchdog was not asked for or there is no socket to pat it through.
    """

    def __init__(self, socket_path: str | None = None) -> None:
        path = os.environ.get("NOTIFY_SOCKET") if socket_path is None else socket_path
        self._path = path or ""
        self._address: str | bytes = _address(self._path) if self._path else ""
        self._sock: socket.socket | None = None
        self._failing = False
        if self._path and not self._path.startswith(("/", "@")):
            log.warning("notify socket address not supported; not notifying systemd", notify_socket=self._path)
            self._path = ""
        if self._path:
            try:
                # Non-blocking: a full receive queue must never stall the control loop; the send fails instead.
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
            except OSError as error:
                log.warning("cannot create notify socket; not notifying systemd", error=str(error))
                self._path = ""
        self.enabled: bool = self._sock is not None
        self.watchdog_interval_s: float | None = (
            watchdog_interval_from_env(os.environ, os.getpid()) if self.enabled else None
        )

    def ready(self, status: str = "") -> None:
        """Tell systemd start-up is complete (`READY=1`), with an optional status line."""
        self._send("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def watchdog(self) -> None:
        """Pat the watchdog (`WATCHDOG=1`). Prefer `WatchdogGate`, which pats only after healthy ticks."""
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """Set the one-line status shown by `systemctl status` (`STATUS=...`)."""
        self._send(f"STATUS={_one_line(text)}")

    def stopping(self) -> None:
        """Tell systemd the service is shutting down (`STOPPING=1`)."""
        self._send("STOPPING=1")

    def close(self) -> None:
        """Close the socket; later calls are no-ops."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.enabled = False

    def __enter__(self) -> Notifier:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _send(self, *assignments: str) -> bool:
        """Send one datagram of newline-separated assignments; True if it went out. Never raises."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto("\n".join(assignments).encode(), self._address)
        except OSError as error:
            if not self._failing:
                log.warning(
                    "cannot notify systemd; carrying on without it",
                    notify_socket=self._path,
                    message=assignments[0],
                    error=str(error),
                )
            self._failing = True
            return False
        self._failing = False
        return True


def _one_line(text: str) -> str:
    """A status value on one line: a newline would start a new assignment."""
    return " ".join(text.splitlines())


class WatchdogGate:
    """Pats the watchdog only after a healthy control tick.

    The runtime calls `tick_ok(now)` after each healthy tick, then `if gate.due(now): gate.pat(now)`. A pat is
    due when all of these hold:

    - systemd armed a watchdog (an interval is known);
    - a healthy tick was reported since the last pat;
    - that tick is recent: no older than half the interval;
    - half the interval has passed since the last pat (or nothing was patted yet).

    So pats go out at most every interval/2 while ticks stay healthy, and each healthy tick earns at most one.
    If ticks stop being healthy (a hung tick, or ticks that fail), no pat is sent however much time passes,
    and systemd kills and restarts the service one interval after the last pat: at most one interval after
    the last healthy tick when the runtime pats right after `tick_ok`, as intended (1.5 intervals if it
    asks later, since a tick up to interval/2 old still earns its pat).

    `now` is injected, in seconds of a monotonic *real-time* clock (`time.monotonic()`): systemd's watchdog
    runs in real time, so never pass simulated time here. The gate never reads a clock itself.
    """

    def __init__(self, notifier: Notifier, interval_s: float | None = None) -> None:
        """`interval_s` defaults to the notifier's `watchdog_interval_s`; None or <= 0 disables the gate."""
        interval = notifier.watchdog_interval_s if interval_s is None else interval_s
        self._notifier = notifier
        self.interval_s: float | None = interval if interval is not None and interval > 0 else None
        self.last_healthy: float | None = None
        self.last_pat: float | None = None
        self.pats = 0
        self._healthy_since_pat = False

    @property
    def enabled(self) -> bool:
        """Whether systemd asked for a watchdog (otherwise `due` is always False)."""
        return self.interval_s is not None

    def tick_ok(self, now: float) -> None:
        """Record that a control tick completed healthily at `now`."""
        self.last_healthy = now
        self._healthy_since_pat = True

    def due(self, now: float) -> bool:
        """Whether a pat should be sent at `now` (see the class docstring for the rule)."""
        if self.interval_s is None or not self._healthy_since_pat or self.last_healthy is None:
            return False
        spacing = self.interval_s / 2
        if now - self.last_healthy > spacing:
            return False  # the last healthy tick is stale: the loop may be hung since
        # A clock that went backwards (now < last pat) cannot prove the spacing, so it does not block the pat.
        return self.last_pat is None or now - self.last_pat >= spacing or now < self.last_pat

    def pat(self, now: float) -> bool:
        """Send `WATCHDOG=1` if a pat is due at `now`; True if it was due and sent. Calling it early is harmless."""
        if not self.due(now):
            return False
        self._notifier.watchdog()
        self.last_pat = now
        self.pats += 1
        self._healthy_since_pat = False
        return True
