"""Each kind of bad input: one precise message (file and line), exit 1, nothing changed."""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.helpers import run_cli, write_bundle

GOOD = """\
    resources:
      - directory: "{{ attributes.root }}"
      - file: "{{ attributes.root }}/first"
        content: "written before the bad part?\\n"
"""


def bundle_with(tmp_path: Path, extra: str, *, templates=None, files=None, runlist="app",
                recipes=None) -> tuple[Path, Path]:
    target = tmp_path / "target"
    text = textwrap.dedent(GOOD) + textwrap.indent(textwrap.dedent(extra), "  ")
    all_recipes = {"app": text, **(recipes or {})}
    bundle = write_bundle(tmp_path / "bundle", all_recipes, templates=templates, files=files,
                          runlist=runlist, attributes=f"root: {target}\n")
    return bundle, target


def trueup_env(tmp_path: Path) -> dict[str, str]:
    return {"TRUEUP_STATE_DIR": str(tmp_path / "state"),
            "TRUEUP_CONFIG": str(tmp_path / "no-config.toml")}


def assert_refused(result, target: Path, file: Path, line: int | None, *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one message
    message = lines[0]
    where = f"{file}:{line}:" if line else f"{file}:"
    assert where in message, message
    for word in words:
        assert word in message, message
    assert not target.exists(), "something was changed"
    assert result.stdout == ""


CASES = {
    # name: (extra resources, expected line in recipe.yml, words in the message)
    "unknown type": ("- flie: /tmp/x\n", 5, ("unknown resource type 'flie'",
                                             "did you mean 'file'")),
    "unknown field": ("- file: /tmp/x\n  contnet: hi\n", 6, ("unknown field 'contnet'",
                                                             "did you mean 'content'")),
    "wrong value type": ("- file: /tmp/x\n  retries: many\n", 6,
                         ("retries must be an integer",)),
    "unquoted mode": ("- file: /tmp/x\n  mode: 0644\n", 6, ("quoted octal string",)),
    "undefined attribute": ("- file: /tmp/x\n  content: \"{{ attributes.nope }}\"\n", 6,
                            ("has no attribute 'nope'",)),
    "jinja error in a value": ("- file: /tmp/x\n  content: \"{{ attributes.root | nofilter }}\"\n",
                               6, ("nofilter",)),
    "missing template": ("- template: /tmp/x\n  source: nope.j2\n", 6,
                         ("template not found", "nope.j2")),
    "missing source file": ("- file: /tmp/x\n  source: nope.txt\n", 6,
                            ("source file not found", "nope.txt")),
    "duplicate identity": ("- file: \"{{ attributes.root }}/first\"\n  content: again\n", 5,
                           ("duplicate resource file:", "already declared at")),
    "dependency cycle": ("- file: /tmp/a\n  requires: [file:/tmp/b]\n"
                         "- file: /tmp/b\n  requires: [file:/tmp/a]\n", 5,
                         ("dependency cycle", "file:/tmp/a", "file:/tmp/b")),
    "unknown requires": ("- file: /tmp/a\n  requires: [file:/tmp/zzz]\n", 6,
                         ("names no declared resource",)),
    "unknown notify action": ("- command: c\n  run: [/bin/true]\n  refresh_only: true\n"
                              "- file: /tmp/a\n  notify: command:c restart\n", 9,
                              ("has no action 'restart'",)),
    "shell string without shell": ("- command: c\n  run: echo hi\n", 6,
                                   ("shell is not true",)),
    "missing required field": ("- template: /tmp/x\n", 5, ("needs the field 'source'",)),
    "relative path": ("- file: etc/motd\n", 5, ("must be absolute",)),
    "bad cron schedule": ("- cron: job\n  schedule: '* * *'\n  run: /bin/true\n", 6,
                          ("needs five fields",)),
    "bad cron name": ("- cron: my.job\n  schedule: '@daily'\n  run: /bin/true\n", 5,
                      ("may hold only letters",)),
    "bad regex": ("- line: /tmp/x\n  text: a\n  match: '('\n", 7, ("not a valid regex",)),
    "bad sysctl key": ("- sysctl: not a key\n  value: 1\n", 5, ("is not a sysctl key",)),
    "version with names": ("- package: tools\n  names: [a, b]\n  version: '1.0'\n", 7,
                           ("single package",)),
    "undefined name inside a list": ("- command: c\n  run: \"{{ ['/bin/echo', nope] }}\"\n", 6,
                                     ("'nope' is undefined",)),
    "guard as a string": ("- file: /tmp/x\n  only_if: test -f /x\n", 6,
                          ("only_if must be a list",)),
    "negative command timeout": ("- command: c\n  run: [/bin/true]\n  timeout: -1\n", 7,
                                 ("timeout must be a positive number of seconds",)),
    "zero command timeout": ("- command: c\n  run: [/bin/true]\n  timeout: 0\n", 7,
                             ("timeout must be a positive number of seconds",)),
    "infinite command timeout": ("- command: c\n  run: [/bin/true]\n  timeout: .inf\n", 7,
                                 ("timeout must be a positive number of seconds",)),
    "infinite retry delay": ("- file: /tmp/x\n  retries: 1\n  retry_delay: .inf\n", 7,
                             ("retry_delay must be a finite number of seconds",)),
    "nan retry delay": ("- file: /tmp/x\n  retry_delay: .nan\n", 6,
                        ("retry_delay must be a finite number of seconds",)),
    "NUL in a name": ('- file: "/tmp/a\\0b"\n', 5, ("NUL character",)),
    "NUL in a path field": ('- link: /tmp/l\n  to: "/tmp/a\\0b"\n', 6, ("to", "NUL character")),
    "NUL in an argv": ('- command: c\n  run: [/bin/echo, "a\\0b"]\n', 6,
                       ("run", "NUL character")),
    "download without sha256": ("- download: /tmp/x\n  url: https://example.org/x\n", 5,
                                ("needs the field 'sha256'",)),
    "download bad sha256": ("- download: /tmp/x\n  url: https://example.org/x\n"
                            "  sha256: abc\n", 7, ("64 hexadecimal digits",)),
    "download s3 url without key": ("- download: /tmp/x\n  url: s3://bucket\n  sha256: "
                                    + "a" * 64 + "\n", 6, ("not an S3 object URL",)),
    "archive url without creates": ("- archive: /tmp/a\n  source: https://example.org/a.tgz\n"
                                    "  sha256: " + "a" * 64 + "\n", 5, ("creates",)),
    "block marker": ("- block: /tmp/x\n  content: x\n  marker: '# managed'\n", 7,
                     ("{mark}",)),
    "systemd_unit name": ("- systemd_unit: app\n  content: x\n", 5, ("not a unit name",)),
    "apt_repository key url": ("- apt_repository: r\n  uri: https://r.example\n"
                               "  suites: [s]\n  key: https://r.example/k.asc\n", 5,
                               ("64 hexadecimal digits",)),
    "pip requirement": ("- pip: 'x; rm -rf /'\n  virtualenv: /opt/v\n", 5,
                        ("is not a requirement",)),
    "file_mode without recursive": ("- directory: /tmp/d\n  file_mode: '0644'\n", 6,
                                    ("recursive: true",)),
    "nested list of exit codes": ("- command: c\n  run: [/bin/true]\n  returns: [1, [2, [3]]]\n",
                                  7, ("returns must be exit codes",)),
    "exit code that is no number": ("- command: c\n  run: [/bin/true]\n  returns: [0, two]\n",
                                    7, ("returns must be exit codes",)),
    "exit code that is a mapping": ("- command: c\n  run: [/bin/true]\n  returns: [{a: 1}]\n",
                                    7, ("returns must be exit codes",)),
    "NUL in a rendered name": ("- file: \"/tmp/x{{ '\\\\x00' }}\"\n", 5, ("NUL character",)),
    "lone surrogate in a rendered name": ("- file: \"/tmp/x{{ '\\\\ud800' }}\"\n", 5,
                                          ("name", "lone surrogate", "U+D800")),
    "lone surrogate in a rendered value": ("- file: /tmp/x\n  content: \"{{ '\\\\udcff' }}\"\n",
                                           6, ("content", "lone surrogate", "U+DCFF")),
    "lone surrogate in an argv": ("- command: c\n  run: [/bin/echo, \"{{ '\\\\udfff' }}\"]\n", 6,
                                  ("run", "lone surrogate")),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_resource_is_refused(tmp_path, trueup, case):
    extra, line, words = CASES[case]
    bundle, target = bundle_with(tmp_path, extra)
    result = trueup("run", str(bundle))
    assert_refused(result, target, bundle / "app/recipe.yml", line, *words)
    # validate finds the same error and touches nothing either
    checked = trueup("validate", str(bundle))
    assert checked.returncode == 1 and checked.stderr == result.stderr


def test_yaml_syntax_error(tmp_path, trueup):
    bundle, target = bundle_with(tmp_path, "- file: /tmp/x\n  content: [unclosed\n")
    result = trueup("run", str(bundle))
    assert_refused(result, target, bundle / "app/recipe.yml", 7, "YAML syntax error")


def test_duplicate_yaml_key(tmp_path, trueup):
    bundle, target = bundle_with(tmp_path, "- file: /tmp/x\n  mode: '0600'\n  mode: '0644'\n")
    assert_refused(trueup("run", str(bundle)), target, bundle / "app/recipe.yml", 7,
                   "duplicate key 'mode'")


def test_undefined_variable_in_template(tmp_path, trueup):
    bundle, target = bundle_with(tmp_path, "- template: /tmp/x\n  source: t.j2\n",
                                 templates={"app/t.j2": "a = 1\nb = {{ nope }}\n"})
    assert_refused(trueup("run", str(bundle)), target, bundle / "app/templates/t.j2", 2,
                   "'nope' is undefined")


def test_template_syntax_error(tmp_path, trueup):
    bundle, target = bundle_with(tmp_path, "- template: /tmp/x\n  source: t.j2\n",
                                 templates={"app/t.j2": "a\nb\n{% if %}\n"})
    assert_refused(trueup("run", str(bundle)), target, bundle / "app/templates/t.j2", 3,
                   "template syntax error")


def test_missing_recipe_in_runlist(tmp_path, trueup):
    bundle, target = bundle_with(tmp_path, "", runlist="app\nnosuch")
    assert_refused(trueup("run", str(bundle)), target, bundle / "runlist", None,
                   "recipe 'nosuch' not found", "recipes there: app")


def test_missing_recipe_on_the_command_line(tmp_path, trueup):
    bundle, target = bundle_with(tmp_path, "")
    result = trueup("run", str(bundle), "--runlist", "app,nosuch")
    assert result.returncode == 1 and "--runlist: recipe 'nosuch' not found" in result.stderr
    assert not target.exists()


def test_missing_recipe_in_depends(tmp_path, trueup):
    bundle, target = bundle_with(tmp_path, "", recipes={
        "web": "depends:\n  - app\n  - base\nresources: []\n"}, runlist="web")
    assert_refused(trueup("run", str(bundle)), target, bundle / "web/recipe.yml", 3,
                   "recipe 'base' not found")


def test_recipe_depends_cycle(tmp_path, trueup):
    bundle, target = bundle_with(tmp_path, "", recipes={
        "web": "depends: [db]\n", "db": "depends: [web]\n"}, runlist="app,web")
    assert_refused(trueup("run", str(bundle)), target, bundle / "db/recipe.yml", 1,
                   "recipe dependency cycle: web -> db -> web")


def test_unknown_recipe_key(tmp_path, trueup):
    bundle, target = bundle_with(tmp_path, "", recipes={"web": "resorces: []\n"},
                                 runlist="app,web")
    assert_refused(trueup("run", str(bundle)), target, bundle / "web/recipe.yml", 1,
                   "unknown recipe key 'resorces'")


def test_not_utf8(tmp_path, trueup):
    bundle, target = bundle_with(tmp_path, "")
    (bundle / "app/recipe.yml").write_bytes(b"resources:\n  - file: /tmp/\xff\n")
    assert_refused(trueup("run", str(bundle)), target, bundle / "app/recipe.yml", None,
                   "not UTF-8")


def test_bad_attribute_flag(tmp_path, trueup):
    bundle, target = bundle_with(tmp_path, "")
    result = trueup("run", str(bundle), "-a", "novalue")
    assert result.returncode == 1 and "-a expects key.sub=value" in result.stderr
    assert not target.exists()


def test_missing_bundle_folder(tmp_path, trueup):
    result = trueup("run", str(tmp_path / "nowhere"))
    assert result.returncode == 1 and "bundle folder not found" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv to drop the capability to read any file")
def test_unreadable_recipe(tmp_path, trueup):
    bundle, target = bundle_with(tmp_path, "")
    (bundle / "app/recipe.yml").chmod(0o000)
    # root reads any file; without CAP_DAC_OVERRIDE/READ_SEARCH it is an ordinary reader
    result = run_cli("run", str(bundle), env=trueup_env(tmp_path),
                     prefix=["setpriv", "--bounding-set", "-dac_override,-dac_read_search"])
    assert_refused(result, target, bundle / "app/recipe.yml", None, "permission denied")


def test_error_message_is_a_single_line_with_location(tmp_path, trueup):
    bundle, _ = bundle_with(tmp_path, "- flie: /x\n")
    message = trueup("run", str(bundle)).stderr
    assert re.match(r"^trueup: error: /\S+/app/recipe\.yml:5: unknown resource type", message)


@pytest.mark.parametrize("merge", ["<<: 5", "<<: [1, 2]", "<<: text", "<<: ~"])
def test_merge_key_into_a_scalar(tmp_path, trueup, merge):
    """A YAML merge key (<<) must name a mapping; anything else is a located error."""
    bundle, target = bundle_with(tmp_path, f"- file: /tmp/x\n  {merge}\n")
    result = trueup("run", str(bundle))
    assert_refused(result, target, bundle / "app/recipe.yml", 6, "merge key")
    assert trueup("validate", str(bundle)).stderr == result.stderr


def test_attribute_flag_with_a_number_too_long_to_read(tmp_path, trueup):
    """-a reads its value as YAML; a number Python will not read is kept as the text."""
    digits = "9" * 5000
    bundle, target = bundle_with(tmp_path, "- file: \"{{ attributes.root }}/x\"\n"
                                           "  content: \"{{ attributes.x }}\"\n")
    for command in ("validate", "run"):
        result = trueup(command, str(bundle), "-a", f"x={digits}")
        assert result.returncode == 0, result.stderr
    assert (target / "x").read_text() == digits


def test_long_depends_chain(tmp_path, trueup):
    """A chain of 100 depends converges (walked without recursion), and validate, which
    expands every recipe on its own, stays quick."""
    chain = {f"c{i}": f"depends: [c{i + 1}]\n" for i in range(99)}
    chain["c99"] = "resources: []\n"
    bundle, target = bundle_with(tmp_path, "", recipes=chain, runlist="app,c0")
    assert trueup("validate", str(bundle)).returncode == 0
    result = trueup("run", str(bundle))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (target / "first").exists()


def test_depends_chain_too_deep(tmp_path, trueup):
    """Depends nested deeper than 100 recipes are refused, where the 101st is named."""
    chain = {f"c{i}": f"description: link {i}\ndepends: [c{i + 1}]\n" for i in range(1499)}
    chain["c1499"] = "resources: []\n"
    bundle, target = bundle_with(tmp_path, "", recipes=chain, runlist="app,c0")
    result = trueup("run", str(bundle))
    assert_refused(result, target, bundle / "c99/recipe.yml", 2,
                   "depends nested deeper than 100 recipes: c0 -> c1 -> ", "c99 -> c100")
    assert trueup("validate", str(bundle)).stderr == result.stderr


def test_long_depends_cycle(tmp_path, trueup):
    chain = {f"c{i}": f"depends: [c{(i + 1) % 60}]\n" for i in range(60)}
    bundle, target = bundle_with(tmp_path, "", recipes=chain, runlist="app,c0")
    result = trueup("run", str(bundle))
    assert_refused(result, target, bundle / "c59/recipe.yml", 1,
                   "recipe dependency cycle: c0 -> c1 -> c2", "c59 -> c0")


@pytest.mark.parametrize("tag", ["!!python/name:os.system", "=", "!!merge x", "!custom 1"])
def test_unknown_yaml_tag(tmp_path, trueup, tag):
    """A tag safe YAML does not construct is one line naming the tag, at its line."""
    bundle, target = bundle_with(tmp_path, f"- file: /tmp/x\n  content: {tag}\n")
    result = trueup("run", str(bundle))
    assert_refused(result, target, bundle / "app/recipe.yml", 6, "invalid value",
                   "could not determine a constructor for the tag")


def test_error_with_a_line_break_in_a_value_is_one_line(tmp_path, trueup):
    """A value holding line breaks or terminal escapes cannot split (or colour) the error."""
    bundle, target = bundle_with(tmp_path, '- file: /tmp/x\n  source: "a\\nb\\u001b[2J"\n')
    result = trueup("run", str(bundle))
    assert_refused(result, target, bundle / "app/recipe.yml", 6, "source file not found",
                   "a\\nb\\x1b[2J")


def test_error_quoting_a_huge_value_is_cut_short(tmp_path, trueup):
    """An error quoting a value of 100,000 characters keeps its start and its end."""
    bundle, target = bundle_with(tmp_path, f"- file: /tmp/x\n  content: [{'x' * 100_000}]\n")
    result = trueup("run", str(bundle))
    assert_refused(result, target, bundle / "app/recipe.yml", 6, "content must be a string",
                   "characters cut")
    assert len(result.stderr) < 5000


def test_nul_in_file_content_is_content(tmp_path, trueup):
    """A NUL character is refused where the system cannot take one, not in content."""
    bundle, target = bundle_with(tmp_path, '- file: "{{ attributes.root }}/nul"\n'
                                           '  content: "a\\0b"\n')
    result = trueup("run", str(bundle))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (target / "nul").read_bytes() == b"a\0b"


@pytest.mark.parametrize("owner", ["99999999999999999999", "-5", "4294967295"])
def test_owner_id_out_of_range(tmp_path, trueup, owner):
    """An owner number no system has is the resource's failure, said plainly."""
    bundle, target = bundle_with(tmp_path, '- file: "{{ attributes.root }}/x"\n'
                                           f"  owner: {owner}\n")
    result = trueup("run", str(bundle))
    assert result.returncode == 4, result.stdout + result.stderr
    assert "internal error" not in result.stdout + result.stderr
    assert "user id" in result.stdout and "out of range" in result.stdout, result.stdout
    assert not (target / "x").exists()
