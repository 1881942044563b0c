"""The ATN link's figures, against a real private mosquitto (tests/broker.py's, in a temporary directory).

1. Failover: the controller (in-process `Controller` on layouts/demo.toml, bus timing as the layout says, with
   `[links.atn]` to the broker and `[control.authority] heartbeat_s`) and an in-process `AtnSim` with the same
   heartbeat. Each trial waits for `ATN` mode, pauses the ATN right after the controller received one of its
   heartbeats, and times, on the controller's clock, from the last contact the controller had (that heartbeat,
   or a dispatch if one came later) to its decision to go `LOCAL` (the authority's decision time, which is also
   the stored mode event's `ts`). The figure is that minus `silence_timeout` (3 x heartbeat). Target: <= 0.5 s
   in every trial. The ATN then resumes, and the next trial waits for the handback.
2. Dispatch -> relay: on the same controller (the demo layout copied with the aux element's minimum on and off
   times at 0, so every flip is allowed), with the AtnSim stopped and this bench as the ATN (a separate
   process, user "atn", paho, its own heartbeats), dispatches that flip `aux-element` on and off one at a time,
   at random phases. Timed on CLOCK_MONOTONIC from just before the publish (in the ATN process) to the change
   of the emulated GPIO line (a listener on the line, on the controller's GPIO thread). Target p99 <= 50 ms.
3. Backlog replay: a store filled with `--hours` of every sample of the 24 channels of layouts/bench-24.toml at
   1 Hz (deadband 0: 2,073,600 rows for 24 h; `hearth run` thins far below that, so this is the worst case),
   through the Store API (record()/flush() of synthetic snapshots). The real `Controller` then starts on a copy
   of that store (bench-24 + `[links.atn]`, control tick 0.1 s for more jitter samples, sampler and plant
   running) and its link replays the backlog to an ATN in a separate process: a minimal ack-er (acknowledges
   each contiguous batch from its header, persists nothing) or the reference ATN (`AtnSim` and its SQLite
   ledger). Timed from the link coming up to the store's acked_seq reaching the backlog's last seq, with
   `telemetry_batch` 2000 (the default) and 10000. Targets: >= 250k readings/s, and the control loop's own
   tick lateness p99 <= 50 ms meanwhile (ticks during the replay only; the same with no backlog is printed as
   a baseline). Also printed: what the store read and the JSON encoding reach alone, in this process.
4. The broker alone with the same payloads (the link's encoding of the same rows, so the same byte sizes):
   paho at QoS 1 to a subscriber that only receives, with at most 16 messages ahead of the subscriber (like
   `max_unacked_batches`) and stop-and-wait (each publish waits for its PUBACK, as awaiting
   `aiomqtt.Client.publish` makes the link's forwarder do); and mosquitto_pub -l. Messages/s, the readings/s
   they are worth, and the ratio to the replay to the ack-er.

Dispatch latency and replay are measured with the broker configured as deployed (deploy/mosquitto, which sets
`set_tcp_nodelay true`; the controller's and the ATN's sockets set TCP_NODELAY too). `--nodelay` adds runs on
a restarted broker whose configuration gains that line if it lacks it (a fresh controller each time): useful
to compare against a configuration without it.

    .venv/bin/python bench/atn_link.py [--trials 20] [--dispatches 200] [--hours 24] [--heartbeat 1.0] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from types import MappingProxyType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests/broker.py: the private mosquitto the tests use

import controller  # noqa: E402, F401  (Blinka check off)
from controller import logs, protocol  # noqa: E402
from controller.atnsim.sim import AtnConfig, AtnSim  # noqa: E402
from controller.clock import SimClock  # noqa: E402
from controller.control.types import Mode  # noqa: E402
from controller.layout.load import load_layout  # noqa: E402
from controller.links.atn import AtnLinkRunner  # noqa: E402
from controller.readings import Quality, Reading, Snapshot  # noqa: E402
from controller.runtime import Controller, RunOptions  # noqa: E402
from controller.sim.world import SimBuses  # noqa: E402
from controller.store import ChannelPolicy, Store, StoredReading  # noqa: E402
from tests.broker import Broker, disconnect, start_broker  # noqa: E402

DEMO = ROOT / "layouts/demo.toml"
BENCH_24 = ROOT / "layouts/bench-24.toml"
AUX = "aux-element"
TARGET_FAILOVER_MS = 500.0
TARGET_DISPATCH_P99_MS = 50.0
TARGET_REPLAY_PER_S = 250_000.0
TARGET_JITTER_P99_MS = 50.0
FLUSH_EVERY = 300  # snapshots per flush while filling (the store's queue holds ten minutes of 24 channels)
WINDOW = 16  # messages ahead of the subscriber in the raw broker run, as the link's max_unacked_batches
POLL_S = 0.002
DEPLOYED = "broker as deployed"
NODELAY = "broker + set_tcp_nodelay true"
_HEADER_SEQ = re.compile(rb'"(first_seq|last_seq)":(\d+)')


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


async def wait_until(condition: Callable[[], object], timeout_s: float, what: str, poll_s: float = POLL_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(poll_s)


def with_nodelay(broker: Broker) -> None:
    """Restart the broker with `set_tcp_nodelay true` added to the bench's copy of its configuration."""
    broker.stop()
    config = broker.config_file.read_text()
    if "set_tcp_nodelay" not in config:
        broker.config_file.write_text("set_tcp_nodelay true\n" + config)
    broker.start()


