"""The reference ATN: heartbeats, price-driven leases, and telemetry persisted and acknowledged.

- One MQTT connection (as the broker's ATN user) serves every configured site; it reconnects with the
  controller's full-jitter backoff. Serving more than a few sites it subscribes with `+` for the site
  (`subscription_filters`), so a reconnect is four subscriptions, not four per site.
- Every `heartbeat_s`: a `Heartbeat` per site (QoS 1, never retained). Every `lease_s / 2`: a `Dispatch` lease
  per site with the next 24 h of prices. Once the site's telemetry gives the readings it needs, the lease is the
  controller's own planner's decision for the heat pump and store pump (`planning.SitePlanner`); before that,
  from the price band (charge when cheap, hold off when expensive, else leave it to the controller). With
  `plan_workers` > 0 a re-plan is solved in a worker process, not in the event loop: a plan takes about a
  second of CPU, and solved in the loop it held up every acknowledgement behind it (3 sites: dispatch -> ack of
  7-13 s); meanwhile the planner's present rules decide, and the new plan's lease goes out as soon as it is
  solved. After a
  (re)connect or a resume, and when a site comes online, one more lease follows 2.5 heartbeats later, so a
  controller that fell back to LOCAL can take the ATN back (it wants a couple of heartbeats in a row and then a
  fresh lease) without waiting for the next renewal.
- Telemetry batches go to the `Ledger`; the answer is a `TelemetryAck` up to the contiguous sequence number.
- Events go to the `Ledger` too (duplicates dropped by seq); the answer is an `EventAck` up to the contiguous seq.
- `status` and `ack` are logged and counted.
- Paused, it is a silent cloud: still connected, it publishes nothing and ignores everything it receives.
- Back-pressure: a message is acknowledged to the broker (PUBACK) only once handled and answered, so an ATN that
  falls behind leaves the backlog with the broker (its limit of unacknowledged deliveries) rather than in its
  own memory. The messages already received are stored in one ledger transaction (`handle_group`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import socket
import ssl
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import structlog

from controller import protocol
from controller.atnsim.ledger import Ledger
from controller.atnsim.planning import SitePlanner
from controller.atnsim.prices import HORIZON_S, DailyProfile, PriceSeries, band_at, lease_actuators
from controller.atnsim.weather import WEATHER_EVERY_S, WeatherFeed
from controller.clock import Clock, SystemClock, sleep_or_wake
from controller.control.params import ControlParams
from controller.links.connection import BrokerConnection, run_until_first_failure
from controller.planner.local import PlanRequest, solve_request

log = structlog.get_logger("hearth.atnsim")
HANDBACK_AFTER_BEATS = 2.5
KINDS = ("telemetry", "status", "ack", "events")
WILDCARD_ABOVE_SITES = 8  # serving more sites than this, one subscription per kind with `+` for the site


def subscription_filters(sites: Sequence[str]) -> list[str]:
    """What the ATN subscribes to: each site's topics of `KINDS`, or, for more than `WILDCARD_ABOVE_SITES` sites,
    one filter per kind with `+` for the site (a message from a site it does not serve is ignored: `handle`).

    A subscription is a binding on RabbitMQ, about 12 ms each on a loaded cluster: 500 sites x 4 kinds kept an
    ATN whose node was killed deaf for 29 s after it reconnected, most of a site's 30 s silence timeout."""
    if len(sites) > WILDCARD_ABOVE_SITES:
        return [f"{protocol.PREFIX}/+/{kind}" for kind in KINDS]
    return [getattr(protocol.Topics(site), kind) for site in sites for kind in KINDS]


Outgoing = tuple[str, bytes]
Incoming = tuple[str, bytes, bool]
"""topic, payload, retained"""
GROUP_MAX = 32  # messages stored in one transaction; at most the broker's unacknowledged deliveries wait anyway


def incoming(message: aiomqtt.Message) -> Incoming:
    raw = message.payload
    payload = bytes(raw) if isinstance(raw, bytes | bytearray) else str(raw if raw is not None else "").encode()
    return message.topic.value, payload, bool(message.retain)


