"""The house's own broker, for a local Home Assistant (`[links.home_assistant]`): a second, one-way link.

Home Assistant often runs its own mosquitto in the house, with its own users, apart from the broker the ATN
reaches. This link connects there with its own credentials and publishes only what Home Assistant reads: the
site's status (retained, with an offline last will), its state (retained, on change and every `state_every_s`)
and the discovery configs (`controller/links/homeassistant.py`), sent again when Home Assistant restarts, with
the configs of channels and actuators the layout no longer has cleared. No telemetry, no commands: nothing from
this broker reaches the control loop.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import aiomqtt
import structlog

from controller import __version__, protocol
from controller.clock import Clock
from controller.layout.model import Layout
from controller.links import homeassistant
from controller.links.config import HouseBroker
from controller.links.connection import BrokerConnection, publish_state, run_until_first_failure

log = structlog.get_logger("hearth.house_broker")


class HouseBrokerLink:
    """Status, state and discovery on the house's broker; stays connected like the ATN link (`BrokerConnection`:
    a list of brokers, the next one at once, a backoff once all have failed)."""

    def __init__(
        self,
        config: HouseBroker,
        layout: Layout,
        clock: Clock,
        state: Callable[[], protocol.State],
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.layout = layout
        self.site = layout.site.id
        self.topics = protocol.Topics(self.site)
        self.clock = clock
        self.state = state
        self.rng = rng or random.Random()
        self.connected = False
        self._discovery: set[str] = set()
        self.connection = BrokerConnection.for_link(
            "house broker", config, self.site, clock, self.rng, role="-house", logger=log
        )

    async def run(self) -> None:
        await self.connection.run(self._session, self._down)

    def _down(self) -> None:
        self.connected = False

    async def _session(self, client: aiomqtt.Client) -> None:
        online = protocol.Status(site=self.site, online=True, ts=self.clock.now(), version=__version__)
        await self.connection.publish(client, self.topics.status, online.to_json(), qos=1, retain=True)
        await self.connection.publish(client, self.topics.state, self._state().to_json(), qos=1, retain=True)
        self._discovery = await homeassistant.subscribe(client, self.layout)
        self.connected = True
        log.info("house broker up", broker=self.connection.broker)
        await run_until_first_failure(
            {
                "house:receive": self._receive(client),
                "house:state": publish_state(
                    self.connection, client, self.topics, self._state, self.clock, self.config.state_every_s
                ),
            }
        )

    def _state(self) -> protocol.State:
        """The state as published here: with this broker's period, so Home Assistant can tell a quiet site."""
        return self.state().model_copy(update={"every_s": self.config.state_every_s})

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            self._discovery = await homeassistant.answer(
                client, self.layout, message.topic.value, payload, self._discovery
            )
