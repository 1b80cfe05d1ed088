"""Hostile input: templates that reach for Python, YAML that explodes, files that are no
files, and sensitive values in error messages.

Each is refused like any bad input (see tests/test_bad_input.py): exit 1, one line on
stderr naming file:line, nothing created, and nothing the input asked for was run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import REPO, write_bundle
from tests.test_bad_input import GOOD, assert_refused, bundle_with, trueup_env

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


@pytest.mark.parametrize("text", ["{{ secret.__globals__ }}", "{{ facts.__class__ }}",
                                  "{{ attributes.__class__.__mro__ }}"])
def test_placeholder_fast_path_reads_no_internals(tmp_path: Path, trueup: Trueup,
                                                  text: str) -> None:
    """``{{ a.b }}`` is resolved without Jinja, but a private name goes to the sandbox."""
    bundle, target = bundle_with(tmp_path, f'- file: /tmp/x\n  content: "{text}"\n')
    result = trueup("validate", str(bundle))
    assert_refused(result, target, bundle / "app/recipe.yml", 6,
                   "template tries to access an unsafe attribute", "(templates cannot run Python)")


@pytest.mark.parametrize(("text", "words"), [
    ("{{ 'a'.join(['x'] * 10**8) | length }}", "template builds 100,000,000 items with *"),
    ("{{ 'ab' * 10**7 }}", "the limit is 1,000,000"),
    ("{{ 7 ** 1000000 }}", "template computes a number of over 100,000 bits with **"),
])
def test_a_template_cannot_spend_the_machine(tmp_path: Path, trueup: Trueup, text: str,
                                             words: str) -> None:
    """``*`` and ``**`` are bounded in the sandbox: refused at once, at the value's line."""
    bundle, target = bundle_with(tmp_path, f'- file: /tmp/x\n  content: "{text}"\n')
    result = trueup("validate", str(bundle))
    assert_refused(result, target, bundle / "app/recipe.yml", 6, words)


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


# --- 2a. YAML that explodes ------------------------------------------------------------------


def alias_bomb(levels: int = 5, indent: str = "") -> str:
    """YAML lines a0 … a<levels-1>: a0 holds ten scalars, each next one ten aliases of the
    one before, so a<n> stands for 10**(n+1) values; a3 is the first past 10,000."""
    lines = [f"{indent}a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"{indent}a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def merge_bomb(levels: int = 5, indent: str = "") -> str:
    """Like alias_bomb, with merge keys: m<n> merges m<n-1> ten times."""
    lines = [f"{indent}m0: &m0 {{" + ", ".join(f"k{i}: x" for i in range(10)) + "}"]
    for i in range(1, levels):
        lines.append(f"{indent}m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * 10) + "]}")
    return "\n".join(lines) + "\n"


def nested(depth: int) -> str:
    """A flow list nested ``depth`` deep."""
    return "[" * depth + "]" * depth


def test_alias_bomb_in_recipe_attributes(tmp_path: Path, trueup: Trueup) -> None:
    bundle, target = bundle_with(tmp_path, "", recipes={
        "bomb": "attributes:\n" + alias_bomb(indent="  ")}, runlist="bomb,app")
    assert_refused(trueup("run", str(bundle)), target, bundle / "bomb/recipe.yml", 5,
                   "too many aliases", "10000")


def test_alias_bomb_in_a_resource(tmp_path: Path, trueup: Trueup) -> None:
    """Anywhere in recipe.yml: here in the variables of a template."""
    bomb = alias_bomb(indent="      ")
    bundle, target = bundle_with(tmp_path, '- template: "{{ attributes.root }}/x"\n'
                                 "  source: t.j2\n  variables:\n" + bomb,
                                 templates={"app/t.j2": "x\n"})
    assert_refused(trueup("run", str(bundle)), target, bundle / "app/recipe.yml", 11,
                   "too many aliases")


def test_merge_key_bomb(tmp_path: Path, trueup: Trueup) -> None:
    bundle, target = bundle_with(tmp_path, "", recipes={
        "bomb": "attributes:\n" + merge_bomb(indent="  ")}, runlist="bomb,app")
    assert_refused(trueup("run", str(bundle)), target, bundle / "bomb/recipe.yml", 5,
                   "too many aliases")


