"""DSMR P1: a corpus of real-format telegrams parsed by dsmr-parser to the values Hearth hands out, a bad CRC
dropped whole, and the P1 port read live from the emulated meter on a pty, through cut and corrupt telegrams."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dsmr_parser import telegram_specifications
from dsmr_parser.exceptions import InvalidChecksumError
from dsmr_parser.parsers import TelegramParser

from controller.drivers.base import SensorError
from controller.drivers.dsmr_p1 import INTERVAL_S, OBJECTS
from controller.emulators.p1 import P1Emitter, P1Meter, telegram
from controller.emulators.serial_port import EmulatedSerialPort
from controller.meters.line import SerialLine
from controller.meters.p1 import P1Port, telegram_values
from controller.sim.grid import GridFlows

CORPUS = Path(__file__).resolve().parent / "p1"
SPECS = {5: telegram_specifications.V5, 4: telegram_specifications.V4}


def load(name: str) -> str:
    """A corpus telegram as it comes off the wire: CRLF line ends (the files keep LF for readability)."""
    return (CORPUS / f"{name}.txt").read_text().replace("\n", "\r\n")


# (file, DSMR version, {input: expected value}); power in W, energy in kWh.
CASES = [
    (
        "dsmr5-standard-example",
        5,
        {
            "power-delivered": 1193.0, "power-received": 0.0, "power": 1193.0,
            "import-energy-t1": 123456.789, "import-energy-t2": 123456.789,
            "export-energy-t1": 123456.789, "export-energy-t2": 123456.789, "tariff": 2.0,
            "power-l1-delivered": 1111.0, "power-l2-delivered": 2222.0, "power-l3-delivered": 3333.0,
            "power-l1-received": 4444.0, "power-l2-received": 5555.0, "power-l3-received": 6666.0,
            "voltage-l1": 220.1, "voltage-l2": 220.2, "voltage-l3": 220.3,
            "current-l1": 1.0, "current-l2": 2.0, "current-l3": 3.0,
            "long-power-failures": 2.0, "gas": 12785.123,
        },
    ),
    (
        "dsmr5-exporting",
        5,
        {
            "power-delivered": 0.0, "power-received": 2345.0, "power": -2345.0,
            "import-energy-t1": 4123.456, "export-energy-t2": 1520.678, "tariff": 2.0,
            "power-l2-received": 3045.0, "power-l1-delivered": 512.0, "voltage-l2": 236.9,
            "long-power-failures": 1.0, "gas": 1234.567,
        },
    ),
    (
        "dsmr4-kaifa",
        4,
        {
            "power-delivered": 2027.0, "power-received": 0.0, "power": 2027.0,
            "import-energy-t1": 1581.123, "import-energy-t2": 1435.706, "export-energy-t1": 0.0,
            "tariff": 2.0, "power-l2-delivered": 1399.0, "current-l2": 6.0,
            "long-power-failures": 7.0, "gas": 981.443,
        },
    ),
]  # fmt: skip


@pytest.mark.parametrize(("name", "version", "expected"), CASES, ids=[c[0] for c in CASES])
def test_corpus_telegram_parses_to_its_values(name: str, version: int, expected: dict[str, float]) -> None:
    values = telegram_values(TelegramParser(SPECS[version]).parse(load(name)), OBJECTS)
    for key, value in expected.items():
        assert values[key] == pytest.approx(value, abs=1e-9), key


def test_corpus_long_failure_log_and_timestamps_parse() -> None:
    parsed = TelegramParser(SPECS[5]).parse(load("dsmr5-standard-example"))
    log = parsed.POWER_EVENT_FAILURE_LOG
    assert log.buffer_length == 2
    assert [int(entry.value) for entry in log.buffer] == [240, 301]
    assert parsed.P1_MESSAGE_TIMESTAMP.value.isoformat() == "2010-12-09T10:30:20+00:00"  # 11:30:20 W(inter), CET


def test_a_telegram_with_a_bad_crc_is_refused_whole() -> None:
    with pytest.raises(InvalidChecksumError):
        TelegramParser(SPECS[5]).parse(load("dsmr5-bad-crc.txt".removesuffix(".txt")))


def test_the_emulator_writes_telegrams_that_parse_back_to_its_state() -> None:
    meter = P1Meter(version=5)
    meter.advance(GridFlows((1800.0, -2600.0, 250.0), (231.0, 232.5, 229.0)), tariff=1, dt_s=0.0, now=1.78e9)
    values = telegram_values(TelegramParser(SPECS[5]).parse(telegram(meter, ZoneInfo("Europe/Brussels"))), OBJECTS)
    assert values["power"] == pytest.approx(-550.0)
    assert values["power-received"] == pytest.approx(550.0) and values["power-delivered"] == 0.0
    assert values["power-l1-delivered"] == pytest.approx(1800.0)
    assert values["power-l2-received"] == pytest.approx(2600.0)
    assert values["tariff"] == 1.0


def test_the_meter_counts_energy_into_the_active_tariff() -> None:
    meter = P1Meter()
    start_t1, start_export_t2 = meter.import_kwh[0], meter.export_kwh[1]
    meter.advance(GridFlows((1000.0, 0.0, 0.0), (230.0,) * 3), tariff=1, dt_s=0.0, now=0.0)
    meter.advance(GridFlows((-2000.0, 0.0, 0.0), (230.0,) * 3), tariff=2, dt_s=3600.0, now=3600.0)  # 1 kWh at t1
    meter.advance(GridFlows((0.0, 0.0, 0.0), (230.0,) * 3), tariff=2, dt_s=1800.0, now=5400.0)  # 1 kWh out at t2
    assert meter.import_kwh[0] - start_t1 == pytest.approx(1.0)
    assert meter.export_kwh[1] - start_export_t2 == pytest.approx(1.0)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[P1Emitter, P1Port]]:
    port = EmulatedSerialPort(tmp_path / "ttyUSB1")
    meter = P1Meter(version=5)
    meter.advance(GridFlows((700.0, 300.0, 200.0), (230.0,) * 3), tariff=2, dt_s=0.0, now=1.78e9)
    emitter = P1Emitter(port, meter, ZoneInfo("Europe/Brussels"), interval_s=0.2).start()
    line = SerialLine(str(port.path), 115200, 8, "N", 1, 1.0, "test P1 port")
    reader = P1Port(line, SPECS[5], OBJECTS, interval_s=0.2)
    yield emitter, reader
    reader.close()
    emitter.stop()
    port.close()


def wait_for(check: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except SensorError:
            pass
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def latest_error(reader: P1Port) -> str:
    try:
        reader.latest()
    except SensorError as error:
        return str(error)
    return ""


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("crc", "fail their CRC check"),
        ("cable", "no valid P1 telegram"),
        ("unplugged", "is gone (USB adapter unplugged?)"),
    ],
)
def test_live_port_faults_and_recovery(live: tuple[P1Emitter, P1Port], fault: str, words: str) -> None:
    emitter, reader = live
    wait_for(lambda: reader.latest()["power"] == pytest.approx(1200.0))
    good = reader.telegrams
    emitter.set_fault(fault)  # type: ignore[arg-type]
    wait_for(lambda: words in latest_error(reader))
    if fault == "crc":
        assert reader.crc_errors >= 1
    frozen = reader.telegrams
    time.sleep(0.5)
    assert reader.telegrams == frozen  # nothing from a cut or corrupt telegram was taken
    emitter.set_fault(None)
    wait_for(lambda: reader.latest()["power"] == pytest.approx(1200.0))
    assert reader.telegrams > good


def test_dsmr_versions_have_the_standard_intervals() -> None:
    assert INTERVAL_S == {5: 1.0, 4: 10.0}
