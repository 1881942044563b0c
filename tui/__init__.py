"""Hearth's terminal UI: a client of the controller through a transport (local socket or MQTT).

It only ever imports `controller.protocol` (and `controller.__version__`) from the controller: never drivers,
hardware, sampler, store or runtime code. Importing this package is cheap; Textual loads when the app starts.
"""
