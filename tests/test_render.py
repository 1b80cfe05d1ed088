"""Rendering: the placeholder fast path prints exactly what Jinja2 prints."""

from __future__ import annotations

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.compile.render import Renderer, RenderError

ATTRS = {"web": {"port": 8080, "name": "demo", "on": True, "none": None}, "n": 3}
names = st.sampled_from(["attributes.web.port", "attributes.web.name", "attributes.n",
                         "attributes.web.on", "attributes.web.none", "port"])
literal = st.text(st.characters(blacklist_characters="{}%#", blacklist_categories=("Cs",)),
                  max_size=30)


def jinja(text: str, extra: dict) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(text).render({"attributes": ATTRS, **extra})


@given(st.lists(st.tuples(literal, names, st.sampled_from(["{{ %s }}", "{{%s}}", "{{  %s }}"])),
                min_size=1, max_size=6), literal)
def test_fast_path_matches_jinja(pieces, tail):
    text = "".join(lit + form % name for lit, name, form in pieces) + tail
    extra = {"port": 443}
    assert Renderer(ATTRS, None).string(text, extra) == jinja(text, extra)


def test_template_file_fast_path_matches_jinja(tmp_path):
    text = "a {{ port }}\n{{ attributes.web.name }}\n\n"
    path = tmp_path / "t.j2"
    path.write_text(text)
    assert Renderer(ATTRS, None).file(str(path), {"port": 1}) == jinja(text, {"port": 1})


def test_jinja_features_still_work(tmp_path):
    path = tmp_path / "t.j2"
    path.write_text("{% for i in range(n) %}{{ i }}{% endfor %} {{ attributes.web.name|upper }}\n")
    assert Renderer(ATTRS, None).file(str(path), {"n": 3}) == "012 DEMO\n"


@pytest.mark.parametrize("text", ["{{ attributes.web.nope }}", "{{ nope }}",
                                  "{{ attributes.web.nope | upper }}"])
def test_undefined_is_an_error_on_both_paths(text):
    with pytest.raises(RenderError, match="nope"):
        Renderer(ATTRS, None).string(text)


def test_undefined_in_template_file_names_the_line(tmp_path):
    path = tmp_path / "t.j2"
    path.write_text("one\ntwo\n{{ attributes.web.nope }}\n")
    with pytest.raises(RenderError) as info:
        Renderer(ATTRS, None).file(str(path))
    assert info.value.line == 3


def test_one_expression_gives_the_value_itself():
    r = Renderer({"pkgs": ["a", "b"], "web": {"port": 80}}, None)
    assert r.native("{{ attributes.pkgs }}") == ["a", "b"]
    assert r.native("{{ attributes.pkgs + ['c'] }}") == ["a", "b", "c"]
    assert r.native("{{ attributes.web }}") == {"port": 80}
    assert r.native("x {{ attributes.web.port }}") == "x 80"
    with pytest.raises(RenderError, match="nope"):
        r.native("{{ attributes.nope }}")
