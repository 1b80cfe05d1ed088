"""The stored catalog (agent.compile.stored): a run that reuses it converges exactly what a
cold compile would, whatever input changed since it was stored.

The property: compile with inputs A (the catalog is stored), change any one input (a
recipe, the bundle's attributes, a template, a source file, a run list, ``--runlist``,
``--event``, ``-a``, the ``--attributes`` file, a fact the templates read, trueup's
version or code, the phase, plan/--diff, a recipe's ``depends``), then compile B with the
store and without it: the two catalogs are the same. With nothing changed, B comes from
the store (so the property is not met by never storing).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.compile import stored
from agent.compile.loader import Bundle
from agent.compile.prepare import Options, Prepared, prepare
from agent.config import Config
from agent.engine.backups import Backups
from agent.host.facts import Facts
from agent.host.system import System
from agent.redact import REDACTOR
from tests.helpers import write_bundle

BASE = """\
    attributes:
      base: {motd: "hello", mode: "0644"}
    resources:
      - directory: "TARGET"
      - file: "TARGET/motd"
        content: "{{ attributes.base.motd }}\\n"
        mode: "{{ attributes.base.mode }}"
    """
APP = """\
    depends: [base]
    attributes:
      app: {port: 80, name: app}
    resources:
      - template: "TARGET/app.conf"
        source: app.conf.j2
        variables: {port: "{{ attributes.app.port }}"}
      - file: "TARGET/static"
        source: static.txt
      - command: "restart {{ attributes.app.name }}"
        run: [/bin/true]
        creates: "TARGET/stamp"
        phase: boot
      - link: "TARGET/latest"
        to: "TARGET/app.conf"
        phase: bake
    """
EXTRA = """\
    resources:
      - file: "TARGET/extra"
        content: "extra {{ facts.hostname }}\\n"
    """
TEMPLATE = "host={{ facts.hostname }} port={{ port }} name={{ attributes.app.name }}\n"

MUTATIONS = ("nothing", "recipe attributes", "bundle attributes", "template", "source file",
             "runlist file", "--runlist", "--event", "-a", "--attributes file", "fact",
             "version", "code", "phase", "plan", "depends", "unused new file",
             "configured runlist")
VALUES = st.text(alphabet="abcxyz019", min_size=1, max_size=6)


class Inputs:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        target = tmp / "target"
        self.bundle = write_bundle(
            tmp / "bundle",
            {name: text.replace("TARGET", str(target))
             for name, text in (("base", BASE), ("app", APP), ("extra", EXTRA))},
            templates={"app/app.conf.j2": TEMPLATE}, files={"app/static.txt": "static\n"},
            runlist="app", attributes="app: {name: bundled}\n")
        (self.bundle / "runlist.deploy").write_text("app, extra\n")
        self.node_file = tmp / "node.yml"
        self.node_file.write_text("base: {motd: node}\n")
        self.opts = Options(source=str(self.bundle), assignments=["app.port=8080"],
                            attributes_file=str(self.node_file))
        self.cfg = Config(state_dir=str(tmp / "state"))
        self.facts = {"hostname": "web01"}

    def compile(self, use_store: bool) -> Prepared:
        bundle = Bundle(str(self.bundle), str(self.tmp / "state/cache/parsed/b"))
        system = System()
        backups = Backups(str(self.tmp / "state/backup"))
        facts = Facts(overrides=dict(self.facts))
        if use_store:
            return stored.load_or_prepare(self.opts, self.cfg, bundle, system, backups, facts,
                                          no_secrets)
        return prepare(self.opts, self.cfg, bundle, system, backups, facts, no_secrets)

    def rewrite(self, rel: str, old: str, new: str) -> None:
        path = self.bundle / rel
        text = path.read_text()
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new))

    def change(self, what: str, value: str) -> None:
        """Change one input (the bundle on disk, an option, a fact ...)."""
        if what == "recipe attributes":
            self.rewrite("base/recipe.yml", 'motd: "hello"', f'motd: "{value}"')
        elif what == "bundle attributes":
            (self.bundle / "attributes.yml").write_text(f"app: {{name: b{value}}}\n")
        elif what == "template":
            self.rewrite("app/templates/app.conf.j2", "host=", f"{value}=")
        elif what == "source file":
            (self.bundle / "app/files/static.txt").write_text(f"{value}\n")
        elif what == "runlist file":
            (self.bundle / "runlist").write_text("app, extra\n")
        elif what == "--runlist":
            self.opts.runlist = "extra" if value < "m" else "base,extra"
        elif what == "--event":
            self.opts.event = "deploy"
        elif what == "-a":
            self.opts.assignments = [f"app.port=9{len(value)}", f"app.name={value}x"]
        elif what == "--attributes file":
            self.node_file.write_text(f"base: {{motd: n{value}}}\n")
        elif what == "fact":
            self.facts["hostname"] = f"h{value}"
        elif what == "phase":
            self.opts.phase = "boot" if value < "m" else "bake"
        elif what == "plan":
            self.opts.noop = True
        elif what == "depends":
            self.rewrite("app/recipe.yml", "depends: [base]", "depends: [base, extra]")
        elif what == "unused new file":
            (self.bundle / "app/files" / f"new-{value}").write_text(value)
        elif what == "configured runlist":
            (self.bundle / "runlist").unlink()
            self.cfg.runlist = "extra"
        # "version" and "code" are changed around the compile (see the test)


_SAVED: list[set[str]] = []


def setup_function() -> None:
    """No secret values left in the process-wide redactor by earlier tests: a run that
    knows a secret stores no catalog (a new process starts with none)."""
    _SAVED.append(REDACTOR._values)
    REDACTOR._values = set()


def teardown_function() -> None:
    REDACTOR._values = _SAVED.pop()


def no_secrets(name: Any) -> str:
    raise AssertionError("no secret is read here")


def canon(prepared: Prepared) -> tuple:
    """Everything of a compiled run that converging it reads."""
    nodes = []
    for n in prepared.catalog.nodes:
        res = n.res
        own = {k: v for k, v in vars(res).items() if k not in ("ctx", "spec")}
        nodes.append((n.ident, type(res).__name__, n.recipe, n.phase, n.loc, n.index,
                      n.requires, n.notify, n.subscribe, n.immediately, n.only_if, n.not_if,
                      n.retries, n.retry_delay, n.ignore_failure,
                      [d.ident for d in n.dependents], n.lines, dict(res.spec), repr(own),
                      res.ctx.recipe_dir, res.ctx.recipe, res.ctx.diffs))
    return prepared.runlist, prepared.attributes, nodes, sorted(prepared.catalog.by_ident)


@settings(max_examples=60, deadline=None)
@given(what=st.sampled_from(MUTATIONS), value=VALUES)
def test_a_stored_catalog_is_the_catalog_a_cold_compile_gives(what: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Inputs(Path(tmp))
        first = inputs.compile(use_store=True)
        assert not (first.reads or {}).get("stored")
        inputs.change(what, value)
        saved_version, saved_stamp = stored.__version__, list(stored._STAMP)
        try:
            if what == "version":
                stored.__version__ = f"{saved_version}+{value}"
            elif what == "code":
                stored._STAMP[:] = [[("agent/x.py", len(value), 1)]]
            again = inputs.compile(use_store=True)
        finally:
            stored.__version__ = saved_version
            stored._STAMP[:] = saved_stamp
        cold = inputs.compile(use_store=False)
        assert canon(again) == canon(cold)
        if what == "nothing":
            assert again.reads["stored"] is True


def test_nothing_changed_reuses_it_and_converges_the_same(tmp_path: Path) -> None:
    inputs = Inputs(tmp_path)
    cold = inputs.compile(use_store=True)
    warm = inputs.compile(use_store=True)
    assert warm.reads.get("stored") is True
    assert canon(warm) == canon(cold)
    # the services are this run's own, never copies kept from the run that stored it
    res = warm.catalog.nodes[0].res
    assert isinstance(res.ctx.system, System) and res.ctx.fact_host is warm.fact_host


def catalog_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "state/cache/catalogs"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_damaged_stored_catalog_is_ignored(tmp_path: Path) -> None:
    inputs = Inputs(tmp_path)
    cold = canon(inputs.compile(use_store=True))
    (path,) = catalog_files(tmp_path)
    data = path.read_bytes()
    for damaged in (b"", b"not a pickle", data[: len(data) // 2], data[:-7] + b"garbage"):
        path.write_bytes(damaged)
        again = inputs.compile(use_store=True)
        assert canon(again) == cold
        assert not again.reads.get("stored")
        assert path.read_bytes() != damaged  # stored again, whole
    path.chmod(0)
    if os.geteuid() != 0:  # root reads it anyway
        assert canon(inputs.compile(use_store=True)) == cold


def test_a_catalog_with_a_sensitive_resource_is_not_kept_and_an_older_one_goes(
        tmp_path: Path) -> None:
    inputs = Inputs(tmp_path)
    inputs.compile(use_store=True)
    assert len(catalog_files(tmp_path)) == 1
    inputs.rewrite("base/recipe.yml", 'mode: "{{ attributes.base.mode }}"',
                   'mode: "{{ attributes.base.mode }}"\n    sensitive: true')
    assert not inputs.compile(use_store=True).reads.get("stored")
    assert catalog_files(tmp_path) == []
    assert not inputs.compile(use_store=True).reads.get("stored")


def test_a_catalog_that_used_a_random_value_is_not_kept(tmp_path: Path) -> None:
    inputs = Inputs(tmp_path)
    inputs.rewrite("base/recipe.yml", '"{{ attributes.base.motd }}\\n"',
                   '"{{ [1, 2, 3] | random }}\\n"')
    inputs.compile(use_store=True)
    assert catalog_files(tmp_path) == []


def test_turned_off_it_stores_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRUEUP_CATALOG_CACHE", "off")
    inputs = Inputs(tmp_path)
    inputs.compile(use_store=True)
    inputs.compile(use_store=True)
    assert catalog_files(tmp_path) == []


def test_it_is_private_to_trueup(tmp_path: Path) -> None:
    Inputs(tmp_path).compile(use_store=True)
    (path,) = catalog_files(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o077 == 0


def test_a_file_changed_within_a_clock_tick_is_checked_by_its_content(tmp_path: Path) -> None:
    # a file rewritten with the same size within one tick of the file system's clock
    # keeps its stat: the key then holds its content's digest, checked on every run
    inputs = Inputs(tmp_path)
    inputs.compile(use_store=True)
    (path,) = catalog_files(tmp_path)
    bundle = Bundle(str(inputs.bundle), str(tmp_path / "state/cache/parsed/b"))
    key = stored.inputs(inputs.opts, inputs.cfg, bundle)
    racy = stored.racy_digests(key)
    template = str(inputs.bundle / "app/templates/app.conf.j2")
    assert template in racy  # just written: within the window

    def load() -> Prepared | None:
        return stored.load(str(path), key, Facts(overrides=inputs.facts), System(),
                           Backups(str(tmp_path / "b")), no_secrets)

    prepared = inputs.compile(use_store=False)
    facts = Facts(overrides=inputs.facts)
    facts["hostname"]
    for digests, hit in ((racy, True), ({**racy, template: "0" * 64}, False)):
        assert stored.store(str(path), key, prepared, facts, System(),
                            Backups(str(tmp_path / "b")), digests)
        assert (load() is not None) is hit
