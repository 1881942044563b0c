"""Plant simulator: the pure physics of a house, a stratified tank, a heat pump and the weather.

`weather` gives a seeded, deterministic outdoor temperature; `plant` turns actuator states into heat flows and
temperatures. Time is always passed in (UTC epoch seconds); nothing here reads the wall clock.
"""
