"""The ATN's weather forecast on `atn/weather`: the message and its limits (one parse path), the controller's link
taking it into the inbox or refusing it with a reason, the reference ATN's feed, the brokers' grants, and the
whole way through a real mosquitto: atn-sim sends, the controller's link receives, the planner plans with it."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller import protocol
from controller.atnsim.sim import AtnConfig, AtnSim
from controller.atnsim.weather import WeatherFeed
from controller.clock import ManualClock, SystemClock
from controller.control import policy
from controller.control.inbox import AtnInbox
from controller.control.tariff import Price
from controller.fleet.rabbitmq import grant_for
from controller.links.atn import WEATHER_KEY, AtnLinkRunner, restore_weather
from controller.links.config import AtnLink
from controller.planner import local
from controller.sim.weather import WEATHER_PRESETS, Weather
from controller.store import Store
from tests.broker import Broker, Subscription, start_broker
from tests.simhelpers import demo_layout

LAYOUT = demo_layout()
SITE = LAYOUT.site.id
TOPICS = protocol.Topics(SITE)
T0 = 1_767_258_600.0  # 2026-01-01T09:10Z


def weather(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "v": 1,
        "id": "wx-1",
        "issued_at": T0 - 60,
        "points": [
            {"v": 1, "start": T0 - 600 + i * 3600, "end": T0 - 600 + (i + 1) * 3600, "outdoor_c": -2.0 - i}
            for i in range(48)
        ],
    }
    body.update(changes)
    return body


def slots(*pairs: tuple[float, float]) -> list[dict[str, float]]:
    return [{"start": T0 + a, "end": T0 + b, "outdoor_c": 1.0} for a, b in pairs]


INVALID = [
    ("no slots", {"points": []}, "at least 1 item"),
    ("out of order", {"points": slots((3600, 7200), (0, 3600))}, "in time order without overlap"),
    ("overlapping", {"points": slots((0, 7200), (3600, 9000))}, "in time order without overlap"),
    ("a slot of 7 h", {"points": slots((0, 7 * 3600))}, "at most 6 h"),
    ("a slot ending before it starts", {"points": slots((3600, 0))}, "must end after it starts"),
    ("401 slots", {"points": slots(*((i * 60, (i + 1) * 60) for i in range(401)))}, "at most 400 items"),
    ("11 days", {"points": slots((0, 3600), (11 * 86400, 11 * 86400 + 3600))}, "at most 10 days"),
    ("200 °C", {"points": [{"start": T0, "end": T0 + 3600, "outdoor_c": 200}]}, "less than or equal to 60"),
    ("an unknown key", {"rain_mm": 3}, "rain_mm"),
]


@pytest.mark.parametrize(("what", "changes", "words"), INVALID, ids=[i[0] for i in INVALID])
def test_the_message_is_checked_by_the_one_parse_path(what: str, changes: dict[str, object], words: str) -> None:
    with pytest.raises(protocol.Rejected) as caught:
        protocol.parse(protocol.Weather, json.dumps(weather(**changes)).encode())
    assert words in caught.value.reason, caught.value.reason


def test_non_finite_temperatures_never_get_through() -> None:
    payload = json.dumps(weather()).replace('"outdoor_c": -2.0', '"outdoor_c": NaN', 1).encode()
    with pytest.raises(protocol.Rejected) as caught:
        protocol.parse(protocol.Weather, payload)
    assert caught.value.code == "non-finite"


@pytest.fixture
def link(tmp_path: Path) -> Iterator[AtnLinkRunner]:
    store = Store.open(tmp_path / "s.sqlite")
    runner = AtnLinkRunner(
        AtnLink(url="mqtt://127.0.0.1:1883"),
        LAYOUT,
        store,
        AtnInbox(),
        ManualClock(start=T0),
        state=lambda: protocol.State(site=SITE, ts=T0, mode="LOCAL", reason="", readings={}, actuators={}),
    )
    yield runner
    store.close()


LINK_CASES = [
    # (what, changes, retained, accepted, words in the ack's reason)
    ("fresh", {}, False, True, "weather accepted: 48 slots up to 2026-01-03 09:00 UTC"),
    ("fresh and retained: its age decides", {}, True, True, "weather accepted"),
    ("issued 5 min in the future", {"issued_at": T0 + 300}, False, False, "300 s in the future"),
    ("issued 13 h ago", {"issued_at": T0 - 13 * 3600}, True, False, "stale weather wx-1: issued 13.0 h ago"),
    ("malformed", {"points": "warm"}, False, False, "points"),
]


@pytest.mark.parametrize(
    ("what", "changes", "retained", "accepted", "words"), LINK_CASES, ids=[c[0] for c in LINK_CASES]
)
def test_the_link_takes_a_forecast_or_refuses_it_with_a_reason(
    link: AtnLinkRunner, what: str, changes: dict[str, object], retained: bool, accepted: bool, words: str
) -> None:
    answers = link.handle(TOPICS.weather, json.dumps(weather(**changes)).encode(), retained)
    assert [topic for topic, _ in answers] == [TOPICS.ack]
    ack = protocol.parse(protocol.Ack, answers[0][1])
    assert ack.accepted is accepted and words in ack.reason and ack.id == "wx-1", ack
    taken = link.inbox.weather
    if accepted:
        assert taken is not None and taken.received_at == T0 and len(taken.points) == 48
        assert taken.points[0].outdoor_c == -2.0
    else:
        assert taken is None  # nothing reached the planner


def test_the_last_accepted_forecast_survives_a_restart(link: AtnLinkRunner) -> None:
    assert restore_weather(link.store) is None  # none yet: the planner uses persistence
    link.handle(TOPICS.weather, json.dumps(weather()).encode())
    assert restore_weather(link.store) == link.inbox.weather  # what a restarted controller starts with
    link.handle(TOPICS.weather, json.dumps(weather(id="wx-2", issued_at=T0 - 13 * 3600)).encode())  # refused
    kept = restore_weather(link.store)
    assert kept is not None and kept.issued_at == T0 - 60
    link.store.remember(WEATHER_KEY, {"received_at": T0, "message": {"v": 1, "id": "x", "points": "warm"}})
    assert restore_weather(link.store) is None  # a kept row that no longer validates is not used, never a crash


def test_the_reference_atns_forecast_is_its_weathers_hourly_means() -> None:
    feed = WeatherFeed("mild", seed=3)
    message = feed.message(T0, "atn-sim")
    assert len(message.points) == 48 and message.issued_at == T0
    assert message.points[0].start == T0 - 600 and all(p.end - p.start == 3600 for p in message.points)
    truth = Weather(WEATHER_PRESETS["mild"], seed=3)
    for point in message.points[::12]:
        samples = [truth.outdoor_c(point.start + t) for t in range(0, 3600, 60)]
        assert point.outdoor_c == pytest.approx(sum(samples) / len(samples), abs=0.2)
    protocol.parse(protocol.Weather, message.to_json())  # what it sends passes the controller's parse path
    with pytest.raises(ValueError, match="unknown weather 'tropical'"):
        WeatherFeed("tropical", seed=1)


def routing_key(topic: str) -> str:
    return topic.replace("/", ".")


@pytest.mark.parametrize(
    ("role", "user", "topic", "write", "allowed"),
    [
        ("atn", "atn", "hearth/v1/demo-house/atn/weather", True, True),
        ("controller", "demo-house", "hearth/v1/demo-house/atn/weather", False, True),
        ("controller", "demo-house", "hearth/v1/other-site/atn/weather", False, False),
        ("controller", "demo-house", "hearth/v1/demo-house/atn/weather", True, False),
        ("technician", "tech-anna", "hearth/v1/demo-house/atn/weather", True, False),
        ("monitor", "monitor", "hearth/v1/demo-house/atn/weather", True, False),
    ],
)
def test_rabbitmq_grants_let_only_the_atn_send_weather_and_only_its_site_read_it(
    role: str, user: str, topic: str, write: bool, allowed: bool
) -> None:
    grant = grant_for(role, user)  # type: ignore[arg-type]
    pattern = grant.topic_write if write else grant.topic_read
    assert bool(re.match(pattern, routing_key(topic))) is allowed


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    running = start_broker(tmp_path_factory.mktemp("broker"), site=SITE)
    yield running
    running.stop()


def weather_acks(subscription: Subscription) -> list[protocol.Ack]:
    acks = [protocol.parse(protocol.Ack, body) for _, body in list(subscription.messages)]
    return [a for a in acks if a.topic == TOPICS.weather]


def test_atn_sim_sends_the_controller_plans_with_it(broker: Broker, tmp_path: Path) -> None:
    """Through a real mosquitto with the deployment ACL: the reference ATN's forecast reaches the controller's
    link, is acknowledged, and the planner's reason names it."""
    secret = tmp_path / "site-password"
    secret.write_text(broker.users[SITE])
    config = AtnConfig(
        sites=(SITE,),
        port=broker.port,
        password=broker.users["atn"],
        db=tmp_path / "atn.sqlite",
        plan=False,
        weather=WeatherFeed("cold", seed=1),
    )
    atn = AtnSim(config)
    store = Store.open(tmp_path / "hearth.sqlite")
    inbox = AtnInbox()
    clock = SystemClock()
    link = AtnLinkRunner(
        AtnLink(url=f"mqtt://127.0.0.1:{broker.port}", username=SITE, password_file=str(secret)),
        LAYOUT,
        store,
        inbox,
        clock,
        state=lambda: protocol.State(site=SITE, ts=clock.now(), mode="LOCAL", reason="", readings={}, actuators={}),
    )

    async def scenario() -> None:
        controller = asyncio.create_task(link.run())
        await asyncio.sleep(0.5)  # subscribed before the ATN's first forecast
        reference = asyncio.create_task(atn.run())
        try:
            async with asyncio.timeout(15):
                while inbox.weather is None or not weather_acks(acks):
                    await asyncio.sleep(0.05)
        finally:
            for task in (controller, reference):
                task.cancel()
            await asyncio.gather(controller, reference, return_exceptions=True)

    with broker.subscribe("monitor", TOPICS.ack) as acks:
        asyncio.run(scenario())
        answers = weather_acks(acks)
    store.close()
    atn.close()
    assert [(a.accepted, a.reason[:27]) for a in answers] == [(True, "weather accepted: 48 slots ")], answers
    forecast = inbox.weather
    assert forecast is not None and len(forecast.points) == 48
    now = forecast.received_at
    inputs = policy.PolicyInputs(
        house_c=20.5, outdoor_c=forecast.points[0].outdoor_c, tank_top_c=45.0, tank_mid_c=40.0, tank_bottom_c=35.0,
        price=Price.NORMAL, price_reason="normal tariff", occupied=True,
    )  # fmt: skip
    _, decision = local.decide(
        local.PlannerState(), policy.PolicyState(), inputs, LAYOUT.control, now, LAYOUT.site.timezone, None,
        weather=forecast,
    )  # fmt: skip
    assert "weather: the ATN's forecast issued" in decision.commands["heat-pump"].reason
