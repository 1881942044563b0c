"""Links to the outside: the ATN over MQTT (and, later, the local socket)."""