@dataclass(frozen=True)
class AtnConfig:
    """What the ATN serves and where its broker is. The password is kept out of repr (and so out of logs)."""

    sites: tuple[str, ...]
    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    ca_file: str | None = None
    username: str | None = "atn"
    password: str | None = field(default=None, repr=False)
    db: str | Path = "atn-sim.sqlite"
    name: str = "atn-sim"
    heartbeat_s: float = 10.0
    lease_s: float = 120.0
    prices: PriceSeries = field(default_factory=DailyProfile)
    pause_after_s: float | None = None
    pause_for_s: float | None = None
    keepalive_s: int = 30
    plan: bool = True  # plan leases with the controller's planner once a site's readings arrive; else bands
    plan_workers: int = 0
    """worker processes that solve re-plans; 0: in the call, in the event loop (tests, one site)"""
    control: ControlParams = field(default_factory=ControlParams)  # the sites' control parameters (a layout's)
    timezone: str = "UTC"
    more_brokers: tuple[protocol.BrokerUrl, ...] = ()
    """the other nodes of a cluster, tried in turn after host:port (same TLS setting each)"""
    weather: WeatherFeed | None = None
    """a weather forecast to send each site on atn/weather (every (re)connect, then every `weather_every_s`)"""
    weather_every_s: float = WEATHER_EVERY_S

    @property
    def brokers(self) -> tuple[protocol.BrokerUrl, ...]:
        return (protocol.BrokerUrl(self.host, self.port, self.tls), *self.more_brokers)

    def __post_init__(self) -> None:
        if not self.sites:
            raise ValueError("serve at least one site")
        for site in self.sites:
            if not site or any(c in site for c in "/+#") or site != site.strip():
                raise ValueError(f"'{site}' is not a site id (one MQTT topic level: no '/', '+' or '#')")
        if len(set(self.sites)) != len(self.sites):
            raise ValueError("a site is listed twice")
        if self.plan_workers < 0:
            raise ValueError("--plan-workers cannot be negative")
        if self.heartbeat_s <= 0:
            raise ValueError("the heartbeat period must be positive")
        if not 0 < self.lease_s <= protocol.MAX_LEASE_S:
            raise ValueError(f"a lease lasts more than 0 and at most {protocol.MAX_LEASE_S} s")
        if self.pause_after_s is not None and self.pause_after_s < 0:
            raise ValueError("--pause-after cannot be negative")
        if self.pause_for_s is not None and (self.pause_for_s <= 0 or self.pause_after_s is None):
            raise ValueError("--pause-for must be positive and goes with --pause-after")


@dataclass
class SiteStats:
    """What the ATN knows about one site (for logs and tests)."""

    heartbeats: int = 0
    dispatches: int = 0
    last_dispatch: protocol.Dispatch | None = None
    telemetry_batches: int = 0
    readings_stored: int = 0
    duplicates: int = 0
    conflicts: int = 0  # seqs that came again with different content: a controller reused a seq
    malformed: int = 0
    last_telemetry_ack: int | None = None
    last_ack: protocol.Ack | None = None
    acks_accepted: int = 0
    acks_rejected: int = 0
    last_status: protocol.Status | None = None
    events: int = 0
    event_duplicates: int = 0