def run_options(state_dir: Path) -> RunOptions:
    """Quiet options, with the local API's socket (where this version has one) in the bench's directory."""
    names = {option.name for option in dataclasses.fields(RunOptions)}
    extra: dict[str, Any] = {"socket_path": state_dir / "hearth.sock"} if "socket_path" in names else {}
    return RunOptions(state_dir=state_dir, report_every_s=3600, **extra)


def no_nagle(client: mqtt.Client) -> None:
    """TCP_NODELAY on a connected paho client's socket. The bench's own ATN clients use it, so that what is
    measured is the controller and the broker, not Nagle's algorithm in the bench (paho never sets it)."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# ---- layouts ------------------------------------------------------------------------------------------------


def link_table(broker: Broker, site: str, directory: Path, extra: str = "") -> str:
    secret = directory / f"{site}-password"
    secret.write_text(broker.users[site])
    return (
        f'\n[links.atn]\nurl = "mqtt://{broker.host}:{broker.port}"\nusername = "{site}"\n'
        f'password_file = "{secret}"\n{extra}'
    )


def demo_layout(broker: Broker, directory: Path, heartbeat_s: float) -> Path:
    """demo.toml with the aux element's minimum on/off times at 0 (every flip allowed), the heartbeat, the link."""
    text = DEMO.read_text()
    start = text.index(f"[actuators.{AUX}]")
    end = text.find("\n[", start + 1)
    end = len(text) if end < 0 else end
    section = re.sub(r"^(min_on_s|min_off_s)\s*=.*$", r"\1 = 0", text[start:end], flags=re.MULTILINE)
    text = text[:start] + section + text[end:]
    text += f"\n[control.authority]\nheartbeat_s = {heartbeat_s}\n"
    text += link_table(broker, "demo-house", directory)
    path = directory / "demo-atn.toml"
    path.write_text(text)
    return path


def bench24_layout(broker: Broker, directory: Path, batch: int, tick_s: float) -> Path:
    text = BENCH_24.read_text()
    text += f"\n[control]\ntick_s = {tick_s}\n"
    text += link_table(broker, "bench-24", directory, f"telemetry_batch = {batch}\n")
    path = directory / f"bench-24-atn-{batch}.toml"
    path.write_text(text)
    return path


# ---- 1 and 2: failover and dispatch latency on the demo controller --------------------------------------------


@dataclass
class Failover:
    over_ms: float  # decision time - last contact - silence_timeout
    over_heartbeat_ms: float  # decision time - last heartbeat - silence_timeout
    event_ts_matches: bool  # the stored mode event carries the authority's decision time


@dataclass
class Dispatches:
    broker: str
    latencies_ms: list[float] = field(default_factory=list)
    missed: int = 0
    rejected: list[str] = field(default_factory=list)

    def line(self) -> str:
        lat = self.latencies_ms
        if not lat:
            return f"dispatch -> relay ({self.broker}): no flip measured ({self.missed} missed)"
        p99 = percentile(lat, 0.99)
        missed = f", {self.missed} never moved the relay" if self.missed else ""
        return (
            f"dispatch -> relay ({self.broker}), {len(lat)} flips: p50 {statistics.median(lat):.1f} ms, "
            f"p99 {p99:.1f} ms, max {max(lat):.1f} ms{missed} (target p99 <= {TARGET_DISPATCH_P99_MS:.0f} ms) "
            f"{verdict(p99 <= TARGET_DISPATCH_P99_MS and not self.missed)}"
        )


@dataclass
class DemoResults:
    heartbeat_s: float
    silence_s: float
    failovers: list[Failover] = field(default_factory=list)
    dispatches: list[Dispatches] = field(default_factory=list)

    def failover_line(self) -> str:
        over = [f.over_ms for f in self.failovers]
        worst = max(over)
        return (
            f"ATN silence -> LOCAL, {len(over)} trials, heartbeat {self.heartbeat_s:g} s "
            f"(timeout {self.silence_s:g} s): failover - timeout max {worst:.1f} ms, "
            f"p50 {statistics.median(over):.1f} ms, min {min(over):.1f} ms "
            f"(target max <= {TARGET_FAILOVER_MS:.0f} ms) {verdict(worst <= TARGET_FAILOVER_MS)}"
        )


def bench_atn_process(host: str, port: int, password: str, site: str, conn: Connection) -> None:
    """This bench as the ATN, in its own process (as a real ATN is): paho as user "atn", publishing heartbeats
    and dispatches when told to over `conn`, and answering each dispatch with the CLOCK_MONOTONIC time
    (`time.monotonic()`, the same clock in every process) taken just before its publish."""
    topics = protocol.Topics(site)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv311)
    client.username_pw_set("atn", password)
    rejected: list[str] = []
    subscribed = threading.Event()

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, _reason: ReasonCode, _p: Any) -> None:
        c.subscribe(topics.ack, qos=1)

    def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, _r: Any, _p: Any) -> None:
        subscribed.set()

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with contextlib.suppress(protocol.Rejected):
            ack = protocol.parse(protocol.Ack, bytes(message.payload))
            if not ack.accepted:
                rejected.append(f"{ack.id}: {ack.reason}")

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect(host, port, keepalive=30)
    no_nagle(client)
    client.loop_start()
    conn.send(("ready", subscribed.wait(10)))
    beats = 0
    while True:
        command, argument = conn.recv()
        if command == "heartbeat":
            beat = protocol.Heartbeat(atn="bench", ts=argument, seq=beats)
            client.publish(topics.heartbeat, beat.to_json(), qos=1)
            beats += 1
        elif command == "dispatch":
            started = time.monotonic()
            client.publish(topics.dispatch, argument, qos=1)
            conn.send(("sent", started))
        else:
            break
    time.sleep(0.3)  # the last acks
    client.disconnect()
    client.loop_stop()
    conn.send(("rejected", rejected))


