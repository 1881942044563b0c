"""Eastron SDM630-Modbus (V2): a three-phase DIN-rail electricity meter on RS-485, Modbus RTU.

Same conventions as the SDM120 (function 04, float32, high word first, 0-based addresses). Checked against the
three-phase tables in Eastron's SDM72D-M and SDM72CT-M manuals (B+G e-tech): 30053 total system power at
0x0034, 30073/30075 import/export kWh at 0x0048/0x004A, per-phase volts/amps/watts from 0x0000 in steps of 2.
At most 30 values (60 registers) per request. Factory setting: 9600 baud, 8N1, device id 1.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from controller.meters.modbus import ModbusMeterConfig, Quantity, RegisterMap, modbus_meter_kind

PHASE_W = (-25_000.0, 25_000.0)
POWER_W = (-75_000.0, 75_000.0)
ENERGY_KWH = (0.0, 1e7)

REGISTERS = RegisterMap(
    model="SDM630",
    quantities=(
        Quantity("voltage-l1", 0x0000, "V", (0.0, 300.0), "phase 1 line to neutral voltage"),
        Quantity("voltage-l2", 0x0002, "V", (0.0, 300.0), "phase 2 line to neutral voltage"),
        Quantity("voltage-l3", 0x0004, "V", (0.0, 300.0), "phase 3 line to neutral voltage"),
        Quantity("current-l1", 0x0006, "A", (0.0, 100.0), "phase 1 current"),
        Quantity("current-l2", 0x0008, "A", (0.0, 100.0), "phase 2 current"),
        Quantity("current-l3", 0x000A, "A", (0.0, 100.0), "phase 3 current"),
        Quantity("power-l1", 0x000C, "W", PHASE_W, "phase 1 active power"),
        Quantity("power-l2", 0x000E, "W", PHASE_W, "phase 2 active power"),
        Quantity("power-l3", 0x0010, "W", PHASE_W, "phase 3 active power"),
        Quantity("power", 0x0034, "W", POWER_W, "total system power"),
        Quantity("power-factor", 0x003E, "", (-1.0, 1.0), "total system power factor"),
        Quantity("frequency", 0x0046, "Hz", (45.0, 65.0), "supply frequency"),
        Quantity("import-energy", 0x0048, "kWh", ENERGY_KWH, "total import active energy"),
        Quantity("export-energy", 0x004A, "kWh", ENERGY_KWH, "total export active energy"),
        Quantity("total-energy", 0x0156, "kWh", ENERGY_KWH, "total active energy"),
    ),
)
BAUDRATES = (2400, 4800, 9600, 19200, 38400)


class Sdm630Config(ModbusMeterConfig):
    """An SDM630 on a serial (RS-485) bus."""

    registers: ClassVar[RegisterMap] = REGISTERS
    kind: Literal["sdm630"]


KIND = modbus_meter_kind("sdm630", Sdm630Config, REGISTERS, BAUDRATES, factory="9600 baud 8N1, device id 1")
