"""Protocol v1: every message Hearth exchanges over MQTT (and, later, the local socket), as strict models.

One module for the controller, the reference ATN (`hearth atn-sim`) and the TUI, so the three can never drift
apart. See docs/protocol.md for topics, QoS and retain flags. All messages are JSON objects with `"v": 1`, UTC
epoch-second timestamps and SI units; unknown keys are rejected, so a typo in a command is an error, not a
silently ignored field.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from controller.decode import MQTT_LIMITS, as_bytes, describe
from controller.decode import Limits as Limits
from controller.decode import Rejected as Rejected
from controller.decode import decode_json as decode_json
from controller.decode import id_of as id_of

VERSION = 1
PREFIX = "hearth/v1"
MAX_LEASE_S = 24 * 3600
MAX_CLOCK_SKEW_S = 60.0
# A dispatch older than this (its issued_at against the controller's clock) is stale and refused, retained or not:
# an ATN sends a lease the moment it issues it, so only a replay (a retained message, a stuck queue) is older.
MAX_DISPATCH_AGE_S = 60.0
# A retained state older than this many of its own periods (`State.every_s`) means the controller has gone quiet.
QUIET_AFTER_PERIODS = 3
DEFAULT_STATE_EVERY_S = 30.0  # for a state that does not say its period


class Message(BaseModel):
    # Strict: a command is never guessed at ("yes" is not true, "1" is not 1).
    # Finite numbers only: NaN and ±Infinity are refused by the decoder and again here, for models built in code.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    v: Literal[1] = 1

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


# ---- from the controller -------------------------------------------------------------------------------


class Status(Message):
    """Retained; the broker publishes the offline one as the controller's last will."""

    site: str
    online: bool
    ts: float
    version: str = ""


class ReadingState(Message):
    value: float | None = None  # None (a fault, or COP with the compressor off) is left out of the JSON
    unit: str
    quality: str
    ts: float
    detail: str = ""


class ActuatorStateMsg(Message):
    on: bool
    source: str
    reason: str
    held_by: str | None = None
    held_until: float | None = None


class LinkState(Message):
    connected: bool
    """connected to the ATN's broker (the ATN itself may still be silent: see `silence_s`)"""
    last_heartbeat: float | None = None
    silence_s: float | None = Field(default=None, gt=0, description="a heartbeat older than this: the ATN is silent")
    lease_id: str | None = None
    lease_valid_until: float | None = None
    backlog: int = 0
    oldest_unacked_ts: float | None = None  # the oldest reading the ATN has not acknowledged yet


class OverrideState(Message):
    id: str
    target: str
    value: bool | float
    expires_at: float
    who: str


class Alarm(Message):
    """Something a person must look at: a relay that did not follow, a channel gone bad."""

    id: str
    message: str
    since: float
    acknowledged_by: str | None = None


class PlanHour(Message):
    """One hour of the local plan: how much of it the heat pump (and the aux element) runs, at what price, and
    the tank's and the house's planned temperatures at its end."""

    start: float
    heat_pump: float = Field(ge=0, le=1, description="share of the hour the heat pump is planned to run")
    aux: float = Field(ge=0, le=1)
    price: float
    tank_c: float
    house_c: float


class PlanState(Message):
    """The planner's next hours (up to 24), when it is planning."""

    made_at: float
    note: str = ""
    hours: list[PlanHour] = Field(default_factory=list, max_length=48)


class State(Message):
    """Retained snapshot of the whole controller, on change and every 30 s."""

    site: str
    ts: float
    mode: str
    reason: str
    readings: dict[str, ReadingState]
    actuators: dict[str, ActuatorStateMsg]
    overrides: list[OverrideState] = Field(default_factory=list)
    alarms: list[Alarm] = Field(default_factory=list)
    link: LinkState | None = None
    decision: str = ""  # the last control decision, as the tick summed it up
    plan: PlanState | None = None
    every_s: float | None = Field(
        default=None, gt=0, description="MQTT: published at least this often; older than 3 periods, it is stale"
    )
    speed: float = Field(
        default=1.0,
        gt=0,
        description="seconds of the controller's clock per real second: 1 on a house, --speed on a simulation; "
        "a client counts down to the controller's times at this rate between States",
    )


TelemetryRow = tuple[int, float, str, float | None, str]
"""(seq, ts, channel, value, quality)"""