class AtnSim:
    def __init__(self, config: AtnConfig, clock: Clock | None = None, rng: random.Random | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.ledger = Ledger.open(config.db)
        self.topics = {site: protocol.Topics(site) for site in config.sites}
        self.stats = {site: SiteStats() for site in config.sites}
        self._routes = {getattr(t, kind): (site, kind) for site, t in self.topics.items() for kind in KINDS}
        self._paused = False
        self.connected = False
        self.ignored_while_paused = 0
        self._connected = asyncio.Event()
        self._wake = asyncio.Event()
        self._outbox: asyncio.Queue[Outgoing] = asyncio.Queue()
        self._due = dict.fromkeys(config.sites, 0.0)  # next lease renewal (clock.monotonic)
        self._handback: dict[str, float | None] = dict.fromkeys(config.sites)
        self.planners = {site: SitePlanner(config.control, config.timezone) for site in config.sites}
        self._pool: ProcessPoolExecutor | None = None
        if config.plan and config.plan_workers:
            # spawn, not fork: this process has threads (paho's, SQLite's), which a fork must not copy mid-step
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=config.plan_workers, mp_context=context)
        self._planning: dict[str, asyncio.Task[None]] = {}
        self.connection = BrokerConnection("ATN broker", config.brokers, self._client, self.rng, logger=log)

    # ---- pause / resume ----------------------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        if not self._paused:
            self._paused = True
            log.warning("ATN paused: a silent cloud (no heartbeats, leases or telemetry acks)", atn=self.config.name)

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            log.info("ATN resumed", atn=self.config.name)
            self._schedule_handback(self.config.sites, immediate=True)

    def toggle_pause(self) -> None:
        if self._paused:
            self.resume()
        else:
            self.pause()

    def _schedule_handback(self, sites: Sequence[str], immediate: bool) -> None:
        now = self.clock.monotonic()
        for site in sites:
            if immediate:
                self._due[site] = now
            self._handback[site] = now + HANDBACK_AFTER_BEATS * self.config.heartbeat_s
        self._wake.set()

    # ---- what the ATN sends ------------------------------------------------------------------------------------

    def heartbeat(self, site: str) -> protocol.Heartbeat:
        stats = self.stats[site]
        message = protocol.Heartbeat(atn=self.config.name, ts=self.clock.now(), seq=stats.heartbeats)
        stats.heartbeats += 1
        return message

    def make_dispatch(self, site: str) -> protocol.Dispatch:
        """A fresh lease for `site` from the price series at the current time."""
        if site not in self.topics:
            raise KeyError(f"this ATN does not serve site '{site}'")
        now = self.clock.now()
        prices = self.config.prices
        planner = self.planners[site]
        planned = planner.actuators(now, prices, inline=self._pool is None) if self.config.plan else None
        if planner.wanted is not None and self._pool is not None and site not in self._planning:
            self._planning[site] = asyncio.create_task(self._solve(site, planner.wanted), name=f"atnsim:plan:{site}")
        dispatch = protocol.Dispatch(
            id=f"{self.config.name[:20]}-{uuid.uuid4().hex[:20]}",
            issued_at=now,
            valid_until=now + self.config.lease_s,
            actuators=planned if planned is not None else lease_actuators(band_at(prices, now)),
            prices=prices.slots(now, now + HORIZON_S) or None,
        )
        stats = self.stats[site]
        stats.dispatches += 1
        stats.last_dispatch = dispatch
        return dispatch

    async def _solve(self, site: str, request: PlanRequest) -> None:
        """Solve `site`'s re-plan in a worker process, put it in force and send its lease at once."""
        assert self._pool is not None
        config = self.config
        try:
            loop = asyncio.get_running_loop()
            solved = await loop.run_in_executor(self._pool, solve_request, request, config.control, config.timezone)
            self.planners[site].adopt(solved)
            log.info("plan made", site=site, in_s=round(self.clock.now() - request.now, 2), note=solved.note)
            self._due[site] = self.clock.monotonic()
            self._wake.set()
        except BrokenProcessPool as error:  # a worker died (killed, out of memory): the present rules go on
            log.error("planning failed: a worker process died", site=site, error=str(error))
        finally:
            self._planning.pop(site, None)

    async def wait_planned(self, timeout_s: float) -> None:
        """Until no re-plan is being solved (TimeoutError after `timeout_s`)."""
        async with asyncio.timeout(timeout_s):
            while self._planning:
                await asyncio.wait(list(self._planning.values()))

    def dispatch_now(self, site: str) -> protocol.Dispatch:
        """Make a lease for `site` now and send it at once when connected and not paused; returns it."""
        dispatch = self.make_dispatch(site)
        if self.connected and not self._paused:
            self._outbox.put_nowait((self.topics[site].dispatch, dispatch.to_json()))
        return dispatch

    # ---- what the ATN receives ---------------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes, retained: bool = False) -> list[Outgoing]:
        """Handle one incoming message; return what to publish in answer. Never raises for bad input."""
        route = self._routes.get(topic)
        if route is None:
            log.debug("message on a topic this ATN does not serve", topic=topic)
            return []
        if self._paused:
            self.ignored_while_paused += 1
            return []
        site, kind = route
        if kind == "telemetry":
            answer = self.handle_telemetry(topic, payload)
            return [answer] if answer else []
        stats = self.stats[site]
        try:
            if kind == "status":
                status = protocol.parse(protocol.Status, payload)
                stats.last_status = status
                log.info("site status", site=site, online=status.online, version=status.version, retained=retained)
                if status.online and not retained and self.connected:
                    # The controller has just (re)connected and is subscribing: lease it after a few heartbeats.
                    self._schedule_handback([site], immediate=False)
            elif kind == "ack":
                ack = protocol.parse(protocol.Ack, payload)
                stats.last_ack = ack
                if ack.accepted:
                    stats.acks_accepted += 1
                    log.info("controller accepted", site=site, id=ack.id, reason=ack.reason)
                else:
                    stats.acks_rejected += 1
                    log.warning("controller rejected", site=site, id=ack.id, topic=ack.topic, reason=ack.reason)
            else:
                event = protocol.parse(protocol.EventMsg, payload)
                if event.site != site:
                    raise protocol.Rejected(f"an event for site '{event.site}' on {site}'s topic")
                if self.ledger.store_event(site, event):
                    stats.events += 1
                    log.info("site event", site=site, seq=event.seq, kind=event.kind, message=event.message)
                else:
                    stats.event_duplicates += 1
                upto = protocol.EventAck(upto_seq=self.ledger.events_upto(site))
                return [(self.topics[site].events_ack, upto.to_json())]
        except protocol.Rejected as rejection:
            stats.malformed += 1
            log.warning("malformed message ignored", site=site, topic=topic, reason=rejection.reason)
        return []

    def handle_telemetry(self, topic: str, payload: bytes) -> Outgoing | None:
        """Persist a telemetry batch and return the TelemetryAck to publish (None for an unusable message)."""
        route = self._routes.get(topic)
        if route is None or route[1] != "telemetry":
            log.warning("telemetry on an unexpected topic ignored", topic=topic)
            return None
        site = route[0]
        stats = self.stats[site]
        try:
            batch = protocol.parse(protocol.Telemetry, payload)
            if batch.site != site:
                raise protocol.Rejected(f"a batch for site '{batch.site}' on {site}'s topic")
            if batch.first_seq < 0:
                raise protocol.Rejected(f"negative sequence number {batch.first_seq}")
            if batch.first_seq > batch.last_seq:
                raise protocol.Rejected(f"first_seq {batch.first_seq} is after last_seq {batch.last_seq}")
            stray = [row[0] for row in batch.readings if not batch.first_seq <= row[0] <= batch.last_seq]
            if stray:
                raise protocol.Rejected(f"seq {stray[0]} is outside {batch.first_seq}..{batch.last_seq}")
        except protocol.Rejected as rejection:
            stats.malformed += 1
            log.warning("malformed telemetry ignored", site=site, reason=rejection.reason)
            return None
        inserted = self.ledger.store(site, batch.readings, batch.historical, (batch.first_seq, batch.last_seq))
        for seq, kept, refused in self.ledger.last_conflicts:
            stats.conflicts += 1
            log.error(
                "telemetry seq reused with different content: refused, the first kept",
                site=site,
                seq=seq,
                kept=list(kept),
                refused=list(refused),
            )
        self.planners[site].observe(batch.readings)
        upto = self.ledger.contiguous_upto(site)
        stats.telemetry_batches += 1
        stats.readings_stored += inserted
        stats.duplicates += len(batch.readings) - inserted - len(self.ledger.last_conflicts)
        stats.last_telemetry_ack = upto
        log.debug(
            "telemetry stored",
            site=site,
            first_seq=batch.first_seq,
            last_seq=batch.last_seq,
            historical=batch.historical,
            new=inserted,
            duplicates=len(batch.readings) - inserted,
            upto_seq=upto,
        )
        if upto < batch.last_seq:
            log.info("a gap holds the telemetry ack back", site=site, upto_seq=upto, last_seq=batch.last_seq)
        return self.topics[site].telemetry_ack, protocol.TelemetryAck(upto_seq=upto).to_json()

    # ---- the connection ----------------------------------------------------------------------------------------

    async def wait_connected(self, timeout_s: float = 5.0) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout_s)

    @property
    def broker(self) -> str:
        """The broker the ATN is on (or tries next)."""
        return self.connection.broker

    def _client(self, broker: protocol.BrokerUrl) -> aiomqtt.Client:
        config = self.config
        tls = aiomqtt.TLSParameters(ca_certs=config.ca_file, cert_reqs=ssl.CERT_REQUIRED) if broker.tls else None
        client = aiomqtt.Client(
            broker.host,
            broker.port,
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),  # acks must not wait for Nagle
            username=config.username,
            password=config.password,
            identifier=f"{config.name}-{uuid.uuid4().hex[:8]}",
            tls_params=tls,
            keepalive=config.keepalive_s,
            timeout=10,
        )
        # Back-pressure: PUBACK a message only once it is handled (`_receive`), not when paho reads it. The broker
        # then has at most its limit of unacknowledged deliveries out to the ATN (mosquitto's max_inflight_messages,
        # 20; RabbitMQ's mqtt.prefetch, 10) and keeps the rest in its queue, instead of an ATN that falls behind
        # growing in memory (1.9 GB at 500 sites). paho 2.x has manual acknowledgements; aiomqtt 2.5 does not
        # expose them yet (empicano/aiomqtt#345), so they are set on its paho client, before it connects.
        client._client.manual_ack_set(True)
        return client

    async def run(self) -> None:
        """Serve until cancelled (with the scripted pause, if configured)."""
        log.info(
            "ATN starting",
            atn=self.config.name,
            sites=list(self.config.sites),
            brokers=[str(b) for b in self.config.brokers],
            heartbeat_s=self.config.heartbeat_s,
            lease_s=self.config.lease_s,
            ledger=self.ledger.path,
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(self._connection(), name="atnsim:connection")
            if self.config.pause_after_s is not None:
                group.create_task(self._scripted_pause(), name="atnsim:pause")

    async def _scripted_pause(self) -> None:
        assert self.config.pause_after_s is not None
        await self.clock.sleep(self.config.pause_after_s)
        self.pause()
        if self.config.pause_for_s is not None:
            await self.clock.sleep(self.config.pause_for_s)
            self.resume()

    async def _connection(self) -> None:
        """Stay connected: on a lost connection, the next broker at once; a backoff once all have failed."""
        await self.connection.run(self._session, self._down)

    def _down(self) -> None:
        self.connected = False
        self._connected.clear()

    async def _session(self, client: aiomqtt.Client) -> None:
        for topic in subscription_filters(self.config.sites):
            await self.connection.subscribe(client, topic)
        while not self._outbox.empty():  # whatever was queued for an earlier connection is stale
            self._outbox.get_nowait()
        self.connected = True
        self._connected.set()
        self._schedule_handback(self.config.sites, immediate=True)
        log.info("ATN connected", broker=self.broker, sites=list(self.config.sites))
        # Not a TaskGroup: on Python 3.11 a failed child cancels this task for good, and the reconnect loop would
        # take the dropped connection for a stop (`run_until_first_failure`).
        await run_until_first_failure(
            {
                "atnsim:receive": self._receive(client),
                "atnsim:beat": self._beat(client),
                "atnsim:outbox": self._send_outbox(client),
            }
        )

    def handle_group(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        """Handle several messages in one ledger transaction (one commit instead of one each); their answers, in
        order. Nothing is answered before the group is committed: answers go out after this returns."""
        with self.ledger.transaction():
            return [answer for topic, payload, retained in messages for answer in self.handle(topic, payload, retained)]

    async def _receive(self, client: aiomqtt.Client) -> None:
        """Handle the messages waiting (up to `GROUP_MAX`, `handle_group`), publish their answers, then acknowledge
        them to the broker (manual PUBACK, `_client`), in the order received. A message the ATN stops or
        disconnects on before that is never taken for handled; its telemetry and events the site sends again
        until they are acknowledged."""
        messages = client.messages
        async for message in messages:
            group = [message]
            while len(messages) and len(group) < GROUP_MAX:  # already received: no wait
                group.append(await anext(messages))
            answers = self.handle_group([incoming(m) for m in group])
            # A group's answers all at once: each task hands its publish to paho as it starts, so they leave in
            # order, and the group waits for one broker round trip, not one per answer.
            await asyncio.gather(*(self._publish(client, topic, answer) for topic, answer in answers))
            for handled in group:
                client._client.ack(handled.mid, handled.qos)  # a no-op for QoS 0

    async def _send_outbox(self, client: aiomqtt.Client) -> None:
        while True:
            topic, payload = await self._outbox.get()
            if not self._paused:
                await self._publish(client, topic, payload)

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: str | bytes) -> None:
        await self.connection.publish(client, topic, payload)

    async def _publish_all(self, client: aiomqtt.Client, messages: list[tuple[str, str | bytes]]) -> None:
        """Publish a round of messages (one per site) together: each task hands its message to paho as it starts,
        so they leave in order, and the round waits for the broker's answers once, not once per site. One at a
        time, 500 sites' heartbeats took 500 round trips, longer than the heartbeat period on a loaded cluster."""
        await asyncio.gather(*(self._publish(client, topic, payload) for topic, payload in messages))

    async def _beat(self, client: aiomqtt.Client) -> None:
        period = self.config.heartbeat_s
        next_beat = next_weather = self.clock.monotonic()
        was_paused = False
        while True:
            self._wake.clear()
            now = self.clock.monotonic()
            if self._paused:
                was_paused = True
                await self._nap(3600.0)  # until resumed
                continue
            if was_paused:
                was_paused, next_beat = False, now
            if now >= next_beat:
                await self._publish_all(
                    client, [(t.heartbeat, self.heartbeat(s).to_json()) for s, t in self.topics.items()]
                )
                next_beat += period
                if next_beat <= now:
                    next_beat = now + period
            feed = self.config.weather
            if feed is not None and now >= next_weather:
                forecast = feed.message(self.clock.now(), self.config.name)
                await self._publish_all(client, [(t.weather, forecast.to_json()) for t in self.topics.values()])
                log.info("weather sent", id=forecast.id, slots=len(forecast.points), sites=len(self.topics))
                next_weather = now + self.config.weather_every_s
            leases: list[tuple[str, str | bytes]] = []
            for site, topics in self.topics.items():
                handback = self._handback[site]
                if now >= self._due[site] or (handback is not None and now >= handback):
                    dispatch = self.make_dispatch(site)
                    leases.append((topics.dispatch, dispatch.to_json()))
                    reason = self.planners[site].reason if self.config.plan else ""
                    log.info("lease sent", site=site, id=dispatch.id, actuators=dispatch.actuators, plan=reason)
                    self._due[site] = now + self.config.lease_s / 2
                    if handback is not None and now >= handback:
                        self._handback[site] = None
            await self._publish_all(client, leases)
            wakes = [next_beat, *self._due.values(), *(h for h in self._handback.values() if h is not None)]
            if feed is not None:
                wakes.append(next_weather)
            await self._nap(min(wakes) - self.clock.monotonic())

    async def _nap(self, seconds: float) -> None:
        """Sleep on the injected clock, or until woken (resume, a site coming online)."""
        if seconds <= 0 or self._wake.is_set():
            await asyncio.sleep(0)
            return
        await sleep_or_wake(self.clock, seconds, self._wake)

    def close(self) -> None:
        self.ledger.close()
        for task in self._planning.values():
            task.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
