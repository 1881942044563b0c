"""Register-level emulators of the Pi's buses, GPIO lines and sensor chips.

The real Adafruit CircuitPython drivers run unmodified against these objects, so everything above the bus
(drivers, conversions, control) is exercised exactly as on the hardware.
"""
