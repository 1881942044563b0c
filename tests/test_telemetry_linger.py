"""Live telemetry lingers before it is sent (`[links.atn] telemetry_linger_s`): fewer messages per site, one batch
and one acknowledgement per linger instead of per commit. A full batch, a replay of old readings and linger 0 are
sent at once. The forwarder runs as in a session, with its publishes recorded instead of sent to a broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from controller import protocol
from controller.clock import ManualClock
from controller.control.inbox import AtnInbox
from controller.links.atn import AtnLinkRunner
from controller.links.config import AtnLink
from controller.readings import Quality, Reading, Snapshot
from controller.store import ChannelPolicy, Store
from tests.simhelpers import demo_layout

LAYOUT = demo_layout()
T0 = 1_800_000_000.0
NAMES = ("ch-0", "ch-1")
POLICIES = {name: ChannelPolicy(deadband=0.0, keepalive_s=0.5) for name in NAMES}
WAIT_S = 0.3  # real time a forwarder gets to send what it would send at once


class Forwarder:
    """A link's telemetry forwarder running against a store and a manual clock; `sent` holds its batches."""

    def __init__(self, db: Path, **config: Any) -> None:
        self.clock = ManualClock(start=T0)
        self.store = Store.open(db)
        self.link = AtnLinkRunner(
            AtnLink(url="mqtt://127.0.0.1:1883", **config),
            LAYOUT,
            self.store,
            AtnInbox(),
            self.clock,
            state=lambda: protocol.State(site="demo-house", ts=T0, mode="LOCAL", reason="", readings={}, actuators={}),
        )
        self.sent: list[dict[str, Any]] = []
        self.task: asyncio.Task[None] | None = None

        async def publish(
            _client: object, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False
        ) -> None:
            assert topic == self.link.topics.telemetry and qos == 1 and not retain
            self.sent.append(json.loads(payload))

        self.link._publish = publish  # type: ignore[method-assign]

    def start(self) -> None:
        self.task = asyncio.create_task(self.link._forward_telemetry(None))  # type: ignore[arg-type]

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        self.store.close()

    def commit(self, count: int = 1, ts: float | None = None) -> None:
        """`count` snapshots of both channels, a second apart from `ts` (default: now), then one commit."""
        start = self.clock.now() if ts is None else ts
        for i in range(count):
            at = start + i
            readings = {n: Reading(n, float(i), "degC", Quality.OK, at) for n in NAMES}
            self.store.record(Snapshot(at, MappingProxyType(readings)), POLICIES)
        self.store.flush()  # tells the link (on_commit)

    def ack(self, upto: int) -> None:
        self.link.handle(self.link.topics.telemetry_ack, protocol.TelemetryAck(upto_seq=upto).to_json())

    async def settle(self) -> None:
        await asyncio.sleep(WAIT_S)


def run(tmp_path: Path, scenario: Callable[[Forwarder], Awaitable[None]], **config: Any) -> None:
    """Run `scenario` against a forwarder that is running with `config`, then stop it."""

    async def main() -> None:
        forwarder = Forwarder(tmp_path / "link.sqlite", **config)
        forwarder.start()
        try:
            await scenario(forwarder)
        finally:
            await forwarder.stop()

    asyncio.run(main())


def test_live_readings_wait_for_the_linger_then_go_in_one_batch(tmp_path: Path) -> None:
    async def scenario(f: Forwarder) -> None:
        for _ in range(4):  # four commits a second apart: the old link sent four batches
            f.commit()
            await f.settle()
            f.clock.advance(1.0)
        assert f.sent == []
        f.clock.advance(1.0)  # the first reading is now 5 s old
        f.link._readings_news.set()
        await f.settle()
        assert len(f.sent) == 1
        (batch,) = f.sent
        assert (batch["first_seq"], batch["last_seq"], len(batch["readings"])) == (1, 8, 8)
        assert batch["historical"] is False

    run(tmp_path, scenario, telemetry_linger_s=5.0)


def test_a_full_batch_is_sent_at_once(tmp_path: Path) -> None:
    async def scenario(f: Forwarder) -> None:
        f.commit(3)  # 6 readings: one full batch and two that wait
        await f.settle()
        assert [(b["first_seq"], b["last_seq"]) for b in f.sent] == [(1, 4)]

    run(tmp_path, scenario, telemetry_linger_s=5.0, telemetry_batch=4)


def test_a_replay_of_old_readings_is_not_held(tmp_path: Path) -> None:
    async def scenario(f: Forwarder) -> None:
        f.commit(3, ts=T0 - 600)  # stored while the link was away
        await f.settle()
        assert [(b["first_seq"], b["last_seq"], b["historical"]) for b in f.sent] == [(1, 6, True)]

    run(tmp_path, scenario, telemetry_linger_s=5.0)


def test_linger_zero_sends_every_commit_at_once_as_before(tmp_path: Path) -> None:
    async def scenario(f: Forwarder) -> None:
        for _ in range(3):
            f.commit()
            await f.settle()
            f.clock.advance(1.0)
        assert [(b["first_seq"], b["last_seq"]) for b in f.sent] == [(1, 2), (3, 4), (5, 6)]

    run(tmp_path, scenario, telemetry_linger_s=0.0)


def test_a_wall_clock_stepped_back_holds_readings_no_longer_than_the_linger(tmp_path: Path) -> None:
    async def scenario(f: Forwarder) -> None:
        f.commit()
        await f.settle()
        f.clock.step_wall(-3600.0)  # NTP steps the wall clock back: the reading looks an hour in the future
        f.clock.advance(5.0)  # yet it has waited 5 s
        f.link._readings_news.set()
        await f.settle()
        assert [(b["first_seq"], b["last_seq"]) for b in f.sent] == [(1, 2)]

    run(tmp_path, scenario, telemetry_linger_s=5.0)


def test_a_resend_is_not_held_again(tmp_path: Path) -> None:
    async def scenario(f: Forwarder) -> None:
        f.commit()
        f.clock.advance(5.0)
        f.link._readings_news.set()
        await f.settle()
        assert [(b["first_seq"], b["last_seq"]) for b in f.sent] == [(1, 2)]
        f.link.sent_upto = f.store.acked_seq()  # what a resend or a reconnect does: from the acknowledged point
        f.link.outstanding.clear()
        f.link._readings_news.set()
        await f.settle()
        assert [(b["first_seq"], b["last_seq"]) for b in f.sent] == [(1, 2), (1, 2)]
        f.ack(2)
        f.commit()  # new live readings linger again
        await f.settle()
        assert len(f.sent) == 2

    run(tmp_path, scenario, telemetry_linger_s=5.0)


def test_lingering_readings_are_not_reported_as_a_backlog(tmp_path: Path) -> None:
    async def scenario(f: Forwarder) -> None:
        f.link.connected = True
        f.commit()
        await f.settle()
        assert (f.link.link_state().backlog, f.link.link_state().oldest_unacked_ts) == (0, None)
        f.clock.advance(5.0)
        f.link._readings_news.set()
        await f.settle()
        assert len(f.sent) == 1 and f.link.link_state().backlog == 2  # sent, not yet acknowledged
        f.commit()  # two more, lingering
        await f.settle()
        assert f.link.link_state().backlog == 2
        f.ack(2)
        assert f.link.link_state().backlog == 0
        f.link.connected = False  # a link that is down holds nothing back: everything unsent is a backlog
        assert f.link.link_state().backlog == 2

    run(tmp_path, scenario, telemetry_linger_s=5.0)
