"""Modbus RTU round time per meter against the emulated meter on a pty, next to the wire-time limit.

The emulated SDM120 answers after the time its frames would take on the wire (request, 3.5-character silence,
the meter's turnaround, reply), so the round time measured through pymodbus is the wire time plus what the
client stack adds. The limit is computed from the frame sizes alone: per request, 8 bytes out, 5 + 2n bytes
back, the 3.5-character silence that ends each frame before the other side may speak, at the line's bits per
character (8N1: 10).
The turnaround is set to 0 here so the ratio shows the client's own overhead; a real SDM120 adds tens of ms.

    .venv/bin/python bench/modbus_round.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.drivers import sdm120
from controller.emulators.modbus_slave import ModbusSlaveEmulator, meter_values
from controller.emulators.serial_port import EmulatedSerialPort
from controller.meters.line import SerialLine, SerialPort
from controller.meters.modbus import frame_bytes, plan_requests

SILENCE_CHARS = 3.5
SETS = {
    "power + import kWh (the heat-pump pair)": ["power", "import-energy"],
    "all 13 SDM120 values": [q.name for q in sdm120.REGISTERS.quantities],
}


def limit_s(spans: list[tuple[int, int]], line: SerialLine) -> float:
    """Each request, the silence that ends it, its reply; and the silence between one exchange and the next."""
    chars = sum(sum(frame_bytes(count)) + SILENCE_CHARS for _, count in spans) + SILENCE_CHARS * (len(spans) - 1)
    return chars * line.bits_per_char / line.baudrate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hearth-modbus-bench-"))
    print(f"{'baud':>5}  {'values':42} {'requests':>8} {'limit ms':>9} {'mean ms':>8} {'p95 ms':>7} {'ratio':>6}")
    for baud in (2400, 9600):
        port = EmulatedSerialPort(folder / f"ttyUSB-{baud}")
        slave = ModbusSlaveEmulator(port, baudrate=baud, turnaround_s=0.0, timing=True).start()
        pairs = [(q.name, q.address) for q in sdm120.REGISTERS.quantities]
        slave.add_meter(1).set_floats(meter_values(pairs, 2500.0, 1523.25, 0.0, 1))
        line = SerialLine(str(port.path), baud, 8, "N", 1, 2.0, f"bench line at {baud}")
        serial = SerialPort(line)
        modbus = serial.modbus()
        try:
            for label, names in SETS.items():
                spans = plan_requests([sdm120.REGISTERS.quantity(n).address for n in names], 60)
                modbus.read_floats(1, spans)  # connect and warm up
                times = []
                for _ in range(args.rounds):
                    started = time.perf_counter()
                    modbus.read_floats(1, spans)
                    times.append(time.perf_counter() - started)
                limit = limit_s(spans, line)
                mean = statistics.fmean(times)
                p95 = sorted(times)[int(0.95 * (len(times) - 1))]
                print(
                    f"{baud:>5}  {label:42} {len(spans):>8} {limit * 1000:>9.1f} {mean * 1000:>8.1f} "
                    f"{p95 * 1000:>7.1f} {mean / limit:>6.2f}"
                )
        finally:
            serial.close()
            slave.stop()
            port.close()


if __name__ == "__main__":
    main()
