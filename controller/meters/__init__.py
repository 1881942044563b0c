"""Meters on serial lines: Modbus RTU electricity meters (pymodbus) and DSMR P1 smart meters (dsmr-parser).

A serial port is a bus like an I2C or SPI bus: one worker thread per port, every read on it. The device kinds
(controller/drivers/sdm120.py, sdm630.py, dsmr_p1.py) hold their settings and register or OBIS maps as data;
this package holds what they share: the line, the Modbus client per port and the P1 telegram reader.
"""
