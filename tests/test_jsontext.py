"""agent.jsontext writes the same text as ``json.dumps(..., default=str)`` and reads small
JSON record files."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from agent.jsontext import dumps, read_object

SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
           | st.binary(max_size=8))  # bytes: not JSON, written through default=str
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.tuples(inner, inner)
                      | st.dictionaries(st.text() | st.integers() | st.booleans(), inner,
                                        max_size=4), max_leaves=30)


@given(VALUES)
def test_compact_text_is_json_dumps(value):
    assert dumps(value) == json.dumps(value, default=str)


@given(VALUES)
def test_indented_text_is_json_dumps(value):
    assert dumps(value, indent=2) == json.dumps(value, indent=2, default=str)


def test_the_report_values_that_json_spells_its_own_way():
    value = {"nan": math.nan, "inf": -math.inf, "s": "\u2028\x00\ud800", 1: None, "o": object}
    assert dumps(value) == json.dumps(value, default=str)
    assert json.loads(dumps({"é": "ü"})) == {"é": "ü"}


def test_read_object_is_a_json_object_or_none(tmp_path):
    path = tmp_path / "record.json"
    assert read_object(str(path)) is None  # missing
    for text, expected in [(b'{"a": [1]}', {"a": [1]}), (b"[1]", None), (b"{", None),
                           (b"\xff", None), ('{"é": 1}'.encode("utf-16"), {"é": 1})]:
        path.write_bytes(text)
        assert read_object(str(path)) == expected, text
    path.write_bytes(b'{"a": 1}' + b" " * 100)
    assert read_object(str(path), limit=4) is None  # cut short: not JSON
    assert read_object(str(tmp_path)) is None  # a folder
