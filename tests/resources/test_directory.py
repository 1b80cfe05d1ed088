"""directory: check lists every folder apply creates; apply creates exactly those."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ResourceError
from agent.model import Change
from agent.resources import Context
from agent.resources.directory import Directory
from tests.helpers import snapshot


def make(ctx: Context, name: str, **spec: Any) -> Directory:
    res = Directory(name, spec, ctx)
    res.validate()
    return res


def mode_of(path: Path) -> int:
    return os.stat(path).st_mode & 0o7777


def test_check_lists_each_missing_parent_outermost_first(ctx: Context, tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c"
    changes = make(ctx, str(target), mode="0750").check()
    assert changes == [Change("parent", None, str(tmp_path / "a")),
                       Change("parent", None, str(tmp_path / "a" / "b")),
                       Change("state", "absent", "present"),
                       Change("mode", None, "0750")]


def test_check_creates_nothing(ctx: Context, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    make(ctx, str(tmp_path / "a" / "b"), mode="0750").check()
    assert snapshot(tmp_path) == before


def test_apply_creates_the_planned_parents_with_0755(ctx: Context, tmp_path: Path) -> None:
    res = make(ctx, str(tmp_path / "a" / "b" / "c"), mode="0700")
    res.apply(res.check())
    assert mode_of(tmp_path / "a") == 0o755
    assert mode_of(tmp_path / "a" / "b") == 0o755
    assert mode_of(tmp_path / "a" / "b" / "c") == 0o700
    assert res.check() == []


def test_apply_creates_no_parent_check_did_not_plan(ctx: Context, tmp_path: Path) -> None:
    res = make(ctx, str(tmp_path / "a" / "b"))
    unplanned = [c for c in res.check() if c.field != "parent"]
    with pytest.raises(FileNotFoundError):
        res.apply(unplanned)
    assert not (tmp_path / "a").exists()


def test_an_existing_parent_is_not_listed(ctx: Context, tmp_path: Path) -> None:
    assert [c.field for c in make(ctx, str(tmp_path / "new")).check()] == ["state"]


def test_a_parent_that_is_a_file_is_an_error(ctx: Context, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x\n")
    with pytest.raises(ResourceError, match="not a directory"):
        make(ctx, str(tmp_path / "file" / "sub")).check()


def test_a_dangling_link_as_parent_is_an_error(ctx: Context, tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ResourceError, match="is not a directory"):
        make(ctx, str(tmp_path / "dangling" / "sub")).check()


def test_mode_drift_is_one_change_and_apply_fixes_only_the_mode(ctx: Context,
                                                                 tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    os.chmod(folder, 0o755)
    (folder / "keep").write_text("k\n")
    res = make(ctx, str(folder), mode="0700")
    changes = res.check()
    assert changes == [Change("mode", "0755", "0700")]
    res.apply(changes)
    assert mode_of(folder) == 0o700
    assert (folder / "keep").read_text() == "k\n"


def test_absent_refuses_a_folder_with_contents_unless_recursive(ctx: Context,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x\n")
    with pytest.raises(ResourceError, match="recursive: true"):
        make(ctx, str(tmp_path / "full"), state="absent").check()
    res = make(ctx, str(tmp_path / "full"), state="absent", recursive=True)
    res.apply(res.check())
    assert not (tmp_path / "full").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_recursive_owner_and_modes_below_never_through_a_link(ctx: Context,
                                                              tmp_path: Path) -> None:
    top = tmp_path / "top"
    (top / "sub").mkdir(parents=True)
    (top / "sub" / "f").write_text("f\n")
    outside = tmp_path / "outside"
    outside.write_text("not mine\n")
    (top / "link").symlink_to(outside)
    res = make(ctx, str(top), owner="4321", group="4321", mode="0750", file_mode="0600",
               recursive=True)
    changes = res.check()
    assert [c.field for c in changes] == ["mode", "owner", "group", "below"]
    res.apply(changes)
    for path in (top, top / "sub", top / "sub" / "f"):
        st = os.lstat(path)
        assert (st.st_uid, st.st_gid) == (4321, 4321), path
    assert mode_of(top / "sub") == 0o750 and mode_of(top / "sub" / "f") == 0o600
    assert os.lstat(outside).st_uid == 0 and mode_of(outside) == 0o644
    assert os.lstat(top / "link").st_uid == 0
    assert res.check() == []
    (top / "sub" / "new").write_text("n\n")
    assert [c.field for c in res.check()] == ["below"]


def test_file_mode_needs_recursive(ctx: Context, tmp_path: Path) -> None:
    from agent.resources import SpecError

    with pytest.raises(SpecError, match="recursive: true"):
        make(ctx, str(tmp_path / "x"), file_mode="0644")
