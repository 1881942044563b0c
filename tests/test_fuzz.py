"""The fuzz suite, short form (bench/fuzz.py runs the long one): every inbound message type and the socket's
requests, generated near-valid and hostile, against the real parse path and handlers.

The property everywhere: no exception escapes, every refusal is a structured rejection (an `Ack` with a reason on
MQTT, `Rejected` with a code on the socket's parse), and nothing switches: a lease reaches the control loop only
with an accepted ack. tests/test_atn_link.py and tests/test_local_api.py run the same cases against a running
controller (over a private mosquitto, and over its socket).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller import protocol
from controller.atnsim.sim import AtnConfig, AtnSim
from controller.clock import ManualClock
from controller.control.inbox import AtnInbox
from controller.decode import SOCKET_LIMITS
from controller.links.atn import AtnLinkRunner
from controller.links.config import AtnLink
from controller.store import Store
from tests import fuzz_strategies as fuzz
from tests.simhelpers import demo_layout

LAYOUT = demo_layout()
TOPICS = protocol.Topics("demo-house")
TOPIC_OF = {
    "heartbeat": TOPICS.heartbeat,
    "dispatch": TOPICS.dispatch,
    "telemetry-ack": TOPICS.telemetry_ack,
    "events-ack": TOPICS.events_ack,
    "weather": TOPICS.weather,
}
FUZZ = settings(max_examples=fuzz.EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def link(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtnLinkRunner]:
    store = Store.open(tmp_path_factory.mktemp("fuzz") / "fuzz.sqlite")
    runner = AtnLinkRunner(
        AtnLink(url="mqtt://127.0.0.1:1883"),
        LAYOUT,
        store,
        AtnInbox(),
        ManualClock(start=fuzz.T0),
        state=lambda: protocol.State(site="demo-house", ts=fuzz.T0, mode="LOCAL", reason="", readings={}, actuators={}),
    )
    yield runner
    store.close()


def answered(link: AtnLinkRunner, topic: str, payload: bytes, retained: bool = False) -> list[protocol.Ack]:
    """What the link answers; checks the property: structured answers only, and a lease only with an accepted ack."""
    before = link.store.latest_lease()
    acks = [protocol.parse(protocol.Ack, body) for reply_topic, body in link.handle(topic, payload, retained)]
    assert all(ack.reason for ack in acks)
    lease = link.store.latest_lease()
    if lease != before:  # something switched: it must be a lease the link accepted, with finite times
        assert [ack.accepted for ack in acks] == [True] and lease is not None and topic == TOPICS.dispatch
    link.inbox.take()
    return acks


@pytest.mark.parametrize("kind", sorted(TOPIC_OF))
def test_fuzzed_messages_on_every_atn_topic(link: AtnLinkRunner, kind: str) -> None:
    @FUZZ
    @given(payload=fuzz.PAYLOADS[kind], retained=st.booleans())
    def check(payload: bytes, retained: bool) -> None:
        answered(link, TOPIC_OF[kind], payload, retained)

    check()


@FUZZ
@given(line=fuzz.REQUEST_LINES)
def test_fuzzed_socket_requests_parse_or_are_rejected_with_a_code(line: bytes) -> None:
    try:
        request = protocol.parse(protocol.Request, line, SOCKET_LIMITS)
    except protocol.Rejected as rejected:
        assert rejected.reason and rejected.code
    else:
        assert request.v == 1 and request.op in fuzz.OPS


HOSTILE = fuzz.hostile(fuzz.T0)


@pytest.mark.parametrize(("name", "kind", "payload"), HOSTILE, ids=[name for name, _, _ in HOSTILE])
def test_hand_picked_hostile_cases_are_rejected(link: AtnLinkRunner, name: str, kind: str, payload: bytes) -> None:
    if kind == "request":
        with pytest.raises(protocol.Rejected):
            protocol.parse(protocol.Request, payload, SOCKET_LIMITS)
        return
    acks = answered(link, TOPIC_OF[kind], payload)
    assert [ack.accepted for ack in acks] == [False], (name, acks)


def test_a_replayed_lease_id_is_rejected(link: AtnLinkRunner) -> None:
    lease = fuzz.encode({"v": 1, "id": "replay-me", "issued_at": fuzz.T0, "valid_until": fuzz.T0 + 60})
    first, again = answered(link, TOPICS.dispatch, lease), answered(link, TOPICS.dispatch, lease)
    assert first[0].accepted and not again[0].accepted and "duplicate" in again[0].reason


@pytest.fixture
def atn(tmp_path: Path) -> Iterator[AtnSim]:
    sim = AtnSim(AtnConfig(sites=("demo-house",), db=tmp_path / "ledger.sqlite"), clock=ManualClock(fuzz.T0))
    yield sim
    sim.close()


def test_the_reference_atn_takes_fuzzed_events_without_a_crash(atn: AtnSim) -> None:
    @FUZZ
    @given(payload=fuzz.EVENT_PAYLOADS)
    def check(payload: bytes) -> None:
        for topic, body in atn.handle(TOPICS.events, payload):
            assert topic == TOPICS.events_ack
            protocol.parse(protocol.EventAck, body)

    check()


def test_an_event_for_another_site_is_not_stored(atn: AtnSim) -> None:
    event = protocol.EventMsg(site="other-site", seq=1, ts=fuzz.T0, kind="x", message="forged").to_json()
    assert atn.handle(TOPICS.events, event) == []
    assert atn.stats["demo-house"].malformed == 1 and atn.ledger.event_range("demo-house") is None
