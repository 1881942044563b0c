"""The systemd notify protocol against real AF_UNIX datagram sockets, and the watchdog gate's timing."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from controller.notify import Notifier, WatchdogGate, watchdog_interval_from_env


class Receiver:
    """A bound datagram socket standing in for systemd's notify socket."""

    def __init__(self, address: str | bytes) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)

    def recv(self) -> bytes:
        """The next datagram; a local datagram is queued before `sendto` returns, so it is already here."""
        self.sock.settimeout(1.0)
        return self.sock.recv(4096)

    def drain(self) -> list[bytes]:
        """Every datagram waiting, without blocking."""
        self.sock.setblocking(False)
        received = []
        while True:
            try:
                received.append(self.sock.recv(4096))
            except BlockingIOError:
                return received

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without any notify variables, even when pytest itself runs under systemd."""
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A temporary directory with a short path: socket paths are limited to 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="hn-") as name:
        yield Path(name)


@pytest.fixture
def receiver(short_dir: Path) -> Iterator[Receiver]:
    rx = Receiver(str(short_dir / "notify.sock"))
    yield rx
    rx.close()


@pytest.fixture
def abstract_receiver() -> Iterator[Receiver]:
    rx = Receiver(b"\0hearth-test-" + uuid.uuid4().hex.encode())
    yield rx
    rx.close()


def path_of(rx: Receiver) -> str:
    assert isinstance(rx.address, str)
    return rx.address


# --- messages ---------------------------------------------------------------------------------------------


def test_ready_sends_ready_and_status(receiver: Receiver) -> None:
    with Notifier(path_of(receiver)) as notifier:
        assert notifier.enabled
        notifier.ready("sampling 12 channels")
    assert receiver.recv() == b"READY=1\nSTATUS=sampling 12 channels"


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        pytest.param(lambda n: n.ready(), b"READY=1", id="ready-without-status"),
        pytest.param(lambda n: n.status("tank 52.0 C"), b"STATUS=tank 52.0 C", id="status"),
        pytest.param(lambda n: n.status("two\nlines"), b"STATUS=two lines", id="status-kept-on-one-line"),
        pytest.param(lambda n: n.stopping(), b"STOPPING=1", id="stopping"),
        pytest.param(lambda n: n.watchdog(), b"WATCHDOG=1", id="watchdog"),
    ],
)
def test_each_message(receiver: Receiver, send: Callable[[Notifier], None], expected: bytes) -> None:
    notifier = Notifier(path_of(receiver))
    send(notifier)
    assert receiver.drain() == [expected]
    notifier.close()


def test_socket_comes_from_the_environment(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", path_of(receiver))
    notifier = Notifier()
    notifier.ready()
    assert receiver.recv() == b"READY=1"
    notifier.close()


def test_abstract_namespace_socket(abstract_receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(abstract_receiver.address, bytes)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + abstract_receiver.address[1:].decode())
    notifier = Notifier()
    assert notifier.enabled
    notifier.ready("up")
    assert abstract_receiver.recv() == b"READY=1\nSTATUS=up"
    notifier.close()


def test_close_makes_later_calls_no_ops(receiver: Receiver) -> None:
    notifier = Notifier(path_of(receiver))
    notifier.close()
    notifier.close()
    notifier.ready("after close")
    assert not notifier.enabled
    assert receiver.drain() == []


# --- without systemd, and when systemd cannot be reached --------------------------------------------------


def test_no_notify_socket_is_a_silent_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_sockets(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("no socket may be created without NOTIFY_SOCKET")

    monkeypatch.setenv("WATCHDOG_USEC", "30000000")  # ignored: there is nothing to pat through
    monkeypatch.setattr(socket, "socket", no_sockets)
    with capture_logs() as logs:
        notifier = Notifier()
        notifier.ready("up")
        notifier.status("x")
        notifier.watchdog()
        notifier.stopping()
        gate = WatchdogGate(notifier)
        gate.tick_ok(0.0)
        assert not gate.pat(0.0)
        notifier.close()
    assert not notifier.enabled
    assert notifier.watchdog_interval_s is None
    assert logs == []


def test_empty_path_disables_even_with_the_variable_set(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", path_of(receiver))
    notifier = Notifier("")
    notifier.ready()
    assert not notifier.enabled
    assert receiver.drain() == []


def test_missing_socket_logs_once_and_never_raises(short_dir: Path) -> None:
    with capture_logs() as logs:
        notifier = Notifier(str(short_dir / "missing.sock"))
        notifier.ready("up")
        for _ in range(5):
            notifier.watchdog()
        notifier.status("still here")
        notifier.stopping()
        notifier.close()
    assert len(logs) == 1
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["notify_socket"].endswith("missing.sock")
    assert logs[0]["message"] == "READY=1"


def test_failure_is_logged_again_after_a_recovery(short_dir: Path) -> None:
    path = str(short_dir / "flaky.sock")
    notifier = Notifier(path)
    with capture_logs() as logs:
        notifier.watchdog()  # nobody there: logged
        notifier.watchdog()  # still failing: quiet
        rx = Receiver(path)
        notifier.watchdog()  # works again
        assert rx.drain() == [b"WATCHDOG=1"]
        rx.close()
        os.unlink(path)
        notifier.watchdog()  # a new outage: logged again
    notifier.close()
    assert len(logs) == 2


def test_full_queue_never_blocks(receiver: Receiver) -> None:
    """A supervisor that stops reading must not stall the control loop: sends fail fast, logged once."""
    notifier = Notifier(path_of(receiver))
    with capture_logs() as logs:
        for _ in range(2000):
            notifier.watchdog()
    notifier.close()
    assert len(logs) == 1
    assert 0 < len(receiver.drain()) < 2000


def test_unsupported_address_is_disabled_with_one_log_line() -> None:
    with capture_logs() as logs:
        notifier = Notifier("relative/notify.sock")
        notifier.ready()
    assert not notifier.enabled
    assert len(logs) == 1


# --- WATCHDOG_USEC / WATCHDOG_PID ---------------------------------------------------------------------------

PID = 4242


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, None, id="not-asked"),
        pytest.param({"WATCHDOG_USEC": "30000000"}, 30.0, id="usec-only"),
        pytest.param({"WATCHDOG_USEC": "500000"}, 0.5, id="sub-second"),
        pytest.param({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(PID)}, 30.0, id="pid-matches"),
        pytest.param({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None, id="pid-of-another-process"),
        pytest.param({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": ""}, None, id="pid-empty"),
        pytest.param({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "abc"}, None, id="pid-malformed"),
        pytest.param({"WATCHDOG_PID": str(PID)}, None, id="pid-without-usec"),
        pytest.param({"WATCHDOG_USEC": "0"}, None, id="zero"),
        pytest.param({"WATCHDOG_USEC": ""}, None, id="empty"),
        pytest.param({"WATCHDOG_USEC": "-5"}, None, id="negative"),
        pytest.param({"WATCHDOG_USEC": "1.5"}, None, id="not-an-integer"),
        pytest.param({"WATCHDOG_USEC": "30s"}, None, id="units"),
        pytest.param({"WATCHDOG_USEC": " 30000000"}, None, id="whitespace"),
    ],
)
def test_watchdog_interval_from_env(environ: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval_from_env(environ, PID) == expected


@pytest.mark.parametrize(
    ("watchdog_pid", "expected"),
    [(None, 30.0), ("self", 30.0), ("other", None)],
)
def test_notifier_reads_the_watchdog_from_its_environment(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, watchdog_pid: str | None, expected: float | None
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    if watchdog_pid is not None:
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() if watchdog_pid == "self" else os.getpid() + 1))
    notifier = Notifier(path_of(receiver))
    assert notifier.watchdog_interval_s == expected
    assert WatchdogGate(notifier).enabled == (expected is not None)
    notifier.close()


# --- the watchdog gate --------------------------------------------------------------------------------------


def test_watchdog_only_after_a_healthy_tick(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notifier = Notifier(path_of(receiver))
    gate = WatchdogGate(notifier)
    assert gate.interval_s == 30.0
    assert not gate.due(0.0)
    assert not gate.pat(0.0)
    assert receiver.drain() == []
    gate.tick_ok(1.0)
    assert gate.due(1.0)
    assert gate.pat(1.0)
    assert receiver.drain() == [b"WATCHDOG=1"]
    notifier.close()


def test_hung_tick_stops_the_pats(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Healthy ticks every second pat every 15 s; once ticks stop being healthy, no pat goes out at all."""
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    notifier = Notifier(path_of(receiver))
    gate = WatchdogGate(notifier)
    for second in range(0, 31):
        gate.tick_ok(float(second))
        gate.pat(float(second))
    assert receiver.drain() == [b"WATCHDOG=1"] * 3  # at 0, 15 and 30 s
    assert gate.last_pat == 30.0

    for tenth in range(301, 3000):  # the tick after 30 s hangs; the runtime still asks, every 0.1 s, until 300 s
        now = tenth / 10
        assert not gate.due(now)
        gate.pat(now)
    assert receiver.drain() == []
    assert gate.pats == 3
    notifier.close()


