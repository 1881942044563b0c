"""A watching MQTT client over a list of brokers: the one reconnect loop of the site view and the fleet view.

On every connect it subscribes, publishes a state request (retained messages may not come: RabbitMQ keeps them on
one node and never gives them to a wildcard subscription) and hands the client to the view's session. On a lost
connection it moves to the next broker at once (`controller.links.brokers.BrokerRotation`), and counts down a
backoff only once every broker has failed in a row; a connection closed right after a subscription or a publish
is said to be a denial when it is one (RabbitMQ closes the connection on an ACL denial).
"""

from __future__ import annotations

import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from controller.links.brokers import BrokerRotation, Unanswered, describe_drop, parse_broker_urls
from controller.protocol import STATE_REQUEST_TOPIC, BrokerUrl, StateRequest
from tui.transport import Backoff, ConnectionStatus, StatusCallback, countdown

if TYPE_CHECKING:
    import aiomqtt

log = logging.getLogger(__name__)


class BrokerWatch:
    """Which broker a watching client is on, and the loop that keeps it connected to one of them."""

    def __init__(
        self,
        urls: str | Sequence[str],
        username: str | None,
        password_file: str | None,
        ca_file: str | None,
        *,
        kind: str,
        insecure: bool = False,
        backoff: Backoff | None = None,
    ) -> None:
        """`kind` names the client in its id (`hearth-<kind>-<random>`): "tui", "fleet"."""
        self.brokers = parse_broker_urls(urls, insecure=insecure)
        self.username = username
        self.password_file = password_file
        self.ca_file = ca_file
        self.kind = kind
        self.rotation = BrokerRotation(self.brokers, backoff=(backoff or Backoff()).delay)
        self.unanswered = Unanswered()

    @property
    def broker(self) -> str:
        """The broker the client is on (or tries next)."""
        return str(self.rotation.current)

    @property
    def which(self) -> str:
        """For a header: ` (2 of 3)` with several brokers, so a failover shows; nothing with one."""
        return f" ({self.rotation.index + 1} of {len(self.brokers)})" if len(self.brokers) > 1 else ""

    async def run(
        self,
        topics: Sequence[str],
        request: StateRequest,
        session: Callable[[aiomqtt.Client], Awaitable[None]],
        on_status: StatusCallback,
    ) -> None:
        """Stay connected for ever: subscribe to `topics`, publish `request`, then `session(client)` until the
        connection ends. `session` says "connected" itself (it knows what to say)."""
        import aiomqtt  # here, not at import: the local-socket TUI starts faster without it

        reason = ""  # why the last try failed: shown while the next one connects, until one succeeds
        while True:
            on_status(ConnectionStatus("connecting", detail=f"last try: {reason}" if reason else ""))
            failed_at = self.rotation.current
            self.unanswered.reset()
            try:
                client = monitor_client(failed_at, self.username, self.password_file, self.ca_file, self.kind)
                self.unanswered.watch(client)
                async with client:
                    for topic in topics:
                        with self.unanswered.waiting("subscribe to", topic):
                            await client.subscribe(topic, qos=1)
                    with self.unanswered.waiting("publish to", STATE_REQUEST_TOPIC):
                        await client.publish(STATE_REQUEST_TOPIC, request.to_json(), qos=1)
                    self.rotation.connected()
                    reason = ""
                    await session(client)
                reason = f"{failed_at} closed the connection"
            except aiomqtt.MqttError as error:
                reason = f"{failed_at}: {await describe_drop(error, failed_at, self.unanswered)}"
            except OSError as error:  # the password file, the CA file
                reason = str(error)
            delay = self.rotation.failed()
            log.warning("MQTT connection lost (%s); next broker %s in %.1f s", reason, self.broker, delay)
            if delay <= 0:
                on_status(ConnectionStatus("reconnecting", detail=f"{reason}; trying {self.broker}"))
            async for left in countdown(delay):
                on_status(ConnectionStatus("reconnecting", detail=reason, retry_in_s=left))


def monitor_client(
    broker: BrokerUrl, username: str | None, password_file: str | None, ca_file: str | None, kind: str
) -> aiomqtt.Client:
    """A watching client (the site view, the fleet view): a fresh client id, the password read now."""
    import socket

    import aiomqtt

    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=username,
        password=_password(password_file),
        identifier=f"hearth-{kind}-{uuid.uuid4().hex[:12]}",
        # A signed request is one small publish: it must not wait behind Nagle for the ACK of our last PUBACK
        # (the broker delays that ACK by up to 200 ms), as the controller's link does not either.
        socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        tls_context=ssl.create_default_context(cafile=ca_file) if broker.tls else None,
        keepalive=30,
        timeout=10,
    )


def _password(path: str | None) -> str | None:
    """Read at every connect, so a rotated password file is picked up."""
    if path is None:
        return None
    return Path(path).read_text().strip()
