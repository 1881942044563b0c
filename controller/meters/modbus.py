"""Modbus RTU meters through pymodbus: register maps as data, one async client per RS-485 port.

Every read runs on the port's bus worker thread (controller.buses.worker), like the chips' drivers. pymodbus's
client is asyncio-based, so the port owns a private event loop on that thread and runs each round of requests
to completion in it: the controller's own loop never waits on a meter.

A meter's channels are read together: the first channel of a round asks the meter for every register its
channels need, grouped into as few requests as the meter allows (Eastron: at most 30 values, 60 registers, per
request), and the others take their values from that answer. A failed request fails the whole round once,
with the reason, instead of timing out once per channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, field_validator

from controller.drivers.base import Buses, DeviceKind, DeviceMissingError, Finding, RawFields, SensorError
from controller.layout.base import Name, Strict, article
from controller.layout.channel import Channel
from controller.meters.inputs import MeterInputs
from controller.meters.line import SerialLine, SerialPort, port_gone

FLOAT_REGISTERS = 2
MAX_GAP_REGISTERS = 8  # reading 8 unused registers (16 bytes) costs less than a new request's turnaround
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    11: "gateway target device failed to respond",
}
# pymodbus logs every timeout at ERROR; the sampler already reports a fault once, with the reason.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Quantity:
    """One value a meter reports: the channel `input` that names it, its first input register and unit."""

    name: str
    address: int
    unit: str
    plausible: tuple[float, float]
    description: str


@dataclass(frozen=True)
class RegisterMap:
    """A meter's input registers (function 04), each value an IEEE-754 float32 in two big-endian words."""

    model: str
    quantities: tuple[Quantity, ...]
    max_registers_per_request: int = 60

    def __post_init__(self) -> None:
        names = [q.name for q in self.quantities]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.model}: duplicate quantity names")

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.quantities)

    def quantity(self, name: str) -> Quantity:
        for quantity in self.quantities:
            if quantity.name == name:
                return quantity
        raise KeyError(f"{self.model} has no quantity {name!r}; it has {', '.join(self.inputs)}")


def plan_requests(
    addresses: Iterable[int], max_registers: int, max_gap: int = MAX_GAP_REGISTERS
) -> list[tuple[int, int]]:
    """Group float32 values (by first register) into (start, count) requests.

    Neighbours closer than `max_gap` unused registers share a request; no request exceeds `max_registers`.
    """
    spans: list[tuple[int, int]] = []
    for address in sorted(set(addresses)):
        end = address + FLOAT_REGISTERS
        if spans:
            start, count = spans[-1]
            if address - (start + count) <= max_gap and end - start <= max_registers:
                spans[-1] = (start, max(count, end - start))
                continue
        spans.append((address, FLOAT_REGISTERS))
    return spans


def frame_bytes(count: int) -> tuple[int, int]:
    """RTU frame sizes of a read-input-registers exchange: request 8 bytes; reply id, fc, byte count, data, CRC."""
    return 8, 5 + 2 * count


