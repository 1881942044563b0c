"""`python -m tui --demo`: a made-up house that moves, for trying the TUI without a controller.

`sample_state()` is also the realistic State the tests feed (the channels and relays of layouts/demo.toml).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from controller.protocol import (
    ActuatorStateMsg,
    Alarm,
    EventMsg,
    HistoryPoint,
    LinkState,
    OverrideState,
    ReadingState,
    Request,
    Response,
    State,
)
from tui.transport import EventCallback, StateCallback, StatusCallback
from tui.transport.fake import FakeTransport

SITE = "demo-house"
CHANNELS: dict[str, float] = {
    "tank-top": 52.1,
    "tank-mid": 45.3,
    "tank-bottom": 38.0,
    "hp-leaving": 48.2,
    "hp-entering": 41.5,
    "outdoor": -4.9,
    "house-air": 20.6,
    "dist-supply": 38.4,
    "dist-return": 31.2,
    "hp-power": 2140.0,
    "hp-flow": 18.2,
    "grid-power": 2890.0,
}
UNITS: dict[str, str] = {"hp-power": "W", "hp-flow": "l/min", "grid-power": "W"}


def sample_state(
    ts: float,
    *,
    mode: str = "LOCAL",
    reason: str = "cheap window: charging the tank (top 52.1 °C below target 55 °C)",
    values: dict[str, float | None] | None = None,
    actuators: dict[str, ActuatorStateMsg] | None = None,
    overrides: list[OverrideState] | None = None,
    alarms: list[Alarm] | None = None,
    link: LinkState | None = None,
    extra_channels: int = 0,
) -> State:
    """A State like layouts/demo.toml's controller sends; `values` overrides channel values (None: a fault)."""
    readings: dict[str, ReadingState] = {}
    merged: dict[str, float | None] = {**CHANNELS, **(values or {})}
    for name, value in merged.items():
        if value is None:
            unit = UNITS.get(name, "degC")
            readings[name] = ReadingState(value=None, unit=unit, quality="fault", ts=ts - 0.4, detail="open circuit")
        else:
            unit = UNITS.get(name, "degC")
            readings[name] = ReadingState(value=round(value, 3), unit=unit, quality="ok", ts=ts - 0.4)
    for number in range(extra_channels):  # for load tests: every value moves every second
        value = round(20.0 + number % 17 + math.sin(ts / 7 + number), 3)
        readings[f"probe-{number:03d}"] = ReadingState(value=value, unit="degC", quality="ok", ts=ts - 0.4)
    if actuators is None:
        actuators = {
            "heat-pump": ActuatorStateMsg(
                on=True,
                source="local",
                reason="cheap window: charging the tank",
                held_by="min-on",
                held_until=ts + 130,
            ),
            "store-pump": ActuatorStateMsg(on=True, source="local", reason="heat pump running: circulate to the tank"),
            "distribution-pump": ActuatorStateMsg(on=True, source="local", reason="house 20.6 °C below 21.0 °C"),
            "aux-element": ActuatorStateMsg(on=False, source="local", reason="comfort above the hard minimum"),
        }
    if link is None:
        link = LinkState(
            connected=False, last_heartbeat=ts - 95, lease_id="L-42", lease_valid_until=ts - 20, backlog=312
        )
    return State(
        site=SITE,
        ts=ts,
        mode=mode,
        reason=reason,
        readings=readings,
        actuators=actuators,
        overrides=overrides or [],
        alarms=alarms or [],
        link=link,
    )


def sample_layout() -> dict[str, Any]:
    """What `op=layout` returns for the demo house, trimmed to its shape."""
    probes = {name: {"device": "ads-tank" if name.startswith(("tank", "hp-l")) else "ads-house"} for name in CHANNELS}
    probes["dist-supply"] = {"device": "rtd-supply"}
    probes["dist-return"] = {"device": "rtd-return"}
    probes["hp-power"] = {"device": "hp-meter", "input": "power"}
    probes["grid-power"] = {"device": "smart-meter", "input": "power"}
    probes["hp-flow"] = {"device": "ads-house", "input": "A3"}
    return {
        "backend": "sim",
        "site": {"id": SITE, "name": "Demo house (simulated)", "timezone": "Europe/Brussels"},
        "buses": {
            "i2c-1": {"kind": "i2c", "bus": 1},
            "spi-0": {"kind": "spi", "bus": 0},
            "rs485": {"kind": "serial", "port": "/dev/ttyUSB0", "baudrate": 9600},
            "p1": {"kind": "serial", "port": "/dev/ttyUSB1", "baudrate": 115200},
        },
        "devices": {
            "ads-tank": {"kind": "ads1115", "bus": "i2c-1", "address": 72},
            "ads-house": {"kind": "ads1115", "bus": "i2c-1", "address": 73},
            "rtd-supply": {"kind": "max31865", "bus": "spi-0", "cs_pin": 8},
            "rtd-return": {"kind": "max31865", "bus": "spi-0", "cs_pin": 7},
            "hp-meter": {"kind": "sdm120", "bus": "rs485", "device_id": 1},
            "smart-meter": {"kind": "dsmr_p1", "bus": "p1", "dsmr": 5},
        },
        "channels": probes,
        "actuators": {
            "heat-pump": {"kind": "gpio_relay", "pin": 17, "safe_state": "off", "min_on_s": 300, "min_off_s": 180},
            "store-pump": {"kind": "gpio_relay", "pin": 27, "safe_state": "off"},
            "distribution-pump": {"kind": "gpio_relay", "pin": 22, "safe_state": "on"},
            "aux-element": {"kind": "gpio_relay", "pin": 23, "safe_state": "off"},
        },
    }


