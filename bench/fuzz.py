"""The fuzz suite, long form: many more examples of every inbound message type and the socket's requests, against
the real parse path and handlers (the ATN link's `handle`, the socket's `parse`, the reference ATN's `handle`),
plus every hand-picked hostile case. Counts examples, rejections and crashes (anything but a structured answer;
the target is 0) and checks that nothing switched without an accepted ack.

`.venv/bin/python bench/fuzz.py [--examples 5000]` (tests/test_fuzz.py is the short form CI runs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests/fuzz_strategies.py: the strategies the tests use

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from controller import logs, protocol  # noqa: E402
from controller.atnsim.sim import AtnConfig, AtnSim  # noqa: E402
from controller.clock import ManualClock  # noqa: E402
from controller.control.inbox import AtnInbox  # noqa: E402
from controller.decode import SOCKET_LIMITS  # noqa: E402
from controller.links.atn import AtnLinkRunner  # noqa: E402
from controller.links.config import AtnLink  # noqa: E402
from controller.store import Store  # noqa: E402
from tests import fuzz_strategies as fuzz  # noqa: E402
from tests.simhelpers import demo_layout  # noqa: E402

TOPICS = protocol.Topics("demo-house")
TOPIC_OF = dict(zip(("heartbeat", "dispatch", "telemetry-ack", "events-ack", "weather"), TOPICS.from_atn, strict=True))


class Tally:
    def __init__(self) -> None:
        self.examples: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.crashes: list[str] = []
        self.switched_without_ack = 0

    def run(self, name: str, body: Callable[[], bool]) -> None:
        """One example: `body` returns whether it was rejected; an exception is a crash."""
        self.examples[name] += 1
        try:
            if body():
                self.rejected[name] += 1
        except Exception:
            self.crashes.append(f"{name}: {traceback.format_exc(limit=3)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=5000, help="examples per message type (default 5000)")
    args = parser.parse_args()
    logs.configure("critical", json=False)  # every rejection is logged as a warning: far too many to read here
    tally = Tally()
    options = settings(
        max_examples=args.examples, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    with tempfile.TemporaryDirectory() as work:
        store = Store.open(Path(work) / "fuzz.sqlite")
        link = AtnLinkRunner(
            AtnLink(url="mqtt://127.0.0.1:1883"),
            demo_layout(),
            store,
            AtnInbox(),
            ManualClock(start=fuzz.T0),
            state=lambda: protocol.State(
                site="demo-house", ts=fuzz.T0, mode="LOCAL", reason="", readings={}, actuators={}
            ),
        )
        atn = AtnSim(AtnConfig(sites=("demo-house",), db=Path(work) / "ledger.sqlite"), clock=ManualClock(fuzz.T0))

        def on_link(kind: str, payload: bytes, retained: bool) -> bool:
            before = store.latest_lease()
            acks = [protocol.parse(protocol.Ack, body) for _, body in link.handle(TOPIC_OF[kind], payload, retained)]
            if store.latest_lease() != before and [a.accepted for a in acks] != [True]:
                tally.switched_without_ack += 1
            link.inbox.take()
            return any(not a.accepted for a in acks)

        def link_case(kind: str) -> None:
            @options
            @given(payload=fuzz.PAYLOADS[kind], retained=st.booleans())
            def case(payload: bytes, retained: bool) -> None:
                tally.run(f"atn/{kind}", lambda: on_link(kind, payload, retained))

            case()

        def on_socket(line: bytes) -> bool:
            try:
                protocol.parse(protocol.Request, line, SOCKET_LIMITS)
            except protocol.Rejected:
                return True
            return False

        def on_atn(payload: bytes) -> bool:
            return not atn.handle(TOPICS.events, payload)

        started = time.perf_counter()
        for kind in TOPIC_OF:
            link_case(kind)

        @options
        @given(line=fuzz.REQUEST_LINES)
        def socket_case(line: bytes) -> None:
            tally.run("socket request", lambda: on_socket(line))

        socket_case()

        @options
        @given(payload=fuzz.EVENT_PAYLOADS)
        def atn_case(payload: bytes) -> None:
            tally.run("reference ATN events", lambda: on_atn(payload))

        atn_case()
        for _, kind, payload in fuzz.hostile(fuzz.T0):
            if kind == "request":
                tally.run("hostile", lambda payload=payload: on_socket(payload))
            else:
                tally.run("hostile", lambda kind=kind, payload=payload: on_link(kind, payload, False))
        elapsed = time.perf_counter() - started
        atn.close()
        store.close()
    for name in tally.examples:
        print(f"{name:24} {tally.examples[name]:6} examples, {tally.rejected[name]:6} rejected with a reason")
    total = sum(tally.examples.values())
    print(
        f"total: {total} examples in {elapsed:.1f} s; crashes: {len(tally.crashes)} (target 0); "
        f"switched without an accepted ack: {tally.switched_without_ack} (target 0)"
    )
    for crash in tally.crashes[:5]:
        print(crash)
    ok = not tally.crashes and not tally.switched_without_ack
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("BLINKA_SKIP_DEPENDENCY_CHECK", "1")
    sys.exit(main())