class ModbusPort:
    """One pymodbus AsyncModbusSerialClient on one serial port, shared by every meter on that RS-485 bus.

    Use only on the port's bus worker thread. The client is (re)connected at the start of a round when it is not
    connected, so an unplugged USB adapter shows as a fault at once and the meters come back by themselves as
    soon as the port reappears: pymodbus's own background reconnect is off (reconnect_delay=0).
    """

    def __init__(self, line: SerialLine) -> None:
        self.line = line
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._received = bytearray()
        self.requests = 0

    def read_floats(self, device_id: int, spans: Sequence[tuple[int, int]]) -> dict[int, float]:
        """Read `spans` from meter `device_id`; {first register: value}. Raises SensorError with the reason."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self._read(device_id, spans))

    def close(self) -> None:
        """Close the port. Safe from another thread while a round is in flight on the bus thread: the client is
        closed inside its own loop, and the loop is left to that round (it is not used again)."""
        loop, client = self._loop, self._client
        self._loop, self._client = None, None
        if loop is not None and loop.is_running():
            if client is not None:
                loop.call_soon_threadsafe(client.close)
            return
        if client is not None:
            client.close()
        if loop is not None:
            loop.close()

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._received += data
        return data

    async def _connected(self) -> Any:
        from pymodbus.client import AsyncModbusSerialClient
        from pymodbus.framer import FramerType

        if self._client is not None and self._client.connected:
            return self._client
        if self._client is not None:
            self._client.close()
        line = self.line
        self._client = AsyncModbusSerialClient(
            line.port,
            framer=FramerType.RTU,
            baudrate=line.baudrate,
            bytesize=line.bytesize,
            parity=line.parity,
            stopbits=line.stopbits,
            timeout=line.timeout_s,
            retries=0,
            reconnect_delay=0,
            trace_packet=self._trace,
        )
        if not await self._client.connect():
            self._client.close()
            self._client = None
            raise SensorError(port_gone(line))
        return self._client

    async def _read(self, device_id: int, spans: Sequence[tuple[int, int]]) -> dict[int, float]:
        from pymodbus.exceptions import ConnectionException, ModbusIOException

        client = await self._connected()
        values: dict[int, float] = {}
        for start, count in spans:
            # Let a late reply to an earlier, timed-out request arrive now, so it is never taken for this one.
            await asyncio.sleep(0)
            self._received.clear()
            self.requests += 1
            try:
                response = await client.read_input_registers(start, count=count, device_id=device_id)
            except ModbusIOException as error:
                reason = self._diagnose(device_id, start, count)
                # RTU replies carry no request id: a reply that comes after the timeout, while the next request
                # (same function, same size) waits, would be taken for that one's answer (a counter read as the
                # power). Let it arrive now, with no request waiting, so pymodbus drops it as unrequested.
                await asyncio.sleep(self.line.timeout_s)
                raise SensorError(reason) from error
            except (ConnectionException, OSError) as error:
                self._drop()
                raise SensorError(port_gone(self.line)) from error
            if response.isError():
                code = response.exception_code
                raise SensorError(
                    f"meter id {device_id} on {self.line.label} answered exception {code} "
                    f"({EXCEPTION_NAMES.get(code, 'unknown')}) to registers 0x{start:04x}+{count}"
                )
            registers = list(response.registers)
            if len(registers) != count:
                raise SensorError(f"meter id {device_id} sent {len(registers)} registers, {count} were asked")
            for offset in range(0, count - 1, FLOAT_REGISTERS):
                words = registers[offset : offset + FLOAT_REGISTERS]
                values[start + offset] = float(
                    client.convert_from_registers(words, client.DATATYPE.FLOAT32, word_order="big")
                )
        return values

    def _drop(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    def _diagnose(self, device_id: int, start: int, count: int) -> str:
        """Say why no usable reply came, from the bytes that did arrive (pymodbus only says 'no response')."""
        from pymodbus.framer.rtu import FramerRTU

        where = f"meter id {device_id} on {self.line.label}"
        data = bytes(self._received)
        if self._client is not None and not self._client.connected:
            self._drop()
            return port_gone(self.line)
        if not data:
            return f"no answer from {where} within {self.line.timeout_s:g} s (wiring, power, baud rate, device id?)"
        for size in (frame_bytes(count)[1], 5):  # a whole reply, or an exception reply
            frame = data[:size]
            whole = len(frame) == size and FramerRTU.check_CRC(frame[:-2], int.from_bytes(frame[-2:], "big"))
            if whole and frame[0] != device_id:
                return (
                    f"a reply to meter id {device_id} came from device id {frame[0]} on {self.line.label} "
                    "(device_id wrong, or two meters share an id?)"
                )
        if len(data) < 4:
            return f"{where} sent {len(data)} byte(s), not a whole reply (baud rate or parity wrong?)"
        return f"{where}: the reply failed its CRC check (noise, missing termination, or baud rate wrong?)"


class ModbusMeter:
    """An opened Modbus meter (a SensorDevice): one reader per channel, one set of requests per round."""

    MAX_SHARED_AGE_S = 0.25  # channels of one round are read microseconds apart; older means a new round

    def __init__(self, name: str, device_id: int, registers: RegisterMap, port: ModbusPort) -> None:
        self._name = name
        self._device_id = device_id
        self._map = registers
        self._port = port
        self._wanted: set[int] = set()
        self._spans: list[tuple[int, int]] = []
        self._served: set[str] = set()
        self._values: dict[int, float] | None = None
        self._error: SensorError | None = None
        self._fetched_at = -1e9

    def reader(self, channel_name: str, channel: Channel) -> Any:
        quantity = self._map.quantity(channel.input)
        self._wanted.add(quantity.address)
        self._spans = plan_requests(self._wanted, self._map.max_registers_per_request)

        def read() -> float:
            return self._round(channel_name, quantity.address)[quantity.address]

        return read

    def raw(self, channel: Channel) -> RawFields:
        """The channel's two input registers as read now, and their float32 value (for `hearth probe`)."""
        quantity = self._map.quantity(channel.input)
        fields: RawFields = {"device_id": self._device_id, "register": f"0x{quantity.address:04x}"}
        try:
            value = self._port.read_floats(self._device_id, [(quantity.address, FLOAT_REGISTERS)])
        except SensorError as error:
            fields["error"] = str(error)
            return fields
        fields["float32"] = value[quantity.address]
        return fields

    def _round(self, channel_name: str, address: int) -> dict[int, float]:
        now = time.monotonic()
        stale = channel_name in self._served or now - self._fetched_at > self.MAX_SHARED_AGE_S
        if stale or (self._values is not None and address not in self._values):
            self._served.clear()
            self._values, self._error = None, None
            try:
                self._values = self._port.read_floats(self._device_id, self._spans)
            except SensorError as error:
                self._error = error
            self._fetched_at = time.monotonic()
        self._served.add(channel_name)
        if self._error is not None:
            raise SensorError(str(self._error))
        assert self._values is not None
        return self._values


