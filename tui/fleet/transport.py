"""The fleet view's MQTT connection: every site's `state` and `status` (wildcards), a fleet-wide state request on
every connect (wildcard subscriptions get no retained messages on RabbitMQ), and the broker list's failover
(`tui.transport.watch.BrokerWatch`, shared with the site view)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from controller.protocol import PREFIX, Rejected, State, StateRequest, Status, parse
from tui.transport import Backoff, ConnectionStatus
from tui.transport.watch import BrokerWatch

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
        self.watch = BrokerWatch(
            urls, username, password_file, ca_file, kind="fleet", insecure=insecure, backoff=backoff
        )
        self.brokers = self.watch.brokers
        self.urls = [str(broker) for broker in self.brokers]
        self.username = username
        self.password_file = password_file
        self.ca_file = ca_file
        self.insecure = insecure
        self.skipped = 0

    @property
    def broker(self) -> str:
        return self.watch.broker

    async def run(
        self,
        on_state: Callable[[State], None],
        on_online: Callable[[str, bool], None],
        on_status: Callable[[ConnectionStatus], None],
    ) -> None:
        async def session(client: aiomqtt.Client) -> None:
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

        await self.watch.run((STATUS_FILTER, STATE_FILTER), StateRequest(), session, on_status)

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
