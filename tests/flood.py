"""Hostile local users for the local socket: a connection flood and slowloris clients, each in a forked child that
has become another (unprivileged) user, so the controller sees them as monitors through SO_PEERCRED.

Used by tests/test_local_api.py and bench/socket_flood.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Attack:
    """A forked attacker; `finish()` waits for it and returns what it saw."""

    pid: int
    read_end: int
    report: dict[str, int] = field(default_factory=dict)

    def finish(self) -> dict[str, int]:
        chunks = []
        while chunk := os.read(self.read_end, 1 << 16):
            chunks.append(chunk)
        os.close(self.read_end)
        _, status = os.waitpid(self.pid, 0)
        self.report = json.loads(b"".join(chunks) or b"{}")
        assert os.waitstatus_to_exitcode(status) == 0, self.report
        return self.report


def _become(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2.0)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    sock.setblocking(False)
    return sock


def _alive(sock: socket.socket, report: dict[str, int]) -> bool:
    """Whether the controller still holds this connection (reads and counts what it said)."""
    try:
        data = sock.recv(4096)
    except BlockingIOError:
        return True
    except OSError:
        return False
    if not data:
        return False
    if b"too many" in data:
        report["refused"] = report.get("refused", 0) + 1
    if b"disconnected" in data:
        report["dropped"] = report.get("dropped", 0) + 1
    return True


def _attack(path: Path, uid: int, connections: int, duration_s: float, slowloris: bool, report_to: int) -> None:
    report = {"connects": 0, "refused": 0, "dropped": 0, "held_max": 0}
    _become(uid)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, connections + 64)), hard))
    held: list[socket.socket] = []
    deadline = time.monotonic() + duration_s
    next_trickle = time.monotonic()
    while time.monotonic() < deadline:
        kept = []
        for sock in held:
            if _alive(sock, report):
                kept.append(sock)
            else:
                sock.close()
        held = kept
        while len(held) < connections and time.monotonic() < deadline:  # top up what the controller closed
            sock = _connect(path)
            if sock is None:
                break
            report["connects"] += 1
            held.append(sock)
            if slowloris:
                with contextlib.suppress(OSError):
                    sock.send(b'{"v": 1, "id": "slow", ')
        report["held_max"] = max(report["held_max"], len(held))
        if slowloris and time.monotonic() >= next_trickle:  # one byte now and then: never a whole line
            for sock in held:
                with contextlib.suppress(OSError):
                    sock.send(b" ")
            next_trickle = time.monotonic() + 0.5
        time.sleep(0.05)
    for sock in held:
        sock.close()
    os.write(report_to, json.dumps(report).encode())


def start(path: Path, uid: int, connections: int, duration_s: float, *, slowloris: bool = False) -> Attack:
    """Fork a child that becomes `uid` and keeps `connections` connections to the socket at `path` open for
    `duration_s` (reconnecting those the controller closes). A slowloris child starts a request line on each and
    then sends one byte every half second, never finishing it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller
        code = 1
        try:
            os.close(read_end)
            _attack(path, uid, connections, duration_s, slowloris, write_end)
            code = 0
        except BaseException as error:
            os.write(write_end, json.dumps({"child error": repr(error)}).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    return Attack(pid, read_end)
