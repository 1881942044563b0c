"""Modbus RTU meters through the real pymodbus client against the register-exact slave on a pty: every register
of the SDM120 and SDM630 maps, several meters in one round on one line, each line fault and its recovery."""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.drivers import sdm120, sdm630
from controller.drivers.base import SensorError
from controller.emulators.modbus_slave import ModbusSlaveEmulator, meter_values
from controller.emulators.serial_port import EmulatedSerialPort
from controller.layout.channel import Channel
from controller.meters.line import SerialLine, SerialPort
from controller.meters.modbus import ModbusMeter, RegisterMap, frame_bytes, plan_requests


def as_float32(value: float) -> float:
    """What a float32 register pair holds for `value`."""
    return float(struct.unpack(">f", struct.pack(">f", value))[0])


@pytest.fixture
def line(tmp_path: Path) -> Iterator[tuple[ModbusSlaveEmulator, SerialPort]]:
    port = EmulatedSerialPort(tmp_path / "ttyUSB0")
    slave = ModbusSlaveEmulator(port, baudrate=9600, timing=False).start()
    serial = SerialPort(SerialLine(str(port.path), 9600, 8, "N", 1, 0.3, "test RS-485 line"))
    yield slave, serial
    serial.close()
    slave.stop()
    port.close()


def channel(name: str, device: str = "meter") -> Channel:
    return Channel(device=device, input=name, max_jitter=None, plausible=(-1e9, 1e9))


@pytest.mark.parametrize("registers", [sdm120.REGISTERS, sdm630.REGISTERS], ids=lambda r: r.model)
def test_every_register_reads_back_exactly(
    line: tuple[ModbusSlaveEmulator, SerialPort], registers: RegisterMap
) -> None:
    slave, serial = line
    written = {q.address: 100.0 * i + 0.123 for i, q in enumerate(registers.quantities)}
    slave.add_meter(7).set_floats(written)
    meter = ModbusMeter("meter", 7, registers, serial.modbus())
    readers = {q.name: meter.reader(q.name, channel(q.name)) for q in registers.quantities}
    for quantity in registers.quantities:
        assert readers[quantity.name]() == as_float32(written[quantity.address]), quantity.name


def test_maps_match_the_issue_and_the_makers_tables() -> None:
    expected_120 = {"voltage": 0x0000, "current": 0x0006, "power": 0x000C, "power-factor": 0x001E,
                    "frequency": 0x0046, "import-energy": 0x0048, "export-energy": 0x004A}  # fmt: skip
    assert {n: sdm120.REGISTERS.quantity(n).address for n in expected_120} == expected_120
    expected_630 = {"power": 0x0034, "import-energy": 0x0048, "export-energy": 0x004A}
    assert {n: sdm630.REGISTERS.quantity(n).address for n in expected_630} == expected_630


def test_several_meters_on_one_line_are_read_in_one_round(line: tuple[ModbusSlaveEmulator, SerialPort]) -> None:
    slave, serial = line
    meters = {}
    for device_id, registers, power in ((1, sdm120.REGISTERS, 2100.0), (2, sdm120.REGISTERS, 450.0),
                                        (3, sdm630.REGISTERS, 6300.0)):  # fmt: skip
        pairs = [(q.name, q.address) for q in registers.quantities]
        slave.add_meter(device_id).set_floats(
            meter_values(pairs, power, 1000.0 + device_id, 0.0, 3 if device_id == 3 else 1)
        )
        meter = ModbusMeter(f"m{device_id}", device_id, registers, serial.modbus())
        meters[device_id] = (
            meter.reader("power", channel("power")),
            meter.reader("import-energy", channel("import-energy")),
        )
    before = slave.requests
    readings = {device_id: (power(), energy()) for device_id, (power, energy) in meters.items()}
    assert readings == {1: (2100.0, 1001.0), 2: (450.0, 1002.0), 3: (6300.0, 1003.0)}
    # power and import energy are 58 registers apart on an SDM120: two requests per meter, none per extra channel
    assert slave.requests - before == 6


