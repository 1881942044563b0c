"""When a controller answers a state request (docs/protocol.md, "State requests"): pure, on an injected time.

- A request for this site alone is answered at once; one for the whole fleet after a random delay of up to
  `STATE_REQUEST_SPREAD_S`, so hundreds of sites do not answer in the same instant.
- At most one answer per `STATE_REQUEST_MIN_INTERVAL_S`: a request while an answer is pending, or soon after
  one, is covered by it (answered at the end of the interval at the latest). Anyone who may publish a request
  can therefore make a site publish its state at most every few seconds, and never switch anything.
- A request for another site is none of this controller's business.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from controller.protocol import STATE_REQUEST_MIN_INTERVAL_S, STATE_REQUEST_SPREAD_S, StateRequest

__all__ = ["StateRequests"]


@dataclass
class StateRequests:
    site: str
    rng: random.Random = field(default_factory=random.Random)
    due: float | None = None
    """when the pending answer is due (monotonic seconds), or None"""
    answered_at: float = -math.inf

    def asked(self, request: StateRequest, now: float) -> None:
        if (request.site is not None and request.site != self.site) or self.due is not None:
            return
        spread = 0.0 if request.site is not None else self.rng.uniform(0.0, STATE_REQUEST_SPREAD_S)
        self.due = max(now + spread, self.answered_at + STATE_REQUEST_MIN_INTERVAL_S)

    def take(self, now: float) -> bool:
        """Whether to answer now; if so, the answer counts as given."""
        if self.due is None or now < self.due:
            return False
        self.due, self.answered_at = None, now
        return True
