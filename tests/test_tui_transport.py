"""The TUI's transports: the local socket against a tiny controller that speaks the protocol, MQTT against a real
mosquitto with the deployment's ACL, and the fake one the other tests use."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Literal

import pytest

from controller.protocol import (
    STATE_REQUEST_TOPIC,
    ActuatorStateMsg,
    EnergySummary,
    EventMsg,
    HistoryPoint,
    LayoutSummary,
    OverrideState,
    Push,
    Request,
    Response,
    Role,
    State,
    StateRequest,
    Status,
    Telemetry,
    Topics,
    parse,
    parse_broker_url,
)
from tests.broker import Broker, start_broker
from tests.test_tui_helpers import T0, state
from tui.transport import Backoff, ConnectionStatus, TransportError
from tui.transport.fake import FakeTransport
from tui.transport.local import LocalSocketTransport
from tui.transport.mqtt import MqttTransport
from tui.widgets.status_bar import status_text

FAST = Backoff(initial_s=0.05, max_s=0.1, jitter=0.0)


class TinyController:
    """Speaks the local API: subscribe -> Response with a role, then a pushed State; override -> Response."""

    def __init__(self, path: Path, role: Role = "technician", garbage: tuple[bytes, ...] = ()) -> None:
        self.path = path
        self.role = role
        self.garbage = garbage
        self.requests: list[Request] = []
        self.connections = 0
        self.close_after_subscribe = False
        self.silent_ops: set[str] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._serve, str(self.path))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while line := await reader.readline():
                request = parse(Request, line)
                self.requests.append(request)
                if request.op in self.silent_ops:
                    continue
                if request.op == "subscribe":
                    writer.write(Response(id=request.id, ok=True, role=self.role, user="alice").to_json() + b"\n")
                    for junk in self.garbage:
                        writer.write(junk + b"\n")
                    push = Push(push="state", state=state(T0 + self.connections))
                    writer.write(push.to_json() + b"\n")
                    event = EventMsg(site="demo-house", seq=1, ts=T0, kind="mode", message="LOCAL -> ATN")
                    writer.write(Push(push="event", event=event).to_json() + b"\n")
                    await writer.drain()
                    if self.close_after_subscribe:
                        break
                elif request.op == "override":
                    made = OverrideState(
                        id="O-7", target=request.target or "", value=True, expires_at=T0 + 600, who="alice"
                    )
                    pump = ActuatorStateMsg(
                        on=False,
                        source="interlock",
                        reason="minimum off-time 180 s",
                        held_by="min-off",
                        held_until=T0 + 95,
                    )
                    writer.write(Response(id=request.id, ok=True, override=made, actuator=pump).to_json() + b"\n")
                    await writer.drain()
        finally:
            writer.close()


class Recorder:
    def __init__(self) -> None:
        self.states: list[State] = []
        self.events: list[EventMsg] = []
        self.statuses: list[ConnectionStatus] = []

    async def until(self, condition: object, timeout_s: float = 5.0) -> None:
        assert callable(condition)
        async with asyncio.timeout(timeout_s):
            while not condition():
                await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(transport: LocalSocketTransport | MqttTransport) -> AsyncIterator[Recorder]:
    recorder = Recorder()
    task = asyncio.create_task(transport.run(recorder.states.append, recorder.events.append, recorder.statuses.append))
    try:
        yield recorder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
def socket_path(tmp_path: Path) -> Iterator[Path]:
    # AF_UNIX paths are short (108 bytes): pytest's tmp_path can be longer. A directory of its own, not a name
    # from id(): two test runs at once (several worktrees) got the same address, hence the same socket, and hung.
    directory = Path(tempfile.mkdtemp(prefix="hearth-tui-"))
    yield directory / "c.sock"
    shutil.rmtree(directory, ignore_errors=True)


# ---- local socket ----------------------------------------------------------------------------------------


def test_subscribe_learns_the_role_then_receives_pushes_and_answers(socket_path: Path) -> None:
    async def scenario() -> None:
        controller = TinyController(socket_path)
        await controller.start()
        transport = LocalSocketTransport(str(socket_path), backoff=FAST)
        assert transport.read_only  # until the controller says otherwise
        async with running(transport) as seen:
            # The pushes that follow the subscription's answer on the socket may be read before the task waiting for
            # that answer runs again, so "connected" may come after the first State: wait for all three.
            await seen.until(lambda: seen.states and seen.events and any(s.phase == "connected" for s in seen.statuses))
            connected = [s for s in seen.statuses if s.phase == "connected"][-1]
            assert (connected.user, connected.role, connected.read_only) == ("alice", "technician", False)
            assert not transport.read_only
            assert seen.states[0].ts == T0 + 1 and seen.events[0].message == "LOCAL -> ATN"
            answer = await transport.request(
                Request(id="r-1", op="override", target="heat-pump", value=True, duration_s=600)
            )
            assert answer.ok and answer.actuator is not None and answer.actuator.held_by == "min-off"
            assert controller.requests[0].op == "subscribe"
            assert controller.requests[1] == Request(
                id="r-1", op="override", target="heat-pump", value=True, duration_s=600
            )
        await controller.stop()

    asyncio.run(scenario())


def test_a_monitor_is_read_only(socket_path: Path) -> None:
    async def scenario() -> None:
        controller = TinyController(socket_path, role="monitor")
        await controller.start()
        transport = LocalSocketTransport(str(socket_path), backoff=FAST)
        async with running(transport) as seen:
            await seen.until(lambda: seen.states)
            assert transport.read_only
            assert seen.statuses[-1].read_only and seen.statuses[-1].role == "monitor"
        await controller.stop()

    asyncio.run(scenario())


def test_reconnects_after_the_controller_closes(socket_path: Path) -> None:
    async def scenario() -> None:
        controller = TinyController(socket_path)
        controller.close_after_subscribe = True
        await controller.start()
        transport = LocalSocketTransport(str(socket_path), backoff=FAST)
        async with running(transport) as seen:
            await seen.until(lambda: len(seen.states) >= 3)
            assert controller.connections >= 3
            retrying = [s for s in seen.statuses if s.phase == "reconnecting"]
            assert retrying and retrying[0].detail == "the controller closed the connection"
            assert retrying[0].retry_in_s == 1
            assert [s.ts for s in seen.states[:3]] == [T0 + 1, T0 + 2, T0 + 3]
        await controller.stop()

    asyncio.run(scenario())


def test_malformed_lines_are_skipped_without_dropping_the_connection(socket_path: Path) -> None:
    garbage = (
        b"this is not JSON",
        b"[1, 2, 3]",
        b'{"v": 1, "push": "state", "state": {"site": "demo-house"}}',
        b'{"v": 1, "id": "nobody-asked", "ok": true}',
        b'{"v": 1, "something": "else"}',
        b"\xff\xfe",
    )

    async def scenario() -> None:
        controller = TinyController(socket_path, garbage=garbage)
        await controller.start()
        transport = LocalSocketTransport(str(socket_path), backoff=FAST)
        async with running(transport) as seen:
            await seen.until(lambda: seen.states and seen.events)
            assert transport.skipped == len(garbage)
            assert controller.connections == 1
        await controller.stop()

    asyncio.run(scenario())


def test_requests_fail_readably_when_not_connected_or_unanswered(socket_path: Path) -> None:
    async def scenario() -> None:
        transport = LocalSocketTransport(str(socket_path), backoff=FAST)
        with pytest.raises(TransportError, match="not connected"):
            await transport.request(Request(id="r-1", op="layout"))
        async with running(transport) as seen:
            await seen.until(lambda: any(s.phase == "reconnecting" for s in seen.statuses))
            assert "no controller socket at" in next(s for s in seen.statuses if s.phase == "reconnecting").detail
            controller = TinyController(socket_path)
            controller.silent_ops = {"layout"}
            await controller.start()
            await seen.until(lambda: seen.states)
            with pytest.raises(TransportError, match="timed out"):
                await transport.request(Request(id="r-2", op="layout"), timeout_s=0.1)
        await controller.stop()

    asyncio.run(scenario())


# ---- MQTT ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = start_broker(tmp_path_factory.mktemp("tui-broker"))
    yield broker
    broker.stop()


def test_mqtt_monitor_watches_state_events_and_status_and_never_writes(broker: Broker, tmp_path: Path) -> None:
    """Also: Layout from the retained layout summary, History from the telemetry seen since it connected."""
    topics = Topics("demo-house")
    broker.pub("demo-house", topics.state, state(T0).to_json(), retain=True)
    summary = LayoutSummary(site="demo-house", ts=T0, layout={"site": {"id": "demo-house"}, "channels": {}})
    broker.pub("demo-house", topics.layout, summary.to_json(), retain=True)
    password = tmp_path / "monitor.password"
    password.write_text(broker.users["monitor"] + "\n")

    async def scenario() -> None:
        transport = MqttTransport(
            f"mqtts://localhost:{broker.tls_port}",
            "demo-house",
            "monitor",
            str(password),
            str(broker.ca_file),
            backoff=FAST,
        )
        assert transport.description == f"MQTT mqtts://localhost:{broker.tls_port} site demo-house"
        async with running(transport) as seen:
            await seen.until(lambda: seen.states)  # the retained one
            assert seen.states[0].ts == T0
            await asyncio.to_thread(broker.pub, "demo-house", topics.events, b"{not json")
            event = EventMsg(site="demo-house", seq=3, ts=T0, kind="mode", message="ATN -> LOCAL")
            await asyncio.to_thread(broker.pub, "demo-house", topics.events, event.to_json())
            await seen.until(lambda: seen.events)
            assert seen.events == [event] and transport.skipped == 1
            offline = Status(site="demo-house", online=False, ts=T0)
            await asyncio.to_thread(broker.pub, "demo-house", topics.status, offline.to_json(), retain=True)
            await seen.until(lambda: seen.statuses[-1].controller_online is False)
            assert seen.statuses[-1].phase == "connected" and seen.statuses[-1].read_only
            writes: tuple[Literal["override", "keepalive", "release", "ack_alarm"], ...] = (
                "override",
                "keepalive",
                "release",
                "ack_alarm",
            )
            for op in writes:
                answer = await transport.request(Request(id="r", op=op))
                assert (answer.ok, answer.error) == (False, "read-only over MQTT")
            answer = await transport.request(Request(id="r", op="layout"))
            assert answer.ok and answer.layout == summary.layout
            batch = Telemetry(
                site="demo-house",
                first_seq=1,
                last_seq=3,
                historical=False,
                readings=[
                    (1, T0, "tank-top", 52.0, "ok"),
                    (2, T0, "outdoor", -4.0, "ok"),
                    (3, T0 + 9, "tank-top", None, "fault"),
                ],
            )
            await asyncio.to_thread(broker.pub, "demo-house", topics.telemetry, batch.to_json())
            await seen.until(lambda: transport.history("tank-top", 1))
            answer = await transport.request(Request(id="r", op="history", channel="tank-top", hours=1))
            assert answer.ok and answer.history == [
                HistoryPoint(ts=T0, value=52.0, quality="ok"),
                HistoryPoint(ts=T0 + 9, value=None, quality="fault"),
            ]
        for topic in (topics.state, topics.status, topics.layout):
            broker.pub("demo-house", topic, b"", retain=True)

    asyncio.run(scenario())


def test_mqtt_wrong_password_retries_with_the_reason(broker: Broker, tmp_path: Path) -> None:
    password = tmp_path / "wrong.password"
    password.write_text("not-the-password")

    async def scenario() -> None:
        transport = MqttTransport(
            f"mqtt://127.0.0.1:{broker.port}", "demo-house", "monitor", str(password), backoff=FAST
        )
        async with running(transport) as seen:
            await seen.until(lambda: any(s.phase == "reconnecting" for s in seen.statuses))
            reason = next(s for s in seen.statuses if s.phase == "reconnecting").detail
            assert reason.startswith(f"mqtt://127.0.0.1:{broker.port}:") and "not authorised" in reason
            # The next try keeps the reason in sight (it flickered away to a bare "connecting" before).
            await seen.until(lambda: any(s.phase == "connecting" and s.detail for s in seen.statuses))
            again = next(s for s in seen.statuses if s.phase == "connecting" and s.detail)
            assert again.detail == f"last try: {reason}"
            assert f"connecting… (last try: {reason})" in status_text("MQTT", again, True).plain

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://broker", "is not an mqtt://"),
        ("mqtt://broker.example.com", "TLS is required"),
        ("mqtts://user:pw@broker", "--password-file"),
        ("mqtts://broker:99999", "Port out of range"),
    ],
)
def test_broker_urls_that_are_refused(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_broker_url(url)


def test_broker_urls_that_are_fine() -> None:
    assert str(parse_broker_url("mqtts://broker")) == "mqtts://broker:8883"
    assert str(parse_broker_url("mqtt://127.0.0.1")) == "mqtt://127.0.0.1:1883"
    assert str(parse_broker_url("mqtt://broker.lan:1884", insecure=True)) == "mqtt://broker.lan:1884"


# ---- the fake ----------------------------------------------------------------------------------------------


def test_fake_transport_replays_records_and_refuses_writes_when_read_only() -> None:
    async def scenario() -> None:
        transport = FakeTransport([state(T0)], read_only=True)
        seen = Recorder()
        task = asyncio.create_task(transport.run(seen.states.append, seen.events.append, seen.statuses.append))
        await asyncio.wait_for(transport.connected.wait(), 1)
        assert [s.ts for s in seen.states] == [T0] and seen.statuses[0].read_only
        answer = await transport.request(Request(id="r", op="override", target="heat-pump", value=True))
        assert not answer.ok and "read-only" in (answer.error or "")
        assert transport.requests[0].op == "override"
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_a_quiet_controller_is_shown_unavailable_not_live() -> None:
    """A state older than three of its own periods (a crash the broker has not noticed yet, a cut network) turns the
    header to "controller offline (quiet ...)"; before, the last values were shown as live for ever."""

    transport = MqttTransport("mqtt://127.0.0.1:1883", "demo-house")
    statuses: list[ConnectionStatus] = []
    published = state(T0).model_copy(update={"every_s": 10.0})
    transport._dispatch(
        Topics("demo-house").state, published.to_json(), lambda _: None, lambda _: None, statuses.append
    )
    assert transport.quiet_for(T0 + 29) is None  # within three periods: live
    assert transport.quiet_for(T0 + 31) == 31
    shown = statuses[-1]  # T0 is long past: quiet now
    assert shown.controller_online is False and shown.detail.startswith("quiet: no state for")
    assert "controller offline (quiet: no state for" in status_text("MQTT", shown, True).plain


def test_mqtt_energy_comes_from_the_controllers_summary_and_the_day_plot_says_why_not(
    broker: Broker, tmp_path: Path
) -> None:
    """Energy over MQTT: each ask publishes a state request for this site (the controller answers with a fresh
    summary, at most every few seconds) and answers from the newest summary; the day plot says why it is not there."""
    topics = Topics("demo-house")
    password = tmp_path / "monitor.password"
    password.write_text(broker.users["monitor"] + "\n")
    days = [{"day": f"2026-03-{d:02d}", "heat_kwh": 30.0 + d, "elec_kwh": 10.0} for d in range(1, 31)]
    totals = [{"kind": "month", "name": "2026-03", "days": 30}]
    summary = EnergySummary(site="demo-house", ts=T0, every_s=900, days=days, totals=totals)

    async def scenario() -> None:
        transport = MqttTransport(
            f"mqtt://127.0.0.1:{broker.port}", "demo-house", "monitor", str(password), backoff=FAST
        )
        with broker.subscribe("demo-house", STATE_REQUEST_TOPIC) as requests:  # what the controller hears
            async with running(transport) as seen:
                await seen.until(lambda: seen.statuses and seen.statuses[-1].phase == "connected")
                before = await transport.request(Request(id="r", op="energy", days=30), timeout_s=0.3)
                assert not before.ok and "not published its energy summary" in (before.error or "")
                # published by the controller's own account: the ACL lets a site write its energy topic
                await asyncio.to_thread(broker.pub, "demo-house", topics.energy, summary.to_json(), retain=True)
                await seen.until(lambda: transport._energy is not None)
                answer = await transport.request(Request(id="r", op="energy", days=7), timeout_s=0.3)
                assert answer.ok and answer.energy == days[-7:] and answer.energy_totals == totals
                plot = await transport.request(Request(id="r", op="energy_day", day="2026-03-30"))
                error = plot.error or ""
                assert not plot.ok and "not available over MQTT" in error and "store's readings" in error
            asked = [parse(StateRequest, payload) for _topic, payload in requests.messages]
            assert len(asked) >= 3 and all(request.site == "demo-house" for request in asked)  # connect + 2 asks
        broker.pub("demo-house", topics.energy, b"", retain=True)

    asyncio.run(scenario())
