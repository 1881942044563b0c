"""The ATN link end to end, against a real mosquitto: `hearth run` and `hearth atn-sim` as processes, watched
through the broker as the monitor role would watch them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller import protocol
from controller.atnsim.ledger import Ledger
from controller.energy.derived import derived_channels
from controller.layout.load import load_layout
from controller.store import Store
from tests import fuzz_strategies
from tests.broker import Broker, _free_ports, start_broker

ROOT = Path(__file__).resolve().parent.parent
HEARTH = str(Path(sys.executable).parent / "hearth")
SITE = "demo-house"
TOPICS = protocol.Topics(SITE)
HEARTBEAT_S = 0.5
SILENCE_S = 3 * HEARTBEAT_S


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    running = start_broker(tmp_path_factory.mktemp("broker"), site=SITE)
    yield running
    running.stop()


def write_layout(
    broker: Broker, directory: Path, *, password: str | None = None, tls: bool = False, extra: str = ""
) -> Path:
    secret = directory / "mqtt-password"
    secret.write_text(password if password is not None else broker.users[SITE])
    url = f"mqtts://localhost:{broker.tls_port}" if tls else f"mqtt://127.0.0.1:{broker.port}"
    ca = f'ca_file = "{broker.ca_file}"\n' if tls else ""
    # Noisy sensors keep readings flowing at every sample whatever the time of day: in an expensive
    # time-of-use window the simulated house is otherwise so still that its deadbands store almost nothing.
    noisy = '[sim]\nfaults = { tank-top = "noise", tank-mid = "noise", house-air = "noise" }\n'
    text = (ROOT / "layouts/demo.toml").read_text().replace("[sim]\n", noisy, 1)
    text += f"""
[control.authority]
heartbeat_s = {HEARTBEAT_S}

[links.atn]
url = "{url}"
username = "{SITE}"
password_file = "{secret}"
{ca}telemetry_batch = 200
state_every_s = 2
{extra}"""
    path = directory / "layout.toml"
    path.write_text(text)
    return path


class Process:
    """A `hearth` subprocess with its JSON log collected to a file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("a")
        self.popen = subprocess.Popen([HEARTH, *args], stderr=self._log, stdout=subprocess.DEVNULL, cwd=ROOT)

    def events(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.startswith("{")]

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return self.popen.returncode


def controller(layout: Path, state: Path, log: Path) -> Process:
    return Process(["run", "--layout", str(layout), "--state-dir", str(state), "--log-format", "json"], log)


def atn_sim(broker: Broker, directory: Path, ledger: Path, *, lease_s: float = 20.0) -> Process:
    secret = directory / "atn-password"
    secret.write_text(broker.users["atn"])
    return Process(
        [
            "atn-sim",
            "--broker",
            f"mqtt://127.0.0.1:{broker.port}",
            "--site",
            SITE,
            "--username",
            "atn",
            "--password-file",
            str(secret),
            "--db",
            str(ledger),
            "--heartbeat",
            str(HEARTBEAT_S),
            "--lease",
            str(lease_s),
            "--log-format",
            "json",
        ],
        directory / "atn.log",
    )


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def mode_events(process: Process) -> list[dict[str, object]]:
    return [e for e in process.events() if e.get("event") == "mode"]


def current_mode(process: Process) -> str:
    modes = mode_events(process)
    return str(modes[-1]["to"]) if modes else "?"


