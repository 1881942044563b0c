"""The local API against the real controller: `hearth run` on the simulated demo house (10x speed), a plain unix
socket client speaking JSON lines, and clients running as other users (forked, then setuid) to check that the
role really comes from the peer's credentials.

One controller serves the whole module; the last test stops it and reopens its store.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings

from controller import protocol
from controller.decode import SOCKET_LIMITS
from controller.store import Store
from tests import fuzz_strategies

ROOT = Path(__file__).resolve().parent.parent
HEARTH = str(Path(sys.executable).parent / "hearth")
NOBODY = 65534
CHANNELS = 21  # layouts/demo.toml: nine temperatures, flow, the heat-pump meter, the smart meter; heat, its kWh, COP

Message = dict[str, Any]


class Client:
    """A blocking JSON-lines client; pushes that arrive while waiting for an answer are kept for later."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buffer = b""
        self.pushes: list[Message] = []
        self.counter = 0

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> Message:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("the controller closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        message: Message = json.loads(line)
        return message

    def answer(self) -> Message:
        """The next message that is not a push."""
        while True:
            message = self.read()
            if "push" in message:
                self.pushes.append(message)
            else:
                return message

    def request(self, op: str, **fields: Any) -> Message:
        self.counter += 1
        request_id = f"r{self.counter}"
        self.send_raw(json.dumps({"v": 1, "id": request_id, "op": op, **fields}).encode() + b"\n")
        answer = self.answer()
        assert answer["id"] == request_id, answer
        return answer

    def push(self, kind: str, timeout: float = 2.0, where: Any = None) -> Message:
        """The next push of `kind` that `where` accepts, from those kept or from the socket. Pushes of `kind`
        that it does not accept are dropped; pushes of the other kind are kept for later."""
        deadline = time.monotonic() + timeout
        while True:
            kept = []
            for index, message in enumerate(self.pushes):
                if message["push"] != kind:
                    kept.append(message)
                elif where is None or where(message[kind]):
                    self.pushes = kept + self.pushes[index + 1 :]
                    return message
            self.pushes = kept
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind} push within {timeout} s")
            message = self.read()
            if "push" in message:
                self.pushes.append(message)


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    state_dir: Path
    socket: Path
    group: str
    log: Path

    def connect(self) -> Client:
        return Client(self.socket)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=15)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def hearth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    state = tmp_path_factory.mktemp("local-api")
    # A short path every user can reach (pytest's own tmp dirs are 0700 and the sun_path limit is 108 bytes).
    socket_dir = Path(tempfile.mkdtemp(prefix="hearth-", dir="/tmp"))
    socket_dir.chmod(0o755)
    group = f"htt{os.getpid() % 100000}"
    layout = state / "layout.toml"
    layout.write_text(
        (ROOT / "layouts/demo.toml").read_text()
        + '\nfaults = { outdoor = "open" }\n'  # continues [sim]: a sensor fault, so there is an alarm to ack
        + f'\n[links.local]\ntechnician_group = "{group}"\n'
    )
    log = state / "hearth.log"
    command = [
        HEARTH,
        "run",
        "--layout",
        str(layout),
        "--state-dir",
        str(state),
        "--socket",
        str(socket_dir / "hearth.sock"),
        "--speed",
        "10",
        "--log-format",
        "json",
    ]
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, stderr=stderr, stdout=subprocess.DEVNULL, cwd=ROOT)
    running = Running(process, state, socket_dir / "hearth.sock", group, log)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, running.log_tail()
            try:
                client = running.connect()
                break
            except (FileNotFoundError, ConnectionRefusedError):
                assert time.monotonic() < deadline, running.log_tail()
                time.sleep(0.05)
        with _closing(client):
            assert client.request("subscribe")["ok"]
            client.push("state", timeout=5, where=lambda s: len(s["readings"]) == CHANNELS)
        yield running
    finally:
        running.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)
    assert "Traceback" not in log.read_text(errors="replace")