def test_alias_bomb_in_bundle_attributes(tmp_path: Path, trueup: Trueup) -> None:
    bundle, target = bundle_with(tmp_path, "")
    (bundle / "attributes.yml").write_text(f"root: {target}\n" + alias_bomb())
    assert_refused(trueup("run", str(bundle)), target, bundle / "attributes.yml", 5,
                   "too many aliases")


def test_alias_bomb_in_a_node_file(tmp_path: Path, trueup: Trueup) -> None:
    bundle, target = bundle_with(tmp_path, "")
    node = tmp_path / "node.yml"
    node.write_text(alias_bomb())
    assert_refused(trueup("run", str(bundle), "--attributes", str(node)), target, node, 4,
                   "too many aliases")


def test_alias_bomb_in_an_attribute_flag(tmp_path: Path, trueup: Trueup) -> None:
    bundle, target = bundle_with(tmp_path, "")
    flow = "{" + alias_bomb().strip().replace("\n", ", ") + "}"
    result = trueup("run", str(bundle), "-a", f"x={flow}")
    assert_refused(result, target, Path("-a x"), None, "too many aliases")



@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("flag", ["x=\udcff", "x=a\udcffb", "x.y=[\udcff]", "\udcff=1"],
                         ids=["value", "inside a value", "in a list", "key"])
def test_an_attribute_flag_that_is_not_utf8(tmp_path: Path, trueup: Trueup, command: str,
                                            flag: str) -> None:
    """``-a x=$'\\xff'`` (a byte that is not UTF-8 on the command line) is one error line."""
    bundle, target = bundle_with(tmp_path, "")
    result = trueup(command, str(bundle), "-a", flag)
    assert_refused(result, target, Path("-a"), None, "not UTF-8")




def test_yaml_text_with_a_lone_surrogate_is_a_located_error() -> None:
    """Text from outside a file (a command line) may hold lone surrogates; libyaml cannot
    take them, so parsing such text is an error naming the line, not a traceback."""
    from agent.compile import yamlfile
    from agent.errors import TrueupError

    with pytest.raises(TrueupError) as caught:
        yamlfile.parse("x.yml", "a: 1\nb: x\udcff\n")
    assert (caught.value.file, caught.value.line) == ("x.yml", 2)
    assert "not UTF-8 text" in caught.value.message


def test_a_bundle_folder_whose_name_is_not_utf8(tmp_path: Path, trueup: Trueup) -> None:
    """A bundle at a path with a byte that is not UTF-8 runs like any other (the parse
    cache keys on the path's bytes)."""
    target = tmp_path / "target"
    bundle = write_bundle(tmp_path / "b\udcff", {"app": GOOD}, runlist="app",
                          attributes=f"root: {target}\n")

    def trueup_bytes(*args: str) -> tuple[int, str]:  # the output names the path's bytes
        env = {**os.environ, "PYTHONPATH": str(REPO), **trueup_env(tmp_path)}
        done = subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True,
                              env=env, timeout=120, check=False)
        return done.returncode, (done.stdout + done.stderr).decode("utf-8", "surrogateescape")

    code, out = trueup_bytes("validate", str(bundle))
    assert code == 0 and f"{bundle}: OK" in out, out
    code, out = trueup_bytes("run", str(bundle), "--detailed-exitcodes")
    assert code == 2, out
    assert (target / "first").read_text() == "written before the bad part?\n"
    code, out = trueup_bytes("run", str(bundle), "--detailed-exitcodes")
    assert code == 0 and "Traceback" not in out, out


DEEP = {
    # name: (recipe text, line of the error)
    "flow lists": ("attributes:\n  x: " + nested(500) + "\n", 2),
    "block mappings": ("attributes:\n" + "".join("  " * (i + 1) + f"k{i}:\n"
                                                 for i in range(150)) + "\n", 101),
    "recursive anchor": ("attributes:\n  a: &a [x, *a]\n", 2),
}


@pytest.mark.parametrize("case", DEEP, ids=list(DEEP))
def test_nesting_too_deep(tmp_path: Path, trueup: Trueup, case: str) -> None:
    text, line = DEEP[case]
    bundle, target = bundle_with(tmp_path, "", recipes={"deep": text}, runlist="deep,app")
    assert_refused(trueup("run", str(bundle)), target, bundle / "deep/recipe.yml", line,
                   "nested too deep")


