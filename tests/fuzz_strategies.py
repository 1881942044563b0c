"""Hypothesis strategies for everything Hearth accepts from outside, and hand-picked hostile cases.

Every inbound message type has a strategy that builds messages *near* valid ones (right keys, hostile values:
NaN/Infinity written as JSON literals, huge or negative numbers, wrong types, extra keys, unknown actuators), so
the fuzzing reaches the models and the handlers, not only the JSON decoder. `HOSTILE` are the cases an attacker
would try first. Used by tests/test_fuzz.py (short form, in CI), tests/test_local_api.py, tests/test_atn_link.py and
bench/fuzz.py (long form).
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import strategies as st

T0 = 1_800_000_000.0
EXAMPLES = int(os.environ.get("HEARTH_FUZZ_EXAMPLES", "150"))  # bench/fuzz.py raises it for the long form
ACTUATORS = ["heat-pump", "store-pump", "distribution-pump", "aux-element"]
OPS = ["subscribe", "override", "keepalive", "release", "ack_alarm", "layout", "history"]
NON_FINITE_LITERALS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "123456789012345678901234567890"]


class Raw(str):
    """A JSON literal written as it is (NaN, Infinity, 1e400): json.dumps cannot produce some of them."""


def encode(value: Any) -> bytes:
    """JSON text of `value`, with `Raw` values written verbatim."""
    if isinstance(value, Raw):
        return value.encode()
    if isinstance(value, dict):
        return b"{" + b",".join(json.dumps(str(k)).encode() + b":" + encode(v) for k, v in value.items()) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(encode(v) for v in value) + b"]"
    return json.dumps(value).encode()


NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(min_value=T0 - 7200, max_value=T0 + 7200),
    st.sampled_from(NON_FINITE_LITERALS).map(Raw),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=20))
ANY = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
IDS = st.one_of(st.text(min_size=0, max_size=80), st.sampled_from(["lease-1", "x", "\ud800", "a" * 65]), ANY)
VERSIONS = st.one_of(st.just(1), st.just(1), st.just(1), SCALARS)


def _message(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A message with the model's keys (some left out, an odd extra key now and then) and hostile values."""
    extras = st.dictionaries(st.sampled_from(["extra", "V", "id ", "__proto__"]), ANY, max_size=1)
    return st.fixed_dictionaries({"v": VERSIONS}, optional=fields).flatmap(
        lambda base: extras.map(lambda extra: {**base, **extra})
    )


HEARTBEAT = _message({"atn": IDS, "ts": NUMBERS, "seq": NUMBERS})
ACK_UPTO = _message({"upto_seq": NUMBERS})
PRICE = _message({"start": NUMBERS, "end": NUMBERS, "price": NUMBERS})
DISPATCH = _message(
    {
        "id": IDS,
        "issued_at": NUMBERS,
        "valid_until": NUMBERS,
        "actuators": st.dictionaries(st.sampled_from([*ACTUATORS, "boiler"]) | st.text(max_size=8), SCALARS),
        "setpoints": st.dictionaries(st.sampled_from(["comfort", "x"]), NUMBERS),
        "prices": st.lists(PRICE, max_size=3) | SCALARS,
    }
)
WEATHER_SLOT = _message({"start": NUMBERS, "end": NUMBERS, "outdoor_c": NUMBERS})
WEATHER = _message({"id": IDS, "issued_at": NUMBERS, "points": st.lists(WEATHER_SLOT, max_size=3) | SCALARS})
REQUEST = _message(
    {
        "id": IDS,
        "op": st.sampled_from(OPS) | st.text(max_size=10),
        "target": st.sampled_from([*ACTUATORS, "setpoint:comfort", "boiler"]) | SCALARS,
        "value": SCALARS,
        "duration_s": NUMBERS,
        "reason": st.text(max_size=250),
        "override_id": IDS,
        "alarm": IDS,
        "channel": st.sampled_from(["tank-top", "nope"]) | SCALARS,
        "hours": NUMBERS,
    }
)
EVENT = _message(
    {
        "site": st.sampled_from(["demo-house", "other-site"]),
        "seq": NUMBERS,
        "ts": NUMBERS,
        "kind": st.text(max_size=10),
        "message": st.text(max_size=30),
        "data": st.dictionaries(st.text(max_size=5), ANY, max_size=3),
    }
)


