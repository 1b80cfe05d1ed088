"""Rendering: the placeholder fast path prints exactly what Jinja2 prints."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import jinja2
import jinja2.sandbox
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.compile.render import Renderer, RenderError, _Placeholders
from agent.compile.yamlfile import LineDict
from tests.helpers import REPO

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


# --- the fast path against the environment Renderer.env() returns --------------------

#: Keys named like the methods and attributes of the objects that hold them.
METHODS = ["items", "keys", "get", "values", "pop", "update", "copy", "setdefault", "clear",
           "popitem", "fromkeys", "__class__", "__len__", "_private", "mro"]


class FactsLike(Mapping[str, Any]):
    """A mapping with attribute access, shaped like agent.host.facts.Facts."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values
        self.note = "a data attribute"

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def method(self) -> str:
        return "called"


def line_dict(line: int | None) -> LineDict:
    """A YAML mapping whose keys shadow its own slots (``line``, ``lines``)."""
    out = LineDict(line="key line", lines="key lines", port=22)
    if line is not None:
        out.line, out.lines = line, {"port": line}
    return out


TRICKY = {"web": {"port": 8080, "name": "demo", **{m: f"key {m}" for m in METHODS}},
          **{m: f"top {m}" for m in METHODS}, "n": 3, "gen": (i for i in range(2)),
          "yaml": line_dict(7), "unset": line_dict(None)}
FACTS = FactsLike({"hostname": "web-1", "get": "fact get", "items": "fact items",
                   "ec2": {"region": "eu-west-1", "keys": "ec2 keys"}})
EXTRA = {"port": 443, "none": "ctx none", "true": "ctx true", "self": "ctx self",
         "range": "ctx range", "items": "ctx items", "fn": len}

_dotted = ([f"attributes.web.{m}" for m in METHODS] + [f"attributes.{m}" for m in METHODS]
           + [f"facts.{n}" for n in ("hostname", "get", "items", "note", "method", "nope",
                                     "keys", "_values", "ec2.region", "ec2.keys", "ec2.nope")]
           + ["attributes.web.port", "attributes.web.items.x", "attributes.web.nope",
              "attributes.n.real", "attributes.n.bit_length", "attributes.gen.gi_frame",
              "fn.__name__", "fn.x", "attributes.yaml.line", "attributes.yaml.lines",
              "attributes.yaml.port", "attributes.unset.line", "attributes.unset.port"])
_top = ["port", "none", "true", "self", "range", "items", "nope", "dict", "namespace", "fn"]
tricky_names = st.sampled_from(_dotted + _top)
comment = st.builds(lambda body, left, right: "{#" + left + body + right + "#}",
                    literal, st.sampled_from(["", "-", " "]), st.sampled_from(["", "-", " "]))
braces = st.text(st.sampled_from("a {}#%-\n"), max_size=6)


class SandboxedRenderer(Renderer):
    """The Renderer once Renderer.env() returns Jinja's sandbox."""

    sandbox = jinja2.sandbox.SandboxedEnvironment

    def env(self) -> Any:
        if self._env is None:
            self._env = self.sandbox(undefined=jinja2.StrictUndefined,
                                     keep_trailing_newline=True)
        return self._env


class ImmutableRenderer(SandboxedRenderer):
    sandbox = jinja2.sandbox.ImmutableSandboxedEnvironment


RENDERERS = [Renderer, SandboxedRenderer, ImmutableRenderer]


def placeholder(name: str) -> str:
    return "{{ " + name + " }}"


def outcome(call: Any) -> tuple[str, Any]:
    """("ok", value) or ("error", None): both paths must fail or succeed alike."""
    try:
        return "ok", call()
    except Exception:
        return "error", None


@pytest.mark.parametrize("make", RENDERERS, ids=lambda c: c.__name__)
@given(pieces=st.lists(st.tuples(st.one_of(literal, braces, comment), tricky_names,
                                 st.sampled_from(["{{ %s }}", "{{%s}}", "{{\n%s }}"])),
                       min_size=1, max_size=4),
       tail=st.one_of(literal, comment))
def test_fast_path_matches_the_environment_for_methods_and_comments(make, pieces, tail):
    text = "".join(lit + form % name for lit, name, form in pieces) + tail
    renderer = make(TRICKY, FACTS)
    expected = outcome(lambda: renderer.env().from_string(text).render(
        {**renderer.context, **EXTRA}))
    assert outcome(lambda: renderer.string(text, EXTRA)) == expected
    assert outcome(lambda: renderer.string(text, EXTRA)) == expected  # cached, same again


