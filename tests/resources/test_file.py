"""file: apply writes the content its check planned, carried by the change."""

from __future__ import annotations

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
