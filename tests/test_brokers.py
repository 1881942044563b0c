"""Broker lists: which broker next and how long to wait (controller/links/brokers.py), and the readable
description of a connection a broker closed."""

from __future__ import annotations

import asyncio
import random

import aiomqtt
import pytest
from aiomqtt.exceptions import MqttConnectError
from hypothesis import given
from hypothesis import strategies as st

from controller.links.brokers import (
    BACKOFF_MAX_S,
    BACKOFF_MIN_S,
    BrokerRotation,
    Unanswered,
    describe_drop,
    describe_mqtt_error,
    parse_broker_urls,
)
from controller.protocol import BrokerUrl

A, B, C = "a", "b", "c"


@pytest.mark.parametrize(
    ("brokers", "outcomes", "tried", "waits"),
    [
        # one broker: a backoff after every failure, as before broker lists
        ([A], "fff", [A, A, A, A], ["backoff", "backoff", "backoff"]),
        # three: the next one at once, a backoff only once all three failed in a row
        ([A, B, C], "fff", [A, B, C, A], [0, 0, "backoff"]),
        ([A, B, C], "ffffff", [A, B, C, A, B, C, A], [0, 0, "backoff", 0, 0, "backoff"]),
        # a good connection resets the count: the next failure moves on at once from where it is
        ([A, B, C], "fcff", [A, B, B, C, A], [0, None, 0, 0]),
        ([A, B], "cfcf", [A, A, B, B, A], [None, 0, None, 0]),
    ],
)
def test_rotation_table(brokers: list[str], outcomes: str, tried: list[str], waits: list[object]) -> None:
    rotation = BrokerRotation(brokers, random.Random(1))
    seen, delays = [rotation.current], []
    for outcome in outcomes:
        if outcome == "c":
            rotation.connected()
            delays.append(None)
        else:
            delay = rotation.failed()
            delays.append(0 if delay == 0 else "backoff")
            assert delay == 0 or BACKOFF_MIN_S <= delay <= BACKOFF_MAX_S
        seen.append(rotation.current)
    assert seen == tried and delays == waits


@given(st.integers(1, 6), st.lists(st.booleans(), max_size=60), st.integers(0, 2**32))
def test_rotation_never_waits_while_an_untried_broker_is_left(size: int, outcomes: list[bool], seed: int) -> None:
    """Property: after a failure the wait is 0 exactly when fewer than all brokers have failed since the last good
    connection; every broker is tried once in any `size` failures in a row; waits stay within the backoff."""
    rotation = BrokerRotation(list(range(size)), random.Random(seed))
    failures: list[int] = []
    for ok in outcomes:
        if ok:
            rotation.connected()
            failures.clear()
            continue
        failures.append(rotation.current)
        delay = rotation.failed()
        assert (delay == 0) == (len(failures) % size != 0)
        assert delay <= BACKOFF_MAX_S
        if len(failures) % size == 0:
            assert sorted(failures[-size:]) == list(range(size))


def test_parse_broker_urls() -> None:
    one = parse_broker_urls("mqtt://127.0.0.1:1883")
    assert one == (BrokerUrl("127.0.0.1", 1883, False),)
    assert parse_broker_urls("mqtts://a.example, mqtts://b.example:8884") == (
        BrokerUrl("a.example", 8883, True),
        BrokerUrl("b.example", 8884, True),
    )
    assert len(parse_broker_urls(["mqtt://localhost:1", "mqtt://localhost:2"])) == 2
    with pytest.raises(ValueError, match="listed twice"):
        parse_broker_urls(["mqtt://localhost", "mqtt://localhost:1883"])
    with pytest.raises(ValueError, match="TLS is required"):
        parse_broker_urls(["mqtts://a.example", "mqtt://b.example"])
    with pytest.raises(ValueError, match="at least one"):
        parse_broker_urls([])


def test_describe_a_refusal_and_a_closed_connection() -> None:
    assert "not authorised" in describe_mqtt_error(MqttConnectError(5))
    assert "bad user name or password" in describe_mqtt_error(MqttConnectError(134))
    # paho's own codes in aiomqtt's errors are not a broker's refusal (4: no connection, 5: connection refused)
    assert describe_mqtt_error(aiomqtt.MqttCodeError(4, "Could not publish message")) == (
        "[code:4] The client is not currently connected."
    )
    assert "bad user name" not in describe_mqtt_error(aiomqtt.MqttCodeError(4, "Unexpected disconnection"))
    now = [0.0]
    unanswered = Unanswered(clock=lambda: now[0])
    with pytest.raises(ConnectionError), unanswered.waiting("publish to", "hearth/v1/x/state"):
        now[0] = 0.02
        raise ConnectionError("Disconnected")
    said = describe_mqtt_error(ConnectionError("Disconnected during message iteration"), unanswered)
    assert said.startswith("the broker closed the connection 20 ms after publish to hearth/v1/x/state")
    assert "if this repeats, the user is not authorised there" in said
    unanswered.reset()  # the next connection is closed on the same publish: now it is a denial
    now[0] = 0.0
    with pytest.raises(ConnectionError), unanswered.waiting("publish to", "hearth/v1/x/state"):
        now[0] = 0.02
        raise ConnectionError("Disconnected")
    said = describe_mqtt_error(ConnectionError("Disconnected during message iteration"), unanswered)
    assert said.startswith("not authorised to publish to hearth/v1/x/state") and "twice in a row" in said
    now[0] = 0.0
    unanswered.reset()  # a new connection
    with pytest.raises(ConnectionError), unanswered.waiting("publish to", "t"):
        now[0] = 5.0  # an answer that took 5 s to fail is a timeout, not a denial
        raise ConnectionError("Operation timed out")
    assert describe_mqtt_error(ConnectionError("Operation timed out"), unanswered) == "Operation timed out"
    # The moment the connection was lost counts, not when aiomqtt gave up waiting for the answer.
    unanswered.reset()
    now[0] = 0.0
    with pytest.raises(ConnectionError), unanswered.waiting("subscribe to", "hearth/v1/+/state"):
        now[0] = 0.005
        unanswered.lost()  # paho's on_disconnect
        now[0] = 10.0
        raise ConnectionError("Operation timed out")
    said = describe_mqtt_error(ConnectionError("Operation timed out"), unanswered)
    assert said.startswith("the broker closed the connection 5 ms after subscribe to hearth/v1/+/state")


def test_a_dead_broker_is_not_called_a_denial(unused_port: int) -> None:
    unanswered = Unanswered()
    with pytest.raises(ConnectionError), unanswered.waiting("publish to", "t"):
        raise ConnectionError("Disconnected")
    said = asyncio.run(
        describe_drop(ConnectionError("Disconnected"), BrokerUrl("127.0.0.1", unused_port, False), unanswered)
    )
    assert said == "Disconnected"


@pytest.fixture
def unused_port() -> int:
    from tests.broker import _free_ports

    return _free_ports(1)[0]
