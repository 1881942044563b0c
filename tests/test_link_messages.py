"""The ATN link's handling of every message it can receive, without a broker: what is accepted, what is rejected
and why, and fuzzed payloads on every subscribed topic (never a crash, always a structured rejection)."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller import protocol
from controller.clock import ManualClock
from controller.control.inbox import AtnInbox
from controller.links.atn import AtnLinkRunner
from controller.links.brokers import backoff_delay
from controller.links.config import AtnLink
from controller.store import Store
from tests.simhelpers import demo_layout

LAYOUT = demo_layout()
TOPICS = protocol.Topics("demo-house")
T0 = 1_800_000_000.0
ATN_CONFIG = AtnLink(url="mqtt://127.0.0.1:1883")


def empty_state() -> protocol.State:
    return protocol.State(site="demo-house", ts=T0, mode="LOCAL", reason="", readings={}, actuators={})


@pytest.fixture
def link(tmp_path: Path) -> Iterator[AtnLinkRunner]:
    store = Store.open(tmp_path / "link.sqlite")
    clock = ManualClock(start=T0)
    runner = AtnLinkRunner(
        AtnLink(url="mqtt://127.0.0.1:1883"),
        LAYOUT,
        store,
        AtnInbox(),
        clock,
        state=lambda: protocol.State(site="demo-house", ts=T0, mode="LOCAL", reason="", readings={}, actuators={}),
    )
    yield runner
    store.close()


def dispatch(**changes: object) -> bytes:
    body: dict[str, object] = {
        "v": 1,
        "id": "lease-1",
        "issued_at": T0 - 1,
        "valid_until": T0 + 120,
        "actuators": {"heat-pump": True, "store-pump": True},
    }
    body.update(changes)
    return json.dumps(body).encode()


def answer(link: AtnLinkRunner, topic: str, payload: bytes, retained: bool = False) -> protocol.Ack | None:
    replies = link.handle(topic, payload, retained)
    if not replies:
        return None
    ((reply_topic, body),) = replies
    assert reply_topic == TOPICS.ack
    return protocol.parse(protocol.Ack, body)


def test_a_valid_lease_is_accepted_and_reaches_the_control_loop(link: AtnLinkRunner) -> None:
    woken: list[bool] = []
    link.wake = lambda: woken.append(True)
    ack = answer(link, TOPICS.dispatch, dispatch(prices=[{"v": 1, "start": T0, "end": T0 + 3600, "price": 0.2}]))
    assert ack is not None and ack.accepted and ack.id == "lease-1"
    _, held = link.inbox.take()
    assert held is not None and held.lease.actuators == {"heat-pump": True, "store-pump": True}
    lease = held.lease
    assert lease.received_at == T0  # stamped with this controller's clock
    assert held.received == link.clock.monotonic()  # and timed on its monotonic clock
    assert link.store.latest_lease() == lease
    assert link.inbox.forecast is not None and link.store.latest_forecast(T0) is not None
    assert woken == [True]


REJECTIONS = [
    ("expired", dispatch(valid_until=T0 - 5, issued_at=T0 - 60), "expired"),
    ("stale (retained or queued)", dispatch(issued_at=T0 - 61, valid_until=T0 + 300), "stale lease"),
    ("issued in the future", dispatch(issued_at=T0 + 600, valid_until=T0 + 700), "in the future"),
    ("unknown actuator", dispatch(actuators={"boiler": True}), "unknown actuator(s) boiler"),
    ("setpoint out of range", dispatch(setpoints={"comfort": 35.0}), "outside 10..28"),
    ("unknown setpoint", dispatch(setpoints={"sauna": 80.0}), "unknown setpoint sauna"),
    ("too long", dispatch(valid_until=T0 + 10 * 86400), "at most"),
    ("valid_until before issued_at", dispatch(valid_until=T0 - 10), "valid_until must be after issued_at"),
    ("unknown key", dispatch(actuator={"heat-pump": True}), "actuator: Extra inputs are not permitted"),
    ("wrong version", dispatch(v=2), "unsupported protocol version 2"),
    ("not JSON", b"\xff{", "not JSON"),
    ("not an object", b"[1, 2]", "expected a JSON object"),
    ("wrong type", dispatch(actuators={"heat-pump": "yes"}), "actuators.heat-pump"),
]


@pytest.mark.parametrize(("what", "payload", "reason"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_bad_dispatches_are_rejected_with_a_reason(link: AtnLinkRunner, what: str, payload: bytes, reason: str) -> None:
    ack = answer(link, TOPICS.dispatch, payload)
    assert ack is not None and not ack.accepted
    assert reason in ack.reason, ack.reason
    assert link.inbox.take() == ([], None)  # nothing reached the control loop


def test_duplicate_replayed_and_retained_dispatches_are_rejected(link: AtnLinkRunner) -> None:
    assert answer(link, TOPICS.dispatch, dispatch()).accepted  # type: ignore[union-attr]
    duplicate = answer(link, TOPICS.dispatch, dispatch())
    assert duplicate is not None and not duplicate.accepted and "duplicate lease id lease-1" in duplicate.reason
    replay = answer(link, TOPICS.dispatch, dispatch(id="old", issued_at=T0 - 30))
    assert replay is not None and "replayed lease old" in replay.reason
    retained = answer(link, TOPICS.dispatch, dispatch(id="lease-2"), retained=True)
    assert retained is not None and "must not be retained" in retained.reason


def test_heartbeats_reach_the_inbox_and_bad_ones_are_rejected(link: AtnLinkRunner) -> None:
    assert answer(link, TOPICS.heartbeat, b'{"v": 1, "atn": "atn-1", "ts": 1, "seq": 4}') is None
    assert link.inbox.take()[0] == [link.clock.monotonic()]  # arrival on the monotonic clock
    bad = answer(link, TOPICS.heartbeat, b'{"v": 1, "atn": "", "ts": 1, "seq": -1}')
    assert bad is not None and not bad.accepted and "atn" in bad.reason and "seq" in bad.reason
    assert link.inbox.take()[0] == []


def test_telemetry_ack_moves_the_cursor_but_never_past_what_was_sent(link: AtnLinkRunner) -> None:
    link.sent_upto = 0
    link.store.ack_upto(0)
    answer(link, TOPICS.telemetry_ack, b'{"v": 1, "upto_seq": 500}')
    assert link.store.acked_seq() == 0  # nothing was sent yet


def test_the_events_cursor_starts_before_events_stored_earlier_and_survives_a_restart(tmp_path: Path) -> None:
    """Issue 8, finding 8: the cursor started at the highest stored event (so the "start" event, written before the
    link, was never sent) and was found by reading up to a million events. Now it is the acknowledged point, kept
    in the store."""
    from controller.control.types import Event

    path = tmp_path / "events.sqlite"
    with Store.open(path) as store:
        for index in range(5):
            store.add_event(Event(ts=T0 + index, kind="start" if index == 0 else "x", message=f"event {index}"))
        link = AtnLinkRunner(ATN_CONFIG, LAYOUT, store, AtnInbox(), ManualClock(T0), empty_state)
        assert link.events_sent == 0  # everything stored before the link is still to be sent
        link.events_sent = 3  # three published ...
        answer(link, TOPICS.events_ack, b'{"v": 1, "upto_seq": 5}')
        assert store.events_acked() == 3  # ... so an acknowledgement never moves the cursor past them
    with Store.open(path) as store:
        assert store.events_acked() == 3  # written at close, read back at the next start
        link = AtnLinkRunner(ATN_CONFIG, LAYOUT, store, AtnInbox(), ManualClock(T0), empty_state)
        assert link.events_sent == 3 and [seq for seq, _ in store.events_after(link.events_sent)] == [4, 5]


def test_unknown_topic_is_rejected(link: AtnLinkRunner) -> None:
    ack = answer(link, "hearth/v1/demo-house/atn/reboot", b"{}")
    assert ack is not None and not ack.accepted and "does not take messages" in ack.reason


@pytest.mark.parametrize(("attempt", "low", "high"), [(0, 1.0, 1.0), (1, 1.0, 2.0), (3, 1.0, 8.0), (10, 1.0, 60.0)])
def test_backoff_is_full_jitter_between_one_second_and_a_minute(attempt: int, low: float, high: float) -> None:
    import random

    rng = random.Random(1)
    delays = [backoff_delay(attempt, rng) for _ in range(200)]
    assert low <= min(delays) and max(delays) <= high


JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=20,
)
PAYLOADS = st.one_of(
    st.binary(max_size=200),
    JSON.map(lambda value: json.dumps(value).encode()),
    st.dictionaries(
        st.sampled_from(
            ["v", "id", "issued_at", "valid_until", "actuators", "setpoints", "prices", "upto_seq", "atn", "ts", "seq"]
        ),
        JSON,
    ).map(lambda value: json.dumps({"v": 1, **value}).encode()),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    topic=st.sampled_from([*TOPICS.from_atn, "hearth/v1/demo-house/atn/x"]), payload=PAYLOADS, retained=st.booleans()
)
def test_fuzzed_payloads_never_crash_and_are_answered_in_protocol(
    link: AtnLinkRunner, topic: str, payload: bytes, retained: bool
) -> None:
    for reply_topic, body in link.handle(topic, payload, retained):
        assert reply_topic == TOPICS.ack
        ack = protocol.parse(protocol.Ack, body)
        assert ack.reason


def test_acknowledgements_that_do_not_advance_make_the_link_send_again(link: AtnLinkRunner) -> None:
    """An ATN with a gap keeps acknowledging up to the gap; only going back to that point fills it."""
    link.store.ack_upto(0)
    link.sent_upto, link.outstanding = 40, deque([20, 40])
    link._progress_seq, link._progress_at = 0, 100.0
    link._resend_if_stalled(103.0)
    assert link.sent_upto == 40  # not yet: 3 s without progress
    link._resend_if_stalled(105.5)
    assert link.sent_upto == 0 and not link.outstanding  # everything after the acknowledged point goes again


def test_a_resend_that_brings_no_progress_doubles_the_wait_and_progress_resets_it(link: AtnLinkRunner) -> None:
    """A slow ATN is not helped by getting every site's unacknowledged window again every 5 s: that grew its work
    with its lag (a 500-site fleet, 00:33-00:48). Waits: 5, 10, 20, 40, 80, 120 (the cap), then 5 after progress."""
    from types import MappingProxyType

    from controller.links.atn import RESEND_AFTER_S, RESEND_MAX_S
    from controller.readings import Quality, Reading, Snapshot
    from controller.store import ChannelPolicy

    every = {"tank-top": ChannelPolicy(deadband=0.0, keepalive_s=1.0)}
    for i in range(40):  # 40 stored readings, none acknowledged
        reading = Reading("tank-top", 40.0 + i, "degC", Quality.OK, T0 + i)
        link.store.record(Snapshot(T0 + i, MappingProxyType({"tank-top": reading})), every)
    link.store.flush()
    link.store.ack_upto(0)
    link._progress_seq, link._progress_at = 0, 0.0
    now, waits = 0.0, []
    for _ in range(7):
        link.sent_upto, link.outstanding = 40, deque([20, 40])  # sent again, still no acknowledgement
        start = now
        while link.sent_upto == 40:
            now += 0.5
            link._resend_if_stalled(now)
        waits.append(now - start)
    assert waits == [RESEND_AFTER_S, 10.0, 20.0, 40.0, 80.0, RESEND_MAX_S, RESEND_MAX_S]
    link.store.ack_upto(10)  # progress: the next stall is noticed after the first wait again
    link.sent_upto, link.outstanding = 40, deque([20, 40])
    link._resend_if_stalled(now)
    link._resend_if_stalled(now + RESEND_AFTER_S - 0.5)
    assert link.sent_upto == 40
    link._resend_if_stalled(now + RESEND_AFTER_S)
    assert link.sent_upto == 10


def test_advancing_acknowledgements_never_trigger_a_resend(link: AtnLinkRunner) -> None:
    from types import MappingProxyType

    from controller.readings import Quality, Reading, Snapshot
    from controller.store import ChannelPolicy

    every = {"tank-top": ChannelPolicy(deadband=0.0, keepalive_s=1.0)}
    for i in range(40):  # 40 stored readings to acknowledge
        reading = Reading("tank-top", 40.0 + i, "degC", Quality.OK, T0 + i)
        link.store.record(Snapshot(T0 + i, MappingProxyType({"tank-top": reading})), every)
    link.store.flush()
    assert link.store.last_seq() == 40
    link.sent_upto, link.outstanding = 40, deque([20, 40])
    link._progress_seq, link._progress_at = 0, 100.0
    link._telemetry_acked(20)
    link._resend_if_stalled(110.0)  # progress was made: the clock restarts
    assert link.sent_upto == 40 and list(link.outstanding) == [40]


@pytest.mark.parametrize(
    ("delays", "expected_s"),
    [
        ([], 5.0),  # nothing measured yet: the first wait
        ([0.05] * 20, 5.0),  # a quick ATN: never below the first wait (a gap is filled 5 s after the stall)
        ([60.0] * 20, 60.0),  # an ATN a minute behind: waiting 5 s would only resend what it is about to ack
        ([30.0, 40.0] * 10, 35.0 + 4 * 5.0),  # mean plus four times the spread, as TCP does (RFC 6298)
        ([500.0] * 20, 120.0),  # never longer than the cap
    ],
)
def test_the_wait_before_a_resend_follows_how_long_acknowledgements_take(
    delays: list[float], expected_s: float
) -> None:
    from controller.links.atn import ResendTimer

    timer, now = ResendTimer(), 0.0
    for seq, delay in enumerate(delays, start=1):
        timer.sent(seq, now)
        timer.acked(seq, now + delay)
        now += delay
    timer.progress()
    assert timer.after_s == pytest.approx(expected_s, rel=0.15)


@given(st.lists(st.tuples(st.floats(0.0, 1000.0), st.booleans()), max_size=60))
def test_the_wait_stays_within_its_bounds_and_resent_batches_are_not_measured(
    steps: list[tuple[float, bool]],
) -> None:
    """Property: the wait is always within [RESEND_AFTER_S, RESEND_MAX_S]; an acknowledgement of a batch that was
    sent again says nothing of how long acknowledgements take (Karn), so it never moves the estimate."""
    from controller.links.atn import RESEND_AFTER_S, RESEND_MAX_S, ResendTimer

    timer, now = ResendTimer(), 0.0
    for seq, (delay, resend) in enumerate(steps, start=1):
        timer.sent(seq, now)
        if resend:
            before = timer.srtt
            timer.resent()
            timer.sent(seq, now + 1.0)  # the same batch again
            timer.acked(seq, now + 1.0 + delay)
            assert timer.srtt == before
        else:
            timer.acked(seq, now + delay)
            timer.progress()
        now += delay + 1.0
        assert RESEND_AFTER_S <= timer.after_s <= RESEND_MAX_S
