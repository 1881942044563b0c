"""The broker setup of deploy/mosquitto, on a real mosquitto: passwords, TLS, the four ACL roles, persistence.

A denied publish is dropped silently, so "never reaches a subscriber" cannot be shown by waiting for nothing.
Each ACL case publishes, then publishes a sentinel the reader is allowed to see: the denied message would have
arrived before the sentinel (the broker has routed it before it acknowledges it, and mosquitto_pub waits for
the acknowledgement), so once the sentinel is in, its absence is certain.
"""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.broker import Broker, BrokerRefused, disconnect, start_broker

SITE = "demo-house"
NOT_AUTHORIZED = 0x87


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = start_broker(tmp_path_factory.mktemp("broker"), site=SITE)
    yield broker
    broker.stop()


@pytest.mark.parametrize("user", [SITE, "other-site", "atn", "monitor", "technician"])
def test_every_role_logs_in_on_the_loopback_listener(broker: Broker, user: str) -> None:
    disconnect(broker.connect(user))


@pytest.mark.parametrize(("user", "password"), [("atn", "wrong"), (SITE, ""), ("nobody", "secret")])
def test_bad_credentials_are_refused_with_not_authorized(broker: Broker, user: str, password: str) -> None:
    with pytest.raises(BrokerRefused) as refused:
        broker.connect(user, password=password)
    assert refused.value.reason.value == NOT_AUTHORIZED


def test_tls_listener_serves_a_client_that_trusts_the_ca(broker: Broker) -> None:
    client = broker.connect("monitor", tls=True)
    disconnect(client)


def test_tls_listener_fails_the_handshake_of_a_client_that_does_not_trust_it(broker: Broker) -> None:
    system_trust_only = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        broker.connect("monitor", tls=True, ssl_context=system_trust_only)


# For each reader, a message it may receive, from a publisher allowed to send it.
SENTINELS = {
    "monitor": (SITE, f"hearth/v1/{SITE}/events"),
    "atn": (SITE, f"hearth/v1/{SITE}/events"),
    SITE: ("atn", f"hearth/v1/{SITE}/atn/heartbeat"),
    "other-site": ("atn", "hearth/v1/other-site/atn/heartbeat"),
    "technician": (SITE, f"hearth/v1/{SITE}/events"),
}

# (publisher, topic, reader subscribed to '#', whether the reader gets it)
ACL_CASES = [
    # monitor: reads everything, writes nothing
    (SITE, f"hearth/v1/{SITE}/state", "monitor", True),
    ("monitor", f"hearth/v1/{SITE}/atn/dispatch", SITE, False),
    ("monitor", "homeassistant/status", SITE, False),
    ("monitor", "hearth/v1/monitor/status", "atn", False),  # "monitor" is not a site
    # a state request: anyone watching may ask, every controller hears it, a controller cannot send one
    ("monitor", "hearth/v1/state-request", SITE, True),
    ("atn", "hearth/v1/state-request", SITE, True),
    (SITE, "hearth/v1/state-request", "other-site", False),
    # controller: its own topics only, and never the ATN's
    (SITE, f"hearth/v1/{SITE}/telemetry", "atn", True),
    (SITE, f"hearth/v1/{SITE}/atn/dispatch", "monitor", False),
    (SITE, "hearth/v1/other-site/state", "monitor", False),
    (SITE, "hearth/v1/other-site/telemetry", "atn", False),
    (SITE, "hearth/v1/other-site/atn/dispatch", "other-site", False),
    (SITE, f"hearth/v1/{SITE}/telemetry", "other-site", False),  # another site cannot read it either
    ("other-site", f"hearth/v1/{SITE}/status", "monitor", False),
    (SITE, f"homeassistant/sensor/{SITE}/tank-top/config", "monitor", True),
    (SITE, "homeassistant/sensor/other-site/tank-top/config", "monitor", False),
    # atn: commands every site, cannot forge what a site reports
    ("atn", f"hearth/v1/{SITE}/atn/dispatch", SITE, True),
    ("atn", "hearth/v1/other-site/atn/dispatch", SITE, False),  # delivered, but not to demo-house
    ("atn", f"hearth/v1/{SITE}/state", "monitor", False),
    # the weather forecast: only the ATN sends it, each site reads its own
    ("atn", f"hearth/v1/{SITE}/atn/weather", SITE, True),
    ("atn", "hearth/v1/other-site/atn/weather", SITE, False),
    ("other-site", f"hearth/v1/{SITE}/atn/weather", SITE, False),
    (SITE, f"hearth/v1/{SITE}/atn/weather", "monitor", False),
    ("technician", f"hearth/v1/{SITE}/atn/weather", SITE, False),
    ("monitor", f"hearth/v1/{SITE}/atn/weather", SITE, False),
    # technician: publishes override requests (the controller still checks their signatures), reads the answers
    ("technician", f"hearth/v1/{SITE}/override", SITE, True),
    (SITE, f"hearth/v1/{SITE}/override/reply", "technician", True),
    ("technician", f"hearth/v1/{SITE}/override/reply", "monitor", False),  # cannot forge the controller's answer
    ("technician", f"hearth/v1/{SITE}/atn/dispatch", SITE, False),
    ("technician", f"hearth/v1/{SITE}/state", "monitor", False),
    ("technician", "hearth/v1/state-request", SITE, True),  # hearth tui --mqtt --key asks for a fresh state
    (SITE, f"hearth/v1/{SITE}/telemetry", "technician", True),  # ... and shows History
    # the energy summary: a site publishes its own, monitors and technicians read it (the Energy screen)
    (SITE, f"hearth/v1/{SITE}/energy", "monitor", True),
    (SITE, f"hearth/v1/{SITE}/energy", "technician", True),
    (SITE, "hearth/v1/other-site/energy", "monitor", False),
    ("monitor", f"hearth/v1/{SITE}/energy", "technician", False),
    # only technicians publish override requests
    ("monitor", f"hearth/v1/{SITE}/override", SITE, False),
    ("atn", f"hearth/v1/{SITE}/override", SITE, False),
    ("other-site", f"hearth/v1/{SITE}/override", SITE, False),
]