class DemoTransport(FakeTransport):
    """Synthetic live data at 1 Hz; overrides, keep-alive, release, history and layout all answer."""

    def __init__(self, *, channels: int = 0, period_s: float = 1.0) -> None:
        super().__init__(description="demo (synthetic data, no controller)", responder=self._answer)
        self.extra_channels = max(0, channels - len(CHANNELS))
        self.period_s = period_s
        self.overrides: dict[str, OverrideState] = {}
        self.acknowledged: dict[str, str] = {}
        self._start = time.time()
        self._seq = 0

    async def run(self, on_state: StateCallback, on_event: EventCallback, on_status: StatusCallback) -> None:
        self._on_state, self._on_event, self._on_status = on_state, on_event, on_status
        on_status(self.status())
        self._event("start", "demo controller started: synthetic data")
        while True:
            on_state(self.state_now())
            await asyncio.sleep(self.period_s)

    def state_now(self) -> State:
        now = time.time()
        t = now - self._start
        for key in [k for k, o in self.overrides.items() if o.expires_at <= now]:
            gone = self.overrides.pop(key)
            self._event("override", f"override {gone.target} expired")
        wave = math.sin(t / 40)
        values: dict[str, float | None] = {
            name: base + 1.5 * math.sin(t / (20 + 3 * i)) + 0.05 * math.sin(t * 7 + i)
            for i, (name, base) in enumerate(CHANNELS.items())
        }
        actuators = {
            "heat-pump": ActuatorStateMsg(
                on=wave > 0,
                source="atn",
                reason="ATN lease L-43",
                held_by="min-on" if 0 < wave < 0.3 else None,
                held_until=now + 60 if 0 < wave < 0.3 else None,
            ),
            "store-pump": ActuatorStateMsg(on=wave > -0.1, source="interlock", reason="pre-run before the compressor"),
            "distribution-pump": ActuatorStateMsg(on=True, source="local", reason="house below 21.0 °C"),
            "aux-element": ActuatorStateMsg(on=False, source="local", reason="comfort above the hard minimum"),
        }
        for override in self.overrides.values():
            if override.target in actuators and isinstance(override.value, bool):
                actuators[override.target] = ActuatorStateMsg(
                    on=override.value, source="override", reason=f"override by {override.who}"
                )
        alarms = [Alarm(id="relay-aux", message="aux-element relay did not follow its command", since=self._start)]
        alarms = [a.model_copy(update={"acknowledged_by": self.acknowledged.get(a.id)}) for a in alarms]
        link = LinkState(
            connected=True,
            last_heartbeat=now - (t % 10),
            lease_id="L-43",
            lease_valid_until=self._start + 120 * (1 + t // 120),
            backlog=0,
        )
        mode = "OVERRIDE" if self.overrides else "ATN"
        reason = "technician override active" if self.overrides else "ATN lease L-43: charging in a cheap hour"
        return sample_state(
            now,
            mode=mode,
            reason=reason,
            values=values,
            actuators=actuators,
            overrides=list(self.overrides.values()),
            alarms=alarms,
            link=link,
            extra_channels=self.extra_channels,
        )

    def _event(self, kind: str, message: str) -> None:
        self._seq += 1
        self.push_event(EventMsg(site=SITE, seq=self._seq, ts=time.time(), kind=kind, message=message))

    def _answer(self, request: Request) -> Response:
        now = time.time()
        if request.op == "override" and request.target is not None and request.value is not None:
            duration = request.duration_s or 1800.0
            override = OverrideState(
                id=f"O-{self._seq + 1}",
                target=request.target,
                value=request.value,
                expires_at=now + duration,
                who=self.user,
            )
            self.overrides[override.id] = override
            value = ("ON" if request.value else "OFF") if isinstance(request.value, bool) else f"{request.value} °C"
            self._event("override", f"override {request.target} = {value} by {self.user}: {request.reason or '-'}")
            actuator = None
            if request.target == "heat-pump" and request.value is True:
                actuator = ActuatorStateMsg(
                    on=False,
                    source="interlock",
                    reason="minimum off-time 180 s",
                    held_by="min-off",
                    held_until=now + 95,
                )
            return Response(id=request.id, ok=True, override=override, actuator=actuator)
        if request.op in ("keepalive", "release") and request.override_id in self.overrides:
            current = self.overrides[request.override_id]
            if request.op == "release":
                del self.overrides[current.id]
                self._event("override", f"override {current.target} released by {self.user}")
                return Response(id=request.id, ok=True)
            renewed = current.model_copy(update={"expires_at": now + (request.duration_s or 1800.0)})
            self.overrides[current.id] = renewed
            return Response(id=request.id, ok=True, override=renewed)
        if request.op == "ack_alarm" and request.alarm:
            self.acknowledged[request.alarm] = self.user
            return Response(id=request.id, ok=True)
        if request.op == "layout":
            return Response(id=request.id, ok=True, layout=sample_layout())
        if request.op == "history" and request.channel:
            base = CHANNELS.get(request.channel, 20.0)
            hours = request.hours or 6.0
            points = [
                HistoryPoint(ts=now - hours * 3600 + i * 60, value=base + 3 * math.sin(i / 40), quality="ok")
                for i in range(int(hours * 60))
            ]
            return Response(id=request.id, ok=True, history=points)
        return Response(id=request.id, ok=False, error=f"the demo does not know {request.op} {request.target or ''}")
