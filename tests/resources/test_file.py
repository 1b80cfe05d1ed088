"""file: apply writes the content its check planned, carried by the change."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ResourceError
from agent.model import Change
from agent.resources import Context
from agent.resources.file import File


def make(ctx: Context, name: str, **spec: Any) -> File:
    res = File(name, spec, ctx)
    res.validate()
    res.prepare()
    return res


@pytest.mark.parametrize("existing", [None, b"old\n"], ids=["created", "replaced"])
def test_apply_writes_the_content_carried_by_the_change(ctx: Context, tmp_path: Path,
                                                        existing: bytes | None) -> None:
    path = tmp_path / "motd"
    if existing is not None:
        path.write_bytes(existing)
    res = make(ctx, str(path), content="planned\n")
    changes = res.check()
    res.desired = b"not what check planned\n"  # apply must not read the resource again
    res.apply(changes)
    assert path.read_bytes() == b"planned\n"


def test_a_content_change_without_its_bytes_is_refused(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "motd"
    path.write_bytes(b"old\n")
    res = make(ctx, str(path), content="new\n")
    with pytest.raises(ResourceError, match="carries no content"):
        res.apply([Change("content", "a", "b")])
    assert path.read_bytes() == b"old\n"


def backups(tmp_path: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((tmp_path / "backups").rglob("*")) if p.is_file()]


def test_a_refused_verify_makes_no_backup(ctx: Context, tmp_path: Path) -> None:
    """Five refused attempts used to leave five copies of the unchanged file, pushing
    every real backup out."""
    path = tmp_path / "app.conf"
    for content in ("v1\n", "v2\n"):  # one real backup: v1
        res = make(ctx, str(path), content=content)
        res.apply(res.check())
    assert backups(tmp_path) == [b"v1\n"]
    res = make(ctx, str(path), content="broken\n", verify=["false"])
    changes = res.check()
    for _ in range(5):
        with pytest.raises(ResourceError, match="refused the new content"):
            res.apply(changes)
    assert path.read_bytes() == b"v2\n"
    assert backups(tmp_path) == [b"v1\n"]


def test_an_accepted_verify_backs_up_the_replaced_content(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "app.conf"
    path.write_bytes(b"old\n")
    res = make(ctx, str(path), content="ok\n", verify=["grep", "-q", "ok", "%{path}"])
    res.apply(res.check())
    assert path.read_bytes() == b"ok\n"
    assert backups(tmp_path) == [b"old\n"]


def test_a_mode_change_makes_no_backup(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "app.conf"
    path.write_bytes(b"same\n")
    os.chmod(path, 0o644)
    res = make(ctx, str(path), content="same\n", mode="0600")
    assert [c.field for c in res.check()] == ["mode"]
    res.apply(res.check())
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert backups(tmp_path) == []


def test_a_file_reverted_each_run_is_backed_up_once(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "app.conf"
    for _ in range(3):
        path.write_bytes(b"someone's edit\n")  # the same drift, run after run
        res = make(ctx, str(path), content="managed\n")
        res.apply(res.check())
    assert backups(tmp_path) == [b"someone's edit\n"]


def test_a_sensitive_files_backup_is_private(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "secret.conf"
    path.write_bytes(b"password=old\n")
    os.chmod(path, 0o644)
    res = make(ctx, str(path), content="password=new\n", sensitive=True)
    res.apply(res.check())
    (kept,) = [p for p in (tmp_path / "backups").rglob("*") if p.is_file()]
    assert kept.read_bytes() == b"password=old\n"
    assert os.stat(kept).st_mode & 0o7777 == 0o600
    folder = kept.parent
    while folder != tmp_path:
        assert os.stat(folder).st_mode & 0o7777 == 0o700, folder
        folder = folder.parent
