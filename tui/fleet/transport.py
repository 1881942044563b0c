"""The fleet view's MQTT connection: every site's `state` and `status` (wildcards), a fleet-wide state request on
every connect (wildcard subscriptions get no retained messages on RabbitMQ), and the broker list's failover."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from controller.links.brokers import BrokerRotation, Unanswered, describe_drop, parse_broker_urls
from controller.protocol import PREFIX, STATE_REQUEST_TOPIC, Rejected, State, StateRequest, Status, parse
from tui.transport import Backoff, ConnectionStatus, countdown
from tui.transport.mqtt import monitor_client

if TYPE_CHECKING:
    import aiomqtt

log = logging.getLogger(__name__)
STATE_FILTER = f"{PREFIX}/+/state"
STATUS_FILTER = f"{PREFIX}/+/status"


class FleetTransport:
    def __init__(
        self,
        urls: str | Sequence[str],
        username: str | None = None,
        password_file: str | None = None,
        ca_file: str | None = None,
        *,
        insecure: bool = False,
        backoff: Backoff | None = None,
    ) -> None:
        self.brokers = parse_broker_urls(urls, insecure=insecure)
        self.urls = [str(broker) for broker in self.brokers]
        self.username = username
        self.password_file = password_file
        self.ca_file = ca_file
        self.insecure = insecure
        self._backoff = backoff or Backoff()
        self.rotation = BrokerRotation(self.brokers, backoff=self._backoff.delay)
        self._unanswered = Unanswered()
        self.skipped = 0

    @property
    def broker(self) -> str:
        return str(self.rotation.current)

    async def run(
        self,
        on_state: Callable[[State], None],
        on_online: Callable[[str, bool], None],
        on_status: Callable[[ConnectionStatus], None],
    ) -> None:
        import aiomqtt

        while True:
            on_status(ConnectionStatus("connecting"))
            failed_at = self.rotation.current
            self._unanswered.reset()
            try:
                client = self._client()
                self._unanswered.watch(client)
                async with client:
                    for topic in (STATUS_FILTER, STATE_FILTER):
                        with self._unanswered.waiting("subscribe to", topic):
                            await client.subscribe(topic, qos=1)
                    with self._unanswered.waiting("publish to", STATE_REQUEST_TOPIC):
                        await client.publish(STATE_REQUEST_TOPIC, StateRequest().to_json(), qos=1)
                    self.rotation.connected()
                    on_status(ConnectionStatus("connected", user=self.username, role="monitor"))
                    async for message in client.messages:
                        payload = message.payload
                        if isinstance(payload, bytes | bytearray | str):
                            self._dispatch(
                                message.topic.value,
                                bytes(payload) if not isinstance(payload, str) else payload,
                                on_state,
                                on_online,
                            )
                reason = f"{failed_at} closed the connection"
            except aiomqtt.MqttError as error:
                reason = f"{failed_at}: {await describe_drop(error, failed_at, self._unanswered)}"
            except OSError as error:
                reason = str(error)
            delay = self.rotation.failed()
            log.warning("MQTT connection lost (%s); next broker %s in %.1f s", reason, self.broker, delay)
            if delay <= 0:
                on_status(ConnectionStatus("reconnecting", detail=f"{reason}; trying {self.broker}"))
            async for left in countdown(delay):
                on_status(ConnectionStatus("reconnecting", detail=reason, retry_in_s=left))

    def _dispatch(
        self,
        topic: str,
        payload: bytes | str,
        on_state: Callable[[State], None],
        on_online: Callable[[str, bool], None],
    ) -> None:
        parts = topic.split("/")
        if len(parts) != 4 or not payload:
            return
        site, kind = parts[2], parts[3]
        try:
            if kind == "state":
                state = parse(State, payload)
                if state.site != site:
                    raise Rejected(f"a state for {state.site} on {site}'s topic")
                on_state(state)
            elif kind == "status":
                on_online(site, parse(Status, payload).online)
        except Rejected as error:
            self.skipped += 1
            log.warning("skipped a message on %s: %s", topic, error.reason)

    def _client(self) -> aiomqtt.Client:
        return monitor_client(self.rotation.current, self.username, self.password_file, self.ca_file, "fleet")