class Telemetry(Message):
    """QoS 1 batch of stored readings, in sequence order; `historical` for a replay of older readings."""

    site: str
    first_seq: int
    last_seq: int
    historical: bool
    readings: list[TelemetryRow]


class EventMsg(Message):
    site: str
    seq: int
    ts: float
    kind: str
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class EnergySummary(Message):
    """Retained on `energy`: the daily energy totals of the last `days` local days (oldest first, today so far
    last; `controller.energy.daily.DayTotals.row`) and the month and heating-season totals of those days
    (`controller.energy.rollup.totals_rows`): what the Energy screen shows, for monitors over MQTT. Published at
    connect, when the site's local day changes, every `every_s`, and in answer to a state request."""

    site: str
    ts: float
    every_s: float = Field(gt=0)
    days: list[dict[str, Any]]
    totals: list[dict[str, Any]]


class LayoutSummary(Message):
    """Retained on `layout`: what the site is made of (site, buses, devices, channels, actuators, control), for
    monitors over MQTT. The `links` and `storage` sections are left out: brokers, users and paths stay local."""

    site: str
    ts: float
    layout: dict[str, Any]


class Ack(Message):
    """The controller's answer to a command or to a message it could not use."""

    ts: float
    topic: str
    id: str | None = None
    accepted: bool
    reason: str


# ---- from the ATN --------------------------------------------------------------------------------------


class Heartbeat(Message):
    atn: str = Field(min_length=1, max_length=64)
    ts: float
    seq: int = Field(ge=0)


class PriceSlot(Message):
    start: float
    end: float
    price: float

    @model_validator(mode="after")
    def _ordered(self) -> PriceSlot:
        if self.end <= self.start:
            raise ValueError("a price slot must end after it starts")
        return self


class Dispatch(Message):
    """A lease: what the ATN wants until `valid_until`. Actuators it does not name follow the local policy."""

    id: str = Field(min_length=1, max_length=64)
    issued_at: float
    valid_until: float
    actuators: dict[str, bool] = Field(default_factory=dict)
    setpoints: dict[str, float] = Field(default_factory=dict)
    prices: list[PriceSlot] | None = None

    @model_validator(mode="after")
    def _sane(self) -> Dispatch:
        if self.valid_until <= self.issued_at:
            raise ValueError("valid_until must be after issued_at")
        if self.valid_until - self.issued_at > MAX_LEASE_S:
            raise ValueError(f"a lease lasts at most {MAX_LEASE_S} s")
        return self


MAX_WEATHER_SLOTS = 400  # 96 h of hours, or four days of quarter-hours
MAX_WEATHER_SLOT_S = 6 * 3600.0
MAX_WEATHER_SPAN_S = 10 * 86400.0
MAX_WEATHER_AGE_S = 12 * 3600.0  # a forecast issued longer ago is stale: refused, and no longer planned with


class WeatherSlot(Message):
    start: float
    end: float
    outdoor_c: float = Field(ge=-60, le=60, description="outdoor air over [start, end), °C")

    @model_validator(mode="after")
    def _ordered(self) -> WeatherSlot:
        if self.end <= self.start:
            raise ValueError("a weather slot must end after it starts")
        if self.end - self.start > MAX_WEATHER_SLOT_S:
            raise ValueError(f"a weather slot lasts at most {MAX_WEATHER_SLOT_S / 3600:g} h")
        return self


class Weather(Message):
    """A weather forecast for the site (`atn/weather`): the outdoor air over time slots. The planner uses it
    instead of its persistence forecast while it is at most `MAX_WEATHER_AGE_S` old and covers the present."""

    id: str = Field(min_length=1, max_length=64)
    issued_at: float
    points: list[WeatherSlot] = Field(min_length=1, max_length=MAX_WEATHER_SLOTS)

    @model_validator(mode="after")
    def _sane(self) -> Weather:
        for before, after in zip(self.points, self.points[1:], strict=False):
            if after.start < before.end:
                raise ValueError(f"weather slots must be in time order without overlap (at start {after.start:g})")
        if self.points[-1].end - self.points[0].start > MAX_WEATHER_SPAN_S:
            raise ValueError(f"a weather forecast spans at most {MAX_WEATHER_SPAN_S / 86400:g} days")
        return self


class TelemetryAck(Message):
    upto_seq: int = Field(ge=0)


class EventAck(Message):
    """The ATN has persisted every event from seq 1 up to and including `upto_seq`."""

    upto_seq: int = Field(ge=0)


