"""The one way anything from outside becomes Python data: MQTT payloads, socket lines, store rows read back.

`decode_json` checks, in this order and before the data reaches a model, that the bytes are

- no longer than a size limit (checked before anything is read);
- nested no deeper than a depth limit (counted on the brackets outside strings, before the recursive decoder sees
  them: the C decoder recurses once per level and a deep enough document ends in RecursionError);
- UTF-8 JSON with one value, no duplicate keys, no lone surrogates (SQLite cannot store them);
- free of non-finite numbers: `NaN`, `Infinity` and numbers that overflow a float (`1e400`) are refused *inside*
  decoding by the decoder's hooks, so no NaN ever reaches a model, a comparison or the store.

Any failure is a `Rejected` with a `code` (stable, for programs) and a `reason` (a sentence, for people), never
another exception: callers turn it into an `ack` on MQTT or an error line on the socket. Message models then
validate the same bytes (pydantic, strict, `allow_inf_nan=False`), see `controller.protocol.parse`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal

from pydantic import ValidationError

RejectionCode = Literal[
    "too-large", "too-deep", "not-json", "duplicate-key", "non-finite", "not-an-object", "version", "invalid", "refused"
]


class Rejected(Exception):
    """Something from outside that cannot be used; `reason` says why in a sentence, `code` names the kind."""

    def __init__(self, reason: str, code: RejectionCode = "refused") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one message may hold."""

    max_bytes: int
    max_depth: int = 16


MQTT_LIMITS = Limits(max_bytes=256 * 1024)  # a dispatch with 48 h of quarter-hour prices is ~15 KB
SOCKET_LIMITS = Limits(max_bytes=64 * 1024)  # one request line
TELEMETRY_LIMITS = Limits(max_bytes=8 * 1024 * 1024)  # the ATN side: up to 50,000 readings per batch
STORE_LIMITS = Limits(max_bytes=4 * 1024 * 1024, max_depth=32)  # a row the controller wrote itself, read back

# A JSON string: a quote, then runs of ordinary characters or escapes, then a quote (unrolled, so linear).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = tuple(1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256))
MAX_INT_DIGITS = 19  # any seq, count or timestamp fits; 10**400 (which would be inf as a float) does not
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def nesting_depth(payload: bytes) -> int:
    """How deep the brackets outside strings go (0 for a scalar). Runs at C speed: a regex, a translate, and an
    accumulate over a table lookup."""
    skeleton = _STRING.sub(b"", payload).translate(None, _NOT_BRACKETS)
    if not skeleton:
        return 0
    return max(0, max(accumulate(map(_STEP.__getitem__, skeleton))))


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(f"the number {text[:40]} is too large for a float")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _NonFinite(f"the integer {text[:24]}... has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _no_constant(text: str) -> float:
    raise _NonFinite(f"{text} is not a number this protocol accepts (only finite numbers)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise _DuplicateKey(f"the key {duplicate[:64]!r} appears twice in one object")
    return result


class _NonFinite(ValueError):
    pass


class _DuplicateKey(ValueError):
    pass


def describe(error: ValidationError) -> str:
    """Every problem of a validation error in one sentence, each with where it is."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(message)'}: {e['msg'].removeprefix('Value error, ')}"
        for e in error.errors()
    )


def as_bytes(payload: bytes | bytearray | str) -> bytes:
    return payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else bytes(payload)


def _bounded(payload: bytes | bytearray | str, limits: Limits) -> bytes:
    raw = as_bytes(payload)
    if len(raw) > limits.max_bytes:
        raise Rejected(f"{len(raw)} bytes is more than the {limits.max_bytes} this accepts", "too-large")
    depth = nesting_depth(raw)
    if depth > limits.max_depth:
        raise Rejected(f"nested {depth} levels deep; at most {limits.max_depth} are accepted", "too-deep")
    return raw


def id_of(payload: bytes | bytearray | str, limits: Limits) -> str | None:
    """The `id` of a rejected message, for its rejection, if one can be read safely (within the size and depth
    limits; a NaN elsewhere in the message does not hide it)."""
    try:
        data = json.loads(_bounded(payload, limits))
    except (Rejected, ValueError, RecursionError):
        return None
    value = data.get("id") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        return None
    try:
        value.encode("utf-8")  # a lone surrogate cannot go into the rejection's JSON
    except UnicodeEncodeError:
        return None
    return value[:64]


def decode_json(payload: bytes | bytearray | str, limits: Limits) -> Any:
    """The JSON value in `payload`, or `Rejected` saying what is wrong and where. See the module's docstring."""
    raw = _bounded(payload, limits)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejected(f"not JSON: not UTF-8 ({error.reason} at byte {error.start})", "not-json") from None
    try:
        value = json.loads(
            text,
            parse_float=_finite_float,
            parse_int=_bounded_int,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_keys,
        )
    except _NonFinite as error:
        raise Rejected(str(error), "non-finite") from None
    except _DuplicateKey as error:
        raise Rejected(str(error), "duplicate-key") from None
    except json.JSONDecodeError as error:
        raise Rejected(f"not JSON: {error}", "not-json") from None
    except (RecursionError, ValueError) as error:  # belt and braces: the depth check should have caught these
        raise Rejected(f"not JSON: {type(error).__name__}", "not-json") from None
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise Rejected("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)", "not-json") from None
    return value