def test_nesting_too_deep_in_a_node_file_and_a_flag(tmp_path: Path, trueup: Trueup) -> None:
    bundle, target = bundle_with(tmp_path, "")
    node = tmp_path / "node.json"
    node.write_text('{"x": ' + nested(500) + "}")
    assert_refused(trueup("run", str(bundle), "--attributes", str(node)), target, node, 1,
                   "nested too deep")
    assert_refused(trueup("run", str(bundle), "-a", f"x={nested(500)}"), target,
                   Path("-a x"), None, "nested too deep")


MERGES = {
    "a scalar": "  a: &a 1\n  b:\n    <<: *a\n",
    "a list of scalars": "  a: &a 1\n  b:\n    c: 2\n    <<: [*a, *a]\n",
}


@pytest.mark.parametrize("case", MERGES, ids=list(MERGES))
def test_merge_key_needs_mappings(tmp_path: Path, trueup: Trueup, case: str) -> None:
    text = "attributes:\n" + MERGES[case]
    line = text.splitlines().index(next(x for x in text.splitlines() if "<<" in x)) + 1
    bundle, target = bundle_with(tmp_path, "", recipes={"m": text}, runlist="m,app")
    assert_refused(trueup("run", str(bundle)), target, bundle / "m/recipe.yml", line,
                   "merge key '<<' takes a mapping or a list of mappings")


def test_merge_keys_and_aliases_still_work(tmp_path: Path, trueup: Trueup) -> None:
    """Own keys win over merged ones; the first merged mapping wins over the next."""
    recipe = """\
        attributes:
          base: &base {port: 80, name: web, tls: false}
          extra: &extra {tls: true, user: www}
          site:
            <<: [*base, *extra]
            port: 8080
          again: *base
        """
    bundle, target = bundle_with(
        tmp_path, '- file: "{{ attributes.root }}/site"\n'
        '  content: "{{ attributes.site | dictsort }} {{ attributes.again.port }}"\n',
        recipes={"conf": recipe}, runlist="conf,app")
    result = trueup("run", str(bundle))
    assert result.returncode == 0, result.stderr
    assert (target / "site").read_text() == (
        "[('name', 'web'), ('port', 8080), ('tls', False), ('user', 'www')] 80")


# --- 2b. files that are no regular files, or too large ---------------------------------------


def guarded() -> dict[str, object]:
    """Options for the trueup fixture: a hang ends in a timeout, an endless read in a
    MemoryError (on the code before these checks: a FIFO blocked, /dev/zero filled memory)."""
    prefix = ["prlimit", f"--as={2 * 1024 ** 3}"] if shutil.which("prlimit") else []
    return {"timeout": 30, "prefix": prefix}