class StateRequest(Message):
    """Anyone watching (a monitor, the fleet view, Home Assistant, the ATN) asks for a fresh `state` and `status`
    on `STATE_REQUEST_TOPIC`, so it never depends on retained messages: RabbitMQ keeps them per node and never
    delivers them to a wildcard subscription. `site` asks one site; without it, every site answers, each after a
    random delay of up to `STATE_REQUEST_SPREAD_S` so a fleet does not answer in one burst. A controller answers
    at most once per `STATE_REQUEST_MIN_INTERVAL_S`; more requests meanwhile get that one answer."""

    site: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[^/+#]+$")


STATE_REQUEST_TOPIC = f"{PREFIX}/state-request"
STATE_REQUEST_SPREAD_S = 2.0
STATE_REQUEST_MIN_INTERVAL_S = 5.0


# ---- topics ---------------------------------------------------------------------------------------------


class Topics:
    """Every topic of one site."""

    def __init__(self, site: str) -> None:
        base = f"{PREFIX}/{site}"
        self.site = site
        self.status = f"{base}/status"
        self.state = f"{base}/state"
        self.telemetry = f"{base}/telemetry"
        self.events = f"{base}/events"
        self.ack = f"{base}/ack"
        self.layout = f"{base}/layout"
        self.energy = f"{base}/energy"  # the daily energy totals, month and season (EnergySummary), retained
        self.heartbeat = f"{base}/atn/heartbeat"
        self.dispatch = f"{base}/atn/dispatch"
        self.telemetry_ack = f"{base}/atn/telemetry-ack"
        self.events_ack = f"{base}/atn/events-ack"
        self.weather = f"{base}/atn/weather"  # the ATN's weather forecast (Weather)
        self.from_atn_filter = f"{base}/atn/#"  # all of `from_atn` in one subscription
        self.override = f"{base}/override"  # a technician's signed request (SignedOverride)
        self.override_reply = f"{base}/override/reply"  # the controller's answer (Response)

    @property
    def from_atn(self) -> tuple[str, str, str, str, str]:
        return self.heartbeat, self.dispatch, self.telemetry_ack, self.events_ack, self.weather


LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    """Whether a broker host name is this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str, *, insecure: bool = False, insecure_hint: str = "pass --insecure") -> BrokerUrl:
    """mqtt://host[:port] or mqtts://host[:port], or ValueError with a readable reason.

    The one place the TLS rule lives (DESIGN.md, Security): plain MQTT to a broker on another machine is
    refused unless `insecure`, because the password would cross the network in clear. Credentials in the URL
    are refused too: they would end up in logs and process listings.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"'{url}' is not an mqtt://host[:port] or mqtts://host[:port] URL")
    if parts.username or parts.password:
        raise ValueError("put the user in --username and the password in --password-file, not in the URL")
    tls = parts.scheme == "mqtts"
    if not tls and not is_loopback(parts.hostname) and not insecure:
        raise ValueError(
            f"TLS is required for a broker that is not on this machine ({parts.hostname}): "
            f"use mqtts:// or {insecure_hint}"
        )
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as error:
        raise ValueError(f"'{url}': {error}") from None
    return BrokerUrl(parts.hostname, port, tls)


M = TypeVar("M", bound=Message)


def parse(model: type[M], payload: bytes | bytearray | str, limits: Limits = MQTT_LIMITS) -> M:
    """The one parse path for a message from outside: `decode_json` (size, depth, finite numbers, duplicate keys),
    the version, then the model. Raises `Rejected` with every problem in one sentence, never anything else."""
    raw = as_bytes(payload)
    data = decode_json(raw, limits)
    if not isinstance(data, dict):
        raise Rejected(f"expected a JSON object, got {_json_kind(data)}", "not-an-object")
    if data.get("v") != VERSION:
        raise Rejected(f"unsupported protocol version {data.get('v')!r}; this controller speaks v{VERSION}", "version")
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise Rejected(describe(error), "invalid") from None


