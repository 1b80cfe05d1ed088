"""What a run imports: a warm no-op and an empty run pay only for what they use.

Not a timed test: each case runs trueup in a fresh interpreter (tests/imports_probe.py)
and compares the set of modules it imported with the set allowed here. A heavy import
that creeps back onto the run path (PyYAML, Jinja2, boto3, argparse, dataclasses,
pathlib, hashlib, another command's module ...) fails with the chain of who imported it,
such as ``yaml <- agent.compile.yamlfile:113 <- agent.compile.loader:120``.

When a change needs a new module on a run, add it below, in the set of the case that
needs it, with the reason; the benchmark (bench/RESULTS.md) says what a module costs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, write_bundle

PROBE = REPO / "tests" / "imports_probe.py"

#: The standard library a warm run needs beyond the bare interpreter's (the probe runs
#: with ``-S``, so modules that ``site`` and an editable install would import first are
#: counted too): os and stat, collections (Mapping, Counter), the C unpickler (the stored
#: catalog), the C JSON encoder (the report, through agent.jsontext), fcntl (the run lock),
#: math, errno, the built-in SHA-256 (cache names). Not ``re``, ``enum``, ``json`` or
#: ``signal`` (a run uses the C ``_signal``): together about 15 ms of every run.
STDLIB = {
    "_collections", "_collections_abc", "_compat_pickle", "_functools", "_json", "_operator",
    "_pickle", "_sha256", "_sha2", "_stat", "collections", "collections.abc", "contextlib",
    "copyreg", "errno", "fcntl", "functools", "genericpath", "importlib",
    "importlib._bootstrap", "importlib._bootstrap_external", "itertools", "keyword", "math",
    "operator", "os", "os.path", "posixpath", "reprlib", "stat", "types", "warnings",
}
#: reading JSON and regular expressions: compiling reads the parsed-recipe cache records
JSON_RE = {"json", "json.decoder", "json.encoder", "json.scanner", "re", "re._casefix",
           "re._compiler", "re._constants", "re._parser", "_sre", "enum"}
#: typing is for type checkers: run-path modules import it under ``if TYPE_CHECKING:``
#: (``TYPE_CHECKING = False`` first), as it costs several milliseconds a run
TYPING = {"typing", "_typing", "typing.io", "typing.re"}
#: trueup's modules on a run that loads its stored catalog: the command, the engine,
#: the folder source, and the resource kinds the catalog holds (nothing of the compiler).
RUN = {
    "agent", "agent.aws", "agent.aws.ec2", "agent.aws.secrets", "agent.cli",
    "agent.commands", "agent.commands.run", "agent.compile", "agent.compile.loader",
    "agent.compile.nodes", "agent.compile.options", "agent.compile.stored",
    "agent.compile.yamlfile", "agent.config", "agent.engine", "agent.engine.backups",
    "agent.engine.interrupt", "agent.engine.lock", "agent.engine.reboot", "agent.engine.report",
    "agent.engine.runner", "agent.engine.sensitive", "agent.errors", "agent.host",
    "agent.host.facts", "agent.host.files", "agent.host.pyinfra_bridge",
    "agent.host.system", "agent.jsontext", "agent.model", "agent.redact", "agent.resources",
    "agent.sources", "agent.sources.base", "agent.sources.cache", "agent.sources.local",
    "agent.sources.view",
}
KINDS = {"agent.resources.directory", "agent.resources.file", "agent.resources.template",
         "agent.resources.link", "agent.resources.command"}
#: compiling (no stored catalog), with the recipe's parsed YAML cached: still no PyYAML,
#: and no Jinja2 for templates that only substitute {{ names }}
COMPILE = {"agent.compile.prepare", "agent.compile.catalog", "agent.compile.render",
           "agent.compile.loops",
           "agent.compile.phases", "agent.compile.attributes", "copy", "weakref",
           "_weakrefset", "heapq", "_heapq", "pickle", "struct", "_struct",  # pickle: storing
           *JSON_RE, *TYPING}


def probe(env: dict[str, str], *args: str, extra_env: dict[str, str] | None = None) -> dict:
    """Run ``trueup ARGS`` under the probe; what it imported and who imported what."""
    out = Path(env["TRUEUP_STATE_DIR"]).parent / "imports.json"
    done = subprocess.run([sys.executable, "-S", str(PROBE), str(out), *args], cwd=str(REPO),
                          env={**os.environ, **env, "PYTHONPATH": str(REPO),
                               **(extra_env or {})},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["exit_code"] == 0, done.stdout + done.stderr
    return data


def unexpected(data: dict, allowed: set[str]) -> list[str]:
    """Each module imported beyond ``allowed``, with the chain of who imported it."""
    importers = data["importers"]
    lines = []
    for name in data["modules"]:
        if name in allowed:
            continue
        chain = [name]
        where = importers.get(name, "?")
        for _ in range(8):
            chain.append(where)
            parent = where.rpartition(":")[0]
            if parent in allowed or parent not in importers:
                break
            where = importers[parent]
        lines.append(" <- ".join(chain))
    return lines


def assert_only(data: dict, allowed: set[str]) -> None:
    extra = unexpected(data, allowed)
    assert not extra, ("modules imported that this run does not need (module <- where it "
                       "was imported from):\n  " + "\n  ".join(extra))


def workload(tmp_path: Path) -> tuple[Path, Path]:
    """A bundle of each kind W100 uses: directories, files, a template, a link, a guarded
    command; an attribute given with -a as well."""
    target = tmp_path / "target"
    recipe = f"""\
        attributes:
          app: {{root: "{target}", port: 80}}
        resources:
          - directory: "{{{{ attributes.app.root }}}}"
            mode: "0755"
          - file: "{{{{ attributes.app.root }}}}/motd"
            content: "port {{{{ attributes.app.port }}}}\\n"
          - file: "{{{{ attributes.app.root }}}}/static"
            source: static.txt
          - template: "{{{{ attributes.app.root }}}}/app.conf"
            source: app.conf.j2
            variables: {{name: "{{{{ attributes.app.name }}}}"}}
          - link: "{{{{ attributes.app.root }}}}/latest"
            to: "{{{{ attributes.app.root }}}}/app.conf"
          - command: stamp
            run: [/bin/sh, -c, "echo done > {target}/stamp"]
            creates: "{target}/stamp"
        """
    template = "name={{ name }} port={{ attributes.app.port }}\n"
    bundle = write_bundle(tmp_path / "bundle", {"app": recipe},
                          templates={"app/app.conf.j2": template},
                          files={"app/static.txt": "static\n"}, runlist="app")
    return bundle, target


ARGS = ("-a", "app.port=8080", "-a", "app.name=web01")


def test_a_warm_no_op_imports_only_what_it_uses(tmp_path, env, trueup):
    bundle, target = workload(tmp_path)
    first = trueup("run", str(bundle), *ARGS)
    assert first.returncode == 0, first.stderr
    assert (target / "motd").read_text() == "port 8080\n"
    assert (target / "app.conf").read_text() == "name=web01 port=8080\n"
    data = probe(env, "run", str(bundle), *ARGS)
    report = json.loads((Path(env["TRUEUP_STATE_DIR"]) / "reports/last_run.json").read_text())
    assert report["totals"]["changed"] == 0 and report["totals"]["unchanged"] == 6
    assert_only(data, STDLIB | RUN | KINDS)


def test_an_empty_run_imports_no_kind_and_no_compiler(tmp_path, env, trueup):
    bundle = write_bundle(tmp_path / "bundle", {"empty": "resources: []\n"}, runlist="empty")
    assert trueup("run", str(bundle)).returncode == 0
    assert_only(probe(env, "run", str(bundle)), STDLIB | RUN)


def test_compiling_with_parsed_recipes_cached_needs_neither_yaml_nor_jinja(tmp_path, env,
                                                                            trueup):
    bundle, _ = workload(tmp_path)
    assert trueup("run", str(bundle), *ARGS).returncode == 0
    data = probe(env, "run", str(bundle), *ARGS, extra_env={"TRUEUP_CATALOG_CACHE": "off"})
    assert "agent.compile.prepare" in data["modules"]  # it did compile
    assert_only(data, STDLIB | RUN | KINDS | COMPILE)


def test_the_report_names_who_imported_an_unexpected_module(tmp_path, env, trueup):
    bundle = write_bundle(tmp_path / "bundle", {"empty": "resources: []\n"}, runlist="empty")
    assert trueup("run", str(bundle)).returncode == 0
    data = probe(env, "run", str(bundle))
    lines = unexpected(data, (STDLIB | RUN) - {"agent.compile.stored", "_pickle"})
    assert any(line.startswith("agent.compile.stored <- agent.commands.run:") for line in lines)
    assert any(line.startswith("_pickle <- agent.compile.stored:") for line in lines)
