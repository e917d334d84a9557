"""The audit chain's canonical text: what the chain has always hashed, the standard library's
``json.dumps`` with sorted keys, compact separators and UTF-8 as it is, byte for byte,
whichever way ``canonical_json`` writes it (orjson when the value holds no float)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.audit_chain import canonical_json


def _stdlib(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | _TEXT
    | st.floats(allow_nan=True, allow_infinity=True)
)
_VALUES = st.recursive(
    _SCALARS, lambda inner: st.lists(inner) | st.dictionaries(_TEXT, inner), max_leaves=40
)
_WITHOUT_FLOATS = st.recursive(
    _SCALARS.filter(lambda v: not isinstance(v, float)),
    lambda inner: st.lists(inner) | st.dictionaries(_TEXT, inner),
    max_leaves=40,
)


@settings(max_examples=400)
@given(_VALUES)
def test_any_json_value_is_written_as_the_standard_library_writes_it(value: Any) -> None:
    assert canonical_json(value) == _stdlib(value)


@settings(max_examples=400)
@given(_WITHOUT_FLOATS)
def test_values_without_floats_too(value: Any) -> None:
    assert canonical_json(value) == _stdlib(value)


def test_the_text_orjson_and_the_standard_library_write_differently() -> None:
    """Floats, NaN, integers past 64 bits, keys that are not text, control characters and
    text beyond ASCII: each comes out as the standard library writes it."""
    ids = [[str(uuid.uuid4()), None] for _ in range(50)]
    values = [
        [1, "2026-12-03T06:00:00.000000+00:00", {"returned": 50, "subjects": ids}],
        {"ratio": 1e16, "small": 1e-7, "half": 0.5, "nan": float("nan")},
        [float("inf"), -0.0, 2**64, -(2**63) - 1],
        {2: "two", 1: "one"},
        {"b": '\x00\x1f\x7f\u2028 "quoted" \\ é 漢 😀', "a": [True, False, None]},
        [{"z": 1, "y": {"x": [], "w": {}}}],
        # Keys beyond ASCII, in code point order (UTF-16's order would differ at the last).
        {"\uffff": 1, "😀": 2, "é": 3, "漢": 4, "z": 5, "": 6},
    ]
    for value in values:
        assert canonical_json(value) == _stdlib(value), value