class BenchAtn:
    """The parent's end of `bench_atn_process`. Sending never waits for the child, so it cannot hold up the
    controller's event loop; replies are read off the loop."""

    def __init__(self, broker: Broker, site: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=bench_atn_process,
            args=(broker.host, broker.port, broker.users["atn"], site, child),
            name="bench-atn",
        )
        self.beats = 0
        self.rejected: list[str] = []

    async def start(self) -> None:
        self.process.start()
        _, ok = await self.reply()
        if not ok:
            raise RuntimeError("the bench's ATN process could not subscribe to the controller's acks")

    async def reply(self) -> tuple[str, Any]:
        if not await asyncio.to_thread(self.conn.poll, 15.0):
            raise TimeoutError("the bench's ATN process did not answer")
        kind, value = self.conn.recv()
        return str(kind), value

    def heartbeat(self, now: float) -> None:
        self.conn.send(("heartbeat", now))
        self.beats += 1

    def dispatch(self, now: float, actuators: dict[str, bool]) -> None:
        lease_id = f"bench-{uuid.uuid4().hex[:16]}"
        lease = protocol.Dispatch(id=lease_id, issued_at=now, valid_until=now + 120.0, actuators=actuators)
        self.conn.send(("dispatch", lease.to_json()))

    async def sent_at(self) -> float:
        """When (time.monotonic) the child published the oldest dispatch not yet accounted for."""
        _, started = await self.reply()
        return float(started)

    async def close(self) -> None:
        if self.process.is_alive():
            self.conn.send(("close", None))
            with contextlib.suppress(TimeoutError):
                while (answer := await self.reply())[0] != "rejected":
                    pass
                self.rejected = list(answer[1])
        await asyncio.to_thread(self.process.join, 10)
        if self.process.is_alive():
            self.process.terminate()


def heartbeat_after(link: AtnLinkRunner, seen: float | None) -> Callable[[], bool]:
    return lambda: link.last_heartbeat != seen


async def failover_trials(runner: Controller, atn: AtnSim, trials: int, results: DemoResults) -> None:
    loop, link, store = runner.loop, runner.link, runner.store
    assert loop is not None and link is not None and store is not None
    silence = results.silence_s
    for trial in range(trials):
        await wait_until(lambda: loop.state.authority.mode is Mode.ATN, 10 * silence + 10, "ATN mode (handback)")
        await wait_until(heartbeat_after(link, link.last_heartbeat), 3 * results.heartbeat_s + 2, "a heartbeat")
        atn.pause()  # right after the controller received that heartbeat
        last_heartbeat = link.last_heartbeat
        assert last_heartbeat is not None
        events_from = max((seq for seq, _ in store.events_after(0, limit=1_000_000)), default=0)
        await wait_until(lambda: loop.state.authority.base is Mode.LOCAL, silence + 5, "failover to LOCAL")
        authority = loop.state.authority
        assert authority.last_contact is not None
        decided = authority.since
        to_local = [
            e for _, e in store.events_after(events_from) if e.kind == "mode" and e.data.get("to") == Mode.LOCAL.value
        ]
        results.failovers.append(
            Failover(
                over_ms=(decided - authority.last_contact - silence) * 1000,
                over_heartbeat_ms=(decided - last_heartbeat - silence) * 1000,
                event_ts_matches=bool(to_local) and to_local[0].ts == decided,
            )
        )
        print(
            f"  trial {trial + 1:2d}: LOCAL {decided - last_heartbeat:.3f} s after the last heartbeat "
            f"(+{(decided - last_heartbeat - silence) * 1000:.1f} ms over the timeout)",
            flush=True,
        )
        atn.resume()
    await wait_until(lambda: loop.state.authority.mode is Mode.ATN, 10 * silence + 10, "ATN mode (handback)")