class _closing:
    def __init__(self, client: Client) -> None:
        self.client = client

    def __enter__(self) -> Client:
        return self.client

    def __exit__(self, *_: object) -> None:
        self.client.close()


def as_user(running: Running, uid: int, gid: int, requests: list[Message]) -> list[Message]:
    """Run requests from a forked child that has become uid/gid (no supplementary groups); its answers."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            client = running.connect()
            replies = [client.request(**request) for request in requests]
            if any(request["op"] == "subscribe" for request in requests):
                replies.append(client.push("state"))
            os.write(write_end, json.dumps(replies).encode())
            code = 0
        except (OSError, AssertionError, ValueError, KeyError) as error:
            os.write(write_end, json.dumps([{"child error": repr(error)}]).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 1 << 16):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    answers: list[Message] = json.loads(b"".join(chunks))
    assert os.waitstatus_to_exitcode(status) == 0, answers
    return answers


# ---- the tests ------------------------------------------------------------------------------------------------


def test_subscribe_gets_the_role_then_state_and_events(hearth: Running) -> None:
    with _closing(hearth.connect()) as client:
        started = time.monotonic()
        answer = client.request("subscribe")
        assert answer == {"v": 1, "id": "r1", "ok": True, "role": "technician", "user": "root"}
        state = client.push("state", timeout=1.0)["state"]
        assert time.monotonic() - started < 1.0
        assert len(state["readings"]) == CHANNELS and state["site"] == "demo-house"
        assert set(state["actuators"]) == {"heat-pump", "store-pump", "distribution-pump", "aux-element"}
        event = client.push("event")["event"]
        assert event["seq"] > 0 and event["kind"] and event["message"]
        # And the state keeps coming, at least once a second.
        client.push("state", timeout=1.5)


def test_an_override_held_by_an_interlock_says_so(hearth: Running) -> None:
    with _closing(hearth.connect()) as client:
        answer = client.request(
            "override", target="heat-pump", value=True, duration_s=600, reason="commissioning check"
        )
        assert answer["ok"], answer
        override, actuator = answer["override"], answer["actuator"]
        assert override["target"] == "heat-pump" and override["who"] == "root" and override["value"] is True
        # Right after boot the compressor's minimum off-time (180 s, timed from the start) or the store pump's
        # pre-run holds it: the answer says so at once, rather than the technician wondering.
        assert actuator["on"] is False and actuator["source"] == "interlock", actuator
        assert actuator["held_by"] in ("min-off", "prerun") and actuator["held_until"] > override["expires_at"] - 600
        assert actuator["reason"]
        released = client.request("release", override_id=override["id"])
        assert released["ok"] and released["actuator"]["source"] != "override"


def test_override_keepalive_release_with_an_audit_trail(hearth: Running) -> None:
    with _closing(hearth.connect()) as client:
        client.request("subscribe")
        answer = client.request(
            "override", target="distribution-pump", value=True, duration_s=600, reason="bleeding radiators"
        )
        assert answer["ok"], answer
        override, actuator = answer["override"], answer["actuator"]
        if actuator.get("held_by") == "min-off":  # within a second of boot: 10 s minimum off-time at 10x
            time.sleep(1.0)
            answer = client.request("keepalive", override_id=override["id"], duration_s=600)
            actuator = answer["actuator"]
        assert actuator["on"] is True and actuator["source"] == "override", actuator
        assert "root" in actuator["reason"] and "bleeding radiators" in actuator["reason"]
        state = client.push("state", where=lambda s: any(o["id"] == override["id"] for o in s["overrides"]))
        assert state["state"]["mode"] == "OVERRIDE"

        kept = client.request("keepalive", override_id=override["id"], duration_s=1200)
        assert kept["ok"] and kept["override"]["id"] == override["id"]
        assert kept["override"]["expires_at"] > override["expires_at"] + 500

        released = client.request("release", override_id=override["id"])
        assert released["ok"] and released["actuator"]["source"] != "override"
        client.push("state", where=lambda s: all(o["id"] != override["id"] for o in s["overrides"]))
        messages: list[str] = []
        deadline = time.monotonic() + 3
        while not any("released" in m for m in messages) and time.monotonic() < deadline:
            event = client.push("event", where=lambda e: e["kind"] == "override" and e["data"]["id"] == override["id"])
            event = event["event"]
            messages.append(event["message"])
            assert event["data"]["origin"].startswith("local socket uid 0 pid ")
        assert any(f"{override['id']}: root set distribution-pump on until" in m for m in messages), messages
        assert any("kept distribution-pump on alive" in m for m in messages), messages
        assert any(f"{override['id']}: root released distribution-pump on" in m for m in messages), messages

        again = client.request("release", override_id=override["id"])
        assert not again["ok"] and "no active override" in again["error"]


def test_a_second_override_on_a_target_replaces_the_first(hearth: Running) -> None:
    with _closing(hearth.connect()) as client:
        first = client.request("override", target="setpoint:comfort", value=21.5, duration_s=300)
        second = client.request("override", target="setpoint:comfort", value=19.0, duration_s=300)
        assert first["ok"] and second["ok"] and "actuator" not in second
        assert client.request("subscribe")["ok"]
        state = client.push("state")["state"]
        comfort = [o for o in state["overrides"] if o["target"] == "setpoint:comfort"]
        assert [o["id"] for o in comfort] == [second["override"]["id"]] and comfort[0]["value"] == 19.0
        assert client.request("release", override_id=second["override"]["id"])["ok"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"target": "heat-pump", "value": True, "duration_s": 0}, "duration_s: Input should be greater than 0"),
        ({"target": "heat-pump", "value": True, "duration_s": 90_000}, "at most 24 h"),
        ({"target": "boiler", "value": True}, "unknown override target 'boiler': this site can override heat-pump"),
        ({"target": "heat-pump", "value": 21.5}, "takes true (on) or false (off)"),
        ({"target": "setpoint:comfort", "value": 35.0}, "outside 10..28 °C"),
        ({"value": True}, "override needs `target`"),
    ],
)
def test_bad_overrides_are_refused_with_the_reason(hearth: Running, fields: Message, error: str) -> None:
    with _closing(hearth.connect()) as client:
        answer = client.request("override", **fields)
        assert answer["ok"] is False and error in answer["error"], answer


def test_bad_lines_are_answered_and_the_connection_carries_on(hearth: Running) -> None:
    with _closing(hearth.connect()) as client:
        client.send_raw(b"this is not json\n")
        answer = client.answer()
        assert answer["id"] == "?" and answer["ok"] is False and answer["error"].startswith("not JSON")
        client.send_raw(b'{"v": 1, "id": "x1", "op": "reboot"}\n')
        answer = client.answer()
        assert answer["id"] == "x1" and answer["ok"] is False and "op" in answer["error"]
        client.send_raw(b'{"v": 1, "id": "' + b"a" * 100_000 + b'"}\n')
        answer = client.answer()
        assert answer["id"] == "?" and "longer than 65536 bytes" in answer["error"]
        assert client.request("layout")["ok"]  # still the same connection


@pytest.mark.parametrize(
    "line",
    [
        b"[" * 60_000,  # under the line limit, deep enough to end the old decoder in RecursionError
        b'{"v": 1, "id": "n1", "op": "override", "target": "heat-pump", "value": NaN}',
        b'{"v": 1, "id": "n2", "op": "history", "channel": "tank-top", "hours": 1e400}',
        b'{"v": 1, "id": "d1", "id": "d2", "op": "layout"}',
        b'{"v": 1, "id": "\xff\xfe", "op": "layout"}',
    ],
    ids=["deep", "nan", "overflow", "duplicate-key", "invalid-utf8"],
)
def test_hostile_lines_get_an_error_line_and_the_connection_carries_on(hearth: Running, line: bytes) -> None:
    with _closing(hearth.connect()) as client:
        client.send_raw(line + b"\n")
        answer = client.answer()
        assert answer["ok"] is False and answer["error"], answer
        assert client.request("layout")["ok"]  # still the same connection
    assert "Traceback" not in hearth.log_tail()


WRITES = ("override", "keepalive", "release", "ack_alarm")


@settings(max_examples=max(20, fuzz_strategies.EXAMPLES // 3), deadline=None, suppress_health_check=list(HealthCheck))
@given(line=fuzz_strategies.REQUEST_LINES)
def test_fuzzed_request_lines_on_the_running_controller(hearth: Running, line: bytes) -> None:
    """Every line gets one answer line (ok or a reason) and the connection carries on; nothing switches (lines
    that would be valid technician requests are left out: this client is root)."""
    line = line.replace(b"\n", b" ").replace(b"\r", b" ")
    assume(line.strip())
    with contextlib.suppress(protocol.Rejected):
        assume(protocol.parse(protocol.Request, line, SOCKET_LIMITS).op not in WRITES)
    with _closing(hearth.connect()) as client:
        client.send_raw(line + b"\n")
        answer = client.answer()
        assert isinstance(answer["ok"], bool) and (answer["ok"] or answer["error"]), answer
        assert client.request("history", channel="nope")["ok"] is False  # still the same connection
    assert hearth.process.poll() is None


HOSTILE_REQUESTS = [(name, payload) for name, kind, payload in fuzz_strategies.hostile() if kind == "request"]


@pytest.mark.parametrize(("name", "line"), HOSTILE_REQUESTS, ids=[name for name, _ in HOSTILE_REQUESTS])
def test_hand_picked_hostile_requests_on_the_running_controller(hearth: Running, name: str, line: bytes) -> None:
    with _closing(hearth.connect()) as client:
        client.send_raw(line + b"\n")
        if line.strip():
            answer = client.answer()
            assert answer["ok"] is False and answer["error"], (name, answer)
        assert client.request("history", channel="nope")["ok"] is False
    assert hearth.process.poll() is None and "Traceback" not in hearth.log_tail()


def test_layout_holds_no_secrets(hearth: Running) -> None:
    with _closing(hearth.connect()) as client:
        layout = client.request("layout")["layout"]
        assert layout["site"]["id"] == "demo-house" and "tank-top" in layout["channels"]
        assert layout["links"]["local"]["technician_group"] == hearth.group
        assert "password" not in json.dumps(layout).replace("password_file", "")


def test_history_of_a_channel_over_the_last_hour(hearth: Running) -> None:
    with _closing(hearth.connect()) as client:
        answer = client.request("history", channel="tank-top", hours=1)
        assert answer["ok"], answer
        points = answer["history"]
        assert points and all(p["quality"] == "ok" and 0 < p["value"] < 95 for p in points)
        assert [p["ts"] for p in points] == sorted(p["ts"] for p in points)
        unknown = client.request("history", channel="tank-tip")
        assert not unknown["ok"] and "unknown channel 'tank-tip': one of tank-top" in unknown["error"]


def test_energy_today_and_derived_channels_from_the_running_controller(hearth: Running) -> None:
    """The simulated house's heat pump: today's totals from the store, and heat and COP among the readings."""
    with _closing(hearth.connect()) as client:
        deadline = time.monotonic() + 15
        while True:  # the store commits every second: wait until today has a covered interval
            answer = client.request("energy", days=2)
            assert answer["ok"], answer
            days = answer["energy"]
            assert len(days) == 2 and days[-1]["hours"] in (23.0, 24.0, 25.0)
            if days[-1]["coverage_pct"] > 0:
                break
            assert time.monotonic() < deadline, days
            time.sleep(0.5)
        assert days[-1]["elec_kwh"] >= 0 and days[-1]["gap_s"] < days[-1]["hours"] * 3600
        client.request("subscribe")
        state = client.push("state", timeout=10, where=lambda s: "hp-heat" in s["readings"])
        readings = state["state"]["readings"]
        assert readings["hp-heat"]["unit"] == "W" and "hp-cop" in readings
        assert readings["hp-heat-energy"]["unit"] == "kWh" and readings["hp-heat-energy"]["value"] >= 0
        plot = client.request("energy_day", day=days[-1]["day"])
        assert plot["ok"], plot
        curves = plot["energy_day"]
        assert curves["day"] == days[-1]["day"] and {"elec", "heat", "flow_rate", "flow_c"} <= set(curves["series"])
        assert any(v is not None for v in curves["series"]["elec"]["values"])  # today so far has data
        wrong = client.request("energy_day", day="2026-02-30")
        assert not wrong["ok"] and "real date" in wrong["error"]


def test_an_alarm_can_be_acknowledged(hearth: Running) -> None:
    with _closing(hearth.connect()) as client:
        client.request("subscribe")
        state = client.push("state", timeout=5, where=lambda s: any(a["id"] == "channel:outdoor" for a in s["alarms"]))
        alarm = next(a for a in state["state"]["alarms"] if a["id"] == "channel:outdoor")
        assert "outdoor: sensor fault" in alarm["message"] and "acknowledged_by" not in alarm
        assert client.request("ack_alarm", alarm="channel:outdoor")["ok"]
        client.push(
            "state",
            where=lambda s: any(
                a["id"] == "channel:outdoor" and a.get("acknowledged_by") == "root" for a in s["alarms"]
            ),
        )
        event = client.push("event", where=lambda e: e["kind"] == "alarm" and e["data"]["action"] == "acknowledged")
        assert "acknowledged by root" in event["event"]["message"]
        missing = client.request("ack_alarm", alarm="relay")
        assert not missing["ok"] and "no current alarm 'relay'" in missing["error"]


def test_a_read_only_client_may_watch_but_not_override(hearth: Running) -> None:
    assert pwd.getpwuid(NOBODY).pw_name == "nobody"
    subscribe, override, release, ack, layout, state = as_user(
        hearth,
        NOBODY,
        NOBODY,
        [
            {"op": "subscribe"},
            {"op": "override", "target": "aux-element", "value": True, "duration_s": 600},
            {"op": "release", "override_id": "ov-whatever"},
            {"op": "ack_alarm", "alarm": "channel:outdoor"},
            {"op": "layout"},
        ],
    )
    assert subscribe["ok"] and subscribe["role"] == "monitor" and subscribe["user"] == "nobody"
    assert state["push"] == "state" and len(state["state"]["readings"]) == CHANNELS
    assert override["ok"] is False and override["error"].startswith(
        f"read-only: nobody is not root and not in group {hearth.group}"
    )
    assert override["error"].endswith("overrides need a technician")
    assert release["ok"] is False and "read-only" in release["error"]
    assert ack["ok"] is False and ack["error"].endswith("acknowledging alarms needs a technician")
    assert layout["ok"]
    # Enforced by the controller, not by a polite client: nobody's override is nowhere.
    with _closing(hearth.connect()) as client:
        client.request("subscribe")
        overrides = client.push("state")["state"]["overrides"]
        assert all(o["target"] != "aux-element" and o["who"] != "nobody" for o in overrides)


def test_a_member_of_the_technician_group_may_override(hearth: Running) -> None:
    if shutil.which("groupadd") is None or shutil.which("useradd") is None:
        pytest.skip("groupadd/useradd are not available to create a technician")
    user = f"htu{os.getpid() % 100000}"
    subprocess.run(["groupadd", hearth.group], check=True, capture_output=True)
    try:
        # Primary group nogroup; the technician group only as a supplementary group, from the group database.
        subprocess.run(
            ["useradd", "--no-create-home", "--no-user-group", "--gid", str(NOBODY), "--groups", hearth.group, user],
            check=True,
            capture_output=True,
        )
        try:
            uid = pwd.getpwnam(user).pw_uid
            subscribe, override = as_user(
                hearth,
                uid,
                NOBODY,
                [{"op": "subscribe"}, {"op": "override", "target": "aux-element", "value": False, "duration_s": 60}],
            )[:2]
            assert subscribe["role"] == "technician" and subscribe["user"] == user
            assert override["ok"] and override["override"]["who"] == user
            with _closing(hearth.connect()) as client:
                assert client.request("release", override_id=override["override"]["id"])["ok"]
            # Anybody else is still read-only.
            (nobody,) = as_user(hearth, NOBODY, NOBODY, [{"op": "subscribe"}])[:1]
            assert nobody["role"] == "monitor"
        finally:
            subprocess.run(["userdel", user], check=False, capture_output=True)
    finally:
        subprocess.run(["groupdel", hearth.group], check=False, capture_output=True)


# ---- the pieces on their own --------------------------------------------------------------------------


def test_keepalive_extends_but_an_override_never_lives_past_24_h(tmp_path: Path) -> None:
    from controller.clock import ManualClock
    from controller.overrides import OverrideBook, OverrideError
    from tests.simhelpers import demo_layout

    clock = ManualClock()
    with Store.open(tmp_path / "s.sqlite") as store:
        book = OverrideBook(store, demo_layout(), clock)
        override = book.set("aux-element", True, None, "alice", "test")
        assert override.expires_at - override.created_at == 1800  # the default half hour
        clock.advance(23 * 3600)
        with pytest.raises(OverrideError, match="no active override"):
            book.keepalive(override.id, 600, "alice")  # it expired long ago
        override = book.set("aux-element", True, 86_400, "alice", "test")
        clock.advance(23 * 3600)
        kept = book.keepalive(override.id, 7200, "alice")
        assert kept.expires_at == override.created_at + 86_400  # capped at 24 h from when it was set
        clock.advance(3600)
        assert book.active() == []  # and gone once expired, without anyone releasing it
        events = [e.message for _, e in store.events_after(0) if e.kind == "override"]
        assert "capped" in events[-1]


def test_alarms_wait_out_a_blip_and_forget_their_acknowledgement_when_cleared() -> None:
    from controller.alarms import AlarmBoard, AlarmError
    from controller.readings import Quality, Reading, Snapshot

    def snapshot(quality: Quality) -> Snapshot:
        return Snapshot(0.0, {"tank-top": Reading("tank-top", None, "degC", quality, 0.0, "open circuit")})

    board = AlarmBoard()
    assert board.current(100.0, snapshot(Quality.FAULT), None) == []  # a blip is not an alarm
    (alarm,) = board.current(110.0, snapshot(Quality.FAULT), None)
    assert alarm.id == "channel:tank-top" and alarm.since == 100.0 and "open circuit" in alarm.message
    board.acknowledge("channel:tank-top", "bob", 111.0)
    channel, relay = board.current(112.0, snapshot(Quality.FAULT), "heat-pump did not follow")  # oldest first
    assert channel.acknowledged_by == "bob" and relay.id == "relay" and relay.acknowledged_by is None
    assert board.current(113.0, snapshot(Quality.OK), None) == []
    with pytest.raises(AlarmError, match="no current alarm"):
        board.acknowledge("channel:tank-top", "bob", 114.0)
    board.current(114.0, snapshot(Quality.FAULT), None)
    (again,) = board.current(125.0, snapshot(Quality.FAULT), None)
    assert again.acknowledged_by is None and again.since == 114.0  # a new alarm, not the old one


def test_a_slow_client_gets_the_latest_state_and_bounded_events() -> None:
    import asyncio

    from controller.links.local import EVENT_BACKLOG, Peer, _Client

    class StuckWriter:
        """A writer whose reader does not read until `unblock` is set."""

        def __init__(self) -> None:
            self.unblock = asyncio.Event()
            self.lines: list[bytes] = []

        def writelines(self, lines: Any) -> None:
            self.lines += list(lines)

        async def drain(self) -> None:
            await self.unblock.wait()

    async def scenario() -> list[bytes]:
        writer = StuckWriter()
        peer = Peer(1, 1000, 1000, "carol", "monitor", "hearth-tech", True)
        client = _Client(peer, writer)  # type: ignore[arg-type]
        pusher = asyncio.create_task(client.pushes())
        client.offer_state(b"state-0")
        await asyncio.sleep(0.01)  # the pusher writes state-0 and is stuck in drain
        for n in range(1, 1001):
            client.offer_state(f"state-{n}".encode())
            client.offer_event(f"event-{n}".encode())
        assert client.dropped_events == 1000 - EVENT_BACKLOG and client.merged_states == 999
        writer.unblock.set()
        await asyncio.sleep(0.01)
        pusher.cancel()
        return writer.lines

    lines = asyncio.run(scenario())
    assert lines[:2] == [b"state-0\n", b"state-1000\n"]
    assert lines[2:] == [f"event-{n}\n".encode() for n in range(1001 - EVENT_BACKLOG, 1001)]


def test_where_the_socket_goes(tmp_path: Path) -> None:
    from controller.links.config import LocalLink
    from controller.links.local import socket_paths

    default, chosen = LocalLink(), LocalLink(socket="/srv/hearth.sock")
    systemd = {"RUNTIME_DIRECTORY": "/run/hearth"}
    spare = tmp_path / "hearth.sock"
    assert socket_paths(Path("/x/h.sock"), chosen, tmp_path, systemd) == [Path("/x/h.sock")]  # --socket first
    assert socket_paths(None, chosen, tmp_path, systemd) == [Path("/srv/hearth.sock")]  # then the layout's choice
    assert socket_paths(None, default, tmp_path, systemd) == [Path("/run/hearth/hearth.sock"), spare]
    assert socket_paths(None, default, tmp_path, {}) == [Path("/run/hearth/hearth.sock"), spare]  # root may create it
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # as nobody, /run/hearth cannot be created: the state directory it is
        code = 1
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, str(socket_paths(None, default, Path("/tmp/state"), {})).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    assert os.read(read_end, 4096) == b"[PosixPath('/tmp/state/hearth.sock')]" and status == 0
    os.close(read_end)


def test_a_second_controller_falls_back_to_its_state_directory(hearth: Running, tmp_path: Path) -> None:
    import asyncio

    from controller import protocol
    from controller.alarms import AlarmBoard
    from controller.clock import ManualClock
    from controller.links.local import LocalApiServer, socket_paths
    from controller.overrides import OverrideBook
    from tests.simhelpers import demo_layout

    layout = demo_layout()
    paths = [hearth.socket, *socket_paths(None, layout.links.local, tmp_path, {})[1:]]

    async def nothing() -> None:
        pass

    async def scenario() -> Path:
        clock = ManualClock()
        with Store.open(tmp_path / "s.sqlite") as store:
            server = LocalApiServer(
                paths,
                layout=layout,
                store=store,
                clock=clock,
                overrides=OverrideBook(store, layout, clock),
                alarms=AlarmBoard(),
                state=lambda: protocol.State(site="t", ts=0.0, mode="LOCAL", reason="", readings={}, actuators={}),
                settle=nothing,
            )
            task = asyncio.create_task(server.run())
            await asyncio.wait_for(server.listening.wait(), 5)
            served = server.path
            assert served.exists()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return served

    assert asyncio.run(scenario()) == tmp_path / "hearth.sock"
    assert not (tmp_path / "hearth.sock").exists()  # removed when it stopped
    assert hearth.socket.exists()  # the first controller's socket is left alone


def test_an_override_outlives_the_controller_in_its_store(hearth: Running) -> None:
    """Last: stops the module's controller."""
    with _closing(hearth.connect()) as client:
        answer = client.request("override", target="aux-element", value=False, duration_s=3600, reason="persist")
        assert answer["ok"], answer
    hearth.stop()
    assert hearth.process.returncode == 0, hearth.log_tail()
    assert not hearth.socket.exists()  # removed on the way out
    with Store.open(hearth.state_dir / "demo.sqlite") as store:
        active = store.active_overrides(answer["override"]["expires_at"] - 1800)  # simulated time runs 10x
        assert [o.id for o in active] == [answer["override"]["id"]]
        assert active[0].who == "root" and active[0].origin.startswith("local socket uid 0 pid ")
