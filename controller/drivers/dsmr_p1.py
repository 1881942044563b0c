"""A DSMR P1 smart-meter port (the Dutch/Belgian/Luxembourg standard), read with dsmr-parser.

DSMR 5 sends a telegram every second at 115200 baud 8N1; DSMR 4 every ten seconds at 115200 7E1. Both carry a
CRC16 that dsmr-parser checks. Power is in kW on the wire and in W here; energy stays in kWh. `power` is the
net grid power (delivered minus received: positive when the house imports), for the energy accounts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import Field

from controller.drivers.base import Buses, DeviceKind, DeviceMissingError, Finding
from controller.layout.base import Name, Strict
from controller.meters.inputs import MeterInputs
from controller.meters.line import SerialPort
from controller.meters.p1 import Obis, P1Meter

GRID_W = (0.0, 60_000.0)
NET_W = (-60_000.0, 60_000.0)
PHASE_W = (0.0, 25_000.0)
ENERGY = (0.0, 1e8)

OBJECTS: tuple[Obis, ...] = (
    Obis("power-delivered", "CURRENT_ELECTRICITY_USAGE", "W", GRID_W, "1-0:1.7.0"),
    Obis("power-received", "CURRENT_ELECTRICITY_DELIVERY", "W", GRID_W, "1-0:2.7.0"),
    Obis("import-energy-t1", "ELECTRICITY_USED_TARIFF_1", "kWh", ENERGY, "1-0:1.8.1"),
    Obis("import-energy-t2", "ELECTRICITY_USED_TARIFF_2", "kWh", ENERGY, "1-0:1.8.2"),
    Obis("export-energy-t1", "ELECTRICITY_DELIVERED_TARIFF_1", "kWh", ENERGY, "1-0:2.8.1"),
    Obis("export-energy-t2", "ELECTRICITY_DELIVERED_TARIFF_2", "kWh", ENERGY, "1-0:2.8.2"),
    Obis("tariff", "ELECTRICITY_ACTIVE_TARIFF", "", (1.0, 2.0), "0-0:96.14.0"),
    Obis("power-l1-delivered", "INSTANTANEOUS_ACTIVE_POWER_L1_POSITIVE", "W", PHASE_W, "1-0:21.7.0"),
    Obis("power-l2-delivered", "INSTANTANEOUS_ACTIVE_POWER_L2_POSITIVE", "W", PHASE_W, "1-0:41.7.0"),
    Obis("power-l3-delivered", "INSTANTANEOUS_ACTIVE_POWER_L3_POSITIVE", "W", PHASE_W, "1-0:61.7.0"),
    Obis("power-l1-received", "INSTANTANEOUS_ACTIVE_POWER_L1_NEGATIVE", "W", PHASE_W, "1-0:22.7.0"),
    Obis("power-l2-received", "INSTANTANEOUS_ACTIVE_POWER_L2_NEGATIVE", "W", PHASE_W, "1-0:42.7.0"),
    Obis("power-l3-received", "INSTANTANEOUS_ACTIVE_POWER_L3_NEGATIVE", "W", PHASE_W, "1-0:62.7.0"),
    Obis("voltage-l1", "INSTANTANEOUS_VOLTAGE_L1", "V", (0.0, 300.0), "1-0:32.7.0"),
    Obis("voltage-l2", "INSTANTANEOUS_VOLTAGE_L2", "V", (0.0, 300.0), "1-0:52.7.0"),
    Obis("voltage-l3", "INSTANTANEOUS_VOLTAGE_L3", "V", (0.0, 300.0), "1-0:72.7.0"),
    Obis("current-l1", "INSTANTANEOUS_CURRENT_L1", "A", (0.0, 100.0), "1-0:31.7.0"),
    Obis("current-l2", "INSTANTANEOUS_CURRENT_L2", "A", (0.0, 100.0), "1-0:51.7.0"),
    Obis("current-l3", "INSTANTANEOUS_CURRENT_L3", "A", (0.0, 100.0), "1-0:71.7.0"),
    Obis("long-power-failures", "LONG_POWER_FAILURE_COUNT", "", (0.0, 1e6), "0-0:96.7.9"),
    # The gas meter's reading, relayed over M-Bus: dsmr-parser names it per DSMR version.
    Obis("gas", "MBUS_METER_READING", "m3", ENERGY, "0-1:24.2.1"),
    Obis("gas", "HOURLY_GAS_METER_READING", "m3", ENERGY, "0-1:24.2.1"),
)
DERIVED: tuple[Obis, ...] = (Obis("power", "", "W", NET_W, "1-0:1.7.0 - 1-0:2.7.0"),)
TABLE = MeterInputs((*OBJECTS, *DERIVED))
# (baud, data bits, parity, stop bits) and telegram interval per DSMR version.
FRAMING: dict[int, tuple[int, int, str, int]] = {5: (115_200, 8, "N", 1), 4: (115_200, 7, "E", 1)}
INTERVAL_S: dict[int, float] = {5: 1.0, 4: 10.0}


class DsmrP1Config(Strict):
    """A smart meter's P1 port on a serial bus of its own (a USB P1 cable, or the Pi's UART with an inverter)."""

    kind: Literal["dsmr_p1"]
    bus: Name
    dsmr: Literal[4, 5] = Field(default=5, description="DSMR version the meter speaks: 5 (1 s, 8N1) or 4 (10 s, 7E1)")
    description: str = ""


def _specification(version: int) -> Mapping[str, Any]:
    from dsmr_parser import telegram_specifications

    specification: Mapping[str, Any] = telegram_specifications.V5 if version == 5 else telegram_specifications.V4
    return specification


def _open(name: str, config: Any, buses: Buses) -> P1Meter:
    port = buses.bus(config.bus)
    if not isinstance(port, SerialPort):
        raise DeviceMissingError(f"{buses.bus_label(config.bus)} is not a serial port")
    return P1Meter(name, port.p1(_specification(config.dsmr), OBJECTS, INTERVAL_S[config.dsmr]))


def _check_bus(device: Mapping[str, Any], bus_name: str, bus: Mapping[str, Any]) -> Iterator[Finding]:
    version = device.get("dsmr", 5)
    if version not in FRAMING:
        return
    baud, bits, parity, stops = FRAMING[version]
    have = (bus.get("baudrate", 9600), bus.get("bytesize", 8), bus.get("parity", "N"), bus.get("stopbits", 1))
    if have != (baud, bits, parity, stops):
        yield (
            ["buses", bus_name],
            f"a DSMR {version} meter sends at {baud} baud {bits}{parity}{stops}, but bus '{bus_name}' is set to "
            f"{have[0]} baud {have[1]}{have[2]}{have[3]}",
        )


KIND = DeviceKind(
    kind="dsmr_p1",
    config=DsmrP1Config,
    bus_kind="serial",
    inputs=TABLE.inputs,
    default_unit=TABLE.default_unit,
    open=_open,
    channel_defaults=TABLE.channel_defaults,
    check_bus=_check_bus,
    describe=lambda config: f"DSMR {config.dsmr} P1 port (a telegram every {INTERVAL_S[config.dsmr]:g} s)",
)
