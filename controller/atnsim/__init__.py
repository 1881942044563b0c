"""`hearth atn-sim`: a reference ATN (the cloud side of the link) that real deployments can test against.

- `sim.AtnSim`: heartbeats, price-driven leases, telemetry persisted and acknowledged, pause/resume for failover.
- `ledger.Ledger`: the SQLite ledger of every reading received, and what was acknowledged.
- `prices`: the built-in daily tariff or a price file, and the lease each price band asks for.
- `cli`: the `atn-sim` subcommand (`add_parser`, `run_cli`).
"""
