"""Helpers shared by the test suites: bundles on disk, the real CLI, tree snapshots."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def write_bundle(root: Path, recipes: dict[str, str], *, templates: dict[str, str] | None = None,
                 files: dict[str, str | bytes] | None = None, runlist: str | None = None,
                 attributes: str | None = None) -> Path:
    """Write a bundle: ``recipes`` maps name → recipe.yml text; templates/files keys are
    'recipe/relative/path'."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in recipes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "recipe.yml").write_text(textwrap.dedent(text))
    for folder, entries in (("templates", templates or {}), ("files", files or {})):
        for key, content in entries.items():
            recipe, _, rel = key.partition("/")
            path = root / recipe / folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content))
    if runlist is not None:
        (root / "runlist").write_text(runlist + "\n")
    if attributes is not None:
        (root / "attributes.yml").write_text(textwrap.dedent(attributes))
    return root


def run_cli(*args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real command line (python -m agent) and capture its output."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO)
    full_env.update(env or {})
    argv = [*(prefix or []), sys.executable, "-m", "agent", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=timeout,
                          cwd=str(REPO))


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under root: type, mode, owner, inode, mtime_ns, ctime_ns, content hash."""
    out: dict[str, tuple] = {}
    if not root.exists():
        return out
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            extra = ""
            if os.path.islink(path):
                extra = os.readlink(path)
            elif os.path.isfile(path):
                with open(path, "rb") as fh:
                    extra = hashlib.sha256(fh.read()).hexdigest()
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_ino,
                                                st.st_mtime_ns, st.st_ctime_ns, extra)
    return out


def fill(value: object, **words: str) -> object:
    """``value`` with "{word}" replaced in every string, e.g. fill(spec, tmp="/t")."""
    if isinstance(value, str):
        for word, text in words.items():
            value = value.replace("{" + word + "}", text)
        return value
    if isinstance(value, list):
        return [fill(v, **words) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, **words) for k, v in value.items()}
    return value


def setup_tree(example: dict, tree: Path) -> None:
    """Prepare ``tree`` as an example's "_" keys say: ``_setup`` {relative path: content
    (str or bytes), or None for a folder}, ``_links`` {relative path: link target},
    ``_modes`` {relative path: octal mode string}."""
    for rel, content in example.get("_setup", {}).items():
        path = tree / rel
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
    for rel, target in example.get("_links", {}).items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, tree / rel)
    for rel, mode in example.get("_modes", {}).items():
        os.chmod(tree / rel, int(mode, 8))


def example_bundle(example: dict, tree: Path, bundle: Path) -> Path:
    """A one-recipe bundle ("r") declaring ``example``, with ``tree`` prepared first
    (:func:`setup_tree`); ``_templates`` {name: text} go in the recipe's templates/."""
    import json

    setup_tree(example, tree)
    (bundle / "r" / "templates").mkdir(parents=True)
    for name, text in example.get("_templates", {}).items():
        (bundle / "r" / "templates" / name).write_text(text)
    spec = {k: v for k, v in example.items() if not k.startswith("_")}
    (bundle / "r" / "recipe.yml").write_text(json.dumps({"resources": [spec]}))
    (bundle / "runlist").write_text("r\n")
    return bundle


@contextlib.contextmanager
def tiny_tmpfs(folder: Path, size: str = "64k") -> Iterator[Path]:
    """A small tmpfs (``size``, mode 0700) mounted on ``folder`` (made if missing), unmounted
    afterwards: a full disk on demand. Skips where mounting is not allowed (not root)."""
    import pytest

    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)
