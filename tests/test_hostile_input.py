"""Hostile input: templates that reach for Python, YAML that explodes, files that are no
files, and sensitive values in error messages.

Each is refused like any bad input (see tests/test_bad_input.py): exit 1, one line on
stderr naming file:line, nothing created, and nothing the input asked for was run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_bad_input import assert_refused, bundle_with

Trueup = Callable[..., subprocess.CompletedProcess]

# Classic escapes from a Jinja2 template into Python: each runs ``touch MARKER``.
ESCAPE_SELF = "{{ self.__init__.__globals__.__builtins__.__import__('os').system('touch MARKER') }}"
ESCAPE_CYCLER = "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}"


# --- 1. templates cannot run Python ---------------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_template_file_cannot_run_python(tmp_path: Path, trueup: Trueup, command: str) -> None:
    """A template file that reaches for Python internals is refused at its line; nothing ran."""
    marker = tmp_path / "ran"
    template = "a = 1\n" + ESCAPE_SELF.replace("MARKER", str(marker)) + "\n"
    bundle, target = bundle_with(tmp_path, "- template: /tmp/x\n  source: t.j2\n",
                                 templates={"app/t.j2": template})
    result = trueup(command, str(bundle))
    assert not marker.exists(), "the template ran Python"
    assert_refused(result, target, bundle / "app/templates/t.j2", 2,
                   "template tries to access an unsafe attribute '__init__'",
                   "(templates cannot run Python)")


INLINE = {
    # rendered as a string (Renderer.string)
    "string value": ('- file: /tmp/x\n  content: "' + ESCAPE_SELF + '"\n', 6),
    # a whole-value expression for a list field (Renderer.native, compile_expression)
    "native value": ('- package: tools\n  names: "' + ESCAPE_CYCLER + '"\n', 6),
    # the resource's name
    "resource name": ('- file: "/tmp/' + ESCAPE_CYCLER + '"\n', 5),
}


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("case", INLINE, ids=list(INLINE))
def test_inline_value_cannot_run_python(tmp_path: Path, trueup: Trueup, command: str,
                                        case: str) -> None:
    """A value in recipe.yml that reaches for Python internals is refused at its line."""
    marker = tmp_path / "ran"
    extra, line = INLINE[case]
    bundle, target = bundle_with(tmp_path, extra.replace("MARKER", str(marker)))
    result = trueup(command, str(bundle))
    assert not marker.exists(), "the value ran Python"
    assert_refused(result, target, bundle / "app/recipe.yml", line,
                   "template tries to access an unsafe attribute '__init__'",
                   "(templates cannot run Python)")


def test_sandbox_keeps_what_recipes_use(tmp_path: Path, trueup: Trueup) -> None:
    """Filters, tests, loops, methods of plain values and ``secret()`` still work."""
    template = ("{% for k, v in attributes.conf | dictsort %}{{ k }}={{ v | upper }}\n{% endfor %}"
                "{{ attributes.names | join(',') }} {{ 'a-b'.split('-') | length }} "
                "{{ attributes.conf.get('x', 'none') }} {{ range(3) | list | sum }} "
                "{{ '%s!' | format(port) }} {{ attributes.conf.items() | list | length }}\n")
    bundle, target = bundle_with(
        tmp_path, '- template: "{{ attributes.root }}/t"\n  source: t.j2\n'
        "  variables: {port: 80}\n"
        '- file: "{{ attributes.root }}/n"\n  content: "{{ attributes.names | first }}"\n',
        templates={"app/t.j2": template},
        recipes={"conf": "attributes:\n  conf: {a: b, c: d}\n  names: [n1, n2]\n"},
        runlist="conf,app")
    result = trueup("run", str(bundle))
    assert result.returncode == 0, result.stderr
    assert (target / "t").read_text() == "a=B\nc=D\nn1,n2 2 none 3 80! 2\n"
    assert (target / "n").read_text() == "n1"
