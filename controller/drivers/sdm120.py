"""Eastron SDM120-Modbus: a single-phase DIN-rail electricity meter on RS-485, Modbus RTU.

Input registers (function 04), each value an IEEE-754 float32 in two registers, high word first. Addresses are
0-based protocol addresses (the manuals' 3xxxx register numbers minus 30001). Checked against Eastron's
single-phase register table (as published for the SDM120/SDM230 family) and the SDM72D-M / SDM72CT-M manuals
(B+G e-tech, Eastron Germany), which share the layout: 0x0000 volts ... 0x0048/0x004A import/export kWh, and
"each request must be restricted to 30 parameters or less" (60 registers). Factory setting: 2400 baud 8N1,
device id 1 (pymodbus defaults to 19200: the layout always says the baud rate).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from controller.meters.modbus import ModbusMeterConfig, Quantity, RegisterMap, modbus_meter_kind

POWER_W = (-25_000.0, 25_000.0)  # 100 A at 250 V, either way
ENERGY_KWH = (0.0, 1e7)

REGISTERS = RegisterMap(
    model="SDM120",
    quantities=(
        Quantity("voltage", 0x0000, "V", (0.0, 300.0), "line to neutral voltage"),
        Quantity("current", 0x0006, "A", (0.0, 100.0), "current"),
        Quantity("power", 0x000C, "W", POWER_W, "active power (negative when exporting)"),
        Quantity("apparent-power", 0x0012, "VA", (0.0, 25_000.0), "apparent power"),
        Quantity("reactive-power", 0x0018, "var", POWER_W, "reactive power"),
        Quantity("power-factor", 0x001E, "", (-1.0, 1.0), "power factor"),
        Quantity("phase-angle", 0x0024, "deg", (-180.0, 180.0), "phase angle"),
        Quantity("frequency", 0x0046, "Hz", (45.0, 65.0), "supply frequency"),
        Quantity("import-energy", 0x0048, "kWh", ENERGY_KWH, "import active energy"),
        Quantity("export-energy", 0x004A, "kWh", ENERGY_KWH, "export active energy"),
        Quantity("import-reactive-energy", 0x004C, "kvarh", ENERGY_KWH, "import reactive energy"),
        Quantity("export-reactive-energy", 0x004E, "kvarh", ENERGY_KWH, "export reactive energy"),
        Quantity("total-energy", 0x0156, "kWh", ENERGY_KWH, "total active energy (import + export)"),
    ),
)
BAUDRATES = (1200, 2400, 4800, 9600)


class Sdm120Config(ModbusMeterConfig):
    """An SDM120 on a serial (RS-485) bus."""

    registers: ClassVar[RegisterMap] = REGISTERS
    kind: Literal["sdm120"]


KIND = modbus_meter_kind("sdm120", Sdm120Config, REGISTERS, BAUDRATES, factory="2400 baud 8N1, device id 1")