def test_requests_are_grouped_within_the_meters_limit() -> None:
    addresses = [q.address for q in sdm120.REGISTERS.quantities]
    spans = plan_requests(addresses, max_registers=60)
    assert all(count <= 60 for _, count in spans)
    covered = {a for start, count in spans for a in range(start, start + count, 2)}
    assert set(addresses) <= covered
    assert plan_requests([0x0C, 0x48], 60) == [(0x0C, 2), (0x48, 2)]
    assert plan_requests([0x00, 0x06, 0x0C], 60) == [(0x00, 14)]
    assert frame_bytes(2) == (8, 9)


# (fault, words the error must contain)
FAULTS = [
    ("timeout", "no answer from meter id 1"),
    ("crc", "failed its CRC check"),
    ("wrong-id", "a reply to meter id 1 came from device id 2"),
    ("exception", "exception 4 (server device failure)"),
]


@pytest.mark.parametrize(("fault", "words"), FAULTS, ids=[f for f, _ in FAULTS])
def test_line_faults_are_named_and_recover(
    line: tuple[ModbusSlaveEmulator, SerialPort], fault: str, words: str
) -> None:
    slave, serial = line
    slave.add_meter(1).set_floats({0x000C: 1234.5})
    read = ModbusMeter("hp", 1, sdm120.REGISTERS, serial.modbus()).reader("power", channel("power"))
    assert read() == 1234.5
    slave.faults[1] = fault  # type: ignore[assignment]
    for _ in range(2):  # the same words each time, so the sampler logs it once
        with pytest.raises(SensorError, match=re.escape(words)):
            read()
    slave.faults[1] = None
    assert read() == 1234.5


def test_a_late_reply_is_never_taken_for_the_next_request(line: tuple[ModbusSlaveEmulator, SerialPort]) -> None:
    """RTU replies carry no request id: a reply that comes after the timeout, while the next request (same function,
    same size, same meter) waits, would be taken for its answer: the demo at speed once read the power as the
    energy counter. The next request (here of another round, at once) must get its own reply."""
    slave, serial = line
    slave.add_meter(1).set_floats({0x000C: 2308.3, 0x0048: 1525.8})
    port = serial.modbus()
    power = ModbusMeter("hp", 1, sdm120.REGISTERS, port).reader("power", channel("power"))
    energy = ModbusMeter("hp-counter", 1, sdm120.REGISTERS, port).reader("import-energy", channel("import-energy"))
    slave.late_s = 0.4  # the client waits 0.3 s
    slave.faults[1] = "late"
    with pytest.raises(SensorError, match="no answer"):
        power()
    slave.faults[1] = None
    assert energy() == as_float32(1525.8)
    assert power() == as_float32(2308.3)


def test_unplugged_adapter_is_named_and_found_again(line: tuple[ModbusSlaveEmulator, SerialPort]) -> None:
    slave, serial = line
    slave.add_meter(1).set_floats({0x000C: 800.0})
    read = ModbusMeter("hp", 1, sdm120.REGISTERS, serial.modbus()).reader("power", channel("power"))
    assert read() == 800.0
    slave.port.unplug()
    messages = set()
    for _ in range(3):
        with pytest.raises(SensorError) as caught:
            read()
        messages.add(str(caught.value))
        time.sleep(0.3)  # a new round
    assert messages == {"test RS-485 line is gone (USB adapter unplugged?); retrying every sample"}
    slave.port.plug()
    time.sleep(0.3)
    assert read() == 800.0


def test_wire_timing_is_honest(tmp_path: Path) -> None:
    """At 2400 baud the emulated meter answers no sooner than the frames take on the wire."""
    port = EmulatedSerialPort(tmp_path / "ttyUSB0")
    slave = ModbusSlaveEmulator(port, baudrate=2400, timing=True).start()
    serial = SerialPort(SerialLine(str(port.path), 2400, 8, "N", 1, 1.0, "slow line"))
    try:
        slave.add_meter(1).set_floats({0x000C: 10.0})
        read = ModbusMeter("hp", 1, sdm120.REGISTERS, serial.modbus()).reader("power", channel("power"))
        read()
        started = time.monotonic()
        read_again = ModbusMeter("hp2", 1, sdm120.REGISTERS, serial.modbus()).reader("power", channel("power"))
        read_again()
        elapsed = time.monotonic() - started
        request, reply = frame_bytes(2)
        assert elapsed >= (request + reply) * 10 / 2400  # 17 bytes of 10 bits: 71 ms
    finally:
        serial.close()
        slave.stop()
        port.close()