async def dispatch_latency(
    runner: Controller, buses: SimBuses, broker: Broker, count: int, results: DemoResults, label: str
) -> Dispatches:
    loop = runner.loop
    assert loop is not None
    clock = runner.clock
    measured = Dispatches(label)
    line = buses.gpio.line(runner.layout.actuators[AUX].pin)
    event_loop = asyncio.get_running_loop()
    changed = asyncio.Event()
    switched_at: list[float] = []

    def on_change(_level: bool) -> None:  # called on the GPIO thread
        switched_at.append(time.monotonic())
        event_loop.call_soon_threadsafe(changed.set)

    bench_atn = BenchAtn(broker, runner.layout.site.id)
    await bench_atn.start()

    async def beat() -> None:
        while True:
            bench_atn.heartbeat(clock.now())
            await asyncio.sleep(results.heartbeat_s)

    beating = asyncio.create_task(beat(), name="bench:heartbeats")
    line.add_listener(on_change)
    try:
        # The bench's heartbeats carry on where the previous ATN's stopped (or start afresh); if the controller
        # is not in ATN mode, a lease after two of them gives it control.
        deadline = time.monotonic() + 10 * results.silence_s + 10
        leases = 0
        while loop.state.authority.mode is not Mode.ATN:
            if time.monotonic() > deadline:
                raise TimeoutError("the controller did not take this bench as its ATN")
            await asyncio.sleep(results.heartbeat_s)
            if bench_atn.beats >= 2:
                bench_atn.dispatch(clock.now(), {})
                leases += 1
        for _ in range(leases):
            await bench_atn.sent_at()
        rng = random.Random(1)
        for _ in range(count):
            changed.clear()
            switched_at.clear()
            bench_atn.dispatch(clock.now(), {AUX: not line.level})
            try:
                await asyncio.wait_for(changed.wait(), 2.0)
            except TimeoutError:
                measured.missed += 1
                await bench_atn.sent_at()
                continue
            measured.latencies_ms.append((switched_at[0] - await bench_atn.sent_at()) * 1000)
            await asyncio.sleep(rng.uniform(0.01, 0.04))  # off the grid of ticks and sampling rounds
    finally:
        line.remove_listener(on_change)
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await bench_atn.close()
        measured.rejected = bench_atn.rejected
    return measured


async def demo_session(
    broker: Broker, directory: Path, args: argparse.Namespace, results: DemoResults, trials: int, label: str
) -> None:
    """One controller on the demo layout: `trials` failovers with an AtnSim, then the dispatch latency."""
    layout = load_layout(demo_layout(broker, directory, args.heartbeat))
    clock = SimClock(speed=1.0)
    buses = SimBuses(layout, clock)
    runner: Controller

    async def drive() -> None:
        try:
            await wait_until(lambda: runner.link is not None and runner.link.connected, 20, "the controller's link")
            if trials:
                atn = AtnSim(
                    AtnConfig(
                        sites=(layout.site.id,),
                        host=broker.host,
                        port=broker.port,
                        username="atn",
                        password=broker.users["atn"],
                        db=directory / "atn-ledger.sqlite",
                        name="bench-atn-sim",
                        heartbeat_s=args.heartbeat,
                        lease_s=300.0,  # renewals every 150 s; a resume sends its own leases
                    ),
                    clock=clock,
                )
                serving = asyncio.create_task(atn.run(), name="bench:atn-sim")
                try:
                    print(f"failover trials (heartbeat {args.heartbeat:g} s, silence_timeout {results.silence_s:g} s):")
                    await failover_trials(runner, atn, trials, results)
                finally:
                    serving.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await serving
                    atn.close()
            print(f"dispatch -> relay: {args.dispatches} dispatches flipping {AUX} ({label}) ...", flush=True)
            results.dispatches.append(await dispatch_latency(runner, buses, broker, args.dispatches, results, label))
            print(results.dispatches[-1].line(), flush=True)
        finally:
            runner.stop_requested.set()

    options = run_options(directory / f"demo-state-{len(results.dispatches)}")
    runner = Controller(layout, buses, clock, options, {"plant": buses.run, "bench": drive})
    await runner.run()


# ---- 3: backlog replay ----------------------------------------------------------------------------------------


def fill_backlog(path: Path, hours: float) -> tuple[int, float]:
    """Every sample of bench-24's channels at 1 Hz for `hours`, ending now; returns (rows, seconds it took)."""
    names = list(load_layout(BENCH_24).channels)
    keep_all = ChannelPolicy(deadband=0.0, keepalive_s=0.5)  # every one-second sample earns a row
    policies = dict.fromkeys(names, keep_all)
    seconds = int(hours * 3600)
    start = time.time() - seconds
    began = time.perf_counter()
    with Store.open(path) as store:
        for i in range(seconds):
            ts = start + i
            readings = {}
            for k, name in enumerate(names):
                value = 40.0 + 10.0 * math.sin(ts / 3600.0 + k) + ((i * 7919 + k * 31) % 997) / 997.0
                readings[name] = Reading(name, value, "degC", Quality.OK, ts)
            store.record(Snapshot(ts, MappingProxyType(readings)), policies)
            if i % FLUSH_EVERY == FLUSH_EVERY - 1:
                store.flush()
        store.flush()
        rows = store.last_seq()
    return rows, time.perf_counter() - began


def encode_batch(site: str, rows: Sequence[StoredReading]) -> bytes:
    """A historical telemetry batch encoded as the link encodes it (controller/links/atn.py)."""
    body = {
        "v": protocol.VERSION,
        "site": site,
        "first_seq": rows[0].seq,
        "last_seq": rows[-1].seq,
        "historical": True,
        "readings": [[r.seq, r.ts, r.channel, r.value, r.quality.value] for r in rows],
    }
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass
class Components:
    read_per_s: float
    read_encode_per_s: float
    bytes_per_reading: float


