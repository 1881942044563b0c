"""State requests (controller/links/staterequest.py and the link): who answers, when, and how often."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller import protocol
from controller.clock import ManualClock
from controller.control.inbox import AtnInbox
from controller.links.atn import AtnLinkRunner
from controller.links.config import AtnLink
from controller.links.staterequest import StateRequests
from controller.protocol import STATE_REQUEST_MIN_INTERVAL_S as GAP
from controller.protocol import STATE_REQUEST_SPREAD_S as SPREAD
from controller.protocol import StateRequest
from controller.store import Store
from tests.simhelpers import demo_layout

ME = StateRequest(site="demo-house")
OTHER = StateRequest(site="other-site")
FLEET = StateRequest()


@pytest.mark.parametrize(
    ("script", "answers"),
    [
        # (time, request or None for "is it due?") ... -> the times an answer is given
        ([(0.0, ME), (0.0, None)], [0.0]),  # this site alone: at once
        ([(0.0, OTHER), (0.0, None), (10.0, None)], []),  # another site's business
        ([(0.0, ME), (0.0, None), (1.0, ME), (1.0, None), (GAP, None)], [0.0, GAP]),  # at most one per interval
        ([(0.0, ME), (0.0, ME), (0.0, None), (GAP, None)], [0.0]),  # a pending answer covers later requests
        ([(0.0, ME), (0.0, None), (100.0, ME), (100.0, None)], [0.0, 100.0]),  # long after: at once again
    ],
)
def test_when_a_state_request_is_answered(
    script: list[tuple[float, StateRequest | None]], answers: list[float]
) -> None:
    requests = StateRequests("demo-house", random.Random(0))
    given_at = []
    for now, request in script:
        if request is not None:
            requests.asked(request, now)
        elif requests.take(now):
            given_at.append(now)
    assert given_at == answers


@given(st.lists(st.tuples(st.floats(0, 5), st.booleans()), max_size=40), st.integers(0, 2**32))
def test_fleet_requests_are_spread_and_rate_limited(steps: list[tuple[float, bool]], seed: int) -> None:
    """Property: an answer is never given twice within the interval, and a fleet-wide request is answered within
    the spread (or at the end of the interval after the previous answer), never later."""
    requests, now, answers = StateRequests("demo-house", random.Random(seed)), 0.0, []
    for step, ask in steps:
        now += step
        if ask:
            requests.asked(FLEET, now)
            assert requests.due is not None
            limit = max(now + SPREAD, (answers[-1] if answers else -GAP) + GAP)
            assert requests.due <= limit
        if requests.take(now):
            answers.append(now)
    assert all(later - earlier >= GAP for earlier, later in itertools.pairwise(answers))


def test_the_link_takes_requests_and_never_acks_them(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "link.sqlite")
    clock = ManualClock()
    state = protocol.State(site="demo-house", ts=clock.now(), mode="LOCAL", reason="", readings={}, actuators={})
    link = AtnLinkRunner(AtnLink(url="mqtt://127.0.0.1:1883"), demo_layout(), store, AtnInbox(), clock, lambda: state)
    try:
        topic = protocol.STATE_REQUEST_TOPIC
        for bad in (b"[[[", b'{"v": 1, "site": "a/b"}', b'{"v": 1, "please": true}', b""):
            assert link.handle(topic, bad) == []  # anyone may publish here: ignored, no ack on the site's topic
        assert link.state_requests.due is None
        assert link.handle(topic, b'{"v": 1, "site": "demo-house"}') == []
        assert link.state_requests.take(clock.monotonic())
    finally:
        store.close()


@pytest.mark.parametrize(
    ("connected", "online", "site", "answered"),
    [
        (True, False, "demo-house", True),  # a last will of a connection this link left: answered with online
        (True, True, "demo-house", False),  # its own online coming back to it
        (False, False, "demo-house", False),  # not connected: nothing to correct, and nobody to tell
        (True, False, "other-site", False),  # not this site's (a broker could only deliver it by mistake)
    ],
)
def test_a_stale_offline_status_is_answered_with_online(
    tmp_path: Path, connected: bool, online: bool, site: str, answered: bool
) -> None:
    store = Store.open(tmp_path / "link.sqlite")
    clock = ManualClock()
    state = protocol.State(site="demo-house", ts=clock.now(), mode="ATN", reason="", readings={}, actuators={})
    link = AtnLinkRunner(AtnLink(url="mqtt://127.0.0.1:1883"), demo_layout(), store, AtnInbox(), clock, lambda: state)
    try:
        link.connected = connected
        status = protocol.Status(site=site, online=online, ts=clock.now() - 60)
        assert link.handle(link.topics.status, status.to_json(), retained=True) == []  # never an ack
        assert link.state_requests.take(clock.monotonic()) is answered
        assert link.rejected == 0
    finally:
        store.close()