def test_failover_handback_and_no_flapping(broker: Broker, tmp_path: Path) -> None:
    hearth = controller(write_layout(broker, tmp_path), tmp_path / "state", tmp_path / "hearth.log")
    atn = atn_sim(broker, tmp_path, tmp_path / "ledger.sqlite")
    try:
        wait_for(lambda: current_mode(hearth) == "ATN", 20, "the ATN to take control")
        handback = mode_events(hearth)[-1]
        assert "heartbeats in a row and a fresh lease" in str(handback["reason"])

        # The ATN goes silent: LOCAL within the silence timeout of the last heartbeat.
        atn.signal(signal.SIGUSR1)
        paused_at = time.time()
        wait_for(lambda: current_mode(hearth) == "LOCAL", 10, "failover to LOCAL")
        failover = mode_events(hearth)[-1]
        assert "ATN silent" in str(failover["reason"])
        # The exact figure (failover minus timeout, over 20 trials) is bench/failover.py's; here, a bound.
        lag = time.time() - paused_at
        assert lag <= SILENCE_S + HEARTBEAT_S + 1.5, f"LOCAL came {lag:.2f} s after the ATN went quiet"

        # A flapping ATN (back for less than two heartbeats at a time) never gets control back.
        for _ in range(4):
            atn.signal(signal.SIGUSR1)  # resume ...
            time.sleep(0.4)
            atn.signal(signal.SIGUSR1)  # ... and silent again before the handback rule is met
            time.sleep(SILENCE_S + 0.3)
        assert current_mode(hearth) == "LOCAL"
        assert [str(e["to"]) for e in mode_events(hearth)].count("ATN") == 1

        # Back for good: ATN again, by the rule.
        atn.signal(signal.SIGUSR1)
        wait_for(lambda: current_mode(hearth) == "ATN", 15, "handback after the ATN returns")
        assert [str(e["to"]) for e in mode_events(hearth)].count("ATN") == 2
    finally:
        assert atn.stop() == 0
        assert hearth.stop() == 0


def test_no_reading_is_lost_through_broker_and_controller_crashes(broker: Broker, tmp_path: Path) -> None:
    # No linger: the controller is to be killed while it replays, 0.5 s after the broker is back, and readings
    # only 3.5 s old would still be lingering then (tests/test_telemetry_linger.py covers the linger).
    layout = write_layout(broker, tmp_path, extra="telemetry_linger_s = 0\n")
    state = tmp_path / "state"
    ledger_path = tmp_path / "ledger.sqlite"
    atn = atn_sim(broker, tmp_path, ledger_path)
    hearth = controller(layout, state, tmp_path / "hearth.log")
    try:
        wait_for(lambda: ledger_path.exists() and Ledger.open(ledger_path).count(SITE) > 20, 20, "telemetry to flow")
        broker.kill()  # the broker dies mid-stream; the controller keeps storing
        time.sleep(3.0)
        broker.restart()
        time.sleep(0.5)  # reconnecting and replaying ...
        hearth.popen.kill()  # ... when the controller is killed -9
        hearth.popen.wait()
        hearth = controller(layout, state, tmp_path / "hearth2.log")
        time.sleep(2.0)
        hearth.stop()  # a clean stop: its last readings are committed
        with Store.open(state / "demo.sqlite") as store:
            last = store.last_seq()

        def caught_up() -> bool:
            ledger = Ledger.open(ledger_path)
            try:
                return ledger.contiguous_upto(SITE) >= last
            finally:
                ledger.close()

        hearth = controller(layout, state, tmp_path / "hearth3.log")  # delivers what was not yet acknowledged
        wait_for(caught_up, 30, f"the ATN's ledger to reach seq {last}")
    finally:
        hearth.stop()
        atn.stop()
    ledger = Ledger.open(ledger_path)
    try:
        first, newest = ledger.seq_range(SITE)
        assert first == 1 and newest >= last
        # Every reading the controller stored reached the ATN as it is. (Seqs may be skipped: after the kill -9
        # the controller cannot tell a crash from a power cut, so it starts above its reserved block.)
        with Store.open(state / "demo.sqlite") as store:
            stored = [row for row in store.telemetry_after(0, 1_000_000) if row[0] <= last]
        held = {row[0]: row for row, _ in ledger.rows(SITE, limit=1_000_000)}
        assert len(stored) > 20 and all(held.get(row[0]) == row for row in stored)
        assert ledger.conflicts(SITE) == []
    finally:
        ledger.close()


