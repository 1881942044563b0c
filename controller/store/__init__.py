"""The durable store (SQLite): readings outbox, events, overrides, leases and cached forecasts.

`Store` is the one entry point; `Recorder` and `ChannelPolicy` decide which readings earn a row.
"""

from controller.store.database import OverrideTimer, Store
from controller.store.outbox import StoredReading
from controller.store.recorder import DEFAULT_POLICY, ChannelPolicy, PendingRow, Recorder, policies_for
from controller.store.schema import SCHEMA_VERSION, StoreError

__all__ = [
    "DEFAULT_POLICY",
    "SCHEMA_VERSION",
    "ChannelPolicy",
    "OverrideTimer",
    "PendingRow",
    "Recorder",
    "Store",
    "StoreError",
    "StoredReading",
    "policies_for",
]
