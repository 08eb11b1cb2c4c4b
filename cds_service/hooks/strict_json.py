"""Reading a request body as strict JSON (RFC 8259): bounded depth, no NaN/Infinity, no duplicate keys.

Python's ``json`` module accepts ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON) and keeps the last of
two equal keys silently, so a body could say one thing to this service and another to a stricter reader.
Both are refused here with a message naming the problem.

Nesting is bounded before parsing, in time linear in the body with a small constant: the bytes are reduced
to their brackets outside strings (C-speed ``bytes`` operations) and one possessive regular expression
matches balanced groups no deeper than the limit. Possessive groups never backtrack, so each byte is looked
at a bounded number of times whatever the input.

The common case, a valid body, is decoded by msgspec (C): it refuses NaN/Infinity, out-of-range numbers and
anything else that is not RFC 8259 JSON, but keeps the last of two equal keys like ``json``. Duplicates are
ruled out by counting colons: every key in the text has one, and so does every colon inside a string,
written as ``:`` or as a ``\\u003a`` escape; msgspec's re-encoding of the decoded value writes each kept key's
colon and each colon of a kept string literally, once. Equal counts therefore mean no key was dropped (a
dropped key takes at least its own colon with it, and nothing adds one). Anything msgspec refuses, and any
count that differs, goes to the ``json`` module path, which names the problem.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import msgspec

from .errors import HookError

_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()

_KEEP_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')
_ONE_BRACKET_KIND = bytes.maketrans(b"{}", b"[]")


def _brackets(raw: bytes) -> bytes:
    """The brackets of ``raw`` outside strings, ``{}`` written as ``[]`` (mismatches are the parser's to report).

    Escapes are dropped first (escaped backslashes, then escaped quotes: JSON escapes pair up left to right),
    then everything but quotes and brackets is deleted. Two adjacent quotes are an empty string or the seam
    between two strings with nothing between them, so dropping them keeps what is outside strings intact;
    the strings left are quotes around brackets and are removed.
    """
    if b"\\" in raw:  # most bodies have no escapes: one scan instead of two replacements
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = raw.translate(None, _KEEP_STRUCTURE)
    return _STRING.sub(b"", structure.replace(b'""', b"")).translate(_ONE_BRACKET_KIND)


@lru_cache(maxsize=8)
def _patterns(limit: int) -> tuple[re.Pattern, re.Pattern]:
    """(groups no deeper than ``limit``, a path of ``limit + 1`` open brackets); both possessive."""
    groups = [b""]  # groups[k]: one balanced group of depth <= k
    for k in range(1, limit + 1):
        inner = b"(?:" + groups[k - 1] + b")*+" if k > 1 else b""
        groups.append(rb"\[" + inner + rb"\]")
    shallow = re.compile(b"(?:" + groups[limit] + b")*+" if limit else b"")
    # From a group that is not a shallow one: at each level, skip the closed siblings that are shallow enough
    # for that level, then the next open bracket goes one level deeper.
    path = b"".join(rb"\[" + (b"(?:" + groups[limit - level] + b")*+" if limit - level > 0 else b"")
                    for level in range(1, limit + 1)) + rb"\["
    return shallow, re.compile(path)


def deeper_than(raw: bytes, limit: int) -> bool:
    """True when arrays and objects in ``raw`` nest more than ``limit`` levels (brackets in strings do not count).

    Unbalanced input is not "deep": the JSON parser reports it, and it never reads past the first stray bracket.
    """
    brackets = _brackets(raw)
    shallow, path = _patterns(max(0, limit))
    match = shallow.match(brackets)
    end = match.end() if match else 0
    if end == len(brackets) or brackets[end:end + 1] != b"[":
        return False
    return path.match(brackets, end) is not None


def warm_up(depth_limit: int) -> None:
    """Compile the depth patterns now (~0.3 s at 64 levels), at start-up, rather than in the first request."""
    _patterns(max(0, depth_limit))


def _refuse_constant(name: str):
    raise HookError(400, "invalid", f"The request body is not valid JSON: {name} is not a JSON number.")


def _object(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                shown = key if len(key) <= 60 else key[:57] + "..."
                raise HookError(400, "invalid", f"The request body is not valid JSON: duplicate key {shown!r} "
                                                "in one object (which one would win is reader-dependent).")
            seen.add(key)
    return obj


def _fast(raw: bytes) -> tuple[bool, Any]:
    """(True, the value) when msgspec decodes ``raw`` and no key was dropped as a duplicate; else (False, None)."""
    try:
        value = _DECODER.decode(raw)
        kept = _ENCODER.encode(value).count(b":")
    except (msgspec.DecodeError, msgspec.EncodeError, RecursionError, OverflowError):
        return False, None
    # Any \u003X escape is counted as a possible colon: over-counting can only send a body to the slow path.
    colons = raw.count(b":")
    if b"\\" in raw:  # memchr-fast; most bodies have no escape at all
        colons += raw.count(b"\\u003")
    return kept == colons, value


def parse(raw: bytes, depth_limit: int) -> Any:
    """The JSON value of ``raw``, or HookError(400) saying why it is refused."""
    if deeper_than(raw, depth_limit):
        raise HookError(400, "invalid", f"The request body is nested deeper than {depth_limit} levels.")
    ok, value = _fast(raw)
    return value if ok else _checked(raw)


def _checked(raw: bytes) -> Any:
    """The ``json`` module path: slower, and names what is wrong (the duplicate key, the constant, the place)."""
    try:
        return json.loads(raw, object_pairs_hook=_object, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise HookError(400, "invalid", f"The request body is not valid JSON: {str(exc)[:120]}") from None
