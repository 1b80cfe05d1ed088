"""One policy for symbolic links across file, template and line (link: in test_link.py).

file, template and line never write through a symbolic link, nor over one, nor remove
one: a link at their path is one clear error and nothing is touched, whatever the state.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from agent.engine.backups import Backups
from agent.errors import ResourceError
from agent.host.system import System
from agent.resources import Context, Resource
from agent.resources.file import File
from agent.resources.line import Line
from agent.resources.template import Template
from tests.helpers import snapshot

KINDS = ["file", "template", "line"]


def make(kind: str, tmp_path: Path, path: Path, **extra: Any) -> Resource:
    """A resource of ``kind`` that wants ``path`` to hold "new\\n"."""
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "t.j2").write_text("new\n")
    ctx = Context(str(tmp_path), "r", lambda *args: "new\n", Backups(str(tmp_path / "backups")),
                  System())
    cls, spec = {"file": (File, {"content": "new\n"}),
                 "template": (Template, {"source": "t.j2"}),
                 "line": (Line, {"text": "new"})}[kind]
    res = cls(str(path), {**spec, **extra}, ctx)
    res.validate()
    res.prepare()
    return res


def refused(path: Path) -> pytest.RaisesContext:
    """The policy's one error for a link at ``path``."""
    return pytest.raises(ResourceError, match=f"^{re.escape(str(path))} is a symbolic link; "
                                              "manage it with link: or remove it$")


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file a symbolic link points at: it must never be written."""
    target = tmp_path / "victim"
    target.write_bytes(b"victim's own content\n")
    return target


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("state", ["present", "absent"])
def test_a_link_to_a_file_is_refused_and_left_alone(kind: str, state: str, tmp_path: Path,
                                                    victim: Path) -> None:
    path = tmp_path / "conf"
    path.symlink_to(victim)
    res = make(kind, tmp_path, path, state=state)
    before = snapshot(tmp_path)
    with refused(path):
        res.check()
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", KINDS)
def test_a_dangling_link_is_refused(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "conf"
    path.symlink_to(tmp_path / "nowhere")
    res = make(kind, tmp_path, path, **({"create": True} if kind == "line" else {}))
    with refused(path):
        res.check()
    assert path.is_symlink() and not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_link_that_appears_after_check_is_refused_by_apply(kind: str, tmp_path: Path,
                                                              victim: Path) -> None:
    path = tmp_path / "conf"
    path.write_bytes(b"victim's own content\n")  # what check sees: the victim's bytes
    res = make(kind, tmp_path, path)
    changes = res.check()
    assert changes
    path.unlink()
    path.symlink_to(victim)
    with refused(path):
        res.apply(changes)
    assert path.is_symlink() and os.readlink(path) == str(victim)
    assert victim.read_bytes() == b"victim's own content\n"
    assert not (tmp_path / "backups").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_link_in_a_parent_folder_is_followed(kind: str, tmp_path: Path) -> None:
    """Only the last component counts: /etc/alternatives-style folder links are normal."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "via").symlink_to(real)
    res = make(kind, tmp_path, tmp_path / "via" / "conf", **(
        {"create": True} if kind == "line" else {}))
    res.apply(res.check())
    assert (real / "conf").read_text() == "new\n"
