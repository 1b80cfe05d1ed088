"""Template whitespace (trim_blocks, lstrip_blocks) and the filters roles use."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from agent.compile.passwords import sha_crypt
from agent.compile.render import Renderer, RenderError
from tests.helpers import write_bundle

LIST = "servers:\n{% for s in attributes.xs %}\n  - {{ s }}\n{% endfor %}\nend\n"
INDENTED = "a\n    {% if attributes.enabled %}\nyes\n    {% endif %}\nb\n"
ATTRS = {"xs": ["one", "two"], "enabled": True}


def render(tmp_path: Path, text: str, options: dict | None = None, **kw: bool) -> str:
    path = tmp_path / "t.j2"
    path.write_text(text)
    return Renderer(ATTRS, None, template_options=options).file(str(path), **kw)


def test_blocks_are_trimmed_as_ansible_does_by_default(tmp_path):
    assert render(tmp_path, LIST) == "servers:\n  - one\n  - two\nend\n"
    assert render(tmp_path, INDENTED) == "a\n    yes\n    b\n"


def test_each_option_can_be_set_per_template(tmp_path):
    assert render(tmp_path, LIST, trim_blocks=False) == \
        "servers:\n\n  - one\n\n  - two\n\nend\n"
    assert render(tmp_path, INDENTED, lstrip_blocks=True) == "a\nyes\nb\n"
    assert render(tmp_path, INDENTED, trim_blocks=False, lstrip_blocks=False) == \
        "a\n    \nyes\n    \nb\n"


def test_bundle_options_change_the_default_and_a_template_overrides_them(tmp_path):
    both = {"trim_blocks": True, "lstrip_blocks": True}
    assert render(tmp_path, INDENTED, both) == "a\nyes\nb\n"
    assert render(tmp_path, INDENTED, both, lstrip_blocks=False) == "a\n    yes\n    b\n"
    assert render(tmp_path, LIST, {"trim_blocks": False}) == \
        "servers:\n\n  - one\n\n  - two\n\nend\n"


def test_plain_placeholders_render_the_same_whatever_the_options(tmp_path):
    text = "# node: {{ attributes.xs }}\n\nport = {{ attributes.enabled }}\n"
    outs = {render(tmp_path, text, trim_blocks=t, lstrip_blocks=ls)
            for t in (True, False) for ls in (True, False)}
    assert outs == {"# node: ['one', 'two']\n\nport = True\n"}


def test_bundle_yml_and_template_fields_end_to_end(tmp_path, trueup):
    target = tmp_path / "out"
    recipe = f"""\
        resources:
          - template: {target}/default
            source: t.j2
          - template: {target}/untrimmed
            source: t.j2
            trim_blocks: false
            lstrip_blocks: false
    """
    bundle = write_bundle(tmp_path / "b", {"web": recipe}, templates={"web/t.j2": INDENTED},
                          runlist="web", attributes="enabled: true\nxs: []\n")
    target.mkdir()
    (bundle / "bundle.yml").write_text("templates: {lstrip_blocks: true}\n")
    out = trueup("run", str(bundle))
    assert out.returncode == 0, out.stdout + out.stderr
    assert (target / "default").read_text() == "a\nyes\nb\n"
    assert (target / "untrimmed").read_text() == "a\n    \nyes\n    \nb\n"
    (bundle / "bundle.yml").write_text("templates:\n  lstrip: true\n")
    bad = trueup("validate", str(bundle))
    assert bad.returncode == 1
    assert "bundle.yml:2: unknown templates setting 'lstrip'; allowed: trim_blocks, " \
        "lstrip_blocks" in bad.stderr


# --- filters --------------------------------------------------------------------------

DATA = {"name": "my app", "cfg": {"b": [1, 2], "a": {"x": "y"}}, "on": True, "off": False,
        "none": None}


def value(expr: str) -> object:
    return Renderer(DATA, None).string("{{ " + expr + " }}")


def test_quote_makes_one_shell_word():
    assert value("attributes.name | quote") == "'my app'"
    assert value("\"it's\" | quote") == "'it'\"'\"'s'"


def test_yaml_and_json_filters_round_trip():
    assert yaml.safe_load(value("attributes.cfg | to_yaml")) == DATA["cfg"]
    assert value("attributes.cfg | to_nice_yaml") == "a:\n    x: y\nb:\n- 1\n- 2\n"
    assert json.loads(value("attributes.cfg | to_json")) == DATA["cfg"]
    assert value("attributes.cfg | to_json") == '{"b": [1, 2], "a": {"x": "y"}}'
    assert value("attributes.cfg | to_nice_json") == \
        '{\n    "a": {\n        "x": "y"\n    },\n    "b": [\n        1,\n        2\n    ]\n}'


def test_ternary_and_base64():
    assert value("attributes.on | ternary('443', '80')") == "443"
    assert value("attributes.off | ternary('443', '80')") == "80"
    assert value("attributes.none | ternary('a', 'b', 'unset')") == "unset"
    assert value("'user:pässword' | b64encode") == "dXNlcjpww6Rzc3dvcmQ="
    assert value("'dXNlcjpww6Rzc3dvcmQ=' | b64decode") == "user:pässword"


@pytest.mark.parametrize(("password", "setting", "expected"), [  # Drepper's test vectors
    ("Hello world!", ("saltstring", None, "sha512"),
     "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYE"
     "dFCoEOfaS35inz1"),
    ("Hello world!", ("saltstringsaltstring", 10000, "sha512"),
     "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/Urjm"
     "M0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."),
    ("Hello world!", ("saltstring", None, "sha256"),
     "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"),
])
def test_sha_crypt_matches_the_reference(password, setting, expected):
    assert sha_crypt(password, *setting) == expected


@pytest.mark.parametrize("password", ["p", "pw", "x" * 70, "héllo wörld", "a" * 64])
def test_password_hash_matches_openssl(password):
    done = subprocess.run(["openssl", "passwd", "-6", "-salt", "abcdefgh", "-stdin"],
                          input=password + "\n", capture_output=True, text=True, check=True)
    r = Renderer({"pw": password}, None)
    assert r.string("{{ attributes.pw | password_hash('sha512', 'abcdefgh') }}") == \
        done.stdout.strip()


def test_password_hash_without_salt_is_stable_and_differs_per_password():
    r = Renderer({"a": "secret-a", "b": "secret-b"}, None)
    first = r.string("{{ attributes.a | password_hash }}")
    assert first.startswith("$6$") and len(first.split("$")[2]) == 16
    assert first == Renderer({"a": "secret-a"}, None).string("{{ attributes.a | password_hash }}")
    assert first != r.string("{{ attributes.b | password_hash }}")
    with pytest.raises(RenderError, match="password_hash: unknown hash 'md5'"):
        r.string("{{ attributes.a | password_hash('md5') }}")
    with pytest.raises(RenderError, match="salt must be 1 to 16 characters"):
        r.string("{{ attributes.a | password_hash('sha512', 'bad salt!') }}")


def test_filters_do_not_open_the_sandbox():
    with pytest.raises(RenderError, match="unsafe attribute"):
        value("(attributes.cfg | to_json).__class__.__mro__")
