"""``-a key=value``: a plain word or number is read without a YAML reader, to the value
YAML gives it (agent.compile.attributes.plain_scalar)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.compile.attributes import _yaml_value, parse_assignment, plain_scalar

ALPHABET = "abyYnNoOfFtTuUlLeEsSrx019_./-:# ~'\"[]{}!&*,?|>%@`+\t٣é"


@settings(max_examples=1500, deadline=None)
@given(raw=st.text(alphabet=ALPHABET, max_size=8) | st.sampled_from(
    ["yes", "No", "ON", "off", "true", "False", "null", "Null", "NULL", "~", "y", "n", "0",
     "007", "8080", "0x1f", "1_000", "1:20", "1.5", ".inf", "2001-12-14", "1e3",
     "9" * 18, "9" * 19, "9" * 5000, "/srv/app", "eu-west-1", "web01.example.com"]))
def test_a_plain_value_is_what_yaml_reads(raw: str) -> None:
    plain, value = plain_scalar(raw)
    if plain:
        expected = _yaml_value("k", raw)
        assert value == expected and type(value) is type(expected), (raw, value, expected)


def test_plain_values_need_no_yaml() -> None:
    assert plain_scalar("8080") == (True, 8080)
    assert plain_scalar("web01") == (True, "web01")
    assert plain_scalar("yes") == (False, None)
    assert parse_assignment("web.port=8080") == {"web": {"port": 8080}}
    assert parse_assignment("web.on=yes") == {"web": {"on": True}}
