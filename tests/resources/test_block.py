"""block: a managed block between markers; every other byte of the file is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ResourceError
from agent.resources import Context, SpecError
from agent.resources.block import Block


def make(ctx: Context, name: str, **spec: object) -> Block:
    res = Block(name, spec, ctx)
    res.validate()
    res.prepare()
    return res


def converge(res: Block) -> None:
    res.apply(res.check())
    assert res.check() == []


def test_every_other_byte_is_kept(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "f"
    before = b"\xfe\xff bin\x00ary\n\x0cform feed\r\nno final newline"
    path.write_bytes(before)
    res = make(ctx, str(path), content="one\ntwo\n")
    converge(res)
    assert path.read_bytes() == (before + b"\n# BEGIN TRUEUP MANAGED BLOCK\none\ntwo\n"
                                 b"# END TRUEUP MANAGED BLOCK\n")
    converge(make(ctx, str(path), state="absent"))
    assert path.read_bytes() == before + b"\n"  # only the newline the block needed stays


def test_two_labelled_blocks_share_a_file(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("top\nbottom\n")
    converge(make(ctx, "a", path=str(path), content="A", insert_before="BOF"))
    converge(make(ctx, "b", path=str(path), content="B", insert_after="^top$"))
    assert path.read_text() == ("# BEGIN TRUEUP MANAGED BLOCK a\nA\n# END TRUEUP MANAGED BLOCK a\n"
                                "top\n# BEGIN TRUEUP MANAGED BLOCK b\nB\n"
                                "# END TRUEUP MANAGED BLOCK b\nbottom\n")
    converge(make(ctx, "a", path=str(path), content="A2"))
    assert "A2\n" in path.read_text() and "B\n" in path.read_text()


def test_a_custom_marker(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("")
    converge(make(ctx, str(path), content="x", marker="// {mark} app", marker_begin="start",
                  marker_end="stop"))
    assert path.read_text() == "// start app\nx\n// stop app\n"


def test_a_begin_marker_without_end_is_an_error(ctx: Context, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("# BEGIN TRUEUP MANAGED BLOCK\nx\n")
    with pytest.raises(ResourceError, match="no end marker"):
        make(ctx, str(path), content="y").check()
    assert path.read_text() == "# BEGIN TRUEUP MANAGED BLOCK\nx\n"


def test_a_missing_file_needs_create(ctx: Context, tmp_path: Path) -> None:
    with pytest.raises(ResourceError, match="create: true"):
        make(ctx, str(tmp_path / "nope"), content="x").check()


@pytest.mark.parametrize(("spec", "field"), [
    ({"marker": "no mark here"}, "marker"),
    ({"insert_after": "a", "insert_before": "b"}, "insert_before"),
    ({"insert_after": "("}, "insert_after"),
    ({"marker_begin": "X", "marker_end": "X"}, "marker_end"),
])
def test_bad_specs(ctx: Context, tmp_path: Path, spec: dict, field: str) -> None:
    with pytest.raises(SpecError) as err:
        make(ctx, str(tmp_path / "f"), **spec)
    assert err.value.field == field
