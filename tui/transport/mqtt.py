"""The site's MQTT topics: what a remote monitor sees, and with a technician's key, overrides.

It subscribes to the retained `state`, `status`, `layout` and `energy` topics and to `events` and `telemetry`, and
on every connect publishes a state request for its site (docs/protocol.md, "State requests"), so it does not depend
on retained messages (RabbitMQ keeps them on one node); a monitor account may publish that and nothing else.
Without a key it publishes nothing more, and the TUI shows no override controls. `request()` answers `layout` from
the layout summary, `history` from the telemetry seen since it started (at most HISTORY_POINTS per channel) and
`energy` from the controller's energy summary (the last 30 days, month and season). The Energy screen's day plot
(`energy_day`) is not published: it is a query of the store's readings for any day, and the controller answers it
on its local socket only.

With a technician's key (`--key FILE`, see controller/remote) an override, keep-alive or release becomes a
`SignedOverride` on `hearth/v1/<site>/override`; the controller's `Response` comes back on `override/reply`,
matched by the request's id. The broker account must be a technician's (only those may publish requests), and the
site must list the key. Alarm acknowledgements are not available over MQTT; `request()` says so in a Response
instead of sending anything.

Several broker URLs (the nodes of a cluster) are tried in turn (`controller.links.brokers.BrokerRotation`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from controller.protocol import (
    DEFAULT_STATE_EVERY_S,
    QUIET_AFTER_PERIODS,
    STATE_REQUEST_TOPIC,
    EnergySummary,
    EventMsg,
    HistoryPoint,
    LayoutSummary,
    Rejected,
    Request,
    Response,
    State,
    StateRequest,
    Status,
    Telemetry,
    Topics,
    parse,
)
from tui.transport import (
    READ_ONLY_OPS,
    Backoff,
    ConnectionStatus,
    EventCallback,
    StateCallback,
    StatusCallback,
    TransportError,
)
from tui.transport.watch import BrokerWatch

if TYPE_CHECKING:
    import aiomqtt

    from controller.remote.signing import Signer

log = logging.getLogger(__name__)
QUIET_CHECK_S = 2.0

HISTORY_POINTS = 3_600
"""Telemetry kept per channel for the History screen: an hour of a channel that changes every second, many
hours of one stored on change (bounded: a TUI left open for a month keeps the same memory)."""
HISTORY_SCOPE = "telemetry seen since this TUI started"


SIGNED_OPS = frozenset({"override", "keepalive", "release"})
ENERGY_WAIT_S = 3.0  # how long the Energy screen waits for a fresh summary after asking for one
ENERGY_DAY_OVER_MQTT = "energy_day is not available over MQTT: a day's plot is a query of the store's readings"


class MqttTransport:
    """Subscribes to a site's `state`, `events` and `status` topics; read-only unless it has a `signer`."""

    def __init__(
        self,
        url: str | Sequence[str],
        site: str,
        username: str | None = None,
        password_file: str | None = None,
        ca_file: str | None = None,
        *,
        insecure: bool = False,
        backoff: Backoff | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.watch = BrokerWatch(url, username, password_file, ca_file, kind="tui", insecure=insecure, backoff=backoff)
        self.brokers = self.watch.brokers
        self.signer = signer
        self.read_only = signer is None
        self._client_now: aiomqtt.Client | None = None
        self._waiting: dict[str, asyncio.Future[Response]] = {}
        self.site = site
        self.topics = Topics(site)
        self.skipped = 0
        self._username = username
        self._controller_online: bool | None = None
        self._state_ts: float | None = None
        self._state_every_s: float | None = None
        self.history_scope = HISTORY_SCOPE
        self._layout: dict[str, Any] | None = None
        self._energy: EnergySummary | None = None
        self._energy_came = asyncio.Event()
        self._history: dict[str, deque[tuple[float, float | None, str]]] = {}

    @property
    def broker(self) -> str:
        """The broker the TUI is on (or tries next)."""
        return self.watch.broker

    @property
    def description(self) -> str:
        """For the header: which broker of the list it is on, so a failover shows."""
        return f"MQTT {self.broker}{self.watch.which} site {self.site}"

    async def run(self, on_state: StateCallback, on_event: EventCallback, on_status: StatusCallback) -> None:
        topics = self.topics
        wanted = [topics.status, topics.state, topics.events, topics.layout, topics.telemetry, topics.energy]
        if self.signer is not None:
            wanted.append(topics.override_reply)

        async def session(client: aiomqtt.Client) -> None:
            self._client_now = client
            on_status(self._connected())
            watcher = asyncio.create_task(self._watch_quiet(on_status), name="tui:quiet")
            try:
                async for message in client.messages:
                    payload = message.payload
                    if isinstance(payload, bytearray):
                        payload = bytes(payload)
                    if isinstance(payload, bytes | str):
                        self._dispatch(message.topic.value, payload, on_state, on_event, on_status)
            finally:
                self._client_now = None
                watcher.cancel()

        await self.watch.run(wanted, StateRequest(site=self.site), session, on_status)

    async def request(self, request: Request, timeout_s: float = 5.0) -> Response:
        if request.op == "subscribe":
            return Response(id=request.id, ok=True, role="monitor" if self.signer is None else "technician")
        if request.op == "layout":
            if self._layout is None:
                return Response(id=request.id, ok=False, error="the controller has not published its layout over MQTT")
            return Response(id=request.id, ok=True, role="monitor", layout=self._layout)
        if request.op == "history" and request.channel:
            return Response(
                id=request.id, ok=True, role="monitor", history=self.history(request.channel, request.hours)
            )
        if request.op == "energy":
            await self._fresh_energy(min(timeout_s, ENERGY_WAIT_S))
            return self._energy_answer(request)
        if request.op == "energy_day":
            return Response(id=request.id, ok=False, error=ENERGY_DAY_OVER_MQTT)
        if self.signer is not None and request.op in SIGNED_OPS:
            return await self._signed(self.signer, request, timeout_s)
        if request.op in READ_ONLY_OPS and self.signer is None:
            return Response(id=request.id, ok=False, error="read-only over MQTT")
        return Response(id=request.id, ok=False, error=f"{request.op} is not available over MQTT")

    async def _fresh_energy(self, timeout_s: float) -> None:
        """Ask the controller for a fresh state (its energy summary goes out with it) and wait a little for the
        summary; without an answer in time (another reader asked a moment ago: the controller answers at most once
        every few seconds) the last one stands."""
        client = self._client_now
        if client is None:
            return
        self._energy_came.clear()
        try:
            await client.publish(STATE_REQUEST_TOPIC, StateRequest(site=self.site).to_json(), qos=1)
            async with asyncio.timeout(timeout_s):
                await self._energy_came.wait()
        except TimeoutError:
            pass
        except Exception as error:  # aiomqtt.MqttError: imported lazily; the last summary stands
            log.warning("state request not sent: %s", error)

    def _energy_answer(self, request: Request) -> Response:
        """The daily totals from the controller's energy summary (its last `days`), with its month/season rows."""
        summary = self._energy
        if summary is None:
            return Response(
                id=request.id,
                ok=False,
                error="the controller has not published its energy summary over MQTT yet (it does at connect, at "
                "each local day change and every 15 min)",
            )
        days = summary.days[-request.days :] if request.days else summary.days
        return Response(id=request.id, ok=True, role="monitor", energy=days, energy_totals=summary.totals)

    def history(self, channel: str, hours: float | None) -> list[HistoryPoint]:
        """The telemetry of `channel` seen so far, in time order, within `hours` of the newest."""
        seen = sorted(self._history.get(channel, ()))
        if not seen:
            return []
        since = seen[-1][0] - (hours or 6.0) * 3600
        return [HistoryPoint(ts=ts, value=value, quality=quality) for ts, value, quality in seen if ts >= since]

    async def _signed(self, signer: Signer, request: Request, timeout_s: float) -> Response:
        """Sign `request`, publish it and wait for the controller's answer (TransportError when none comes)."""
        client = self._client_now
        if client is None:
            raise TransportError("not connected to the broker")
        op = request.op
        assert op in SIGNED_OPS
        signed = signer.request(
            op,  # type: ignore[arg-type]
            time.time(),
            target=request.target,
            value=request.value,
            duration_s=request.duration_s,
            override_id=request.override_id,
            reason=request.reason,
        )
        answer: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._waiting[signed.id] = answer
        try:
            publish = asyncio.ensure_future(client.publish(self.topics.override, signed.wire(), qos=1))
            await asyncio.sleep(0)  # paho has queued the packet now, and asked the event loop to write it later
            # Write it now: "later" comes after Textual has redrawn the form (a few hundred ms on a busy Pi), which
            # would otherwise sit between the keypress and the relay. (The local socket's write is immediate too.)
            client._client.loop_write()
            await publish
            async with asyncio.timeout(timeout_s):
                response = await answer
        except TimeoutError:
            raise TransportError(
                f"no answer from the controller within {timeout_s:g} s (is remote_overrides on for this site, and "
                "is this broker account a technician's?)"
            ) from None
        except Exception as error:  # aiomqtt.MqttError: imported lazily
            raise TransportError(f"not sent: {error}") from None
        finally:
            self._waiting.pop(signed.id, None)
        return response.model_copy(update={"id": request.id})

    def _connected(self) -> ConnectionStatus:
        online, detail = self._controller_online, ""
        quiet = self.quiet_for(time.time())
        if online is False:
            detail = "its status says offline"
        elif quiet is not None:
            online, detail = False, f"quiet: no state for {quiet:.0f} s"
        if self.signer is not None:
            return ConnectionStatus(
                "connected",
                detail=detail,
                user=self.signer.technician,
                role="technician",
                read_only=False,
                controller_online=online,
            )
        return ConnectionStatus(
            "connected", detail=detail, user=self._username, role="monitor", controller_online=online
        )

    def quiet_for(self, now: float) -> float | None:
        """How long the controller has been quiet (its newest state is older than `QUIET_AFTER_PERIODS` of its
        own publishing period), or None while it is not. A crash the broker has not noticed yet, a network cut or
        a dead controller all look like this: its values are shown as unavailable, never as live."""
        if self._state_ts is None:
            return None
        age = now - self._state_ts
        return age if age > QUIET_AFTER_PERIODS * (self._state_every_s or DEFAULT_STATE_EVERY_S) else None

    async def _watch_quiet(self, on_status: StatusCallback) -> None:
        was_quiet = False
        while True:
            await asyncio.sleep(QUIET_CHECK_S)
            quiet = self.quiet_for(time.time()) is not None
            if quiet != was_quiet:
                was_quiet = quiet
                on_status(self._connected())

    def _dispatch(
        self,
        topic: str,
        payload: bytes | str,
        on_state: StateCallback,
        on_event: EventCallback,
        on_status: StatusCallback,
    ) -> None:
        try:
            if topic == self.topics.state:
                state = parse(State, payload)
                was_quiet = self.quiet_for(time.time()) is not None
                self._state_ts, self._state_every_s = state.ts, state.every_s
                on_state(state)
                if was_quiet or self.quiet_for(time.time()) is not None:
                    on_status(self._connected())
            elif topic == self.topics.events:
                on_event(parse(EventMsg, payload))
            elif topic == self.topics.telemetry:
                for _seq, ts, channel, value, quality in parse(Telemetry, payload).readings:
                    points = self._history.get(channel)
                    if points is None:
                        points = self._history[channel] = deque(maxlen=HISTORY_POINTS)
                    points.append((ts, value, quality))
            elif topic == self.topics.energy:
                if payload:
                    self._energy = parse(EnergySummary, payload)
                    self._energy_came.set()
            elif topic == self.topics.layout:
                if payload:
                    self._layout = parse(LayoutSummary, payload).layout
            elif topic == self.topics.override_reply:
                response = parse(Response, payload)
                waiting = self._waiting.get(response.id)
                if waiting is not None and not waiting.done():
                    waiting.set_result(response)
            elif topic == self.topics.status:
                if not payload:  # a cleared retained status
                    return
                self._controller_online = parse(Status, payload).online
                on_status(self._connected())
        except Rejected as error:
            self.skipped += 1
            log.warning("skipped a message on %s: %s", topic, error.reason)