class ModbusMeterConfig(Strict):
    """What every Modbus RTU meter needs beyond its bus: its device id (slave address) on the RS-485 line."""

    registers: ClassVar[RegisterMap]  # the meter's register map (each kind sets its own)

    bus: Name
    device_id: int = Field(default=1, description="Modbus device id (slave address) 1..247; Eastron's default is 1")
    description: str = ""

    @field_validator("device_id")
    @classmethod
    def _device_id_in_range(cls, value: int) -> int:
        if not 1 <= value <= 247:
            raise ValueError(f"device_id {value} is out of range: Modbus RTU device ids are 1 to 247 (0 is broadcast)")
        return value


def _serial_port(buses: Buses, bus: str) -> ModbusPort:
    port = buses.bus(bus)
    if not isinstance(port, SerialPort):
        raise DeviceMissingError(f"{buses.bus_label(bus)} is not a serial port")
    return port.modbus()


def modbus_meter_kind(
    kind: str, config: type[ModbusMeterConfig], registers: RegisterMap, baudrates: tuple[int, ...], factory: str
) -> DeviceKind:
    """The registry entry of a Modbus RTU meter whose values are float32 input registers in `registers`."""
    table = MeterInputs(registers.quantities)

    def check_bus(device: Mapping[str, Any], bus_name: str, bus: Mapping[str, Any]) -> Iterator[Finding]:
        baudrate = bus.get("baudrate")
        if baudrate is None:
            yield (
                ["buses", bus_name],
                f"say the baud rate of {article(kind)} {kind} on bus '{bus_name}' (`baudrate = ...`): meters differ "
                f"(factory setting: {factory}) and a guess only times out",
            )
        elif isinstance(baudrate, int) and baudrate not in baudrates:
            yield (
                ["buses", bus_name, "baudrate"],
                f"{article(kind)} {kind} cannot use {baudrate} baud; it speaks "
                f"{', '.join(map(str, baudrates))} (factory setting: {factory})",
            )
        if bus.get("bytesize", 8) != 8:
            yield ["buses", bus_name, "bytesize"], f"Modbus RTU ({kind}) needs 8 data bits"
        if bus.get("stopbits", 1) == 2 and bus.get("parity", "N") != "N":
            yield ["buses", bus_name, "stopbits"], f"{article(kind)} {kind} uses 2 stop bits only without parity"

    def open_meter(name: str, meter: Any, buses: Buses) -> ModbusMeter:
        return ModbusMeter(name, meter.device_id, registers, _serial_port(buses, meter.bus))

    return DeviceKind(
        kind=kind,
        config=config,
        bus_kind="serial",
        inputs=table.inputs,
        default_unit=table.default_unit,
        open=open_meter,
        channel_defaults=table.channel_defaults,
        check_bus=check_bus,
        describe=lambda meter: f"{registers.model} meter, Modbus device id {meter.device_id}",
    )
