"""A flood of hostile local connections never locks a technician out of the local socket (issue 9, defect 3).

Its own controller (the local API tests' fixture, in this module): the flood loads the machine, and the other
local API tests judge readings that must stay fresh.
"""

from __future__ import annotations

import time

from tests import flood
from tests.test_local_api import NOBODY, Running, _closing, hearth

__all__ = ["hearth"]


def test_a_flood_of_local_connections_never_locks_a_technician_out(hearth: Running) -> None:
    """1,000 connections held by one unprivileged user plus 64 slowloris clients of another: every technician's
    override still gets its answer (bench/socket_flood.py measures how fast; here the point is that it does).
    Before: 64 idle connections of anyone and a technician got "too many clients" for as long as they stayed."""
    flooders = flood.start(hearth.socket, NOBODY, 1000, 8.0)
    slowloris = flood.start(hearth.socket, NOBODY - 1, 64, 8.0, slowloris=True)
    time.sleep(1.5)  # let both fill every slot they can get
    latencies = []
    try:
        for _ in range(5):
            started = time.monotonic()
            with _closing(hearth.connect()) as technician:
                answer = technician.request("override", target="aux-element", value=False, duration_s=60)
                assert answer["ok"] and answer["role"] == "technician", answer
                latencies.append(time.monotonic() - started)
                assert technician.request("release", override_id=answer["override"]["id"])["ok"]
            time.sleep(0.5)
    finally:
        flooded, slow = flooders.finish(), slowloris.finish()
    assert flooded["refused"] > 0 and flooded["held_max"] >= 8, flooded  # refused with a reason, not a hang
    assert slow["dropped"] > 0, slow  # the per-line deadline cut the slowloris clients off
    assert max(latencies) < 5.0, latencies  # the client's own timeout; the bench holds the 1 s target
    with _closing(hearth.connect()) as client:  # and the controller serves as before
        assert client.request("layout")["ok"]
