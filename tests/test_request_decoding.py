"""Request bodies decode exactly as the standard library decodes them, whichever decoder reads
them (gateway.server.http: orjson where the two agree, the standard library otherwise): the same
values of the same types, for any JSON, and the same refusals."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.server.http import _decode


def _decoded(body: bytes) -> Any:
    """The decoded value; when the decoder says its strings are valid Unicode, they all are."""
    value, unicode = _decode(body)
    if unicode:
        for string in _strings(value):
            string.encode("utf-8")  # raises UnicodeEncodeError for a lone surrogate
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: beyond 64 bits too
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def typed(value: Any) -> Any:
    """The value with its types spelled out: 1 and 1.0 and True differ, and -0.0 from 0.0."""
    if isinstance(value, dict):
        return ("dict", [(k, typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, float):
        return ("float", value.hex() if math.isfinite(value) else repr(value))
    return (type(value).__name__, value)


@settings(max_examples=500, deadline=None)
@given(values, st.booleans())
def test_any_json_decodes_as_the_standard_library_decodes_it(value, ascii_only):
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert typed(_decoded(body)) == typed(json.loads(body))


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "a": 2}',  # a repeated key: the last one
        b'{"n": 123456789012345678901234567890}',
        b'{"n": -9223372036854775809}',
        b'{"n": 18446744073709551616}',
        b'{"n": 1e400}',
        b'{"n": -0.0, "m": -0}',
        b'{"n": NaN, "m": Infinity}',
        b'{"s": "\\ud800"}',  # a lone surrogate escape
        b'\xef\xbb\xbf{"bom": 1}',
        '{"utf16": 1}'.encode("utf-16"),
        b'  {"spaces": [1, 2.5e-7, "\\u00e9\\n"]}  ',
        b"[" * 1500 + b"]" * 1500,
    ],
)
def test_what_orjson_reads_differently_or_refuses_decodes_as_before(body):
    try:
        expected = ("value", typed(json.loads(body)))
    except (ValueError, RecursionError) as error:
        expected = ("refused", type(error).__name__)
    try:
        answer = ("value", typed(_decoded(body)))
    except (ValueError, RecursionError) as error:
        answer = ("refused", type(error).__name__)
    assert answer == expected


@pytest.mark.parametrize("body", [b'{"query": ', b"\xff\xfe\xfa", b'{"a": 01}', b'{"a": [1,]}', b""])
def test_malformed_json_is_refused_by_both(body):
    with pytest.raises(ValueError):
        json.loads(body)
    with pytest.raises(ValueError):
        _decoded(body)