def components(path: Path, batch: int, limit: int) -> Components:
    """The store read alone, and read + JSON encode, over up to `limit` rows of the backlog."""
    with Store.open(path) as store:
        began, seq, count = time.perf_counter(), 0, 0
        while count < limit and (rows := store.readings_after(seq, batch)):
            seq, count = rows[-1].seq, count + len(rows)
        read = count / (time.perf_counter() - began)
        began, seq, count, size = time.perf_counter(), 0, 0, 0
        while count < limit and (rows := store.readings_after(seq, batch)):
            size += len(encode_batch("bench-24", rows))
            seq, count = rows[-1].seq, count + len(rows)
        both = count / (time.perf_counter() - began)
    return Components(read, both, size / count)


def atn_process(
    kind: str, host: str, port: int, password: str, site: str, db: str, ready: MpEvent, stop: MpEvent, out: Any
) -> None:
    """The ATN side of a replay, in its own process: "ack" (a minimal ack-er) or "ledger" (the reference AtnSim)."""
    logs.configure("error", json=True)
    if kind == "ledger":
        asyncio.run(_ledger_atn(host, port, password, site, db, ready, stop, out))
    else:
        _minimal_acker(host, port, password, site, ready, stop, out)


def _minimal_acker(host: str, port: int, password: str, site: str, ready: MpEvent, stop: MpEvent, out: Any) -> None:
    """Acknowledges up to the end of the contiguous run, read from each batch's header; persists nothing."""
    topics = protocol.Topics(site)
    state = {"batches": 0, "upto": 0, "out_of_order": 0}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv311)
    client.username_pw_set("atn", password)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, _reason: ReasonCode, _p: Any) -> None:
        c.subscribe(topics.telemetry, qos=1)

    def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, _r: Any, _p: Any) -> None:
        ready.set()

    def on_message(c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        header = {key.decode(): int(value) for key, value in _HEADER_SEQ.findall(bytes(message.payload[:120]))}
        state["batches"] += 1
        if header["first_seq"] <= state["upto"] + 1 or state["upto"] == 0:
            state["upto"] = max(state["upto"], header["last_seq"])
        else:
            state["out_of_order"] += 1
        c.publish(topics.telemetry_ack, protocol.TelemetryAck(upto_seq=state["upto"]).to_json(), qos=1)

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect(host, port, keepalive=30)
    no_nagle(client)
    client.loop_start()
    stop.wait()
    client.disconnect()
    client.loop_stop()
    out.put(dict(state))


async def _ledger_atn(
    host: str, port: int, password: str, site: str, db: str, ready: MpEvent, stop: MpEvent, out: Any
) -> None:
    config = AtnConfig(
        sites=(site,), host=host, port=port, username="atn", password=password, db=db, heartbeat_s=60.0, lease_s=600.0
    )
    atn = AtnSim(config)
    serving = asyncio.create_task(atn.run())
    await atn.wait_connected(10.0)
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.05)
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving
    stats = atn.stats[site]
    out.put(
        {
            "batches": stats.telemetry_batches,
            "stored": stats.readings_stored,
            "duplicates": stats.duplicates,
            "upto": atn.ledger.contiguous_upto(site),
            "gaps": len(atn.ledger.gaps(site)),
        }
    )
    atn.close()


@dataclass
class Replay:
    batch: int
    atn: str
    broker: str
    rows: int
    seconds: float
    lateness_ms: list[float]
    atn_stats: dict[str, int]

    @property
    def per_s(self) -> float:
        return self.rows / self.seconds

    def line(self) -> str:
        late = self.lateness_ms
        p99 = percentile(late, 0.99)
        atn = "minimal ack-er" if self.atn == "ack" else "AtnSim + ledger"
        stats = ", ".join(f"{key} {value:,}" for key, value in self.atn_stats.items())
        return (
            f"replay, batch {self.batch}, {atn}, {self.broker}: {self.per_s / 1000:.0f}k readings/s "
            f"({self.seconds:.1f} s, {self.seconds / math.ceil(self.rows / self.batch) * 1000:.1f} ms per batch; "
            f"target >= {TARGET_REPLAY_PER_S / 1000:.0f}k/s) {verdict(self.per_s >= TARGET_REPLAY_PER_S)}; "
            f"tick lateness over {len(late)} ticks p99 {p99:.1f} ms, max {max(late):.1f} ms "
            f"(target p99 <= {TARGET_JITTER_P99_MS:.0f} ms) {verdict(p99 <= TARGET_JITTER_P99_MS)}\n"
            f"    the ATN's count: {stats}"
        )


async def replay_once(
    layout_path: Path, state_dir: Path, backlog_rows: int, baseline_s: float
) -> tuple[float, list[float]]:
    """Run the controller until its store's acked_seq reaches `backlog_rows` (or, with no backlog, for
    `baseline_s`); returns the seconds from the link coming up, and the control ticks' lateness (ms) meanwhile."""
    layout = load_layout(layout_path)
    clock = SimClock(speed=1.0)
    buses = SimBuses(layout, clock)
    runner: Controller
    measured: dict[str, Any] = {}

    async def watch() -> None:
        try:
            await wait_until(lambda: runner.link is not None and runner.link.connected, 30, "the link", 0.001)
            assert runner.store is not None and runner.loop is not None
            store, lateness = runner.store, runner.loop.lateness_s
            began, ticks_before = time.perf_counter(), len(lateness)
            if backlog_rows:
                await wait_until(lambda: store.acked_seq() >= backlog_rows, 900, "the backlog's ack", 0.005)
            else:
                await asyncio.sleep(baseline_s)
            measured["seconds"] = time.perf_counter() - began
            measured["lateness"] = list(lateness)[ticks_before:]
        finally:
            runner.stop_requested.set()

    runner = Controller(layout, buses, clock, run_options(state_dir), {"plant": buses.run, "bench": watch})
    await runner.run()
    return float(measured["seconds"]), [v * 1000 for v in measured["lateness"]]


