"""A failed write names the file the recipe declared, not the temporary file it goes through
(``.NAME.trueup-new``), whose name means nothing to the person reading the report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ResourceError
from agent.host.system import temp_name
from agent.resources import Context, Resource
from agent.resources.file import File
from agent.resources.line import Line
from agent.resources.link import Link

# a valid name (250 bytes) whose temporary sibling (.NAME.trueup-new) is too long
LONG = "n" * 250


def make(cls: type[Resource], ctx: Context, name: str, **spec: Any) -> Resource:
    res = cls(name, spec, ctx)
    res.validate()
    res.prepare()
    return res


def cannot_write(path: Path) -> pytest.RaisesContext:
    return pytest.raises(ResourceError, match=f"^cannot write {re.escape(str(path))}: ")


@pytest.mark.parametrize(("cls", "spec"), [
    (File, {"content": "x\n"}),
    (Line, {"text": "x", "create": True}),
    (Link, {"to": "/elsewhere"}),
], ids=["file", "line", "link"])
def test_a_name_too_long_for_the_temporary_file_names_the_target(
        ctx: Context, tmp_path: Path, cls: type[Resource], spec: dict) -> None:
    path = tmp_path / LONG
    res = make(cls, ctx, str(path), **spec)
    with cannot_write(path) as caught:
        res.apply(res.check())
    assert "File name too long" in str(caught.value)
    assert not path.exists()


def test_a_folder_in_the_temporary_files_place_names_the_target(ctx: Context,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "app.conf"
    path.write_bytes(b"old\n")
    Path(temp_name(str(path))).mkdir()
    res = make(File, ctx, str(path), content="new\n")
    with cannot_write(path) as caught:
        res.apply(res.check())
    assert str(caught.value).endswith(f"(at {temp_name(str(path))})")  # the culprit, second
    assert path.read_bytes() == b"old\n"