def technician_overrides(path: Path, count: int) -> None:
    """`count` override + release pairs through the local socket (as root: a technician): two events each."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    lines = sock.makefile("rb")

    def ask(**fields: object) -> dict[str, Any]:
        sock.sendall(json.dumps({"v": 1, "id": "t", **fields}).encode() + b"\n")
        while True:
            answer: dict[str, Any] = json.loads(lines.readline())
            if "push" not in answer:
                assert answer["ok"], answer
                return answer

    for _ in range(count):
        override = ask(op="override", target="aux-element", value=False, duration_s=60, reason="event test")
        ask(op="release", override_id=override["override"]["id"])
    sock.close()


def newest_event_seq(path: Path) -> int:
    """The highest event seq the controller has, from the recent events a subscriber gets first."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(1.0)
    sock.connect(str(path))
    sock.sendall(b'{"v": 1, "id": "s", "op": "subscribe"}\n')
    lines, newest = sock.makefile("rb"), 0
    with contextlib.suppress(TimeoutError):
        while line := lines.readline():
            message = json.loads(line)
            if message.get("push") == "event":
                newest = max(newest, message["event"]["seq"])
    sock.close()
    return newest


def test_no_event_is_lost_through_a_broker_kill_and_a_restart(broker: Broker, tmp_path: Path) -> None:
    """Events are sent at least once: the ones stored before the link came up (the "start" event, seq 1: issue 8,
    finding 8), the ones stored while the broker was dead, and the ones of a controller stopped and started again
    meanwhile. Before: published once, never replayed, and the cursor began after the highest stored event."""
    layout = write_layout(broker, tmp_path)
    state, ledger_path, sock = tmp_path / "state", tmp_path / "ledger.sqlite", tmp_path / "hearth.sock"

    def hearth(log: str) -> Process:
        args = ["run", "--layout", str(layout), "--state-dir", str(state), "--socket", str(sock)]
        return Process([*args, "--log-format", "json"], tmp_path / log)

    def events_upto() -> int:
        if not ledger_path.exists():
            return 0
        ledger = Ledger.open(ledger_path)
        try:
            return ledger.events_upto(SITE)
        finally:
            ledger.close()

    atn = atn_sim(broker, tmp_path, ledger_path)
    controller_process = hearth("hearth.log")
    try:
        wait_for(lambda: events_upto() >= 1 and sock.exists(), 20, "the first events to reach the ATN")
        technician_overrides(sock, 3)
        broker.kill()  # events keep happening while the broker is dead: an ATN silence, overrides ...
        technician_overrides(sock, 10)
        controller_process.stop()  # ... a clean stop ...
        controller_process = hearth("hearth2.log")  # ... and a start, all while the broker is away
        wait_for(sock.exists, 20, "the second controller's socket")
        technician_overrides(sock, 5)
        broker.restart()
        newest = newest_event_seq(sock)
        assert newest >= 2 * 18 + 3, newest
        wait_for(lambda: events_upto() >= newest, 30, f"the ATN to hold every event up to {newest}")
    finally:
        assert controller_process.stop() == 0
        assert atn.stop() == 0
    with Store.open(state / "demo.sqlite") as store:
        stored = [seq for seq, _ in store.events_after(0, limit=100_000)]
    ledger = Ledger.open(ledger_path)
    try:
        count, first, last = ledger.event_range(SITE) or (0, 0, 0)
        assert first == 1 and ledger.event_gaps(SITE) == [], ledger.event_gaps(SITE)
        lost = [seq for seq in stored if seq <= last and not 1 <= seq <= ledger.events_upto(SITE)]
        assert lost == [] and count == last >= newest  # 0 events lost, none twice
        start_event = ledger._db.execute("SELECT kind FROM events WHERE site = ? AND seq = 1", (SITE,)).fetchone()
        assert start_event == ("start",)  # stored before the link started, and sent
    finally:
        ledger.close()
    check = subprocess.run(
        [HEARTH, "atn-sim", "check", "--db", str(ledger_path)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no event gaps" in check.stdout


def test_tls_with_the_generated_ca(broker: Broker, tmp_path: Path) -> None:
    hearth = controller(write_layout(broker, tmp_path, tls=True), tmp_path / "state", tmp_path / "hearth.log")
    try:
        wait_for(lambda: any(e.get("event") == "ATN link up" for e in hearth.events()), 10, "the TLS link")
        with broker.subscribe("monitor", TOPICS.status) as status:
            wait_for(lambda: any(protocol.parse(protocol.Status, p).online for _, p in status.messages), 10, "online")
        with broker.subscribe("monitor", TOPICS.state) as state:
            wait_for(lambda: state.messages, 10, "the state")
            assert protocol.parse(protocol.State, state.messages[-1][1]).site == SITE
    finally:
        assert hearth.stop() == 0


def test_a_wrong_password_is_a_clear_error_with_backoff(broker: Broker, tmp_path: Path) -> None:
    hearth = controller(
        write_layout(broker, tmp_path, password="not-the-password"), tmp_path / "state", tmp_path / "hearth.log"
    )
    try:
        downs = wait_for(
            lambda: [e for e in hearth.events() if str(e.get("event", "")).startswith("ATN link")], 10, "a refusal"
        )
        assert isinstance(downs, list)
        first = downs[0]
        assert "the broker refused the connection: not authorised" in str(first["error"])
        assert "check username and password_file" in str(first["error"])
        assert 1.0 <= float(str(first["retry_in_s"])) <= 60.0
        assert "not-the-password" not in hearth.log_path.read_text()  # never logged
        wait_for(lambda: current_mode(hearth) == "LOCAL", 10, "local control")  # still controlling, locally
        assert hearth.popen.poll() is None
    finally:
        assert hearth.stop() == 0


def test_roles_a_monitor_or_a_forged_command_changes_nothing(broker: Broker, tmp_path: Path) -> None:
    hearth = controller(write_layout(broker, tmp_path), tmp_path / "state", tmp_path / "hearth.log")
    now = time.time()

    def lease(lease_id: str) -> str:
        return json.dumps(
            {"v": 1, "id": lease_id, "issued_at": now, "valid_until": now + 300, "actuators": {"aux-element": True}}
        )

    try:
        wait_for(lambda: any(e.get("event") == "ATN link up" for e in hearth.events()), 10, "the link")
        with broker.subscribe("monitor", TOPICS.ack) as acks:
            broker.pub("monitor", TOPICS.dispatch, lease("from-monitor"))  # the ACL drops it silently
            broker.pub("other-site", TOPICS.dispatch, lease("from-other-site"))  # another controller: dropped
            broker.pub("atn", f"hearth/v1/{SITE}/dispatch", lease("wrong-topic"))  # not a topic Hearth reads
            broker.pub("atn", TOPICS.dispatch, lease("genuine"))
            wait_for(lambda: acks.messages, 5, "the genuine lease's ack")
            time.sleep(1.0)
        answered = [protocol.parse(protocol.Ack, payload).id for _, payload in acks.messages]
        assert answered == ["genuine"]
    finally:
        hearth.stop()


def test_a_clean_stop_leaves_online_false_retained(broker: Broker, tmp_path: Path) -> None:
    """Before: SIGTERM disconnected cleanly, the broker never sent the last will, and `online: true` stayed retained:
    every monitor showed the frozen values as live."""
    hearth = controller(write_layout(broker, tmp_path), tmp_path / "state", tmp_path / "hearth.log")
    try:
        wait_for(lambda: any(e.get("event") == "ATN link up" for e in hearth.events()), 10, "the link")
    finally:
        assert hearth.stop() == 0
    with broker.subscribe("monitor", TOPICS.status) as status:  # a monitor arriving after the stop
        wait_for(lambda: status.messages, 5, "the retained status")
        retained = protocol.parse(protocol.Status, status.messages[-1][1])
    assert retained.online is False and retained.site == SITE
    with broker.subscribe("monitor", TOPICS.state) as state:
        wait_for(lambda: state.messages, 5, "the retained state")
        assert protocol.parse(protocol.State, state.messages[-1][1]).every_s == 2  # its age can be judged


def test_a_stale_dispatch_is_refused_even_when_the_broker_clears_its_retain_flag(
    broker: Broker, tmp_path: Path
) -> None:
    """A retained dispatch published while the controller is connected reaches it with the retain flag cleared (MQTT
    3.1.1), so "retained is refused" alone let it through. Before: accepted, and it switched the heat pump."""
    hearth = controller(write_layout(broker, tmp_path), tmp_path / "state", tmp_path / "hearth.log")
    now = time.time()
    old = {"v": 1, "id": "old-retained", "issued_at": now - 600, "valid_until": now + 600, "actuators": {}}
    try:
        wait_for(lambda: any(e.get("event") == "ATN link up" for e in hearth.events()), 10, "the link")
        with broker.subscribe("monitor", TOPICS.ack) as acks:
            broker.pub("atn", TOPICS.dispatch, json.dumps(old), retain=True)
            wait_for(lambda: acks.messages, 5, "the answer to the stale lease")
        ack = protocol.parse(protocol.Ack, acks.messages[0][1])
        assert ack.id == "old-retained" and not ack.accepted and "stale lease" in ack.reason, ack
    finally:
        broker.pub("atn", TOPICS.dispatch, b"", retain=True)  # clear it for the other tests
        assert hearth.stop() == 0


JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def test_a_stale_last_will_does_not_leave_a_running_site_offline(broker: Broker, tmp_path: Path) -> None:
    """On a cluster each node has its own client id for a site, so a half-open connection on a node the site left
    is not taken over: that node publishes its last will (`online: false`, retained) once its keepalive runs out,
    after the site said online elsewhere. Before, that stale offline stayed retained: every monitor and Home
    Assistant showed a running site as offline. Here the left connection is the site's own user under another
    client id, dropped without a DISCONNECT."""
    import paho.mqtt.client as mqtt

    hearth = controller(write_layout(broker, tmp_path), tmp_path / "state", tmp_path / "hearth.log")
    zombie = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hearth-{SITE}-2", reconnect_on_failure=False)
    try:
        wait_for(lambda: any(e.get("event") == "ATN link up" for e in hearth.events()), 10, "the link")
        stale = protocol.Status(site=SITE, online=False, ts=time.time() - 60)
        zombie.username_pw_set(SITE, broker.users[SITE])
        zombie.will_set(TOPICS.status, stale.to_json(), qos=1, retain=True)
        zombie.connect("127.0.0.1", broker.port)
        zombie.loop_start()
        wait_for(zombie.is_connected, 5, "the left connection")
        with broker.subscribe("monitor", TOPICS.status) as status:
            zombie.socket().shutdown(socket.SHUT_RDWR)  # gone without a DISCONNECT: the broker sends its will

            def seen() -> list[bool]:
                return [protocol.parse(protocol.Status, payload).online for _topic, payload in status.messages]

            wait_for(lambda: False in seen(), 5, "the stale last will")
            wait_for(lambda: seen()[-1] is True, 5, "online again after the stale offline")
        retained = protocol.parse(protocol.Status, broker.sub("monitor", TOPICS.status, 1)[0][1])
        assert retained.online is True  # what a monitor joining now is told
        assert any(e.get("event") == "stale offline status answered" for e in hearth.events())
    finally:
        zombie.loop_stop()
        assert hearth.stop() == 0


@pytest.fixture(scope="module")
def fuzz_target(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    directory = tmp_path_factory.mktemp("fuzz")
    hearth = controller(write_layout(broker, directory), directory / "state", directory / "hearth.log")
    wait_for(lambda: any(e.get("event") == "ATN link up" for e in hearth.events()), 10, "the link")
    yield hearth
    assert hearth.stop() == 0


TOPIC_OF = dict(zip(("heartbeat", "dispatch", "telemetry-ack", "events-ack", "weather"), TOPICS.from_atn, strict=True))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind_and_payload=st.sampled_from(sorted(TOPIC_OF)).flatmap(
        lambda kind: st.tuples(st.just(kind), fuzz_strategies.PAYLOADS[kind])
    )
    | st.tuples(st.sampled_from(sorted(TOPIC_OF)), JSON.map(lambda v: json.dumps(v).encode()))
)
def test_fuzzed_payloads_through_the_broker(
    broker: Broker, fuzz_target: Process, kind_and_payload: tuple[str, bytes]
) -> None:
    kind, payload = kind_and_payload
    broker.pub("atn", TOPIC_OF[kind], payload)
    assert fuzz_target.popen.poll() is None  # still running


HOSTILE = [case for case in fuzz_strategies.hostile(time.time()) if case[1] != "request"]


@pytest.mark.parametrize(("name", "kind", "payload"), HOSTILE, ids=[name for name, _, _ in HOSTILE])
def test_hostile_payloads_through_the_broker(
    broker: Broker, fuzz_target: Process, name: str, kind: str, payload: bytes
) -> None:
    broker.pub("atn", TOPIC_OF[kind], payload)
    assert fuzz_target.popen.poll() is None, name


# A fuzzed telemetry-ack can be valid and name a seq past the store's end: that is how an ATN tells a store which
# lost its last rows in a power cut (docs/protocol.md), so the store moves past it and says so at error level.
# It is the protocol working, not the fuzzing getting through.
ACK_PAST_THE_END = "the ATN holds readings this store lost: carrying on above them"


def test_after_the_fuzzing_the_controller_still_controls(broker: Broker, fuzz_target: Process) -> None:
    # Every hostile message is rejected with its reason in the log (waited for: on a busy machine the controller
    # takes a while to get through them all).
    wait_for(
        lambda: len([e for e in fuzz_target.events() if e.get("event") == "message rejected"]) >= len(HOSTILE),
        30,
        "every hostile message rejected",
    )
    assert fuzz_target.popen.poll() is None
    errors = [e for e in fuzz_target.events() if e.get("level") in ("critical", "error")]
    assert not [e for e in errors if e.get("event") != ACK_PAST_THE_END], errors
    assert not [e for e in fuzz_target.events() if e.get("event") == "decision" and e.get("source") == "atn"]
    ticks_before = len([e for e in fuzz_target.events() if e.get("event") == "decision"])
    assert ticks_before > 0
    now = time.time()
    with broker.subscribe("monitor", TOPICS.ack) as acks:
        broker.pub(
            "atn", TOPICS.dispatch, json.dumps({"v": 1, "id": "after-fuzz", "issued_at": now, "valid_until": now + 60})
        )
        wait_for(lambda: [p for _, p in acks.messages if b"after-fuzz" in p], 5, "an ack after the fuzzing")
    ack = next(protocol.parse(protocol.Ack, p) for _, p in acks.messages if b"after-fuzz" in p)
    assert ack.accepted
    assert os.path.exists(fuzz_target.log_path)


def test_home_assistant_discovery_looks_native_is_resent_and_clears_what_the_layout_lost(
    broker: Broker, tmp_path: Path
) -> None:
    gone = f"homeassistant/sensor/{SITE}/old-probe/config"  # a channel an earlier layout had
    broker.pub(SITE, gone, json.dumps({"name": "old probe", "state_topic": TOPICS.state}), retain=True)
    layout = write_layout(broker, tmp_path, extra="home_assistant = true\n").read_text()
    layout = layout.replace("[channels.tank-top]\n", '[channels.tank-top]\nlabel = "Tank, top probe"\n')
    (tmp_path / "layout.toml").write_text(layout)
    hearth = controller(tmp_path / "layout.toml", tmp_path / "state", tmp_path / "hearth.log")
    demo = load_layout(ROOT / "layouts/demo.toml")
    derived = derived_channels(demo.channels, demo.control.energy)  # heat, its register, COP
    expected = len(demo.channels) + len(derived) + len(demo.actuators) + 1  # and the mode
    try:
        wait_for(lambda: any(e.get("event") == "Home Assistant discovery published" for e in hearth.events()), 10, "it")
        wait_for(
            lambda: any(
                e.get("event") == "Home Assistant entity removed: no longer in the layout" for e in hearth.events()
            ),
            10,
            "the stale entity cleared",
        )
        with broker.subscribe("homeassistant", f"homeassistant/+/{SITE}/+/config") as configs:
            wait_for(lambda: len(configs.messages) >= expected, 5, "the retained discovery")
            time.sleep(0.5)
            retained = dict(configs.messages)
            assert gone not in retained  # cleared: a retained empty message is not kept, so it is not replayed
            assert len(retained) == expected
            tank = json.loads(retained["homeassistant/sensor/demo-house/tank-top/config"])
            assert tank["state_topic"] == TOPICS.state and tank["unit_of_measurement"] == "°C"
            assert "readings.get('tank-top')" in tank["value_template"]  # rendered: tests/test_homeassistant.py
            assert tank["availability_topic"] == TOPICS.status  # offline at once on a stop (retained online: false)
            assert tank["expire_after"] == 3 * 2  # and unavailable when quiet for three state periods (a crash)
            assert (tank["name"], tank["device_class"], tank["state_class"]) == (
                "Tank, top probe",
                "temperature",
                "measurement",
            )
            assert tank["origin"]["name"] == "Hearth"
            outdoor = json.loads(retained["homeassistant/sensor/demo-house/outdoor/config"])
            assert outdoor["name"] == "Outdoor"
            mode = json.loads(retained["homeassistant/sensor/demo-house/mode/config"])
            assert (mode["device_class"], mode["options"]) == ("enum", ["ATN", "LOCAL", "OVERRIDE", "SAFE"])
            classes = {
                name: json.loads(retained[f"homeassistant/binary_sensor/demo-house/{name}/config"])["device_class"]
                for name in ("heat-pump", "store-pump", "distribution-pump", "aux-element")
            }
            assert classes == {
                "heat-pump": "running",
                "store-pump": "running",
                "distribution-pump": "running",
                "aux-element": "heat",
            }
            pump = json.loads(retained["homeassistant/binary_sensor/demo-house/heat-pump/config"])
            assert pump["name"] == "Heat pump"
            broker.pub("homeassistant", "homeassistant/status", "online")  # Home Assistant restarted
            wait_for(lambda: len(configs.messages) >= 2 * expected, 5, "discovery sent again")
        with broker.subscribe("monitor", TOPICS.energy) as energy:  # what `hearth tui --mqtt` shows as Energy
            wait_for(lambda: energy.messages, 10, "the retained energy summary")
            published = protocol.parse(protocol.EnergySummary, energy.messages[0][1])
            assert published.site == SITE and len(published.days) == 30 and published.every_s == 900
            assert {row["kind"] for row in published.totals} == {"month", "season"}
        with broker.subscribe("monitor", TOPICS.layout) as layouts:  # what `hearth tui --mqtt` shows as Layout
            wait_for(lambda: layouts.messages, 5, "the retained layout summary")
            summary = protocol.parse(protocol.LayoutSummary, layouts.messages[0][1])
            assert set(summary.layout["channels"]) >= {"tank-top", "outdoor"}
            assert summary.layout["channels"]["tank-top"]["label"] == "Tank, top probe"
            assert "links" not in summary.layout and "storage" not in summary.layout  # no broker, user or path
    finally:
        assert hearth.stop() == 0


def test_a_house_broker_of_its_own_gets_status_state_and_discovery_with_its_own_credentials(
    broker: Broker, tmp_path: Path
) -> None:
    """[links.home_assistant] only (no ATN): the house's own mosquitto, another password, the same entities. Its
    url is a list like the ATN link's (one reconnect loop serves both): a broker that is down, then the house's."""
    house = start_broker(tmp_path / "house-broker", site=SITE)
    (dead,) = _free_ports(1)
    try:
        secret = tmp_path / "house-password"
        secret.write_text(house.users[SITE])
        stale_topic = f"homeassistant/binary_sensor/{SITE}/old-valve/config"
        house.pub(SITE, stale_topic, json.dumps({"name": "old valve"}), retain=True)
        layout = (
            (ROOT / "layouts/demo.toml").read_text()
            + f"""
[links.home_assistant]
url = ["mqtt://127.0.0.1:{dead}", "mqtt://127.0.0.1:{house.port}"]
username = "{SITE}"
password_file = "{secret}"
state_every_s = 1
"""
        )
        (tmp_path / "layout.toml").write_text(layout)
        hearth = controller(tmp_path / "layout.toml", tmp_path / "state", tmp_path / "hearth.log")
        try:
            wait_for(lambda: any(e.get("event") == "house broker up" for e in hearth.events()), 15, "the house link")
            down = next(e for e in hearth.events() if e.get("event") == "house broker down")
            assert down["broker"] == f"mqtt://127.0.0.1:{dead}" and down["retry_in_s"] == 0, down
            up = next(e for e in hearth.events() if e.get("event") == "house broker up")
            assert up["broker"] == f"mqtt://127.0.0.1:{house.port}"
            wait_for(
                lambda: any(
                    e.get("event") == "Home Assistant entity removed: no longer in the layout" for e in hearth.events()
                ),
                10,
                "the stale entity cleared",
            )
            with house.subscribe("homeassistant", f"homeassistant/+/{SITE}/+/config") as configs:
                demo = load_layout(ROOT / "layouts/demo.toml")
                entities = len(demo.channels) + len(demo.actuators) + 1
                wait_for(lambda: len(configs.messages) >= entities, 5, "the retained discovery")
                assert stale_topic not in dict(configs.messages)
            with house.subscribe("homeassistant", TOPICS.state) as states:
                wait_for(lambda: states.messages, 5, "the retained state")
                state = protocol.parse(protocol.State, states.messages[-1][1])
                assert state.site == SITE and state.link is None  # no ATN link in this layout
            with house.subscribe("homeassistant", TOPICS.status) as statuses:
                wait_for(lambda: statuses.messages, 5, "the retained status")
                assert protocol.parse(protocol.Status, statuses.messages[-1][1]).online
        finally:
            assert hearth.stop() == 0
    finally:
        house.stop()


def test_the_link_comes_back_by_itself_after_the_broker_restarts(broker: Broker, tmp_path: Path) -> None:
    """The same controller process reconnects: no restart of Hearth needed when the broker comes back."""
    hearth = controller(write_layout(broker, tmp_path), tmp_path / "state", tmp_path / "hearth.log")
    try:
        wait_for(lambda: any(e.get("event") == "ATN link up" for e in hearth.events()), 10, "the link")
        broker.kill()
        wait_for(lambda: any(e.get("event") == "ATN link down" for e in hearth.events()), 30, "the link going down")
        broker.restart()
        wait_for(lambda: [e.get("event") for e in hearth.events()].count("ATN link up") >= 2, 20, "the link back")
        assert hearth.popen.poll() is None
    finally:
        assert hearth.stop() == 0