def run_replay(
    broker: Broker,
    label: str,
    directory: Path,
    backlog: Path | None,
    rows: int,
    batch: int,
    kind: str,
    tick_s: float,
    baseline_s: float = 0.0,
) -> Replay:
    """One replay of a copy of `backlog` (None: no backlog, a `baseline_s` run) to an ATN of `kind`."""
    layout_path = bench24_layout(broker, directory, batch, tick_s)
    state_dir = Path(tempfile.mkdtemp(prefix=f"replay-{batch}-{kind}-", dir=directory))
    if backlog is not None:
        shutil.copyfile(backlog, state_dir / load_layout(layout_path).storage.path)
    context = multiprocessing.get_context("spawn")
    ready, stop, out = context.Event(), context.Event(), context.Queue()
    ledger = str(state_dir / "atn-ledger.sqlite")
    process = context.Process(
        target=atn_process,
        args=(kind, broker.host, broker.port, broker.users["atn"], "bench-24", ledger, ready, stop, out),
        name=f"bench-atn-{kind}",
    )
    process.start()
    try:
        if not ready.wait(30):
            raise RuntimeError(f"the {kind} ATN did not connect within 30 s")
        seconds, lateness = asyncio.run(replay_once(layout_path, state_dir, rows if backlog else 0, baseline_s))
        stop.set()
        stats: dict[str, int] = out.get(timeout=30)
    finally:
        stop.set()
        process.join(30)
        if process.is_alive():
            process.terminate()
            process.join(5)
        shutil.rmtree(state_dir, ignore_errors=True)
    return Replay(batch, kind, label, rows if backlog else 0, seconds, lateness, stats)


# ---- 4: the broker alone ------------------------------------------------------------------------------------


@dataclass
class Raw:
    how: str
    short: str
    batch: int
    messages: int
    received: int
    seconds: float
    bytes_per_message: float

    @property
    def per_s(self) -> float:
        return self.received / self.seconds

    @property
    def readings_per_s(self) -> float:
        return self.per_s * self.batch

    def line(self, replays: Sequence[Replay]) -> str:
        same = [r.per_s for r in replays if r.batch == self.batch and r.atn == "ack" and r.broker == DEPLOYED]
        ratio = f", {self.readings_per_s / same[0]:.1f}x the replay to the ack-er" if same else ""
        lost = f", {self.messages - self.received} NOT received" if self.received < self.messages else ""
        return (
            f"broker alone, batch {self.batch} ({self.bytes_per_message / 1000:.0f} kB), {self.how}: "
            f"{self.per_s:,.0f} msg/s = {self.readings_per_s / 1000:,.0f}k readings/s{ratio}{lost}"
        )


