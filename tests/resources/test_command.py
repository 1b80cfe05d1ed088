"""command: a working directory that is not there is reported as such; returns."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ResourceError
from agent.resources import Context
from agent.resources.command import Command


def make(ctx: Context, **spec: Any) -> Command:
    res = Command("cmd", spec, ctx)
    res.validate()
    res.prepare()
    return res


def test_a_missing_cwd_is_named(ctx: Context, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    res = make(ctx, run=["/bin/true"], cwd=str(missing))
    with pytest.raises(ResourceError,
                       match=f"^working directory {re.escape(str(missing))} does not exist$"):
        res.apply(res.check())


def test_a_cwd_that_is_a_file_is_named(ctx: Context, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("")
    res = make(ctx, run="true", shell=True, cwd=str(plain))
    with pytest.raises(ResourceError,
                       match=f"^working directory {re.escape(str(plain))} is not a directory$"):
        res.refresh("run")


def test_an_existing_cwd_is_used(ctx: Context, tmp_path: Path) -> None:
    res = make(ctx, run=["/bin/sh", "-c", "pwd > out"], cwd=str(tmp_path))
    res.apply(res.check())
    assert (tmp_path / "out").read_text() == f"{tmp_path}\n"


@pytest.mark.parametrize("returns", [3, [0, 3], [0, "3"]])
def test_returns_lists_the_exit_codes_that_succeed(ctx: Context, tmp_path: Path,
                                                   returns: Any) -> None:
    make(ctx, run=["/bin/sh", "-c", "exit 3"], returns=returns).refresh("run")
    with pytest.raises(ResourceError):
        make(ctx, run=["/bin/sh", "-c", "exit 4"], returns=returns).refresh("run")
