"""A DSMR smart meter's P1 port on an emulated serial port: real telegrams, with the standard's CRC16.

`P1Meter` is the meter's state (counters per tariff, instantaneous power per phase) advanced from the plant;
`telegram()` writes it as a DSMR 5 (or 4) telegram: header, OBIS lines, and the CRC16 (poly 0xA001, initial 0,
over everything from '/' to '!') computed by dsmr-parser's own routine, as 4 hex digits after '!'. The emitter
thread sends one per interval. Faults: `crc` (the CRC is wrong), `cable` (the P1 cable is pulled mid-telegram:
half a telegram, then silence until the fault clears), `unplugged` (the USB P1 cable is pulled from the Pi).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from controller.emulators.serial_port import EmulatedSerialPort
from controller.sim.grid import GridFlows

P1Fault = Literal["crc", "cable", "unplugged"]
_J_PER_KWH = 3.6e6


@dataclass
class P1Meter:
    """What the smart meter shows: its counters and the latest instantaneous values."""

    version: int = 5
    equipment_id: str = "4530303236303030303234343934333135"  # hex of the meter's serial, as meters send it
    import_kwh: list[float] = field(default_factory=lambda: [4123.456, 3210.123])  # tariff 1, 2
    export_kwh: list[float] = field(default_factory=lambda: [812.345, 1520.678])
    gas_m3: float = 1234.567
    tariff: int = 2
    flows: GridFlows = field(default_factory=lambda: GridFlows((0.0, 0.0, 0.0), (230.0, 230.0, 230.0)))
    power_failures: int = 3
    long_power_failures: int = 1
    time: float = 0.0  # UTC epoch seconds of the latest values

    def advance(self, flows: GridFlows, tariff: int, dt_s: float, now: float) -> None:
        """Count `dt_s` seconds of the previous flows into the active tariff's registers, then take the new ones."""
        if dt_s > 0:
            index = self.tariff - 1
            self.import_kwh[index] += self.flows.delivered_w * dt_s / _J_PER_KWH
            self.export_kwh[index] += self.flows.received_w * dt_s / _J_PER_KWH
        self.flows, self.tariff, self.time = flows, tariff, now


def _stamp(epoch: float, zone: ZoneInfo) -> str:
    """DSMR's YYMMDDhhmmssX in local time, X = S in summer time, W in winter time."""
    local = datetime.fromtimestamp(epoch, UTC).astimezone(zone)
    return local.strftime("%y%m%d%H%M%S") + ("S" if local.dst() not in (None, timedelta(0)) else "W")


def _kw(watts: float) -> str:
    return f"{max(0.0, watts) / 1000:06.3f}*kW"


def telegram(meter: P1Meter, zone: ZoneInfo) -> str:
    """The meter's state as one whole DSMR telegram, CRC included (DSMR 4 and 5 both carry one)."""
    flows = meter.flows
    when = _stamp(meter.time, zone)
    header = "/ISk5\\2MT382-1000" if meter.version == 5 else "/KFM5KAIFA-METER"
    lines = [header, "", f"1-3:0.2.8({50 if meter.version == 5 else 42})", f"0-0:1.0.0({when})"]
    lines += [
        f"0-0:96.1.1({meter.equipment_id})",
        f"1-0:1.8.1({meter.import_kwh[0]:010.3f}*kWh)",
        f"1-0:1.8.2({meter.import_kwh[1]:010.3f}*kWh)",
        f"1-0:2.8.1({meter.export_kwh[0]:010.3f}*kWh)",
        f"1-0:2.8.2({meter.export_kwh[1]:010.3f}*kWh)",
        f"0-0:96.14.0({meter.tariff:04d})",
        f"1-0:1.7.0({_kw(flows.delivered_w)})",
        f"1-0:2.7.0({_kw(flows.received_w)})",
        f"0-0:96.7.21({meter.power_failures:05d})",
        f"0-0:96.7.9({meter.long_power_failures:05d})",
        "1-0:99.97.0(1)(0-0:96.7.19)(200101120000W)(0000000240*s)",
        "1-0:32.32.0(00002)",
        "1-0:52.32.0(00001)",
        "1-0:72.32.0(00000)",
        "1-0:32.36.0(00000)",
        "1-0:52.36.0(00000)",
        "1-0:72.36.0(00000)",
        "0-0:96.13.0()",
    ]
    volts = [f"1-0:{code}.7.0({v:05.1f}*V)" for code, v in zip((32, 52, 72), flows.voltage_v, strict=True)]
    amps = [
        f"1-0:{code}.7.0({round(abs(p) / v):03d}*A)"
        for code, p, v in zip((31, 51, 71), flows.phase_w, flows.voltage_v, strict=True)
    ]
    delivered = [f"1-0:{code}.7.0({_kw(p)})" for code, p in zip((21, 41, 61), flows.phase_w, strict=True)]
    received = [f"1-0:{code}.7.0({_kw(-p)})" for code, p in zip((22, 42, 62), flows.phase_w, strict=True)]
    lines += [*volts, *amps, *delivered, *received]
    gas_stamp = _stamp(meter.time - meter.time % 300, zone)  # the gas meter reports every 5 minutes
    lines += [
        "0-1:24.1.0(003)",
        "0-1:96.1.0(4730303339303031363532303530323136)",
        f"0-1:24.2.1({gas_stamp})({meter.gas_m3:09.3f}*m3)",
    ]
    body = "\r\n".join(lines) + "\r\n!"
    from dsmr_parser.parsers import TelegramParser  # here, not at start-up: it pulls in cryptography and dlms

    return f"{body}{TelegramParser.crc16(body):04X}\r\n"


class P1Emitter:
    """Sends the meter's telegram every `interval_s` on its own thread, as the meter's P1 port does."""

    def __init__(self, port: EmulatedSerialPort, meter: P1Meter, zone: ZoneInfo, interval_s: float = 1.0) -> None:
        self.port = port
        self.meter = meter
        self.zone = zone
        self.interval_s = interval_s
        self.fault: P1Fault | None = None
        self.sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"p1-meter:{port.path.name}", daemon=True)

    def update(self, flows: GridFlows, tariff: int, dt_s: float, now: float) -> None:
        with self._lock:
            self.meter.advance(flows, tariff, dt_s, now)

    def start(self) -> P1Emitter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def set_fault(self, fault: P1Fault | None) -> None:
        if fault == "unplugged":
            self.port.unplug()
        elif self.fault == "unplugged":
            self.port.plug()
        self.fault = fault

    def _run(self) -> None:
        cut = False
        while not self._stop.wait(self.interval_s - (self._now() % self.interval_s)):
            with self._lock:
                text = telegram(self.meter, self.zone)
            if self.fault == "crc":
                text = text[:-6] + ("0000" if text[-6:-2] != "0000" else "FFFF") + "\r\n"
            if self.fault == "cable":
                if not cut:
                    self.port.write(text[: len(text) // 2].encode("ascii"))  # pulled mid-telegram
                    cut = True
                continue
            cut = False
            if self.port.write(text.encode("ascii")):
                self.sent += 1

    @staticmethod
    def _now() -> float:
        import time

        return time.monotonic()