@pytest.mark.parametrize(("publisher", "topic", "reader", "delivered"), ACL_CASES)
def test_acl_roles(broker: Broker, publisher: str, topic: str, reader: str, delivered: bool) -> None:
    payload = f"case-{uuid.uuid4().hex}".encode()
    sentinel_publisher, sentinel_topic = SENTINELS[reader]
    sentinel = f"sentinel-{uuid.uuid4().hex}".encode()
    with broker.subscribe(reader, "#") as subscription:
        broker.pub(publisher, topic, payload)
        broker.pub(sentinel_publisher, sentinel_topic, sentinel)
        arrived = subscription.wait_until(lambda messages: (sentinel_topic, sentinel) in messages)
        assert arrived, f"sentinel never reached {reader}:\n{broker.log_tail()}"
        received = [message for message in subscription.messages if message[1] == payload]
    assert received == ([(topic, payload)] if delivered else [])


@pytest.mark.parametrize(
    ("protocol", "puback_reason"),
    [(MQTTProtocolVersion.MQTTv311, 0), (MQTTProtocolVersion.MQTTv5, NOT_AUTHORIZED)],
)
def test_what_a_publisher_learns_of_a_denied_qos1_publish(
    broker: Broker, protocol: MQTTProtocolVersion, puback_reason: int
) -> None:
    """MQTT 3.1.1: an ordinary PUBACK, nothing to tell. MQTT 5: mosquitto 2.0 says 0x87 (other brokers may not)."""
    client = broker.connect("monitor", protocol=protocol)
    acknowledged = threading.Event()
    reasons: list[ReasonCode] = []

    def on_publish(_client: Client, _userdata: Any, _mid: int, reason: ReasonCode, _properties: Any) -> None:
        reasons.append(reason)
        acknowledged.set()

    client.on_publish = on_publish
    try:
        client.publish(f"hearth/v1/{SITE}/atn/dispatch", b"{}", qos=1)
        assert acknowledged.wait(5)
    finally:
        disconnect(client)
    assert [reason.value for reason in reasons] == [puback_reason]


def test_atn_workers_share_ingestion_through_a_shared_subscription(broker: Broker) -> None:
    """$share/ingest/...: each batch reaches exactly one worker of the group (deploy/mosquitto/README.md)."""
    shared = "$share/ingest/hearth/v1/+/telemetry"
    sites = (SITE, "other-site")
    batches = [(f"hearth/v1/{site}/telemetry", f"batch-{n}".encode()) for n in range(3) for site in sites]
    with broker.subscribe("atn", shared) as first, broker.subscribe("atn", shared) as second:
        for topic, payload in batches:
            broker.pub(topic.split("/")[2], topic, payload)
        deadline = time.monotonic() + 5
        while len(first.messages) + len(second.messages) < len(batches) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # a duplicate would arrive right behind
        assert sorted(first.messages + second.messages) == sorted(batches)
        assert first.messages and second.messages, "one worker got everything: the group did not share"


def test_retained_messages_survive_a_clean_restart(broker: Broker) -> None:
    topic = f"hearth/v1/{SITE}/status"
    broker.pub(SITE, topic, "online", retain=True)
    broker.stop()
    broker.restart()
    assert broker.sub("monitor", topic, 1) == [(topic, b"online")]


def test_kill_and_restart_on_the_same_ports_keeps_saved_retained_messages(broker: Broker) -> None:
    topic = f"hearth/v1/{SITE}/state"
    ports, first = (broker.port, broker.tls_port), broker.process
    broker.pub(SITE, topic, '{"v": 1}', retain=True)
    broker.save()  # mosquitto saves every autosave_interval; a crash loses what came after the last save
    broker.kill()
    broker.restart()
    assert broker.process is not first
    assert (broker.port, broker.tls_port) == ports
    assert broker.sub("monitor", topic, 1) == [(topic, b'{"v": 1}')]
    disconnect(broker.connect("atn", tls=True))