def _mangled(message: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """The message's bytes, sometimes cut short, nested, given a duplicate key or a broken byte."""
    cut = st.integers(min_value=0, max_value=400)
    return st.one_of(
        message.map(encode),
        message.map(encode),
        st.tuples(message.map(encode), cut).map(lambda pair: pair[0][: pair[1]]),
        st.tuples(message.map(encode), st.integers(1, 40)).map(lambda pair: b"[" * pair[1] + pair[0] + b"]" * pair[1]),
        message.map(lambda m: b'{"v": 1, "v": 1, ' + encode(m)[1:] if len(m) else b'{"v":1,"v":1}'),
        message.map(lambda m: encode(m).replace(b'"', b'"\xff', 1)),
        st.binary(max_size=120),
    )


PAYLOADS: dict[str, st.SearchStrategy[bytes]] = {
    "heartbeat": _mangled(HEARTBEAT),
    "dispatch": _mangled(DISPATCH),
    "telemetry-ack": _mangled(ACK_UPTO),
    "events-ack": _mangled(ACK_UPTO),
    "weather": _mangled(WEATHER),
}
REQUEST_LINES = _mangled(REQUEST)
EVENT_PAYLOADS = _mangled(EVENT)


def hostile(now: float = T0) -> list[tuple[str, str, bytes]]:
    """(name, kind, payload) of hand-picked hostile cases; `kind` is an ATN topic kind or "request"."""
    lease = {
        "v": 1,
        "id": "hostile",
        "issued_at": now - 1,
        "valid_until": now + 300,
        "actuators": {"aux-element": True},
    }
    cases: list[tuple[str, str, bytes]] = []
    weather = {
        "v": 1,
        "id": "w",
        "issued_at": now - 1,
        "points": [{"v": 1, "start": now, "end": now + 3600, "outdoor_c": 2.0}],
    }
    for kind in ("heartbeat", "dispatch", "telemetry-ack", "events-ack", "weather", "request"):
        cases += [
            (f"{kind}: 200,000 [", kind, b"[" * 200_000),
            (f"{kind}: 60,000 {{", kind, b'{"a":' * 60_000),
            (f"{kind}: 10 MB", kind, b'{"v": 1, "id": "' + b"x" * 10_000_000 + b'"}'),
            (f"{kind}: invalid UTF-8", kind, b'{"v": 1, "id": "\xff\xfe\xfd"}'),
            (f"{kind}: lone surrogate", kind, b'{"v": 1, "id": "\\udc00"}'),
            (f"{kind}: duplicate keys", kind, b'{"v": 1, "v": 2, "id": "d", "id": "e"}'),
            (f"{kind}: a list", kind, b"[1, 2, 3]"),
            (f"{kind}: empty", kind, b""),
        ]
    numeric = {
        "heartbeat": ({"v": 1, "atn": "a", "ts": now, "seq": 1}, ["ts", "seq"]),
        "dispatch": (lease, ["issued_at", "valid_until"]),
        "telemetry-ack": ({"v": 1, "upto_seq": 1}, ["upto_seq"]),
        "events-ack": ({"v": 1, "upto_seq": 1}, ["upto_seq"]),
        "weather": (weather, ["issued_at"]),
        "request": ({"v": 1, "id": "r", "op": "override", "target": "aux-element", "duration_s": 60}, ["duration_s"]),
    }
    for kind, (body, fields) in numeric.items():
        for field in fields:
            for literal in NON_FINITE_LITERALS:
                cases.append((f"{kind}: {field} = {literal}", kind, encode({**body, field: Raw(literal)})))
    cases += [
        ("dispatch: setpoint NaN", "dispatch", encode({**lease, "setpoints": {"comfort": Raw("NaN")}})),
        (
            "dispatch: price Infinity",
            "dispatch",
            encode({**lease, "prices": [{"v": 1, "start": 1, "end": 2, "price": Raw("Infinity")}]}),
        ),
        ("dispatch: stale (10 min old)", "dispatch", encode({**lease, "issued_at": now - 600})),
        ("dispatch: unknown actuator", "dispatch", encode({**lease, "actuators": {"boiler": True}})),
        (
            "weather: outdoor NaN",
            "weather",
            encode({**weather, "points": [{"v": 1, "start": now, "end": now + 3600, "outdoor_c": Raw("NaN")}]}),
        ),
        ("weather: stale (13 h old)", "weather", encode({**weather, "issued_at": now - 13 * 3600})),
        (
            "weather: 200 °C",
            "weather",
            encode({**weather, "points": [{"v": 1, "start": now, "end": now + 3600, "outdoor_c": 200}]}),
        ),
        (
            "weather: overlapping slots",
            "weather",
            encode({**weather, "points": [{"start": now, "end": now + 7200, "outdoor_c": 1}] * 2}),
        ),
        (
            "weather: 100,000 slots",
            "weather",
            encode(
                {**weather, "points": [{"start": now + i, "end": now + i + 1, "outdoor_c": 1} for i in range(100_000)]}
            ),
        ),
        (
            "request: override value NaN",
            "request",
            b'{"v":1,"id":"n","op":"override","target":"aux-element","value":NaN}',
        ),
        (
            "request: history hours 1e400",
            "request",
            b'{"v":1,"id":"h","op":"history","channel":"tank-top","hours":1e400}',
        ),
    ]
    return cases
