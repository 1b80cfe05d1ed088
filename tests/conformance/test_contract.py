"""Every registered kind × each of its EXAMPLES: check → apply → check is empty; noop is inert;
and the converged tree is the one the example expects.

Example keys starting with '_' prepare the tree first: ``_setup`` {relative path: content
(str or bytes), or None for a folder}, ``_links`` {relative path: link target}, ``_modes``
{relative path: octal string}, ``_templates`` {name: text}. ``_expect`` is the whole tree after
apply: {relative path: entry}, where an entry is None (absent), the content of a regular file
(str or bytes), or a mapping of what to compare: ``type`` (file, the default, dir or link),
``content``, ``mode`` (octal string), ``to`` (a link's target), ``links`` (hard link count).
Every path in the tree must be listed. "{tmp}" in any string stands for the test's scratch
folder.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from agent.aws.secrets import SecretStore
from agent.compile.loader import Bundle
from agent.compile.prepare import Options, prepare
from agent.config import Config
from agent.engine.backups import Backups
from agent.engine.runner import Runner
from agent.host.facts import Facts
from agent.host.system import System
from agent.resources import load_all
from tests.helpers import fill, setup_tree, snapshot

KINDS = load_all()
# kinds that change the whole system run their examples on booted hosts (tests/system)
CASES = [(kind, i) for kind, cls in KINDS.items() if not cls.SYSTEM
         for i in range(max(1, len(cls.EXAMPLES)))]


def _tree(root: Path) -> dict[str, dict[str, Any]]:
    """Every entry under root with its type, mode, and content, link target or link count."""
    out: dict[str, dict[str, Any]] = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            entry: dict[str, Any] = {"mode": f"{stat.S_IMODE(st.st_mode):04o}"}
            if stat.S_ISLNK(st.st_mode):
                entry.update(type="link", to=os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                entry["type"] = "dir"
            else:
                with open(path, "rb") as fh:
                    entry.update(type="file", content=fh.read(), links=st.st_nlink)
            out[os.path.relpath(path, root)] = entry
    return out


def _expected(expect: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``_expect`` in the shape of :func:`_tree`, keeping only the keys it names."""
    out: dict[str, dict[str, Any]] = {}
    for rel, want in expect.items():
        if want is None:
            continue
        entry = dict(want) if isinstance(want, dict) else {"content": want}
        entry.setdefault("type", "file")
        if isinstance(entry.get("content"), str):
            entry["content"] = entry["content"].encode()
        out[os.path.normpath(rel)] = entry
    return out


def assert_tree(root: Path, expect: dict[str, Any]) -> None:
    """The tree under root is exactly ``expect`` (see the module docstring)."""
    expected = _expected(expect)
    observed = _tree(root)
    seen = {rel: {key: entry.get(key) for key in expected.get(rel, entry)}
            for rel, entry in observed.items()}
    assert seen == expected, "the converged tree is not the expected one"


def _resource(example: dict, tmp_path: Path):
    bundle = tmp_path / "bundle"
    (bundle / "r" / "templates").mkdir(parents=True)
    for name, text in example.get("_templates", {}).items():
        (bundle / "r" / "templates" / name).write_text(text)
    spec = {k: v for k, v in example.items() if not k.startswith("_")}
    (bundle / "r" / "recipe.yml").write_text(json.dumps({"resources": [spec]}))
    prepared = prepare(Options(source=str(bundle), runlist="r"), Config(state_dir=str(tmp_path)),
                       Bundle(str(bundle)), System(), Backups(str(tmp_path / "backups")),
                           Facts(), SecretStore())
    (node,) = prepared.catalog.nodes
    return prepared.catalog, node.res


@pytest.mark.parametrize(("kind", "index"), CASES, ids=[f"{k}-{i}" for k, i in CASES])
def test_example_converges(kind: str, index: int, tmp_path: Path) -> None:
    cls = KINDS[kind]
    assert cls.EXAMPLES, f"kind {kind} has no EXAMPLES"
    assert cls.__doc__ and "Example:" in cls.__doc__, f"{kind} docstring shows no recipe YAML"
    assert "_expect" in cls.EXAMPLES[index], f"{kind} example {index} has no _expect"
    tree = tmp_path / "t"
    tree.mkdir()
    example = fill(cls.EXAMPLES[index], tmp=str(tree))
    setup_tree(example, tree)
    catalog, res = _resource(example, tmp_path)

    changes = res.check()
    assert changes, "the example must need a change on a fresh tree"
    before = snapshot(tree)
    results = Runner(catalog, System(), noop=True).run()
    assert results[0].status == "changed"
    assert snapshot(tree) == before, "noop changed the tree"

    res.apply(changes)
    assert_tree(tree, example["_expect"])
    if res.converges:
        assert res.check() == [], "not converged after apply"
    converged = snapshot(tree)
    again = Runner(catalog, System()).run()
    if res.converges:
        assert again[0].status == "unchanged"
        assert snapshot(tree) == converged, "a converged resource was touched again"


def test_every_kind_registers_itself_from_its_own_module() -> None:
    for kind, cls in KINDS.items():
        assert cls.__module__ == f"agent.resources.{kind}", (kind, cls.__module__)


def test_every_kind_has_examples_and_a_recipe_yaml_docstring() -> None:
    for kind, cls in KINDS.items():
        assert cls.EXAMPLES, f"kind {kind} has no EXAMPLES"
        assert cls.__doc__ and "Example:" in cls.__doc__ and f"- {kind}:" in cls.__doc__, kind