Event = tuple[str, float]  # ("tick", t): a healthy tick at t; ("pat", t): the runtime asks to pat at t


def ticks_and_pats(*times: float) -> list[Event]:
    """A healthy tick followed by a pat attempt at each time: the runtime's normal loop."""
    return [event for t in times for event in (("tick", t), ("pat", t))]


def pats(*times: float) -> list[Event]:
    return [("pat", t) for t in times]


@pytest.mark.parametrize(
    ("interval", "events", "expected"),
    [
        pytest.param(None, ticks_and_pats(0, 1, 100), [], id="watchdog-not-asked"),
        pytest.param(0.0, ticks_and_pats(0, 1, 100), [], id="zero-interval-disables"),
        pytest.param(10.0, pats(0, 5, 100), [], id="never-healthy-never-pats"),
        pytest.param(10.0, ticks_and_pats(0), [0], id="first-healthy-tick-pats-at-once"),
        pytest.param(10.0, ticks_and_pats(*range(13)), [0, 5, 10], id="at-most-every-half-interval"),
        pytest.param(10.0, ticks_and_pats(0, 4.999, 5), [0, 5], id="half-interval-boundary"),
        pytest.param(10.0, ticks_and_pats(0, 7, 14), [0, 7, 14], id="slow-ticks-pat-each-time"),
        pytest.param(10.0, [("tick", 0), *pats(5)], [5], id="tick-up-to-half-interval-old-counts"),
        pytest.param(10.0, [("tick", 0), *pats(5.001)], [], id="stale-tick-does-not-count"),
        pytest.param(10.0, [*ticks_and_pats(0), *pats(5, 10, 50)], [0], id="one-tick-buys-one-pat"),
        pytest.param(10.0, [*ticks_and_pats(0, 1, 2, 5), *pats(*range(6, 60))], [0, 5], id="hung-after-healthy-run"),
        pytest.param(10.0, [*ticks_and_pats(0), *pats(*range(1, 20)), *ticks_and_pats(21)], [0, 21], id="recovers"),
        pytest.param(10.0, [*ticks_and_pats(0), ("tick", 3), *pats(9)], [0], id="healthy-then-stale-before-due"),
        pytest.param(
            10.0, [*ticks_and_pats(*range(8)), *pats(*range(8, 60))], [0, 5, 10], id="last-tick-earns-one-pat"
        ),
        pytest.param(10.0, ticks_and_pats(100, 50), [100, 50], id="clock-went-backwards"),
        pytest.param(2.0, ticks_and_pats(0, 0.5, 1, 1.5, 2), [0, 1, 2], id="short-interval"),
    ],
)
def test_gate_timing(interval: float | None, events: list[Event], expected: list[float]) -> None:
    notifier = Notifier("")  # disabled: only the gate's decisions are under test here
    gate = WatchdogGate(notifier, interval_s=interval)
    patted = []
    for kind, t in events:
        if kind == "tick":
            gate.tick_ok(t)
        elif gate.pat(t):
            patted.append(t)
    assert patted == expected
    assert gate.pats == len(expected)
