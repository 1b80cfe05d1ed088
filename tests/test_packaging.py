"""The wheel ships ami/ as the package agent.ami; install.sh refuses bad arguments.

Builds a real wheel from a copy of the checkout (pip, as CI and the test hosts do), lists
it, and checks that an editable install resolves agent.ami to the checkout's ami/ folder.
install.sh installing that wheel without network (a private-network build host, from a
wheelhouse) and again changing nothing is in tests/system/test_bake_image.py.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP = {".git", "build", "dist", ".venv", "venv", "__pycache__", ".pytest_cache",
        ".ruff_cache", ".hypothesis"}

pytestmark = pytest.mark.slow  # a wheel build takes 10-20 s


def _ignore(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in SKIP or n.endswith(".egg-info")}


def _pip(*args: str, python: str = sys.executable, timeout: float = 600) -> None:
    proc = subprocess.run([python, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"pip {args} failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("pkg") / "src"
    shutil.copytree(REPO, src, ignore=_ignore, symlinks=True)
    return src


@pytest.fixture(scope="module")
def wheel(checkout: Path) -> Path:
    out = checkout.parent / "dist"
    _pip("wheel", "--no-deps", "-q", "-w", str(out), str(checkout))
    (found,) = out.glob("trueup-*.whl")
    return found


def test_the_wheel_holds_ami_and_every_agent_module(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "agent/ami/install.sh" in names
    assert "agent/ami/__init__.py" in names
    units = sorted(p.name for p in (REPO / "ami" / "systemd").glob("*.service"))
    for unit in units:
        assert f"agent/ami/systemd/{unit}" in names
    modules = {str(p.relative_to(REPO)) for p in (REPO / "agent").rglob("*.py")}
    missing = sorted(m for m in modules if m not in names)
    assert missing == [], f"agent modules missing from the wheel: {missing}"
    assert not any(n.startswith(("ami/", "tests/", "packer/")) for n in names)


def test_the_trueup_command_imports_nothing_before_the_cli(wheel: Path) -> None:
    """The wheel's ``trueup`` script is trueup's own (``#!python``, rewritten by pip to the
    environment's interpreter), not a generated wrapper that imports ``re`` first."""
    with zipfile.ZipFile(wheel) as whl:
        (script,) = [n for n in whl.namelist() if n.endswith(".data/scripts/trueup")]
        text = whl.read(script).decode()
    assert text.startswith("#!python\n")
    imports = [node for node in ast.parse(text).body
               if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(node) for node in imports] == ["import sys", "from agent.cli import main"]


@pytest.mark.parametrize("argv, message", [
    ([], "usage"),
    (["/nonexistent.whl"], "does not exist"),
    (["--index-url", "http://x.invalid/", "extra", "more"], "usage"),
    (["--prefix", "relative", "x.whl"], "absolute"),
])
def test_install_sh_refuses_bad_arguments(tmp_path: Path, argv: list[str], message: str) -> None:
    if "x.whl" in argv:
        (tmp_path / "x.whl").write_bytes(b"")
    res = subprocess.run(["sh", str(REPO / "ami" / "install.sh"), *argv], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode in (1, 2)
    assert message in res.stderr
    assert not (tmp_path / "relative").exists()


def test_an_editable_install_resolves_agent_ami(checkout: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    _pip("--python", python, "install", "-q", "--no-deps", "-e", str(checkout))
    code = ("import importlib.resources as r; "
            "print(r.files('agent.ami').joinpath('install.sh'))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd="/",
                         env={"PATH": os.environ["PATH"]}, check=True).stdout.strip()
    assert Path(out) == checkout / "ami" / "install.sh"
    version = subprocess.run([str(venv / "bin" / "trueup"), "--version"], capture_output=True,
                             text=True, cwd="/", env={"PATH": os.environ["PATH"]}, check=False)
    assert version.returncode == 0 and version.stdout.startswith("trueup "), version