def _json_kind(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "true or false", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# ---- the local API (unix socket, JSON lines) ------------------------------------------------------------
#
# A client sends one Request per line and gets one Response per request, matched by `id`. After a successful
# `subscribe`, the controller also pushes State (at most once a second, and on every change) and every new
# event. The role comes from the peer's credentials (SO_PEERCRED), never from the request.

Role = Literal["technician", "monitor"]


class Request(Message):
    id: str = Field(min_length=1, max_length=64)
    op: Literal[
        "subscribe",
        "override",
        "keepalive",
        "release",
        "ack_alarm",
        "layout",
        "history",
        "energy",
        "energy_day",
        "model",
        "model_fit",
    ]
    target: str | None = Field(default=None, description="override: an actuator, or setpoint:comfort")
    value: bool | float | None = Field(default=None, description="override: on/off, or a setpoint in °C")
    duration_s: float | None = Field(default=None, gt=0, description="override/keepalive: default 1800, max 86400")
    reason: str = Field(default="", max_length=200)
    override_id: str | None = None
    alarm: str | None = None
    channel: str | None = None
    hours: float | None = Field(default=None, gt=0, le=24 * 30)
    days: int | None = Field(default=None, ge=1, le=400, description="energy: how many local days, up to today")
    day: str | None = Field(
        default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="energy_day: the local day (YYYY-MM-DD) to plot"
    )


class HistoryPoint(Message):
    ts: float
    value: float | None
    quality: str


class Response(Message):
    id: str
    ok: bool
    error: str | None = None
    role: Role | None = None
    user: str | None = None
    override: OverrideState | None = None
    actuator: ActuatorStateMsg | None = Field(default=None, description="override: the actuator after one tick")
    layout: dict[str, Any] | None = None
    history: list[HistoryPoint] | None = None
    energy: list[dict[str, Any]] | None = Field(
        default=None, description="energy: daily totals, oldest first (controller.energy.daily.DayTotals.row)"
    )
    energy_totals: list[dict[str, Any]] | None = Field(
        default=None, description="energy: month then season totals of those days (controller.energy.rollup)"
    )
    energy_day: dict[str, Any] | None = Field(
        default=None, description="energy_day: the day's curves in 5-minute means (controller.energy.dayplot)"
    )
    model: dict[str, Any] | None = Field(
        default=None,
        description="model: the planner's model fit (controller.planner.fitting.accepted.ModelFit.to_json) and "
        "`in_use`, one line saying which parts are fitted and which come from the layout",
    )


class Push(Message):
    push: Literal["state", "event"]
    state: State | None = None
    event: EventMsg | None = None


# ---- technician overrides over MQTT (hearth/v1/<site>/override) -----------------------------------------
#
# The broker does not tell the controller who published a message, so a request carries who sent it and proves it
# with an Ed25519 signature over `signed_bytes()`: every field but the signature, in a canonical encoding. See
# controller/remote and docs/protocol.md.

SIGNED_DOMAIN = b"hearth/v1 override-request\n"
"""Prefixed to what is signed, so a signature made for anything else can never pass as a request."""
MAX_REQUEST_LIFE_S = 300.0
"""A request expires at most this long after it is made (plus MAX_CLOCK_SKEW_S for the signer's clock)."""


class SignedOverride(Message):
    """A technician's override, keep-alive or release, signed with the technician's key."""

    id: str = Field(min_length=8, max_length=64, description="new for every request: a second use is a replay")
    op: Literal["override", "keepalive", "release"]
    technician: str = Field(min_length=1, max_length=64)
    key: str = Field(min_length=1, max_length=64, description="the signing key's fingerprint, SHA256:...")
    site: str = Field(min_length=1, max_length=64)
    target: str | None = Field(default=None, max_length=64)
    value: bool | float | None = None
    duration_s: float | None = Field(default=None, gt=0)
    override_id: str | None = Field(default=None, max_length=64)
    reason: str = Field(default="", max_length=200)
    expires_at: float = Field(description="epoch s; refused after this, and when it is too far ahead")
    signature: str | None = Field(default=None, max_length=128, description="base64 Ed25519 over signed_bytes()")

    def signed_bytes(self) -> bytes:
        """The canonical encoding that is signed: the domain line, then every field except the signature as JSON
        with sorted keys, no spaces, ASCII only, absent fields as null. Numbers are Python's shortest round-trip
        form, which the receiver reproduces from the parsed value, so any change of any field changes these bytes."""
        return SIGNED_DOMAIN + _canonical(self.model_dump(mode="json", exclude={"signature"}))

    def wire(self) -> bytes:
        """The one form a request is sent in: every field, the signature too, encoded as `signed_bytes()` encodes
        them. The controller refuses any other spelling of the same request, so no byte of it can change unnoticed
        (not even to a spelling that means the same, such as 1800e0 for 1800.0)."""
        return _canonical(self.model_dump(mode="json"))


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()
