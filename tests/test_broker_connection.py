"""A link's connection to the nodes of a cluster (controller/links/connection.py): a client id of its own on each
node, and a connection attempt that timed out is ended, not left open behind the next one.

Both were found with a 500-site fleet on a 3-node RabbitMQ 3.10 cluster, where one id for every node stranded the
killed node's sites (their durable subscription queue, named after the id, was homed on the dead node) and let a
late registration of an abandoned attempt on one node close the live connection on another ("duplicate id").
The cluster itself is tests/test_cluster.py's; these are the quick checks of the client's side.
"""

from __future__ import annotations

import asyncio
import random

import aiomqtt
import pytest

from controller.clock import SystemClock
from controller.links.config import MqttLink
from controller.links.connection import BrokerConnection, mqtt_client

NODES = ["mqtt://127.0.0.1:1883", "mqtt://127.0.0.1:1884", "mqtt://127.0.0.1:1885"]


@pytest.mark.parametrize(
    ("urls", "role", "ids"),
    [
        # one broker (a mosquitto): the id it always had, so a second connection takes over a stale one
        (NODES[:1], "", ["hearth-demo-house"]),
        (NODES[:1], "-house", ["hearth-demo-house-house"]),
        # the nodes of a cluster: one id per node, in the order of the list
        (NODES, "", ["hearth-demo-house-1", "hearth-demo-house-2", "hearth-demo-house-3"]),
        (NODES[1:], "-house", ["hearth-demo-house-house-1", "hearth-demo-house-house-2"]),
    ],
)
def test_a_client_id_of_its_own_on_each_node(urls: list[str], role: str, ids: list[str]) -> None:
    config = MqttLink(url=urls)

    async def made() -> list[str]:  # aiomqtt makes its clients in an event loop
        clients = [mqtt_client(config, "demo-house", SystemClock(), role, broker) for broker in config.brokers]
        return [client._client._client_id.decode() for client in clients]

    assert asyncio.run(made()) == ids


def test_a_connection_attempt_that_timed_out_is_ended() -> None:
    """A "broker" that takes the TCP connection and never answers CONNECT: the link gives up after its timeout
    and tries again; the attempt it gave up must be closed (with a DISCONNECT: no last will), not left open and
    kept alive to be taken by the broker later as a second connection of the site."""
    first = asyncio.run(first_attempt_on_a_silent_broker())
    assert first[0] >> 4 == 1, first  # CONNECT ...
    assert first.endswith(b"\xe0\x00"), first  # ... and, once given up, DISCONNECT


async def first_attempt_on_a_silent_broker() -> bytes:
    """Everything the first connection sent, up to its end (none: a timeout)."""
    received: list[bytes] = []
    closed = asyncio.Event()

    async def silent_broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        while chunk := await reader.read(4096):
            data += chunk
        received.append(data)
        closed.set()
        writer.close()

    server = await asyncio.start_server(silent_broker, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = MqttLink(url=f"mqtt://127.0.0.1:{port}")

    def client(broker: object) -> aiomqtt.Client:
        made = mqtt_client(config, "demo-house", SystemClock())
        made.timeout = 0.5
        return made

    async def session(_: aiomqtt.Client) -> None:
        raise AssertionError("the silent broker never lets a session start")

    connection = BrokerConnection("ATN link", config.brokers, client, random.Random(1))
    link = asyncio.create_task(connection.run(session, lambda: None))
    try:
        async with asyncio.timeout(5):
            await closed.wait()
    finally:
        link.cancel()
        with pytest.raises(asyncio.CancelledError):
            await link
        server.close()
    return received[0]
