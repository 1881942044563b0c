"""The ATN link over MQTT (aiomqtt 2.x): leases and heartbeats in, telemetry from the store out.

- Takes a list of brokers (the nodes of a cluster): on a lost connection it moves to the next one at once and
  backs off (full jitter, 1 to 60 s) only once all have failed in a row (`connection.BrokerConnection`, shared
  with the house broker's link). On every connect it republishes its status (retained,
  with an offline last will), resubscribes and republishes its state (with its period, `every_s`). On a clean
  stop it publishes a retained `online: false` before it disconnects; the last will covers a crash.
- Every command is acknowledged on the `ack` topic, accepted or rejected with a reason. Expired, duplicate,
  replayed, unknown or malformed messages are rejected and never reach the control loop. Commands are never
  retained: a retained dispatch is rejected.
- Telemetry comes from the SQLite outbox in sequence order. The cursor moves only when the ATN acknowledges
  (`atn/telemetry-ack`); after an outage the backlog is replayed in batches marked `historical`, with at most
  `max_unacked_batches` in flight, yielding to the control loop between batches. Live readings linger up to
  `telemetry_linger_s` (or until a batch is full) before they are sent; a replay does not wait.
- Events (`events`) are sent at least once, like telemetry: from the acknowledged point (`atn/events-ack`), a
  cursor kept in the store, so events stored before the link started or while it was away are sent too.
- Silence and lease expiry are the authority's business: the link only hands heartbeats and leases to the
  control loop's inbox, stamped with this controller's clock when they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import aiomqtt
import structlog

from controller import __version__, protocol
from controller.clock import Clock
from controller.control.authority import hold_lease
from controller.control.inbox import AtnInbox
from controller.control.types import Lease, PriceForecast, PricePoint, WeatherForecast, WeatherPoint
from controller.decode import MQTT_LIMITS, STORE_LIMITS
from controller.energy.summary import SummarySchedule, energy_summary
from controller.layout.model import Layout, layout_summary
from controller.links import homeassistant
from controller.links.config import AtnLink
from controller.links.connection import (
    NEWS_WAIT_S,
    BrokerConnection,
    publish_state,
    run_until_first_failure,
    wait_for_news,
)
from controller.links.staterequest import StateRequests
from controller.store import Store

if TYPE_CHECKING:
    from controller.remote.handler import RemoteOverrides

log = structlog.get_logger("hearth.atn")
SEEN_IDS = 1000
HISTORICAL_AFTER_S = 60.0  # a batch whose first reading is older than this is a replay
POLL_S = 0.2
ENERGY_POLL_S = 1.0  # how often the energy publisher looks whether its summary is due
RESEND_AFTER_S = 5.0  # without acknowledgement progress for this long, send again from the acknowledged point
RESEND_MAX_S = 120.0  # ... doubling after each resend that brought no progress, up to this
EVENTS_IN_FLIGHT = 100  # events sent and not yet acknowledged before the forwarder waits
PUBLISHES_IN_FLIGHT = 4  # outstanding telemetry with no acknowledgement progress for this long is sent again
SETPOINT_LIMITS = {"comfort": (10.0, 28.0)}
REMOTE_IN_FLIGHT = 4  # signed override requests carried out at once; more wait (each waits ~2 ticks for its verdict)


WEATHER_KEY = "atn-weather"  # the last accepted weather forecast, so a restart plans with it while it is fresh


class ResendTimer:
    """How long to wait for acknowledgement progress before sending again from the acknowledged point.

    The wait after progress follows how long acknowledgements take, as TCP's retransmission timer does (RFC 6298:
    smoothed delay plus four times its variation), never below `RESEND_AFTER_S` nor above `RESEND_MAX_S`; after a
    resend that brought no progress it doubles (up to `RESEND_MAX_S`). Batches that were sent again are not
    measured (Karn's rule): their acknowledgement may answer either sending.

    A resend fills a gap the broker left; it cannot speed up an ATN that is merely slow. With a fixed 5 s, an ATN
    that fell 5 s behind (a 500-site fleet starting on 2 cores) got every site's whole unacknowledged window again
    every 5 s: its work grew with its lag, it fell further behind (8 minutes, 1.7 GB of queued messages), and
    leases reached sites more than 60 s late. Doubling alone was not enough: any acknowledgement set the wait back
    to 5 s, and an ATN minutes behind acknowledges now and then, so 500 sites still sent ~4 windows a minute each
    (00:56-01:04)."""

    def __init__(self) -> None:
        self.after_s = RESEND_AFTER_S
        self.srtt: float | None = None  # smoothed acknowledgement delay, s
        self.rttvar = 0.0
        self._sent: deque[tuple[int, float]] = deque()  # (last seq of a batch, when it was sent), oldest first
        self._resent_upto = 0  # batches up to here were sent more than once: not measured

    def base(self) -> float:
        if self.srtt is None:
            return RESEND_AFTER_S
        return min(max(self.srtt + 4 * self.rttvar, RESEND_AFTER_S), RESEND_MAX_S)

    def sent(self, seq: int, now: float) -> None:
        if seq > self._resent_upto:
            self._sent.append((seq, now))

    def acked(self, upto: int, now: float) -> None:
        """Measure the newest batch this acknowledgement covers."""
        sample: float | None = None
        while self._sent and self._sent[0][0] <= upto:
            sample = now - self._sent.popleft()[1]
        if sample is None:
            return
        if self.srtt is None:
            self.srtt, self.rttvar = sample, sample / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - sample)
            self.srtt = 0.875 * self.srtt + 0.125 * sample

    def progress(self) -> None:
        self.after_s = self.base()

    def forget(self) -> None:
        """Everything sent so far will be sent again (a resend, a reconnect): none of it is measured."""
        if self._sent:
            self._resent_upto = max(self._resent_upto, self._sent[-1][0])
        self._sent.clear()

    def resent(self) -> None:
        self.forget()
        self.after_s = min(self.after_s * 2, RESEND_MAX_S)


def forecast_of(weather: protocol.Weather, received_at: float) -> WeatherForecast:
    points = tuple(WeatherPoint(start=p.start, end=p.end, outdoor_c=p.outdoor_c) for p in weather.points)
    return WeatherForecast(received_at=received_at, issued_at=weather.issued_at, points=points)


def restore_weather(store: Store) -> WeatherForecast | None:
    """The last accepted weather forecast kept in the store, read back through the parse path (None: none, or it
    no longer reads; the planner then uses persistence, and says so)."""
    kept = store.recall(WEATHER_KEY)
    if not isinstance(kept, dict) or not isinstance(kept.get("received_at"), int | float):
        return None
    try:
        message = protocol.parse(protocol.Weather, json.dumps(kept.get("message")).encode(), STORE_LIMITS)
    except protocol.Rejected as rejected:
        log.warning("kept weather forecast not used", reason=rejected.reason)
        return None
    return forecast_of(message, float(kept["received_at"]))


class AtnLinkRunner:
    """One controller's connection to its ATN's broker."""

    def __init__(
        self,
        config: AtnLink,
        layout: Layout,
        store: Store,
        inbox: AtnInbox,
        clock: Clock,
        state: Callable[[], protocol.State],
        wake: Callable[[], None] = lambda: None,
        rng: random.Random | None = None,
        remote: RemoteOverrides | None = None,
        signature: Callable[[], Hashable] | None = None,
    ) -> None:
        self.config = config
        self.layout = layout
        self.site = layout.site.id
        self.topics = protocol.Topics(self.site)
        self.store = store
        self.inbox = inbox
        self.clock = clock
        self.state = state
        self.signature = signature  # `change_signature` of what `state` would say, without building it
        self.wake = wake
        self.rng = rng or random.Random()
        self.connected = False
        self.last_heartbeat: float | None = None
        self.lease: Lease | None = store.latest_lease()
        self.sent_upto = store.acked_seq()
        self.outstanding: deque[int] = deque()
        self._seen: deque[str] = deque(maxlen=SEEN_IDS)
        self._acked = asyncio.Event()
        self._progress_seq = 0
        self._progress_at = 0.0
        self._telemetry_resend = ResendTimer()
        self._held: tuple[int, float, float] | None = None  # unsent readings lingering: (after seq, first ts, seen at)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._published: deque[asyncio.Task[None]] = deque()
        self.events_sent = store.events_acked()
        self._events_ack_seen = False
        self.rejected = 0
        self._discovery_topics: set[str] = set()
        self.remote = remote
        self._remote_slots = asyncio.Semaphore(REMOTE_IN_FLIGHT)
        self._remote_tasks: set[asyncio.Task[None]] = set()
        self.energy_schedule = SummarySchedule(ZoneInfo(layout.site.timezone))
        self.connection = BrokerConnection.for_link("ATN link", config, self.site, clock, self.rng, logger=log)
        self.state_requests = StateRequests(self.site, self.rng)
        # News instead of polling: the store says when it committed readings or events, the control loop when it
        # ticked (`state_changed`, wired by the runtime), and acknowledgements make room for more events.
        self._state_news = asyncio.Event()
        self._readings_news = asyncio.Event()
        self._events_news = asyncio.Event()
        store.on_commit(self._committed)

    def _committed(self) -> None:
        self._readings_news.set()
        self._events_news.set()

    def state_changed(self) -> None:
        """The controller's state may say something new (called after every control tick)."""
        self._state_news.set()

    @property
    def broker(self) -> str:
        """The broker this link is on (or trying next): `mqtts://node2.example:8883`."""
        return self.connection.broker

    # ---- what the state message says about the link ----------------------------------------------------

    def link_state(self) -> protocol.LinkState:
        lease = self.lease
        acked = self.store.acked_seq()
        # Live readings lingering before they are sent are not a backlog (a house would always show one).
        backlog = max(0, (self.sent_upto if self._lingering() else self.store.last_seq()) - acked)
        oldest = self.store.readings_after(acked, 1) if backlog else []
        return protocol.LinkState(
            connected=self.connected,
            last_heartbeat=self.last_heartbeat,
            silence_s=self.layout.control.authority.silence_s,
            lease_id=lease.id if lease else None,
            lease_valid_until=lease.valid_until if lease else None,
            backlog=backlog,
            oldest_unacked_ts=oldest[0].ts if oldest else None,
        )

    # ---- messages in --------------------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes, retained: bool = False) -> list[tuple[str, bytes]]:
        """Handle one incoming message; return what to publish in answer. Never raises for bad input."""
        now = self.clock.now()
        try:
            if topic == self.topics.heartbeat:
                protocol.parse(protocol.Heartbeat, payload)
                self.last_heartbeat = now
                self.inbox.heartbeat(self.clock.monotonic())
                return []
            if topic == self.topics.telemetry_ack:
                ack = protocol.parse(protocol.TelemetryAck, payload)
                self._telemetry_acked(ack.upto_seq)
                return []
            if topic == self.topics.events_ack:
                self._events_acked(protocol.parse(protocol.EventAck, payload).upto_seq)
                return []
            if topic == protocol.STATE_REQUEST_TOPIC:
                self.state_requests.asked(protocol.parse(protocol.StateRequest, payload), self.clock.monotonic())
                return []
            if topic == self.topics.status:
                self._own_status(protocol.parse(protocol.Status, payload), retained)
                return []
            if topic == self.topics.weather:
                return [self._ack(now, topic, *self._weather(payload, now))]
            if topic == self.topics.dispatch:
                if retained:
                    raise protocol.Rejected("commands must not be retained; a retained dispatch is stale")
                return [self._ack(now, topic, self._dispatch(payload, now), True, "lease accepted")]
            raise protocol.Rejected("this controller does not take messages on that topic")
        except protocol.Rejected as rejection:
            self.rejected += 1
            if topic == protocol.STATE_REQUEST_TOPIC:  # anyone may ask: not worth an ack on this site's topic
                log.info("state request ignored", reason=rejection.reason)
                return []
            command_id = protocol.id_of(payload, MQTT_LIMITS)
            log.warning("message rejected", topic=topic, id=command_id, reason=rejection.reason)
            return [self._ack(now, topic, command_id, False, rejection.reason)]

    def _own_status(self, status: protocol.Status, retained: bool) -> None:
        """This site's own status, as the broker has it. `online: false` while this link is connected is not true:
        it is the last will of a connection this controller has left, e.g. a half-open one on a cluster node it
        moved away from (each node has its own client id, so the node closes it only when its keepalive runs
        out, and then publishes its will). Retained, it would show every monitor and Home Assistant an offline
        site that is running. So it is answered like a state request: status (online), layout and state again."""
        if status.online or not self.connected or status.site != self.site:
            return
        log.warning(
            "stale offline status answered",
            reason="the broker published online: false (a last will of a connection this link left) while the link "
            "is up; online is sent again",
            status_ts=status.ts,
            retained=retained,
        )
        self.state_requests.asked(protocol.StateRequest(site=self.site), self.clock.monotonic())

    def _ack(self, now: float, topic: str, command_id: str | None, accepted: bool, reason: str) -> tuple[str, bytes]:
        message = protocol.Ack(ts=now, topic=topic, id=command_id, accepted=accepted, reason=reason)
        return self.topics.ack, message.to_json()

    def _dispatch(self, payload: bytes, now: float) -> str:
        dispatch = protocol.parse(protocol.Dispatch, payload)
        if dispatch.valid_until <= now:
            raise protocol.Rejected(f"lease {dispatch.id} expired {now - dispatch.valid_until:.1f} s ago")
        if now - dispatch.issued_at > protocol.MAX_DISPATCH_AGE_S:
            raise protocol.Rejected(
                f"stale lease {dispatch.id}: issued {now - dispatch.issued_at:.0f} s ago; a dispatch older than "
                f"{protocol.MAX_DISPATCH_AGE_S:g} s is refused, retained or not"
            )
        if dispatch.issued_at > now + protocol.MAX_CLOCK_SKEW_S:
            raise protocol.Rejected(f"lease {dispatch.id} is issued {dispatch.issued_at - now:.0f} s in the future")
        if dispatch.id in self._seen:
            raise protocol.Rejected(f"duplicate lease id {dispatch.id}")
        if self.lease is not None and dispatch.issued_at < self.lease.issued_at:
            raise protocol.Rejected(f"replayed lease {dispatch.id}: issued before the current lease {self.lease.id}")
        unknown = sorted(set(dispatch.actuators) - set(self.layout.actuators))
        if unknown:
            known = ", ".join(self.layout.actuators)
            raise protocol.Rejected(f"unknown actuator(s) {', '.join(unknown)}; this site has {known}")
        for name, value in dispatch.setpoints.items():
            if name not in SETPOINT_LIMITS:
                raise protocol.Rejected(f"unknown setpoint {name}; known: {', '.join(SETPOINT_LIMITS)}")
            low, high = SETPOINT_LIMITS[name]
            if not low <= value <= high:
                raise protocol.Rejected(f"setpoint {name} = {value} is outside {low:g}..{high:g}")
        lease = Lease(
            id=dispatch.id,
            issued_at=dispatch.issued_at,
            valid_until=dispatch.valid_until,
            received_at=now,
            actuators=dispatch.actuators,
            setpoints=dispatch.setpoints,
        )
        self._seen.append(dispatch.id)
        self.lease = lease
        self.inbox.dispatch(hold_lease(lease, now, self.clock.monotonic()))
        self.store.save_lease(lease)
        if dispatch.prices:
            forecast = PriceForecast(
                received_at=now,
                points=tuple(PricePoint(start=p.start, end=p.end, price=p.price) for p in dispatch.prices),
            )
            self.inbox.forecast = forecast
            self.store.save_forecast(forecast)
        self.wake()
        return dispatch.id

    def _weather(self, payload: bytes, now: float) -> tuple[str, bool, str]:
        """Take a weather forecast for the planner (retained or not: its age decides)."""
        weather = protocol.parse(protocol.Weather, payload)
        if weather.issued_at > now + protocol.MAX_CLOCK_SKEW_S:
            raise protocol.Rejected(f"weather {weather.id} is issued {weather.issued_at - now:.0f} s in the future")
        age = now - weather.issued_at
        if age > protocol.MAX_WEATHER_AGE_S:
            raise protocol.Rejected(
                f"stale weather {weather.id}: issued {age / 3600:.1f} h ago (at most "
                f"{protocol.MAX_WEATHER_AGE_S / 3600:g} h); the planner keeps its persistence forecast"
            )
        self.inbox.weather = forecast_of(weather, now)
        self.store.remember(WEATHER_KEY, {"received_at": now, "message": weather.model_dump(mode="json")})
        end = datetime.fromtimestamp(weather.points[-1].end, UTC).strftime("%Y-%m-%d %H:%M UTC")
        return weather.id, True, f"weather accepted: {len(weather.points)} slots up to {end}"

    def _telemetry_acked(self, upto: int) -> None:
        self.store.atn_holds_upto(upto)  # beyond what this store ever issued: it lost commits; move past them
        upto = min(upto, self.sent_upto)  # never past what was sent
        self.store.ack_upto(upto)
        self._telemetry_resend.acked(upto, time.monotonic())  # acknowledgement delays are a matter of real time
        while self.outstanding and self.outstanding[0] <= upto:
            self.outstanding.popleft()
        self._acked.set()

    # ---- the connection -------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected, forever: on a lost connection move to the next broker at once, and back off (full
        jitter) only once every broker has failed in a row (`BrokerConnection`, `BrokerRotation`)."""
        await self.connection.run(self._session, self._down)

    def _down(self) -> None:
        self.connected = False

    async def _session(self, client: aiomqtt.Client) -> None:
        for topic, payload in self._introduction():
            await self._publish(client, topic, payload, qos=1, retain=True)
        # One filter for everything the ATN sends: each subscription is a binding on RabbitMQ (~12 ms on a loaded
        # cluster), and after a node loss hundreds of sites subscribe again at once on the nodes left.
        # Its own status too: a stale last will there is answered (`_own_status`).
        for topic in (self.topics.from_atn_filter, protocol.STATE_REQUEST_TOPIC, self.topics.status):
            await self._subscribe(client, topic)
        if self.remote is not None:
            await self._subscribe(client, self.topics.override)
        if self.config.home_assistant:
            self._discovery_topics = await homeassistant.subscribe(client, self.layout)
        self.connected = True
        self.sent_upto = self.store.acked_seq()  # whatever was in flight and not acknowledged is sent again
        self.outstanding.clear()
        self._telemetry_resend.forget()
        log.info("ATN link up", broker=self.broker, resume_from_seq=self.sent_upto)
        await self._publish_state(client)
        try:
            await run_until_first_failure(
                {
                    "atn:receive": self._receive(client),
                    "atn:telemetry": self._forward_telemetry(client),
                    "atn:state": self._state_publisher(client),
                    "atn:events": self._forward_events(client),
                    "atn:energy": self._energy_publisher(client),
                }
            )
        except asyncio.CancelledError:
            await self._say_offline(client)
            raise

    async def _publish(
        self, client: aiomqtt.Client, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False
    ) -> None:
        await self.connection.publish(client, topic, payload, qos=qos, retain=retain)

    async def _subscribe(self, client: aiomqtt.Client, topic: str) -> None:
        await self.connection.subscribe(client, topic)

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        """A clean stop disconnects cleanly, so the broker never sends the last will: say `online: false` (retained)
        first, or every monitor would show the last values as live for ever. Bounded: a stop never waits on a
        broker that does not answer."""
        offline = protocol.Status(site=self.site, online=False, ts=self.clock.now(), version=__version__)
        try:
            async with asyncio.timeout(2.0):
                await self._publish(client, self.topics.status, offline.to_json(), qos=1, retain=True)
        except (aiomqtt.MqttError, TimeoutError) as error:
            log.warning("could not say offline before stopping", error=str(error) or type(error).__name__)
        else:
            log.info("said offline before stopping", topic=self.topics.status)

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            if message.topic.value.startswith("homeassistant/"):
                self._discovery_topics = await homeassistant.answer(
                    client, self.layout, message.topic.value, payload, self._discovery_topics
                )
                continue
            if self.remote is not None and message.topic.value == self.topics.override:
                task = asyncio.create_task(self._remote(client, payload, bool(message.retain)), name="atn:remote")
                self._remote_tasks.add(task)
                task.add_done_callback(self._remote_tasks.discard)
                continue
            for topic, answer in self.handle(message.topic.value, payload, bool(message.retain)):
                await self._publish(client, topic, answer, qos=1)

    async def _remote(self, client: aiomqtt.Client, payload: bytes, retained: bool) -> None:
        """One signed override request, on a task of its own: its answer waits for a control decision, and the
        heartbeats and leases behind it must not."""
        assert self.remote is not None
        async with self._remote_slots:
            answer = await self.remote.handle(payload, retained)
        try:
            await self._publish(client, self.topics.override_reply, answer.to_json(), qos=1)
        except aiomqtt.MqttError as error:
            log.warning("override reply not sent", id=answer.id, error=str(error))

    async def _energy_publisher(self, client: aiomqtt.Client) -> None:
        """The energy summary for monitors (`EnergySummary`, retained on `energy`): at connect, at each local day
        change, every `SUMMARY_EVERY_S` (real time: a demo at speed would otherwise send it every second) and when
        someone asks for a fresh state."""
        schedule = self.energy_schedule
        schedule.connected()
        while True:
            if schedule.due(self.clock.now(), time.monotonic()):
                try:
                    summary = energy_summary(self.store, self.layout, self.clock.now())
                except sqlite3.Error as error:  # a failing store: the link carries on, the next period tries again
                    log.warning("energy summary not built", error=str(error))
                else:
                    await self._publish(client, self.topics.energy, summary.to_json(), qos=1, retain=True)
                schedule.sent(self.clock.now(), time.monotonic())
            await asyncio.sleep(ENERGY_POLL_S)

    def _state(self) -> protocol.State:
        """The state as published: with its period, so a reader can tell a quiet controller from a live one."""
        return self.state().model_copy(update={"every_s": self.config.state_every_s})

    async def _publish_state(self, client: aiomqtt.Client) -> None:
        await self._publish(client, self.topics.state, self._state().to_json(), qos=1, retain=True)

    async def _state_publisher(self, client: aiomqtt.Client) -> None:
        await publish_state(
            self.connection,
            client,
            self.topics,
            self._state,
            self.clock,
            self.config.state_every_s,
            self.state_requests,
            self._introduction,
            self._state_news,
            self.signature,
        )

    def _introduction(self) -> list[tuple[str, str | bytes]]:
        """What a reader needs besides the state (retained): sent on every connect and with a requested state. The
        energy summary goes with them too, from its own task (it queries the store): this marks it due."""
        self.energy_schedule.asked = True
        online = protocol.Status(site=self.site, online=True, ts=self.clock.now(), version=__version__)
        summary = protocol.LayoutSummary(site=self.site, ts=self.clock.now(), layout=layout_summary(self.layout))
        return [(self.topics.status, online.to_json()), (self.topics.layout, summary.to_json())]

    async def _forward_events(self, client: aiomqtt.Client) -> None:
        """Send events at least once, in seq order, from the acknowledged point: after a start or a reconnect that
        includes every event stored before the link came up or while it was away. Once the ATN has shown that it
        acknowledges events, at most `EVENTS_IN_FLIGHT` wait for an acknowledgement, and a stall of
        `ResendTimer` sends again from the acknowledged point (filling a gap the broker left)."""
        self.events_sent = self.store.events_acked()
        progress_seq, progress_at = self.events_sent, time.monotonic()
        resend = ResendTimer()
        while True:
            acked, now = self.store.events_acked(), time.monotonic()  # progress is a matter of real time
            if acked > progress_seq:
                resend.progress()
            if acked > progress_seq or self.events_sent <= acked:
                progress_seq, progress_at = acked, now
            elif self._events_ack_seen and now - progress_at >= resend.after_s:
                log.info("resending events", from_seq=acked + 1, reason=f"no acknowledgement for {resend.after_s:g} s")
                self.events_sent, progress_at = acked, now
                resend.resent()
            room = EVENTS_IN_FLIGHT - (self.events_sent - acked) if self._events_ack_seen else EVENTS_IN_FLIGHT
            if room > 0:
                for seq, event in self.store.events_after(self.events_sent, limit=room):
                    message = protocol.EventMsg(
                        site=self.site, seq=seq, ts=event.ts, kind=event.kind, message=event.message, data=event.data
                    )
                    await self._publish(client, self.topics.events, message.to_json(), qos=1)
                    self.events_sent = seq
            await wait_for_news(self._events_news, NEWS_WAIT_S)

    def _events_acked(self, upto: int) -> None:
        self._events_ack_seen = True
        self.store.ack_events_upto(min(upto, self.events_sent))  # never past what was sent
        self._events_news.set()  # room for more

    def _raise_publish_failure(self) -> None:
        """A publish that failed (the connection dropped) ends the session, so the link reconnects."""
        while self._published and self._published[0].done():
            task = self._published.popleft()
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def _resend_if_stalled(self, now: float) -> None:
        """Go back to the acknowledged point when acknowledgements have not advanced for `ResendTimer` while
        batches are outstanding. Not "when no acknowledgement arrives": an ATN with a gap (a batch the broker
        dropped while the ATN was reconnecting) keeps acknowledging up to the gap, and only a resend fills it."""
        acked = self.store.acked_seq()
        if acked > self._progress_seq:
            self._telemetry_resend.progress()
        if acked > self._progress_seq or not self.outstanding:
            self._progress_seq, self._progress_at = acked, now
            return
        if now - self._progress_at >= self._telemetry_resend.after_s:
            log.info(
                "resending telemetry",
                from_seq=acked + 1,
                reason=f"no acknowledgement progress for {self._telemetry_resend.after_s:g} s",
            )
            self.sent_upto = acked
            self.outstanding.clear()
            self._progress_at = now
            self._telemetry_resend.resent()

    def _linger_left(self) -> float:
        """How much longer the unsent readings wait before they are sent (0: send now): live readings wait until
        the oldest is `telemetry_linger_s` old, or a batch is full, so a site sends one message and gets one
        acknowledgement per linger instead of per commit (a 500-site fleet: ~2 messages per site and second for
        telemetry alone). Readings already that old are not held: a replay after an outage, a resend. Measured
        both on the readings' wall time and, from when this link first saw them, on the monotonic clock, so a
        wall clock stepped back never holds them longer."""
        linger = self.config.telemetry_linger_s
        if linger <= 0 or self.store.last_seq() <= self.sent_upto:
            return 0.0
        if self._batch_waiting():
            return 0.0
        if self._held is None or self._held[0] != self.sent_upto:
            first = self.store.telemetry_after(self.sent_upto, 1)
            if not first:
                return 0.0
            self._held = (self.sent_upto, first[0][1], self.clock.monotonic())
        return self._held_left(self._held)

    def _held_left(self, held: tuple[int, float, float]) -> float:
        _, first_ts, seen_at = held
        age = max(self.clock.now() - first_ts, self.clock.monotonic() - seen_at)
        return max(0.0, self.config.telemetry_linger_s - age)

    def _lingering(self) -> bool:
        """Whether the readings not yet sent are live ones the connected link holds for their linger."""
        held = self._held
        if not self.connected or held is None or held[0] != self.sent_upto:
            return False
        return not self._batch_waiting() and self._held_left(held) > 0

    def _batch_waiting(self) -> bool:
        """A full batch (or more) is waiting to be sent: it is not held."""
        return self.store.last_seq() - self.sent_upto >= self.config.telemetry_batch

    async def _forward_telemetry(self, client: aiomqtt.Client) -> None:
        self._in_flight.clear()
        self._published.clear()
        try:
            await self._forward_telemetry_batches(client)
        finally:
            for publish in list(self._in_flight):
                publish.cancel()

    async def _forward_telemetry_batches(self, client: aiomqtt.Client) -> None:
        batch = self.config.telemetry_batch
        self._progress_seq, self._progress_at = self.store.acked_seq(), time.monotonic()
        while True:
            self._resend_if_stalled(time.monotonic())  # acknowledgement progress is a matter of real time
            if len(self.outstanding) >= self.config.max_unacked_batches:
                self._acked.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_S):  # not wait_for: on 3.11 it can swallow a cancellation
                        await self._acked.wait()
                continue
            self._raise_publish_failure()
            if len(self._in_flight) >= PUBLISHES_IN_FLIGHT:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            linger = self._linger_left()
            if linger > 0:
                await wait_for_news(self._readings_news, min(linger, NEWS_WAIT_S))
                continue
            rows = self.store.telemetry_after(self.sent_upto, batch)
            if not rows:
                await wait_for_news(self._readings_news, NEWS_WAIT_S)
                continue
            await asyncio.sleep(0)  # let the control tick run between the read and the encode
            first, last = rows[0], rows[-1]
            body = {
                "v": protocol.VERSION,
                "site": self.site,
                # The batch covers every seq after the previous one: a seq in between without a row does not
                # exist (skipped after a power cut, or dropped by the size cap), so the ATN need not wait for it.
                "first_seq": self.sent_upto + 1,
                "last_seq": last[0],
                "historical": self.clock.now() - first[1] > HISTORICAL_AFTER_S,
                "readings": rows,
            }
            payload = json.dumps(body, separators=(",", ":"))
            # Several publishes in flight: aiomqtt's publish waits for its PUBACK, and one at a time would make
            # the replay rate one batch per round trip. MQTT keeps them in order on the connection.
            publish = asyncio.create_task(self._publish(client, self.topics.telemetry, payload, qos=1))
            self._in_flight.add(publish)
            publish.add_done_callback(self._in_flight.discard)
            self._published.append(publish)
            self.sent_upto = last[0]
            self.outstanding.append(last[0])
            self._telemetry_resend.sent(last[0], time.monotonic())
            await asyncio.sleep(0)  # let the control tick in between batches
