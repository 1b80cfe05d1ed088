"""link: a regular file it replaces stays recoverable from a backup; a folder is refused."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ResourceError
from agent.resources import Context
from agent.resources.link import Link
from tests.helpers import snapshot


def make(ctx: Context, name: str, **spec: Any) -> Link:
    res = Link(name, spec, ctx)
    res.validate()
    res.prepare()
    return res


def backups(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "backups").rglob("*") if p.is_file())


@pytest.mark.parametrize("hard", [False, True], ids=["symbolic", "hard"])
def test_a_regular_file_in_the_way_is_backed_up_then_replaced(ctx: Context, tmp_path: Path,
                                                               hard: bool) -> None:
    target = tmp_path / "release"
    target.write_bytes(b"release\n")
    path = tmp_path / "current"
    path.write_bytes(b"hand-written, never saved elsewhere\n")
    res = make(ctx, str(path), to=str(target), hard=hard)
    res.apply(res.check())
    assert res.check() == []
    (backup,) = backups(tmp_path)
    assert backup.read_bytes() == b"hand-written, never saved elsewhere\n"
    assert backup.relative_to(tmp_path / "backups").parts[:-1] == path.relative_to("/").parts
    assert os.stat(backup).st_mode & 0o777 == 0o600


def test_backup_false_replaces_without_a_copy(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "current"
    path.write_bytes(b"old\n")
    res = make(ctx, str(path), to="/elsewhere", backup=False)
    res.apply(res.check())
    assert os.readlink(path) == "/elsewhere"
    assert backups(tmp_path) == []


def test_retargeting_a_link_makes_no_backup(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "current"
    path.symlink_to("/old")
    res = make(ctx, str(path), to="/new")
    res.apply(res.check())
    assert os.readlink(path) == "/new"
    assert backups(tmp_path) == []


def test_a_failed_backup_leaves_the_file_in_place(tmp_path: Path) -> None:
    from agent.host.system import System

    class FullDisk:
        def save(self, path: str, data: bytes, keep: int | None = None) -> str:
            raise OSError(errno.ENOSPC, f"no space left on device for the backup of {path}")

    ctx = Context(str(tmp_path), "r", lambda *a: "", FullDisk(), System())
    path = tmp_path / "current"
    path.write_bytes(b"precious\n")
    res = make(ctx, str(path), to="/elsewhere")
    changes = res.check()
    with pytest.raises(ResourceError,
                       match=f"no space left.*{re.escape(str(path))} left unchanged"):
        res.apply(changes)
    assert not path.is_symlink() and path.read_bytes() == b"precious\n"


@pytest.mark.parametrize("state", ["present", "absent"])
def test_a_folder_in_the_way_is_refused_and_left_alone(ctx: Context, tmp_path: Path,
                                                       state: str) -> None:
    path = tmp_path / "current"
    (path / "inside").mkdir(parents=True)
    (path / "inside" / "data").write_bytes(b"data\n")
    before = snapshot(tmp_path)
    res = make(ctx, str(path), to="/elsewhere", state=state)
    with pytest.raises(ResourceError, match=f"^{re.escape(str(path))} is a directory; link: "
                       "does not replace a directory \\(remove it first\\)$"):
        res.check()
    assert snapshot(tmp_path) == before


def test_a_fifo_in_the_way_is_refused(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "current"
    os.mkfifo(path)
    with pytest.raises(ResourceError, match="not a regular file"):
        make(ctx, str(path), to="/elsewhere").check()
    assert path.is_fifo()
