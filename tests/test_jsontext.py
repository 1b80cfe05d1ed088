"""agent.jsontext writes the same text as ``json.dumps(..., default=str)``, and the two
regular expressions taken off the run path keep their meaning."""

from __future__ import annotations

import json
import math
import re
import types

from hypothesis import given
from hypothesis import strategies as st

from agent.engine import backups, sensitive
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


STAMP = re.compile(r"\d{8}T\d{6}Z\.\d{9}")


@given(st.from_regex(STAMP, fullmatch=True) | st.text(max_size=30)
       | st.sampled_from(["20261202T051500Z.123456789", "20261202T051500Z.12345678",
                          "20261202T051500Z-123456789", "2026120xT051500Z.123456789",
                          "20261202t051500Z.123456789", "20261202T051500Z.123456789\n"]))
def test_a_backup_name_is_what_the_pattern_matched(name):
    assert backups._is_stamp(name) == bool(STAMP.fullmatch(name))


@given(st.text(alphabet=st.sampled_from("ab :;|\n\t\r\x85")))
def test_a_sensitive_error_keeps_what_came_before_the_first_separator(message):
    res = types.SimpleNamespace(sensitive=True, spec={}, ident="command:x")
    expected = re.split(r"[:;|\n]", message, maxsplit=1)[0].strip()
    assert sensitive.shown_error(res, message) == (expected or sensitive.GENERIC_ERROR)
