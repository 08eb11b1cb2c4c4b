"""The fast body parse (msgspec plus a colon count) answers exactly as the ``json`` module path does.

For every input ``strict_json.parse`` must give the same value (same types: an int stays an int, -0.0 stays
-0.0) or the same refusal message as ``strict_json._checked``, the ``json``-based reader that names duplicate
keys and NaN/Infinity. Inputs: generated JSON texts whose objects reuse a few keys (so duplicates are common),
with strings that hold colons, quotes and backslashes written plainly or as ``\\uXXXX`` escapes (a colon as
``\\u003a`` is what could hide a dropped key from the count), odd whitespace, non-finite floats and big
integers; the fixture and scenario requests; and byte-level corruptions of them.
"""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.hooks import strict_json
from cds_service.hooks.errors import HookError
from support.corpus import real_requests

LIMIT = 64


def _answer(fn, raw: bytes):
    try:
        return ("value", fn(raw))
    except HookError as err:
        return ("refused", err.status, err.message)


def _reference(raw: bytes):
    if strict_json.deeper_than(raw, LIMIT):
        return _answer(lambda r: strict_json.parse(r, LIMIT), raw)  # refused before either reader runs
    return _answer(strict_json._checked, raw)


def _same(a, b) -> bool:
    """Equal values of equal types all the way down (so 1 != 1.0 and 0.0 != -0.0 here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return a == b


def _check(raw: bytes) -> None:
    got, want = _answer(lambda r: strict_json.parse(r, LIMIT), raw), _reference(raw)
    assert _same(got, want), (raw[:300], got, want)


# -------------------------------------------------------------------- generated JSON texts

def _escape(ch: str) -> str:
    return f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else json.dumps(ch)[1:-1]


@st.composite
def _string(draw) -> str:
    text = draw(st.text(alphabet=st.sampled_from(list('ab:"\\/ é\u2028\t\n{}[],') + ["\U0001F600"]), max_size=8))
    out = []
    for ch in text:
        how = draw(st.sampled_from(["plain", "plain", "escape"]))
        if how == "escape":
            out.append(_escape(ch))
        else:
            out.append(json.dumps(ch, ensure_ascii=False)[1:-1])
    return '"' + "".join(out) + '"'


_KEY = st.one_of(st.sampled_from(['"a"', '"b"', '"a:"', '"\\u0061"', '"\\u003a"', '":"', '"a\\u003A"']), _string())
_WS = st.sampled_from(["", "", " ", "\n", "\t ", "\r\n"])
_NUMBER = st.one_of(
    st.integers(min_value=-(10 ** 30), max_value=10 ** 30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(json.dumps),
    st.sampled_from(["-0", "-0.0", "1e400", "-1e400", "1E5", "0.1e-400", "123456789012345678901234567890.5"]),
)
_SCALAR = st.one_of(_NUMBER, _string(), st.sampled_from(["true", "false", "null"]))


def _text(children):
    def obj(pairs):
        return st.tuples(*[_WS for _ in range(2)]).map(lambda ws: "{" + ws[0] + ",".join(
            f"{k}{w1}:{w2}{v}" for k, v, w1, w2 in pairs) + ws[1] + "}")

    pair = st.tuples(_KEY, children, _WS, _WS)
    return st.one_of(
        st.lists(pair, max_size=5).flatmap(obj),
        st.lists(children, max_size=5).map(lambda items: "[" + ", ".join(items) + "]"),
    )


_JSON = st.recursive(_SCALAR, _text, max_leaves=25)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_JSON, _WS)
def test_generated_texts_answer_as_the_json_module_path(text, ws):
    _check((ws + text + ws).encode())


@settings(max_examples=150, deadline=None)
@given(_JSON, st.integers(min_value=0), st.sampled_from([b":", b'"', b"\\", b",", b"}", b"\xff", b"\x00", b"N"]))
def test_corrupted_texts_answer_as_the_json_module_path(text, at, byte):
    raw = text.encode()
    i = at % (len(raw) + 1)
    _check(raw[:i] + byte + raw[i:])


def test_a_colon_escape_cannot_hide_a_dropped_key():
    """The dropped duplicate takes one colon; the escaped colon in the kept value adds one back."""
    raw = b'{"a": 1, "a": "\\u003a"}'
    with pytest.raises(HookError, match="duplicate key 'a'"):
        strict_json.parse(raw, LIMIT)
    assert strict_json._fast(raw)[0] is False


# -------------------------------------------------------------------- real requests

REAL = real_requests()


@pytest.mark.parametrize("name,body", REAL, ids=[name for name, _ in REAL])
def test_real_requests_take_the_fast_path_and_read_the_same(name, body):
    for raw in (json.dumps(body).encode(), json.dumps(body, ensure_ascii=False, indent=1).encode()):
        assert strict_json._fast(raw)[0] is True
        _check(raw)
        dup = raw.replace(b'"hookInstance":', b'"hook": "x", "hookInstance":', 1)
        assert strict_json._fast(dup)[0] is False
        _check(dup)
