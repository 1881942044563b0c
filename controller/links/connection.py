"""Staying connected to one of a link's brokers: the one loop both broker links use (the ATN's and the house's).

- `mqtt_client`: a client for one broker of a link, with the site's offline status as its last will.
- `BrokerConnection`: connect to the current broker of a `BrokerRotation`, run a session there until it fails,
  say in the log why (refused credentials, a denial, a node gone) and which broker comes next, move to the next
  broker at once and back off only once every broker has failed in a row. Publishes and subscriptions go
  through it, so a connection closed right after one can be called what it is (RabbitMQ's answer to an ACL
  denial).
- `publish_state`: the site's state, retained, on change, every `every_s` and when a state request is due.
- `run_until_first_failure`: a session's named jobs, together, until the first one fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiomqtt
import structlog

from controller import __version__, protocol
from controller.clock import Clock
from controller.links.brokers import BrokerRotation, Unanswered, describe_drop
from controller.links.config import MqttLink
from controller.links.state import change_signature
from controller.links.staterequest import StateRequests
from controller.protocol import BrokerUrl

__all__ = ["BrokerConnection", "client_id", "mqtt_client", "publish_state", "read_secret", "run_until_first_failure"]

log = structlog.get_logger("hearth.connection")
POLL_S = 0.2  # how often the state publisher looks at the state, when nothing tells it of a change
NEWS_WAIT_S = 1.0  # the longest a link waits for news it was promised (a tick, a commit) before it looks anyway


def read_secret(name: str) -> str:
    """A secret from a file: absolute path, or a name under $CREDENTIALS_DIRECTORY (systemd LoadCredential=)."""
    path = Path(name)
    if not path.is_absolute() and os.environ.get("CREDENTIALS_DIRECTORY"):
        path = Path(os.environ["CREDENTIALS_DIRECTORY"]) / name
    return path.read_text(encoding="utf-8").strip()


def client_id(site: str, role: str, brokers: Sequence[BrokerUrl], broker: BrokerUrl) -> str:
    """The MQTT client id of a site's link on `broker`: `hearth-<site><role>` on a link's only broker, and with
    `-<n>` after it on the n-th broker of a list (the nodes of a cluster), so each node sees its own id.

    One id for every node stranded the sites of a killed node (RabbitMQ 3.10): the MQTT plugin keeps a client's
    subscriptions in a durable queue named after its id (`mqtt-subscription-<id>qos1`), homed on the node the
    client was on; when that node dies the queue's record stays, and declaring it again on another node fails
    ("home node ... of durable queue ... is down or inaccessible"), so the site could not subscribe anywhere
    until the dead node came back. Client ids are also tracked cluster-wide (a second connection with the same
    id closes the first, on any node), so an attempt given up on one node could close the live connection on
    another. With an id per node neither can happen; on one node a new connection still takes over a stale
    one (and its last will is not published)."""
    base = f"hearth-{site}{role}"
    if len(brokers) == 1:
        return base
    return f"{base}-{list(brokers).index(broker) + 1}"


def mqtt_client(
    config: MqttLink, site: str, clock: Clock, role: str = "", broker: BrokerUrl | None = None
) -> aiomqtt.Client:
    """A client for `broker` (default: the link's first), with the site's offline status as its last will and
    its client id for that broker (`client_id`)."""
    broker = broker or config.brokers[0]
    password = read_secret(config.password_file) if config.password_file else None
    tls = None
    if broker.tls:
        tls = aiomqtt.TLSParameters(
            ca_certs=config.ca_file,
            certfile=config.client_cert,
            keyfile=config.client_key,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    offline = protocol.Status(site=site, online=False, ts=clock.now(), version=__version__)
    return aiomqtt.Client(
        broker.host,
        broker.port,
        # Small QoS 1 messages and their PUBACKs must not wait for Nagle and delayed ACKs (~40 ms each).
        socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        username=config.username,
        password=password,
        identifier=client_id(site, role, config.brokers, broker),
        will=aiomqtt.Will(protocol.Topics(site).status, offline.to_json(), qos=1, retain=True),
        tls_params=tls,
        keepalive=config.keepalive_s,
        timeout=10,
    )


class BrokerConnection:
    """One link's connection to whichever of its brokers is up: `run(session)` for ever. Used by the controller's
    ATN link, its house-broker link and `hearth atn-sim`."""

    def __init__(
        self,
        name: str,
        brokers: Sequence[BrokerUrl],
        client: Callable[[BrokerUrl], aiomqtt.Client],
        rng: random.Random,
        *,
        logger: Any = None,
    ) -> None:
        """`name` is what the log calls the link ("ATN link", "house broker"); `client(broker)` makes a client for
        one broker (e.g. `mqtt_client` with the link's settings)."""
        self.name = name
        self.client = client
        self.log = logger or log
        self.rotation = BrokerRotation(brokers, rng)
        self.unanswered = Unanswered()

    @classmethod
    def for_link(
        cls, name: str, config: MqttLink, site: str, clock: Clock, rng: random.Random, *, role: str = "", logger: Any
    ) -> BrokerConnection:
        """The connection of a controller's link: its brokers, credentials and last will (`mqtt_client`)."""
        return cls(
            name, config.brokers, lambda broker: mqtt_client(config, site, clock, role, broker), rng, logger=logger
        )

    @property
    def broker(self) -> str:
        """The broker this link is on (or trying next): `mqtts://node2.example:8883`."""
        return str(self.rotation.current)

    async def publish(
        self, client: aiomqtt.Client, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False
    ) -> None:
        with self.unanswered.waiting("publish to", topic):
            await client.publish(topic, payload, qos=qos, retain=retain)

    async def subscribe(self, client: aiomqtt.Client, topic: str, qos: int = 1) -> None:
        with self.unanswered.waiting("subscribe to", topic):
            await client.subscribe(topic, qos=qos)

    async def run(self, session: Callable[[aiomqtt.Client], Awaitable[None]], down: Callable[[], None]) -> None:
        """Stay connected, forever: run `session` on each connection; when it ends, call `down`, move to the next
        broker at once, and back off (full jitter) only once every broker has failed in a row."""
        while True:
            trouble, error = "", None
            failed_at = self.rotation.current
            client: aiomqtt.Client | None = None
            entered = False
            try:
                self.unanswered.reset()
                client = self.client(failed_at)
                self.unanswered.watch(client)
                async with client:
                    entered = True
                    self.rotation.connected()
                    await session(client)
            except* aiomqtt.MqttError as group:  # errors from the session's tasks arrive grouped
                error = group.exceptions[0]
            except* OSError as group:  # a secret or TLS file that cannot be read
                trouble = f"misconfigured: {group.exceptions[0]}"
            finally:
                down()
                if client is not None and not entered:
                    abandon(client)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # aiomqtt can turn a cancellation during connect or disconnect into an MqttError; a stopping
                # controller must not take that for a dropped link and reconnect for ever.
                raise asyncio.CancelledError
            if error is not None:
                trouble = await describe_drop(error, failed_at, self.unanswered)
            delay = self.rotation.failed()
            self.log.warning(
                f"{self.name} still down" if self.rotation.failed_in_a_row > 1 else f"{self.name} down",
                broker=str(failed_at),
                error=trouble,
                next_broker=self.broker,
                retry_in_s=round(delay, 1),
            )
            await asyncio.sleep(delay)  # network backoff runs on real time


def abandon(client: aiomqtt.Client) -> None:
    """End a connection attempt that failed before it was up (no CONNACK within the timeout, say).

    aiomqtt gives up waiting but leaves the socket open, read and kept alive: the broker may still take the
    connection later, and it then lived on, unused, as a second connection of the site. A DISCONNECT ends it
    cleanly (the broker publishes no last will for it); paho closes the socket once it is written."""
    with contextlib.suppress(Exception):  # whatever state paho is in, an attempt being dropped must not raise
        client._client.disconnect()


async def publish_state(
    connection: BrokerConnection,
    client: aiomqtt.Client,
    topics: protocol.Topics,
    state: Callable[[], protocol.State],
    clock: Clock,
    every_s: float,
    requests: StateRequests | None = None,
    introduction: Callable[[], list[tuple[str, str | bytes]]] = list,
    changed: asyncio.Event | None = None,
    signature: Callable[[], Hashable] | None = None,
) -> None:
    """Publish the state (retained) when what it says changes (mode, actuators, overrides), every `every_s`, and
    when `requests` says a state request is due: then the `introduction` first (retained: the status, the layout
    summary), since a reader that joined late needs them too, and a broker that keeps retained messages per node,
    or not for wildcards (RabbitMQ), may not give them.

    With `changed` (set after every control tick), the state is looked at when it is set (at most `NEWS_WAIT_S`
    apart) instead of every `POLL_S`: what it says only changes with a tick, and building it five times a second
    was most of an idle controller's cost in a 500-site fleet. With `signature` (`change_signature` of the state
    `state` would build, computed without building it), the state is built only when it is to be sent."""
    last_signature: Any = None
    last_sent = clock.monotonic()
    while True:
        if changed is None:
            await asyncio.sleep(POLL_S)
        else:
            await wait_for_news(changed, NEWS_WAIT_S)
        current: protocol.State | None = None
        if signature is None:
            current = state()
            now_signature = change_signature(current)
        else:
            now_signature = signature()
        now = clock.monotonic()
        periodic = now - last_sent >= every_s
        requested = requests is not None and requests.take(now)
        if requested:
            for topic, payload in introduction():
                await connection.publish(client, topic, payload, qos=1, retain=True)
        if now_signature != last_signature or periodic or requested:
            current = current or state()
            await connection.publish(client, topics.state, current.to_json(), qos=1, retain=True)
            last_signature, last_sent = now_signature, clock.monotonic()


async def wait_for_news(news: asyncio.Event, timeout_s: float) -> None:
    """Wait until `news` is set (then clear it) or `timeout_s` has passed, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):  # not wait_for: on 3.11 it can swallow a cancellation
            await news.wait()
    news.clear()


async def run_until_first_failure(jobs: Mapping[str, Coroutine[Any, Any, None]]) -> None:
    """Run named jobs together until the first one fails, then cancel the others and raise its error.

    Not a TaskGroup: on Python 3.11 a TaskGroup whose child fails cancels the enclosing task and never takes
    that back, so the reconnect loop around a session could no longer tell a dropped link from a stop.
    """
    tasks = [asyncio.create_task(job, name=name) for name, job in jobs.items()]
    this = asyncio.current_task()
    try:
        while True:
            done, _ = await asyncio.wait(tasks, timeout=1.0, return_when=asyncio.FIRST_EXCEPTION)
            if done:
                break
            if this is not None and this.cancelling():  # a cancellation swallowed on the way (see _cancel_all)
                raise asyncio.CancelledError
    finally:
        await _cancel_all(tasks)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _cancel_all(tasks: list[asyncio.Task[None]], rounds: int = 10) -> None:
    """Cancel `tasks` and wait until they have ended, cancelling again those that have not after a moment.

    Again, because on Python 3.11 `asyncio.wait_for` (which aiomqtt uses for every publish) can swallow a
    cancellation that arrives as the awaited operation completes: the task then carries on, and a stop waited on
    it until the connection died by itself (15 s and more in the suite)."""
    pending = set(tasks)
    for _ in range(rounds):
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.2)
        if not pending:
            return
    log.warning("session tasks did not end when cancelled", tasks=sorted(t.get_name() for t in pending))
