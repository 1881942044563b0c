"""Energy: heat, electricity, COP and daily totals, derived from the measured channels.

Pure functions only (no clock, no I/O): `physics` (water's c_p and density, heat from flow and ΔT),
`integrate` (energy from power samples, with gaps marked, never invented), `daily` (totals per local day with
heatpumpmonitor.org's definitions), `rollup` (months and heating seasons), `starts` (compressor starts and COP now
from electrical power).
"""