class Receiver:
    """A subscriber (user "atn") that only counts what arrives."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.count = 0
        self.last_at = 0.0
        self.changed = threading.Condition()
        self.client = broker.connect("atn")
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.subscribe(topic, qos=1)
        if not subscribed.wait(5):
            raise TimeoutError("no SUBACK for the raw subscriber")

    def _on_message(self, _c: mqtt.Client, _u: Any, _m: mqtt.MQTTMessage) -> None:
        with self.changed:
            self.count += 1
            self.last_at = time.perf_counter()
            self.changed.notify_all()

    def wait_for(self, count: int, timeout_s: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.count >= count, timeout_s)

    def close(self) -> None:
        disconnect(self.client)


def payload_pool(backlog: Path, batch: int, distinct: int) -> list[bytes]:
    """Up to `distinct` full batches of the backlog, encoded as the link encodes them."""
    pool: list[bytes] = []
    with Store.open(backlog) as store:
        seq = 0
        while len(pool) < distinct and (rows := store.readings_after(seq, batch)):
            if len(rows) == batch:
                pool.append(encode_batch("bench-24", rows))
            seq = rows[-1].seq
    return pool


def raw_paho(broker: Broker, pool: list[bytes], batch: int, messages: int, stop_and_wait: bool) -> Raw:
    topic = protocol.Topics("bench-24").telemetry
    receiver = Receiver(broker, topic)
    sender = broker.connect("bench-24")
    try:
        began = time.perf_counter()
        for i in range(messages):
            payload = pool[i % len(pool)]
            if stop_and_wait:
                sender.publish(topic, payload, qos=1).wait_for_publish(10)
            else:
                receiver.wait_for(i - WINDOW + 1, 10)  # at most WINDOW messages ahead of the subscriber
                sender.publish(topic, payload, qos=1)
        receiver.wait_for(messages, 30)
        seconds = (receiver.last_at or time.perf_counter()) - began
        how = "paho, stop-and-wait (a PUBACK each)" if stop_and_wait else f"paho, {WINDOW} ahead of the subscriber"
        short = "paho stop-and-wait" if stop_and_wait else f"paho {WINDOW} ahead"
        return Raw(how, short, batch, messages, receiver.count, seconds, statistics.fmean(len(p) for p in pool))
    finally:
        disconnect(sender)
        receiver.close()


def raw_mosquitto_pub(broker: Broker, directory: Path, pool: list[bytes], batch: int, messages: int) -> Raw | None:
    binary = shutil.which("mosquitto_pub")
    if binary is None:
        return None
    lines = directory / f"payloads-{batch}.txt"
    with lines.open("wb") as out:
        for i in range(messages):
            out.write(pool[i % len(pool)] + b"\n")
    topic = protocol.Topics("bench-24").telemetry
    receiver = Receiver(broker, topic)
    try:
        command = [binary, "-h", broker.host, "-p", str(broker.port), "-u", "bench-24", "-P"]
        command += [broker.users["bench-24"], "-V", "mqttv311", "-t", topic, "-q", "1", "-l"]
        began = time.perf_counter()
        with lines.open("rb") as stdin:
            subprocess.run(command, stdin=stdin, capture_output=True, timeout=300, check=True)
        receiver.wait_for(messages, 30)
        seconds = (receiver.last_at or time.perf_counter()) - began
        size = statistics.fmean(len(p) for p in pool)
        how = "mosquitto_pub -l (free-running, its start-up included)"
        return Raw(how, "mosquitto_pub -l", batch, messages, receiver.count, seconds, size)
    finally:
        receiver.close()
        lines.unlink()


# ---- main -----------------------------------------------------------------------------------------------------


SHORT = {DEPLOYED: "as deployed", NODELAY: "+ set_tcp_nodelay"}


def row(what: str, figure: str, target: str = "", ok: bool | None = None) -> str:
    return f"{what:<50} {figure:<42} {target:<17} {'' if ok is None else verdict(ok)}".rstrip()


def summary(
    demo: DemoResults,
    baseline: Replay | None,
    replays: list[Replay],
    parts: Components,
    raws: list[Raw],
) -> list[str]:
    over = [f.over_ms for f in demo.failovers]
    lines = [
        row(
            f"ATN silence -> LOCAL, minus the {demo.silence_s:g} s timeout",
            f"max {max(over):.1f} ms, p50 {statistics.median(over):.1f} ms ({len(over)} trials)",
            f"max <= {TARGET_FAILOVER_MS:.0f} ms",
            max(over) <= TARGET_FAILOVER_MS,
        )
    ]
    for d in demo.dispatches:
        lat = d.latencies_ms
        if lat:
            p99 = percentile(lat, 0.99)
            figure = f"p50 {statistics.median(lat):.1f} ms, p99 {p99:.1f} ms, max {max(lat):.1f} ms"
            ok = p99 <= TARGET_DISPATCH_P99_MS and not d.missed
            lines.append(row(f"dispatch -> relay ({SHORT[d.broker]})", figure, "p99 <= 50 ms", ok))
    if baseline is not None:
        late = baseline.lateness_ms
        p99 = percentile(late, 0.99)
        figure = f"p99 {p99:.1f} ms, max {max(late):.1f} ms ({len(late)} ticks)"
        lines.append(row("tick lateness, link up, no backlog", figure, "p99 <= 50 ms", p99 <= TARGET_JITTER_P99_MS))
    for r in replays:
        atn = "ack-er" if r.atn == "ack" else "AtnSim"
        figure = f"{r.per_s / 1000:.0f}k readings/s ({r.seconds:.1f} s)"
        what = f"replay, batch {r.batch} -> {atn} ({SHORT[r.broker]})"
        lines.append(row(what, figure, ">= 250k/s", r.per_s >= TARGET_REPLAY_PER_S))
        late = r.lateness_ms
        p99 = percentile(late, 0.99)
        figure = f"p99 {p99:.1f} ms, max {max(late):.1f} ms ({len(late)} ticks)"
        lines.append(row("    tick lateness meanwhile", figure, "p99 <= 50 ms", p99 <= TARGET_JITTER_P99_MS))
    figure = f"{parts.read_encode_per_s / 1000:.0f}k/s (read alone {parts.read_per_s / 1000:.0f}k/s)"
    lines.append(row("store read + JSON encode alone, in-process", figure, "(design: ~1.3M/s)"))
    for raw in raws:
        same = [r.per_s for r in replays if r.batch == raw.batch and r.atn == "ack" and r.broker == DEPLOYED]
        ratio = f", {raw.readings_per_s / same[0]:.0f}x" if same else ""
        figure = f"{raw.per_s:,.0f} msg/s = {raw.readings_per_s / 1e6:.1f}M readings/s{ratio}"
        lines.append(row(f"broker alone, batch {raw.batch}, {raw.short}", figure))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="failover trials (default 20)")
    parser.add_argument("--dispatches", type=int, default=200, help="dispatches flipping the aux element (200)")
    parser.add_argument("--hours", type=float, default=24.0, help="outage length: hours of backlog (24)")
    parser.add_argument("--heartbeat", type=float, default=1.0, help="ATN heartbeat_s; silence_timeout is 3x (1.0)")
    parser.add_argument("--batches", default="2000,10000", help="telemetry_batch settings to replay with")
    parser.add_argument("--atn", default="ack,ledger", help="ATNs to replay to: ack (minimal ack-er), ledger (AtnSim)")
    parser.add_argument("--tick", type=float, default=0.1, help="control tick_s during the replay (0.1)")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of tick lateness with no backlog (10)")
    parser.add_argument(
        "--nodelay", dest="nodelay", action="store_true", help="also run on a broker restarted with set_tcp_nodelay"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer of everything")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.dispatches, args.hours = min(args.trials, 3), min(args.dispatches, 30), min(args.hours, 1.0)
        args.heartbeat, args.baseline = min(args.heartbeat, 0.5), min(args.baseline, 3.0)
    batches = [int(b) for b in args.batches.split(",") if b]
    kinds = [k for k in args.atn.split(",") if k]
    logs.configure("error", json=True)
    began, load_before = time.monotonic(), os.getloadavg()
    replays: list[Replay] = []
    raws: list[Raw] = []
    baseline: Replay | None = None

    with tempfile.TemporaryDirectory(prefix="hearth-bench-atn-") as temp:
        directory = Path(temp)
        # ---- 1, 2
        broker = start_broker(directory / "broker-demo", site="demo-house")
        silence = load_layout(demo_layout(broker, directory, args.heartbeat)).control.authority.silence_s
        demo = DemoResults(heartbeat_s=args.heartbeat, silence_s=silence)
        try:
            asyncio.run(demo_session(broker, directory, args, demo, args.trials, DEPLOYED))
            if args.nodelay:
                with_nodelay(broker)  # and a fresh controller on it, so the figure does not hang on a reconnection
                asyncio.run(demo_session(broker, directory, args, demo, 0, NODELAY))
        finally:
            broker.stop()
        print(demo.failover_line())
        later = [f for f in demo.failovers if abs(f.over_ms - f.over_heartbeat_ms) > 1e-6]
        if later:
            worst = max(f.over_heartbeat_ms for f in demo.failovers)
            print(
                f"  {len(later)} trials had a dispatch after the last heartbeat; from the heartbeat, max {worst:.1f} ms"
            )
        if not all(f.event_ts_matches for f in demo.failovers):
            print("  NOTE: a stored mode event's ts differed from the authority's decision time")
        for dispatches in demo.dispatches:
            if dispatches.rejected:
                print(f"  ({dispatches.broker}) rejected: {dispatches.rejected[:3]}")

        # ---- 3
        backlog = directory / "backlog.sqlite"
        rows, fill_s = fill_backlog(backlog, args.hours)
        print(
            f"backlog: {rows:,} readings, every sample of 24 channels at 1 Hz for {args.hours:g} h "
            f"(filled through Store.record/flush in {fill_s:.1f} s)",
            flush=True,
        )
        parts = components(backlog, batches[0], min(rows, 500_000))
        print(
            f"in this process, no controller, batches of {batches[0]}: readings_after alone "
            f"{parts.read_per_s / 1000:.0f}k/s; readings_after + JSON encode {parts.read_encode_per_s / 1000:.0f}k/s "
            f"({parts.bytes_per_reading:.1f} bytes per reading)",
            flush=True,
        )
        broker = start_broker(directory / "broker-bench", site="bench-24")
        try:
            if args.baseline > 0:
                baseline = run_replay(broker, DEPLOYED, directory, None, 0, batches[0], "ack", args.tick, args.baseline)
                late = baseline.lateness_ms
                print(
                    f"control tick lateness with the link up and nothing to replay, {baseline.seconds:.0f} s: "
                    f"p99 {percentile(late, 0.99):.1f} ms, max {max(late):.1f} ms over {len(late)} ticks",
                    flush=True,
                )
            for batch in batches:
                for kind in kinds:
                    replays.append(run_replay(broker, DEPLOYED, directory, backlog, rows, batch, kind, args.tick))
                    print(replays[-1].line(), flush=True)
            # ---- 4, on the same broker
            for batch in batches:
                pool = payload_pool(backlog, batch, 32)
                if not pool:
                    continue
                messages = max(len(pool), rows // batch)
                for stop_and_wait in (False, True):
                    raws.append(raw_paho(broker, pool, batch, messages, stop_and_wait))
                    print(raws[-1].line(replays), flush=True)
                # free-running: kept under the broker's 64 MiB queue for a subscriber that falls behind
                capped = min(messages, (48 << 20) // len(pool[0]))
                raw = raw_mosquitto_pub(broker, directory, pool, batch, capped)
                if raw is not None:
                    raws.append(raw)
                    print(raw.line(replays), flush=True)
            if args.nodelay and "ack" in kinds:
                with_nodelay(broker)
                for batch in batches:
                    replays.append(run_replay(broker, NODELAY, directory, backlog, rows, batch, "ack", args.tick))
                    print(replays[-1].line(), flush=True)
        finally:
            broker.stop()

    load_after = os.getloadavg()
    print()
    print(
        f"==== summary: bench/atn_link.py, heartbeat {args.heartbeat:g} s, {args.hours:g} h backlog ({rows:,} readings)"
    )
    print("\n".join(summary(demo, baseline, replays, parts, raws)))
    if args.nodelay:
        print(
            "'as deployed' is deploy/mosquitto/hearth.conf (set_tcp_nodelay true; the clients set TCP_NODELAY too).\n"
            "'+ set_tcp_nodelay' restarts the broker with that line added if it was missing."
        )
    print(
        f"whole run {time.monotonic() - began:.0f} s on {os.cpu_count()} CPUs; 1-min load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (anything else running skews these figures)"
    )


if __name__ == "__main__":
    main()
