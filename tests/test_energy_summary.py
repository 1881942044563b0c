"""The energy summary for monitors over MQTT: what it holds (the socket's `energy` answer, as a retained message
that parses within the MQTT limits) and when it is sent again."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest

from controller import protocol
from controller.decode import MQTT_LIMITS
from controller.energy.days import day_bounds
from controller.energy.summary import SummarySchedule, energy_summary
from controller.layout.load import load_layout
from controller.readings import Quality, Reading, Snapshot
from controller.store import Store, policies_for

ROOT = Path(__file__).resolve().parent.parent
ZONE = ZoneInfo("Europe/Brussels")
MIDNIGHT = day_bounds(date(2026, 1, 8), ZONE)[0]

CASES = [
    # (what, steps of (wall, mono, "sent" | "ask" | "connect" | None), expected due after the last step)
    ("never sent: due", [], True),
    ("just sent: not due", [(MIDNIGHT - 100, 0.0, "sent")], False),
    ("a quarter of an hour later: due", [(MIDNIGHT - 2000, 0.0, "sent"), (MIDNIGHT - 1000, 900.0, None)], True),
    ("the local day changed: due", [(MIDNIGHT - 10, 0.0, "sent"), (MIDNIGHT + 1, 11.0, None)], True),
    ("a state request: due", [(MIDNIGHT - 100, 0.0, "sent"), (MIDNIGHT - 99, 1.0, "ask")], True),
    ("a reconnect: due", [(MIDNIGHT - 100, 0.0, "sent"), (MIDNIGHT - 99, 1.0, "connect")], True),
    ("an NTP step back within the day does not matter", [(MIDNIGHT - 100, 0.0, "sent"), (MIDNIGHT - 3000, 5.0, None)],
     False),
]  # fmt: skip


@pytest.mark.parametrize(("what", "steps", "due"), CASES, ids=[c[0] for c in CASES])
def test_when_the_summary_is_due(what: str, steps: list[tuple[float, float, str | None]], due: bool) -> None:
    schedule = SummarySchedule(ZONE)
    wall, mono = MIDNIGHT - 5000, 0.0
    for wall, mono, action in steps:
        if action == "sent":
            schedule.sent(wall, mono)
        elif action == "ask":
            schedule.asked = True
        elif action == "connect":
            schedule.connected()
    assert schedule.due(wall, mono) is due


def test_the_summary_holds_the_days_and_rollups_and_fits_an_mqtt_message(tmp_path: Path) -> None:
    layout = load_layout(ROOT / "layouts/demo.toml")
    start, end = day_bounds(date(2026, 1, 7), ZONE)
    policies = policies_for(layout.channels)
    with Store.open(tmp_path / "hearth.db") as store:
        for i in range(0, int(end - start), 60):
            t = start + i
            values = {"hp-power": 2000.0 if i < 6 * 3600 else 15.0, "hp-energy": 100.0 + min(i, 6 * 3600) * 2 / 3600}
            readings = {n: Reading(n, v, "", Quality.OK, t) for n, v in values.items()}
            store.record(Snapshot(t, MappingProxyType(readings)), policies)
        store.flush()
        summary = energy_summary(store, layout, end + 3600)
    assert summary.site == "demo-house" and len(summary.days) == 30
    day = next(d for d in summary.days if d["day"] == "2026-01-07")
    assert day["elec_kwh"] == pytest.approx(12.0 + 0.015 * 18, rel=0.005)  # 2 kW for 6 h, 15 W for 18 h
    assert day["meter_kwh"] == pytest.approx(12.0, rel=0.005)  # the counter this test wrote
    assert {r["kind"] for r in summary.totals} == {"month", "season"}
    wire = summary.to_json()
    assert len(wire) < MQTT_LIMITS.max_bytes
    assert protocol.parse(protocol.EnergySummary, wire) == summary


@pytest.mark.parametrize(
    ("role", "user", "routing_key", "write", "read"),
    [
        ("controller", "demo-house", "hearth.v1.demo-house.energy", True, True),
        ("controller", "demo-house", "hearth.v1.other-site.energy", False, False),
        ("technician", "tech-anna", "hearth.v1.*.energy", False, True),
        ("monitor", "monitor", "hearth.v1.*.energy", False, True),
        ("atn", "atn", "hearth.v1.demo-house.energy", False, False),
    ],
)
def test_rabbitmq_grants_for_the_energy_topic(role: str, user: str, routing_key: str, write: bool, read: bool) -> None:
    """The RabbitMQ topic permissions (controller/fleet/rabbitmq.py) mirror the mosquitto ACL for `energy`; the
    cluster test (tests/test_cluster.py) checks them against a running RabbitMQ."""
    import re

    from controller.fleet.rabbitmq import grant_for

    grant = grant_for(role, user)  # type: ignore[arg-type]
    assert (
        re.match(grant.topic_write, routing_key) is not None,
        re.match(grant.topic_read, routing_key) is not None,
    ) == (
        write,
        read,
    )


def test_the_link_publishes_the_summary_and_a_failing_store_does_not_end_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ATN link's energy task: publishes at once on a connection, retained on the site's energy topic; a store
    that fails while building the summary is logged and tried again, never the end of the link."""
    import asyncio
    import sqlite3

    from controller.clock import ManualClock
    from controller.control.inbox import AtnInbox
    from controller.links import atn
    from controller.links.config import AtnLink
    from tests.simhelpers import demo_layout

    sent: list[tuple[str, bool]] = []
    with Store.open(tmp_path / "link.sqlite") as store:
        clock = ManualClock()
        state = protocol.State(site="demo-house", ts=clock.now(), mode="LOCAL", reason="", readings={}, actuators={})
        link = atn.AtnLinkRunner(AtnLink(url="mqtt://127.0.0.1:1883"), demo_layout(), store, AtnInbox(), clock,
                                 lambda: state)  # fmt: skip

        async def publish(
            _client: object, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False
        ) -> None:
            protocol.parse(protocol.EnergySummary, payload)
            sent.append((topic, retain))

        monkeypatch.setattr(link, "_publish", publish)
        monkeypatch.setattr(atn, "ENERGY_POLL_S", 0.01)

        async def scenario() -> None:
            task = asyncio.create_task(link._energy_publisher(None))  # type: ignore[arg-type]
            while not sent:
                await asyncio.sleep(0.01)
            real = atn.energy_summary

            def failing(*args: object, **kwargs: object) -> protocol.EnergySummary:
                raise sqlite3.OperationalError("disk I/O error")

            monkeypatch.setattr(atn, "energy_summary", failing)
            link.energy_schedule.asked = True
            await asyncio.sleep(0.1)
            assert not task.done()  # still running after the failure
            monkeypatch.setattr(atn, "energy_summary", real)
            link.energy_schedule.asked = True
            while len(sent) < 2:
                await asyncio.sleep(0.01)
            task.cancel()

        asyncio.run(scenario())
    assert sent[:2] == [("hearth/v1/demo-house/energy", True)] * 2