def make_not_a_file(path: Path, kind: str) -> None:
    """Replace ``path`` with a FIFO, a link to a device, a folder or a symbolic link loop."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.is_file():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to(path.name)  # a link to itself


NOT_FILES = {"fifo": "is a FIFO (named pipe)", "device": "is a character device",
             "directory": "is a directory", "symlink loop": "is a symbolic link loop"}
PLACES = {
    # name: (resources, the path made no file, the file named by the error, its line)
    "source": ('- file: "{{ attributes.root }}/x"\n  source: x\n', "bundle/app/files/x",
               "bundle/app/recipe.yml", 6),
    "template": ('- template: "{{ attributes.root }}/x"\n  source: t.j2\n',
                 "bundle/app/templates/t.j2", "bundle/app/templates/t.j2", None),
    "recipe file": ("", "bundle/app/recipe.yml", "bundle/app/recipe.yml", None),
    "attributes file": ("", "bundle/attributes.yml", "bundle/attributes.yml", None),
    "runlist file": ("", "bundle/runlist", "bundle/runlist", None),
    "node file": ("", "node.yml", "node.yml", None),
}


@pytest.mark.parametrize("kind", NOT_FILES, ids=list(NOT_FILES))
@pytest.mark.parametrize("place", PLACES, ids=list(PLACES))
def test_only_regular_files_are_read(tmp_path: Path, trueup: Trueup, place: str,
                                     kind: str) -> None:
    """run and validate refuse it the same way, at once, without reading it."""
    extra, where, named, line = PLACES[place]
    bundle, target = bundle_with(tmp_path, extra)
    node = tmp_path / "node.yml"
    node.write_text("{}\n")
    make_not_a_file(tmp_path / where, kind)
    args = [str(bundle), "--attributes", str(node)]
    result = trueup("run", *args, **guarded())
    assert_refused(result, target, tmp_path / named, line, NOT_FILES[kind],
                   "expected a regular file")
    checked = trueup("validate", *args, **guarded())
    assert checked.returncode == 1 and checked.stderr == result.stderr


MiB = 1024 * 1024
TOO_LARGE = {
    # name: (resources, the large file, its size, the file named by the error, its line)
    "source": ('- file: "{{ attributes.root }}/x"\n  source: x\n', "bundle/app/files/x",
               16 * MiB + 1, "bundle/app/recipe.yml", 6),
    "template": ('- template: "{{ attributes.root }}/x"\n  source: t.j2\n',
                 "bundle/app/templates/t.j2", 16 * MiB + 1, "bundle/app/templates/t.j2", None),
    "recipe file": ("", "bundle/app/recipe.yml", MiB + 1, "bundle/app/recipe.yml", None),
}


@pytest.mark.parametrize("place", TOO_LARGE, ids=list(TOO_LARGE))
def test_files_over_their_size_limit(tmp_path: Path, trueup: Trueup, place: str) -> None:
    """16 MiB for a source or a template, 1 MiB for a recipe file: one byte more is refused."""
    extra, where, size, named, line = TOO_LARGE[place]
    bundle, target = bundle_with(tmp_path, extra)
    path = tmp_path / where
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:  # a recipe keeps its text: a YAML comment fills it up
        fh.write(b"#" + b"x" * (size - fh.tell() - 2) + b"\n")
    assert path.stat().st_size == size
    result = trueup("run", str(bundle), **guarded())
    assert_refused(result, target, tmp_path / named, line, "is too large",
                   f"{size} bytes", f"the limit is {size // MiB} MiB")


# --- 2c. walks of the bundle folder ----------------------------------------------------------


def test_a_symlink_loop_in_the_bundle_is_no_recipe(tmp_path: Path, trueup: Trueup) -> None:
    bundle, target = bundle_with(tmp_path, "")
    (bundle / "loop").symlink_to("loop")
    checked = trueup("validate", str(bundle), **guarded())
    assert checked.returncode == 0, checked.stderr
    assert "OK (1 recipes" in checked.stdout
    result = trueup("run", str(bundle), "--runlist", "loop", **guarded())
    assert_refused(result, target, Path("--runlist"), None, "recipe 'loop' not found",
                   "(recipes there: app)")


def test_a_runlist_for_an_event_that_is_a_folder(tmp_path: Path, trueup: Trueup) -> None:
    """validate reads every runlist.<event> file; run reads the one of its event."""
    bundle, target = bundle_with(tmp_path, "")
    (bundle / "runlist.deploy").mkdir()
    result = trueup("run", str(bundle), "--event", "deploy", **guarded())
    assert_refused(result, target, bundle / "runlist.deploy", None,
                   "is a directory, expected a regular file")
    checked = trueup("validate", str(bundle), **guarded())
    assert checked.returncode == 1 and checked.stderr == result.stderr


# --- 3. YAML control characters; validate agrees with run ------------------------------------


def test_control_character_in_yaml(tmp_path: Path, trueup: Trueup) -> None:
    """One line naming file:line (libyaml counts bytes: the é before it must not shift it)."""
    bundle, target = bundle_with(tmp_path, '# café crème\n- file: "{{ attributes.root }}/x"\n'
                                 '  content: "a\x07b"\n')
    result = trueup("run", str(bundle))
    assert_refused(result, target, bundle / "app/recipe.yml", 7, "YAML syntax error",
                   "unacceptable character #x0007", "control characters are not allowed")
    checked = trueup("validate", str(bundle))
    assert checked.returncode == 1 and checked.stderr == result.stderr


SIBLINGS = {
    "base": "attributes:\n  greeting: hello\n",
    "web": 'resources:\n  - file: "{{ attributes.root }}/web"\n'
           '    content: "{{ attributes.greeting }}"\n',
}


@pytest.mark.parametrize("runlist", ["runlist", "runlist.deploy"])
def test_validate_accepts_what_run_accepts(tmp_path: Path, trueup: Trueup,
                                           runlist: str) -> None:
    """web uses the defaults of base, before it in the run list: run and validate accept."""
    bundle, target = bundle_with(tmp_path, "", recipes=SIBLINGS, runlist="app")
    (bundle / runlist).write_text("app\nbase\nweb\n")  # app makes the folder web writes in
    checked = trueup("validate", str(bundle))
    assert checked.returncode == 0, checked.stderr
    assert "OK (3 recipes" in checked.stdout
    event = ["--event", runlist.partition(".")[2]] if "." in runlist else []
    result = trueup("run", str(bundle), *event)
    assert result.returncode == 0, result.stderr
    assert (target / "web").read_text() == "hello"


def test_validate_refuses_what_run_refuses(tmp_path: Path, trueup: Trueup) -> None:
    """Without base in the run list web's attribute is undefined: both refuse, alike."""
    bundle, target = bundle_with(tmp_path, "", recipes=SIBLINGS, runlist="web\napp")
    result = trueup("run", str(bundle))
    assert_refused(result, target, bundle / "web/recipe.yml", 3,
                   "'attributes' has no attribute 'greeting'")
    checked = trueup("validate", str(bundle))
    assert checked.returncode == 1 and checked.stderr == result.stderr