@pytest.mark.parametrize("make", RENDERERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", _dotted + _top)
def test_native_value_matches_the_environment(make, name):
    renderer = make(TRICKY, FACTS)
    renderer.context.update(EXTRA)

    def jinja_value() -> Any:
        value = renderer.env().compile_expression(name, undefined_to_none=False)(
            renderer.context)
        if isinstance(value, jinja2.Undefined):
            value._fail_with_undefined_error()
        return value

    fast = outcome(lambda: renderer.native(placeholder(name)))
    jinja = outcome(jinja_value)
    assert (fast[0], repr(fast[1])) == (jinja[0], repr(jinja[1]))  # fresh objects: compare repr


@pytest.mark.parametrize("name, expected", [
    ("attributes.web.items", "<built-in method items of dict object"),
    ("attributes.web.get", "<built-in method get of dict object"),
    ("facts.get", "<bound method Mapping.get"),
])
def test_a_key_named_like_a_method_gives_the_method_as_jinja_does(name, expected):
    renderer = Renderer(TRICKY, FACTS)
    assert renderer.string(placeholder(name)).startswith(expected)
    # with a comment the text goes to Jinja: the same answer, not the key's value
    assert renderer.string("{# c #}" + placeholder(name)).startswith(expected)


def test_immutable_sandbox_refuses_a_mutating_method_on_both_paths():
    renderer = ImmutableRenderer(TRICKY, FACTS)
    with pytest.raises(RenderError, match="unsafe"):
        renderer.string("{{ attributes.web.pop }}")
    assert renderer.string("{{ attributes.web.port }}") == "8080"


def test_data_names_stay_on_the_fast_path_and_never_import_jinja():
    renderer = Renderer(TRICKY, FACTS)
    text = "{{ attributes.web.port }} {{ facts.hostname }} {{ facts.ec2.region }}"
    assert renderer.string(text) == "8080 web-1 eu-west-1"
    assert isinstance(renderer._compiled[text], _Placeholders)
    assert renderer._env is None
    code = ("import sys; from agent.compile.render import Renderer; "
            "r = Renderer({'web': {'port': 80, 'items': 1}}, None); "
            "assert r.string('{{ attributes.web.port }}') == '80'; "
            "assert 'jinja2' not in sys.modules, 'jinja2 imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                   env={"PYTHONPATH": str(REPO)})


@pytest.mark.parametrize("text", ["{{{ attributes.n }}", "{ {{ attributes.n }}",
                                  "{{ attributes.n }}}", "{{ none }}", "{{ self.x }}"])
def test_texts_jinja_reads_differently_are_left_to_jinja(text):
    renderer = Renderer(TRICKY, FACTS)
    expected = outcome(lambda: renderer.env().from_string(text).render(renderer.context))
    assert outcome(lambda: renderer.string(text)) == expected


def test_a_whole_expression_inside_a_mapping_or_list_keeps_its_type():
    r = Renderer({"v": {"site": {"name": "a", "port": 80}}, "pkgs": ["x"], "n": 3}, None)
    assert r.value({"conf": "{{ attributes.v.site }}", "label": "port {{ attributes.n }}"}) \
        == {"conf": {"name": "a", "port": 80}, "label": "port 3"}
    assert r.value(["{{ attributes.pkgs }}", "{{ attributes.n }}", "{{ attributes.n + 1 }}"]) \
        == [["x"], 3, 4]
    assert r.value({"deep": [{"x": "{{ attributes.v.site.port }}"}]}) == {"deep": [{"x": 80}]}
    assert r.value("{{ attributes.n }}") == "3"  # a field's own string stays a string


def test_template_variables_keep_the_type_of_an_attribute(tmp_path, trueup):
    from tests.helpers import write_bundle

    target = tmp_path / "out.conf"
    bundle = write_bundle(tmp_path / "b", {"web": f"""\
        attributes:
          v: {{site: {{name: demo, ports: [80, 443]}}}}
        resources:
          - template: {target}
            source: site.j2
            variables: {{conf: "{{{{ attributes.v.site }}}}"}}
    """}, templates={"web/site.j2": "{{ conf.name }}:{% for p in conf.ports %} {{ p }}"
                                    "{% endfor %}\n"}, runlist="web")
    out = trueup("run", str(bundle))
    assert out.returncode == 0, out.stdout + out.stderr
    assert target.read_text() == "demo: 80 443"  # trim_blocks drops the newline after a tag