def test_validate_checks_a_recipe_in_no_run_list_on_its_own(tmp_path: Path,
                                                              trueup: Trueup) -> None:
    bundle, target = bundle_with(tmp_path, "", recipes=SIBLINGS, runlist="app")
    checked = trueup("validate", str(bundle))
    assert_refused(checked, target, bundle / "web/recipe.yml", 3,
                   "'attributes' has no attribute 'greeting'")


# --- 4. values of sensitive resources stay out of error messages -----------------------------

SENSITIVE = {
    # name: (resources, the file named by the error, its line, words of the message)
    "undefined name": ("content: \"{{ 'hunter2' ~ undefined_name }}\"", "app/recipe.yml", 6,
                       "content cannot be rendered"),
    "missing key": ("content: \"{{ {}['hunter2'] }}\"", "app/recipe.yml", 6,
                    "content cannot be rendered"),
    "syntax error": ("content: \"{{ 'hunter2' ( }}\"", "app/recipe.yml", 6,
                     "content cannot be rendered"),
    "whole-value expression": ("verify: \"{{ ['hunter2', nope] }}\"", "app/recipe.yml", 6,
                               "verify cannot be rendered"),
    "wrong type": ("backup: \"hunter2\"", "app/recipe.yml", 6, "backup must be"),
    "template file": ("source: t.j2", "app/templates/t.j2", 2,
                      "template cannot be rendered"),
    "name": ("", "app/recipe.yml", 5, "the name cannot be rendered"),
}


@pytest.mark.parametrize("case", SENSITIVE, ids=list(SENSITIVE))
def test_sensitive_value_is_not_quoted_in_errors(tmp_path: Path, trueup: Trueup, env: dict,
                                                 case: str) -> None:
    """The error names the field (or template) and line; the value's text appears nowhere."""
    field, named, line, words = SENSITIVE[case]
    kind = "template" if field.startswith("source") else "file"
    name = "{{ attributes.root }}/x" if field else "{{ attributes.root ~ 'hunter2' ~ nope }}"
    field = field or "owner: root"
    bundle, target = bundle_with(
        tmp_path, f'- {kind}: "{name}"\n  {field}\n  sensitive: true\n',
        templates={"app/t.j2": "a = 1\nb = {{ {}['hunter2'] }}\n"})
    result = trueup("run", str(bundle))
    assert_refused(result, target, bundle / named, line, words,
                   "(details hidden: the resource is sensitive)")
    assert "hunter2" not in result.stderr
    report = Path(env["TRUEUP_STATE_DIR"]) / "reports/last_run.json"
    assert "hidden" in report.read_text() and "hunter2" not in report.read_text()
    checked = trueup("validate", str(bundle))
    assert checked.returncode == 1 and checked.stderr == result.stderr


def test_values_of_other_resources_are_still_quoted(tmp_path: Path, trueup: Trueup) -> None:
    """Without sensitive, the error shows the expression: it helps, and hides nothing."""
    bundle, target = bundle_with(
        tmp_path, "- file: \"{{ attributes.root }}/x\"\n  content: \"{{ 'hello' ~ nope }}\"\n")
    assert_refused(trueup("run", str(bundle)), target, bundle / "app/recipe.yml", 6,
                   "'nope' is undefined in \"{{ 'hello' ~ nope }}\"")
